#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and atomic writes through the C library (no Foundation in VisionCore).
public enum FileIO {
    /// Reads a file, refusing files larger than `maxBytes`.
    public static func read(_ path: String, maxBytes: Int = 1 << 34) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw VisionError.io("cannot open '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        guard fseeko(f, 0, SEEK_END) == 0 else { throw VisionError.io("cannot seek in '\(path)'") }
        let size = Int(ftello(f))
        guard size >= 0 else { throw VisionError.io("cannot size '\(path)' (is it a directory?)") }
        guard size <= maxBytes else { throw VisionError.io("'\(path)' has \(size) bytes; the limit is \(maxBytes)") }
        rewind(f)
        var bytes = [UInt8](repeating: 0, count: size)
        let got = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
        guard got == size else { throw VisionError.io("short read of '\(path)': \(got) of \(size) bytes") }
        return bytes
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, then rename, so that a
    /// crash leaves either the old file or the new one, never a torn one.
    public static func writeAtomically(_ path: String, _ bytes: UnsafeRawBufferPointer) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw VisionError.io("cannot create '\(tmp)': \(String(cString: strerror(errno)))") }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                throw VisionError.io("cannot write '\(tmp)': \(String(cString: strerror(errno)))")
            }
            written += n
        }
        guard fsync(fd) == 0 else { close(fd); throw VisionError.io("fsync of '\(tmp)' failed") }
        guard close(fd) == 0 else { throw VisionError.io("close of '\(tmp)' failed") }
        guard rename(tmp, path) == 0 else {
            throw VisionError.io("cannot rename '\(tmp)' to '\(path)': \(String(cString: strerror(errno)))")
        }
        ok = true
        // Make the rename itself durable.
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
