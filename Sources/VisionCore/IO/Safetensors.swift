/// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON
/// header mapping names to {dtype, shape, data_offsets} (plus optional string `__metadata__`), then the data.
/// Reading validates everything before touching the data, as the reference implementation does: header length
/// limit, well-formed JSON, known dtypes, shape x dtype size = byte length, offsets in bounds, and offsets that
/// tile the data section exactly (sorted, no overlap, no gap, no trailing bytes).
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case F32, F16, BF16, I64, I32, U8

    public var size: Int {
        switch self {
        case .F32, .I32: return 4
        case .F16, .BF16: return 2
        case .I64: return 8
        case .U8: return 1
        }
    }

    /// The tensor dtype a stored dtype loads as (F16 and BF16 widen to float32).
    public var tensorDType: DType {
        switch self {
        case .F32, .F16, .BF16: return .float32
        case .I64: return .int64
        case .I32: return .int32
        case .U8: return .uint8
        }
    }

    /// The natural stored dtype of a tensor dtype.
    public init(_ d: DType) {
        switch d {
        case .float32: self = .F32
        case .int32: self = .I32
        case .int64: self = .I64
        case .uint8: self = .U8
        }
    }
}

/// The contents of a safetensors file: tensors in data order, their stored dtypes, and the metadata.
public struct SafetensorsFile: Sendable {
    public var entries: [(name: String, tensor: Tensor, stored: SafetensorsDType)]
    public var metadata: [(String, String)]

    public init(entries: [(name: String, tensor: Tensor, stored: SafetensorsDType)] = [], metadata: [(String, String)] = []) {
        self.entries = entries
        self.metadata = metadata
    }

    public var names: [String] { entries.map(\.name) }

    public subscript(name: String) -> Tensor? { entries.first { $0.name == name }?.tensor }

    /// The tensor called `name`, or an error naming the missing key.
    public func tensor(_ name: String) throws -> Tensor {
        guard let t = self[name] else { throw VisionError.invalidArgument("safetensors: no tensor named '\(name)'") }
        return t
    }
}

public enum Safetensors {
    /// Headers above this size are refused before being read (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    /// Reads and validates a safetensors file.
    public static func load(path: String) throws -> SafetensorsFile {
        let bytes = try FileIO.read(path)
        do {
            return try bytes.withUnsafeBytes { try decode($0) }
        } catch let e as VisionError {
            throw VisionError.format("\(path): \(e.message)")
        }
    }

    /// Parses and validates safetensors bytes.
    public static func decode(_ buf: UnsafeRawBufferPointer) throws -> SafetensorsFile {
        guard buf.count >= 8 else { throw VisionError.format("safetensors: \(buf.count) bytes is too short for a header length") }
        let n = buf.loadUnaligned(as: UInt64.self).littleEndian
        guard n <= UInt64(maxHeaderBytes) else { throw VisionError.format("safetensors: header length \(n) exceeds \(maxHeaderBytes)") }
        let headerLen = Int(n)
        guard headerLen <= buf.count - 8 else {
            throw VisionError.format("safetensors: header length \(headerLen) runs past the end of the \(buf.count)-byte file")
        }
        guard headerLen >= 2, buf[8] == UInt8(ascii: "{") else { throw VisionError.format("safetensors: header is not a JSON object") }
        let json = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: buf[8..<(8 + headerLen)]))
        guard case .object(let members) = json else { throw VisionError.format("safetensors: header is not a JSON object") }
        let data = UnsafeRawBufferPointer(rebasing: buf[(8 + headerLen)...])

        var metadata: [(String, String)] = []
        var specs: [(name: String, dtype: SafetensorsDType, shape: [Int], begin: Int, end: Int)] = []
        var seen = Set<String>()
        for (name, value) in members {
            guard seen.insert(name).inserted else { throw VisionError.format("safetensors: duplicate key '\(name)'") }
            if name == "__metadata__" {
                guard case .object(let m) = value else { throw VisionError.format("safetensors: __metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw VisionError.format("safetensors: metadata '\(k)' is not a string") }
                    metadata.append((k, s))
                }
                continue
            }
            guard let ds = value["dtype"]?.stringValue else { throw VisionError.format("safetensors: '\(name)' has no dtype") }
            guard let dtype = SafetensorsDType(rawValue: ds) else {
                throw VisionError.format("safetensors: '\(name)' has unsupported dtype \(ds) (supported: F32, F16, BF16, I64, I32, U8)")
            }
            guard let shapeJSON = value["shape"]?.arrayValue, shapeJSON.count <= Limits.maxRank else {
                throw VisionError.format("safetensors: '\(name)' has no valid shape")
            }
            let shape = try shapeJSON.map { v -> Int in
                guard let d = v.numberValue, d >= 0, d == d.rounded(), d < Double(Limits.maxBytes) else {
                    throw VisionError.format("safetensors: '\(name)' has an invalid dimension")
                }
                return Int(d)
            }
            guard let offs = value["data_offsets"]?.arrayValue, offs.count == 2,
                  let b = offs[0].numberValue, let e = offs[1].numberValue,
                  b >= 0, e >= b, b == b.rounded(), e == e.rounded(), e <= Double(data.count) else {
                throw VisionError.format("safetensors: '\(name)' has data_offsets outside the \(data.count)-byte data section")
            }
            let count = try Tensor.checkedCount(shape)
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytes == Int(e) - Int(b) else {
                throw VisionError.format("safetensors: '\(name)' shape \(shape) of \(dtype) needs \(count * dtype.size) bytes but its offsets span \(Int(e) - Int(b))")
            }
            specs.append((name, dtype, shape, Int(b), Int(e)))
        }
        specs.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for s in specs {
            guard s.begin == expected else {
                throw VisionError.format(s.begin < expected ? "safetensors: '\(s.name)' overlaps the previous tensor"
                                                            : "safetensors: gap before '\(s.name)' in the data section")
            }
            expected = s.end
        }
        guard expected == data.count else {
            throw VisionError.format("safetensors: tensors cover \(expected) bytes but the data section has \(data.count)")
        }
        var file = SafetensorsFile(metadata: metadata)
        for s in specs {
            let t = try decodeTensor(UnsafeRawBufferPointer(rebasing: data[s.begin..<s.end]), s.dtype, s.shape)
            file.entries.append((s.name, t, s.dtype))
        }
        return file
    }

    private static func decodeTensor(_ raw: UnsafeRawBufferPointer, _ dtype: SafetensorsDType, _ shape: [Int]) throws -> Tensor {
        let t = try Tensor(zeros: shape, dtype: dtype.tensorDType)
        let n = t.count
        switch dtype {
        case .F16:
            let d = t.pointer(Float.self)
            for i in 0..<n { d[i] = Float(float16Bits: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
        case .BF16:
            let d = t.pointer(Float.self)
            for i in 0..<n { d[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16) }
        default:
            // x86-64 and aarch64 are little-endian, like the format.
            if raw.count > 0 { t.storage.base.copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        }
        return t
    }

    /// Serializes tensors (in the given order) and string metadata. `storeAs` picks a stored dtype per name
    /// (F16/BF16 for float32 tensors round to nearest even); the default stores each tensor's own dtype.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [(String, String)] = [],
                              storeAs: [String: SafetensorsDType] = [:]) throws -> [UInt8] {
        var header: [(String, JSONValue)] = []
        if !metadata.isEmpty { header.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) }))) }
        var names = Set<String>()
        var offset = 0
        var plan: [(Tensor, SafetensorsDType, Int)] = []
        for (name, t) in tensors {
            guard name != "__metadata__", names.insert(name).inserted else {
                throw VisionError.invalidArgument("safetensors: duplicate or reserved tensor name '\(name)'")
            }
            let stored = storeAs[name] ?? SafetensorsDType(t.dtype)
            guard stored.tensorDType == t.dtype else {
                throw VisionError.dtypeMismatch("safetensors: cannot store a \(t.dtype) tensor '\(name)' as \(stored)")
            }
            let size = t.count * stored.size
            header.append((name, .object([("dtype", .string(stored.rawValue)),
                                          ("shape", .array(t.shape.map { .number(Double($0)) })),
                                          ("data_offsets", .array([.number(Double(offset)), .number(Double(offset + size))]))])))
            plan.append((t, stored, offset))
            offset += size
        }
        var json = Array(JSONValue.object(header).serialized.utf8)
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }  // aligns the data section, as the reference writer does
        var out = [UInt8](repeating: 0, count: 8 + json.count + offset)
        out.withUnsafeMutableBytes { o in
            o.storeBytes(of: UInt64(json.count).littleEndian, as: UInt64.self)
            json.withUnsafeBytes { o.baseAddress!.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: json.count) }
            let base = o.baseAddress! + 8 + json.count
            for (t, stored, off) in plan {
                guard let c = try? t.contiguous() else { continue }
                let dst = base + off
                switch stored {
                case .F16:
                    let s = c.pointer(Float.self)
                    for i in 0..<c.count { dst.storeBytes(of: s[i].float16Bits.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                case .BF16:
                    let s = c.pointer(Float.self)
                    for i in 0..<c.count { dst.storeBytes(of: s[i].bfloat16Bits.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                default:
                    if c.byteCount > 0 { dst.copyMemory(from: c.storage.base + c.offset * c.dtype.size, byteCount: c.byteCount) }
                }
            }
        }
        return out
    }

    /// Writes a safetensors file atomically (temporary file, fsync, rename).
    public static func save(_ tensors: [(String, Tensor)], metadata: [(String, String)] = [],
                            storeAs: [String: SafetensorsDType] = [:], path: String) throws {
        let bytes = try encode(tensors, metadata: metadata, storeAs: storeAs)
        try bytes.withUnsafeBytes { try FileIO.writeAtomically(path, $0) }
    }
}

extension Float {
    /// Widens IEEE half-precision bits (handles subnormals, infinities and NaN).
    init(float16Bits h: UInt16) {
        let sign = UInt32(h >> 15) << 31, exp = Int((h >> 10) & 0x1F), mant = UInt32(h & 0x3FF)
        if exp == 0x1F { self = Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)); return }
        if exp == 0 {
            let v = Float(mant) * 0x1p-24
            self = sign != 0 ? -v : v
            return
        }
        self = Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }

    /// Half-precision bits, rounding to nearest even (overflow gives infinity, NaN stays NaN).
    var float16Bits: UInt16 {
        let bits = bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        if isNaN { return sign | 0x7E00 }
        let a = Swift.abs(self)
        if a >= 65520 { return sign | 0x7C00 }
        if a < 0x1p-14 {
            // Subnormal half: a / 2^-24, rounded to nearest even.
            let q = (a * 0x1p24).rounded(.toNearestOrEven)
            return sign | UInt16(q)
        }
        let e = Int((bits >> 23) & 0xFF) - 127 + 15
        var m = bits & 0x7F_FFFF
        var he = UInt32(e)
        let round = m & 0x1FFF
        m >>= 13
        if round > 0x1000 || (round == 0x1000 && (m & 1) == 1) { m += 1; if m == 0x400 { m = 0; he += 1 } }
        return sign | UInt16(he << 10) | UInt16(m)
    }

    /// bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN).
    var bfloat16Bits: UInt16 {
        if isNaN { return UInt16((bitPattern >> 16) | 0x40) }
        let b = bitPattern
        return UInt16((b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }
}
