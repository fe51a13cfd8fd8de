import VisionCore

/// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte,
/// a dimension count, that many big-endian UInt32 sizes, then the row-major data in big-endian order.
///
/// Type bytes: 0x08 uint8 (loaded as uint8), 0x09 int8, 0x0B int16, 0x0C int32 (loaded as int32), 0x0D float32,
/// 0x0E float64 (loaded as float32). Files may be gzip-compressed (recognised by their magic, not their name).
public enum IDX {
    /// Largest decompressed IDX file accepted by default (2 GiB; Fashion-MNIST's largest is 47 MB).
    public static let defaultMaxBytes = 1 << 31

    static func elementSize(_ code: UInt8) -> Int? {
        switch code {
        case 0x08, 0x09: return 1
        case 0x0B: return 2
        case 0x0C, 0x0D: return 4
        case 0x0E: return 8
        default: return nil
        }
    }

    /// Reads an IDX file, gzip-compressed or not. Errors: `.io` when it cannot be read, `.format` for a bad
    /// magic, type or dimension count, sizes that do not match the data length (truncated or trailing bytes),
    /// corrupt gzip data; `.outOfMemory` above `maxBytes` (compressed or inflated). Messages name the path.
    public static func read(path: String, maxBytes: Int = defaultMaxBytes) throws -> Tensor {
        var bytes = try FileIO.read(path, maxBytes: maxBytes)
        if Gzip.isGzip(bytes) { bytes = try Gzip.decompress(bytes, maxOutputBytes: maxBytes, what: "'\(path)'") }
        return try decode(bytes, what: "'\(path)'")
    }

    /// Decodes IDX bytes (already decompressed) into a tensor; see `read(path:maxBytes:)` for the errors.
    public static func decode(_ b: [UInt8], what: String = "IDX data") throws -> Tensor {
        guard b.count >= 4 else { throw VisionError.format("IDX: \(what) has \(b.count) bytes, shorter than the 4-byte magic") }
        guard b[0] == 0, b[1] == 0 else {
            throw VisionError.format("IDX: \(what) does not start with the IDX magic 00 00 (got \(hex(b[0])) \(hex(b[1]))); is it an IDX file?")
        }
        guard let size = elementSize(b[2]) else {
            throw VisionError.format("IDX: \(what) has unknown element type 0x\(hex(b[2])) (expected 08, 09, 0B, 0C, 0D or 0E)")
        }
        let rank = Int(b[3])
        guard rank >= 1, rank <= Limits.maxRank else {
            throw VisionError.format("IDX: \(what) declares \(rank) dimensions (1...\(Limits.maxRank) accepted)")
        }
        let header = 4 + 4 * rank
        guard b.count >= header else { throw VisionError.format("IDX: \(what) is truncated inside its \(rank) dimension sizes") }
        var shape = [Int]()
        for d in 0..<rank {
            let o = 4 + 4 * d
            shape.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        let count: Int
        do { count = try Tensor.checkedCount(shape) } catch {
            throw VisionError.outOfMemory("IDX: \(what) declares shape \(shape), which is too large")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, b.count - header == bytes else {
            throw VisionError.format("IDX: \(what) declares shape \(shape) (\(overflow ? "too many" : String(bytes)) bytes of data) but holds \(b.count - header) bytes after its header\(b.count - header < bytes ? ": the file is truncated" : "")")
        }
        return try b.withUnsafeBufferPointer { p -> Tensor in
            let data = p.baseAddress! + header
            func be<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> T {
                var v: T = 0
                for k in 0..<MemoryLayout<T>.size { v = v << 8 | T(truncatingIfNeeded: data[i * MemoryLayout<T>.size + k]) }
                return v
            }
            switch b[2] {
            case 0x08: return try Tensor(copying: data, shape: shape, dtype: .uint8)
            case 0x09: return try Tensor((0..<count).map { Int32(Int8(bitPattern: data[$0])) }, shape: shape)
            case 0x0B: return try Tensor((0..<count).map { Int32(Int16(bitPattern: be($0, UInt16.self))) }, shape: shape)
            case 0x0C: return try Tensor((0..<count).map { Int32(bitPattern: be($0, UInt32.self)) }, shape: shape)
            case 0x0D: return try Tensor((0..<count).map { Float(bitPattern: be($0, UInt32.self)) }, shape: shape)
            default: return try Tensor((0..<count).map { Float(Double(bitPattern: be($0, UInt64.self))) }, shape: shape)
            }
        }
    }

    /// Encodes a uint8, int32 or float32 tensor as IDX bytes (types 0x08, 0x0C, 0x0D). Errors: another dtype,
    /// a rank of 0, or a dimension above UInt32.max.
    public static func encode(_ t: Tensor) throws -> [UInt8] {
        let code: UInt8
        switch t.dtype {
        case .uint8: code = 0x08
        case .int32: code = 0x0C
        case .float32: code = 0x0D
        case .int64: throw VisionError.dtypeMismatch("IDX: int64 tensors have no IDX type; convert to int32")
        }
        guard t.rank >= 1, t.rank <= 255, t.shape.allSatisfy({ $0 <= Int(UInt32.max) }) else {
            throw VisionError.invalidArgument("IDX: cannot encode shape \(t.shape) (1...255 dimensions, each below 2^32)")
        }
        var out: [UInt8] = [0, 0, code, UInt8(t.rank)]
        for d in t.shape { out += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        func put(_ v: UInt32) { out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        switch t.dtype {
        case .uint8: out += try t.toArray(UInt8.self)
        case .int32: for v in try t.toArray(Int32.self) { put(UInt32(bitPattern: v)) }
        default: for v in try t.toArray(Float.self) { put(v.bitPattern) }
        }
        return out
    }

    private static func hex(_ v: UInt8) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return s.count == 1 ? "0" + s : s
    }
}
