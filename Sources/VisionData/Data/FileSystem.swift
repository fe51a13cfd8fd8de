#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// The few directory operations the datasets need, on the C library (VisionCore uses no Foundation).
enum FileSystem {
    /// stat() of a path, following symbolic links; nil when it does not exist or cannot be reached.
    static func status(_ path: String) -> stat? {
        var st = stat()
        return stat(path, &st) == 0 ? st : nil
    }

    static func isRegularFile(_ path: String) -> Bool { status(path).map { ($0.st_mode & S_IFMT) == S_IFREG } ?? false }
    static func isDirectory(_ path: String) -> Bool { status(path).map { ($0.st_mode & S_IFMT) == S_IFDIR } ?? false }

    /// The names in a directory, without "." and "..", in no particular order.
    static func entries(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw VisionError.io("cannot list '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Python's string order (code points), which is UTF-8 byte order: what `sorted()` gives torchvision.
    static func pythonOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}
