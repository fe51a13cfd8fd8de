import CZlib
import VisionCore

/// gzip (and zlib) decompression through the system zlib, for the .gz files datasets ship in.
public enum Gzip {
    /// True when `bytes` start with the gzip magic 1f 8b.
    public static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

    /// Inflates a gzip stream (concatenated members, as `cat a.gz b.gz` makes, are joined) or a zlib stream.
    ///
    /// Errors: `.format` for empty, corrupt or truncated data (with zlib's message); `.outOfMemory` when the
    /// output would exceed `maxOutputBytes` (checked as it grows, so a small "gzip bomb" cannot exhaust memory)
    /// or the input exceeds 4 GiB (zlib's 32-bit counter). `what` names the data in messages (the file path).
    public static func decompress(_ input: [UInt8], maxOutputBytes: Int = 1 << 32, what: String = "data") throws -> [UInt8] {
        guard !input.isEmpty else { throw VisionError.format("gzip: \(what) is empty") }
        guard input.count <= Int(UInt32.max) else {
            throw VisionError.outOfMemory("gzip: \(what) has \(input.count) compressed bytes; the limit is 4 GiB")
        }
        var stream = z_stream()
        // 15 + 32: the largest window, with automatic gzip/zlib header detection.
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw VisionError.outOfMemory("gzip: cannot initialise zlib for \(what)")
        }
        defer { inflateEnd(&stream) }
        var out = [UInt8]()
        out.reserveCapacity(min(maxOutputBytes, input.count * 4))
        let chunk = 1 << 18
        var buffer = [UInt8](repeating: 0, count: chunk)
        try input.withUnsafeBufferPointer { inp in
            let base = inp.baseAddress!
            stream.next_in = UnsafeMutablePointer(mutating: base)
            stream.avail_in = UInt32(inp.count)
            while true {
                let status: Int32 = buffer.withUnsafeMutableBufferPointer { b in
                    stream.next_out = b.baseAddress
                    stream.avail_out = UInt32(chunk)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk - Int(stream.avail_out)
                guard out.count + produced <= maxOutputBytes else {
                    throw VisionError.outOfMemory("gzip: \(what) inflates to more than \(maxOutputBytes) bytes")
                }
                out.append(contentsOf: buffer[0..<produced])
                switch status {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    let used = UnsafePointer(stream.next_in!) - base
                    // Another gzip member may follow; anything else after the end (e.g. zero padding) is ignored,
                    // as gzip itself does.
                    guard inp.count - used >= 2, inp[used] == 0x1F, inp[used + 1] == 0x8B else { return }
                    guard inflateReset(&stream) == Z_OK else { throw VisionError.format("gzip: cannot reset zlib for \(what)") }
                case Z_BUF_ERROR where stream.avail_in == 0:
                    throw VisionError.format("gzip: \(what) is truncated (the compressed stream ends early)")
                default:
                    let reason = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw VisionError.format("gzip: \(what) is corrupt: \(reason)")
                }
            }
        }
        return out
    }

    /// Compresses `input` as one gzip member (zlib's deflate, `level` 0...9), e.g. to write IDX files that
    /// `IDX.read` and other tools read back.
    public static func compress(_ input: [UInt8], level: Int = 6) throws -> [UInt8] {
        guard (0...9).contains(level) else { throw VisionError.invalidArgument("gzip: level must be in 0...9, got \(level)") }
        guard input.count <= Int(UInt32.max) else { throw VisionError.outOfMemory("gzip: cannot compress more than 4 GiB at once") }
        var stream = z_stream()
        // 15 + 16: the largest window with a gzip header; memLevel 8 is zlib's default.
        guard deflateInit2_(&stream, Int32(level), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw VisionError.outOfMemory("gzip: cannot initialise zlib's deflate")
        }
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                stream.next_in = inp.baseAddress
                stream.avail_in = UInt32(inp.count)
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw VisionError.outOfMemory("gzip: deflate failed (zlib status \(status))") }
        out.removeLast(Int(stream.avail_out))
        return out
    }
}
