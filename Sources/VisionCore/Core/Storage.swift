#if canImport(Glibc)
import Glibc
#endif

/// Reference-counted, 64-byte-aligned, zero-initialised memory shared by tensor views. Tensors copy it before
/// writing when it is shared (copy-on-write).
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int

    /// Allocates `byteCount` bytes (at least one, so that empty tensors still have a valid pointer).
    public init(byteCount: Int, zeroed: Bool = true) throws {
        guard byteCount >= 0, byteCount <= Limits.maxBytes else {
            throw VisionError.outOfMemory("allocation of \(byteCount) bytes exceeds the limit of \(Limits.maxBytes)")
        }
        var p: UnsafeMutableRawPointer? = nil
        let n = max(byteCount, 64)
        guard posix_memalign(&p, 64, n) == 0, let ptr = p else {
            throw VisionError.outOfMemory("could not allocate \(byteCount) bytes")
        }
        if zeroed { memset(ptr, 0, n) }
        base = ptr
        self.byteCount = byteCount
    }

    /// A copy of the first `byteCount` bytes of this storage.
    func copy() throws -> TensorStorage {
        let s = try TensorStorage(byteCount: byteCount, zeroed: false)
        if byteCount > 0 { memcpy(s.base, base, byteCount) }
        return s
    }

    deinit { free(base) }
}
