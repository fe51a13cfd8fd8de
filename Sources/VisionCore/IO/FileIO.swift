#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and atomic writes through the C library (no Foundation in VisionCore).
public enum FileIO {
    /// Reads a regular file, refusing files larger than `maxBytes` (an `outOfMemory` error) before allocating.
    public static func read(_ path: String, maxBytes: Int = 1 << 34) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw VisionError.io("cannot open '\(path)': \(errnoText())") }
        defer { fclose(f) }
        var st = stat()
        guard fstat(fileno(f), &st) == 0 else { throw VisionError.io("cannot stat '\(path)': \(errnoText())") }
        // Directories open fine with fopen on Linux, and pipes or devices have no meaningful size.
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw VisionError.io("'\(path)' is not a regular file") }
        let size = Int(st.st_size)
        guard size >= 0, size <= maxBytes else {
            throw VisionError.outOfMemory("'\(path)' has \(size) bytes; the limit for this kind of file is \(maxBytes)")
        }
        if size == 0 { return [] }
        var bytes = [UInt8](repeating: 0, count: size)
        let got = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
        guard got == size else {
            throw VisionError.io("read \(got) of \(size) bytes of '\(path)': \(ferror(f) != 0 ? errnoText() : "the file shrank")")
        }
        return bytes
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

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
