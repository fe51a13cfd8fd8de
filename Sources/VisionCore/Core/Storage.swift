#if canImport(Glibc)
import Glibc
#endif

/// Reference-counted, 64-byte-aligned memory shared by tensor views. Tensors copy it before writing when it is
/// shared (copy-on-write).
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    /// Bytes actually allocated (a size class of `BlockCache`), at least `byteCount`.
    let capacity: Int

    /// Allocates `byteCount` bytes (at least 64, so that empty tensors still have a valid pointer), zero-filled
    /// unless the caller is about to overwrite every byte.
    public init(byteCount: Int, zeroed: Bool = true) throws {
        guard byteCount >= 0, byteCount <= Limits.maxBytes else {
            throw VisionError.outOfMemory("allocation of \(byteCount) bytes exceeds the limit of \(Limits.maxBytes)")
        }
        let (ptr, cap) = try BlockCache.shared.allocate(max(byteCount, 64))
        if zeroed { memset(ptr, 0, cap) }
        base = ptr
        capacity = cap
        self.byteCount = byteCount
    }

    /// A copy of the first `byteCount` bytes of this storage.
    func copy() throws -> TensorStorage {
        let s = try TensorStorage(byteCount: byteCount, zeroed: false)
        if byteCount > 0 { memcpy(s.base, base, byteCount) }
        return s
    }

    deinit { BlockCache.shared.release(base, capacity) }
}

/// Keeps recently freed large blocks for reuse. Blocks above glibc's mmap threshold are otherwise unmapped on
/// free and page-faulted back in on the next allocation, which costs more than the kernels that fill them
/// (a 64 MB activation: ~16k faults, measured at 4-5 GB/s instead of ~25 for the element-wise kernels).
/// Sizes are rounded up to classes of 1/8 of a power of two, so a reused block wastes at most 12.5%.
final class BlockCache: @unchecked Sendable {
    static let shared = BlockCache()
    /// Blocks below this size come from malloc's own free lists.
    static let minCachedBytes = 1 << 18
    /// Blocks of at least this size start on a 2 MB boundary and ask for transparent huge pages.
    static let hugePage = 1 << 21
    /// Upper bound of the bytes held idle in the cache.
    static let maxIdleBytes = 1 << 29

    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var idleBytes = 0
    private var lock = pthread_mutex_t()

    init() { pthread_mutex_init(&lock, nil) }

    static func sizeClass(_ n: Int) -> Int {
        if n < minCachedBytes { return (n + 63) & ~63 }
        let top = Int.bitWidth - (n - 1).leadingZeroBitCount   // 2^top >= n
        let granule = 1 << (top - 4)           // n > 2^(top-1): waste < 2^(top-4) <= n/8
        return (n + granule - 1) / granule * granule
    }

    func allocate(_ n: Int) throws -> (UnsafeMutableRawPointer, Int) {
        let cap = BlockCache.sizeClass(n)
        if cap >= BlockCache.minCachedBytes {
            pthread_mutex_lock(&lock)
            if let p = free[cap]?.popLast() {
                idleBytes -= cap
                pthread_mutex_unlock(&lock)
                return (p, cap)
            }
            pthread_mutex_unlock(&lock)
        }
        var p: UnsafeMutableRawPointer? = nil
        let huge = cap >= BlockCache.hugePage
        guard posix_memalign(&p, huge ? BlockCache.hugePage : 64, cap) == 0, let ptr = p else {
            throw VisionError.outOfMemory("could not allocate \(n) bytes")
        }
        if huge { _ = madvise(ptr, cap / BlockCache.hugePage * BlockCache.hugePage, 14 /* MADV_HUGEPAGE */) }
        return (ptr, cap)
    }

    func release(_ p: UnsafeMutableRawPointer, _ cap: Int) {
        if cap >= BlockCache.minCachedBytes {
            pthread_mutex_lock(&lock)
            if idleBytes + cap <= BlockCache.maxIdleBytes {
                free[cap, default: []].append(p)
                idleBytes += cap
                pthread_mutex_unlock(&lock)
                return
            }
            pthread_mutex_unlock(&lock)
        }
        Glibc.free(p)
    }

    /// Returns every idle block to the system.
    func trim() {
        pthread_mutex_lock(&lock)
        let blocks = free.values.flatMap { $0 }
        free.removeAll()
        idleBytes = 0
        pthread_mutex_unlock(&lock)
        for p in blocks { Glibc.free(p) }
    }
}

/// The library's idle memory.
public enum Memory {
    /// Returns the blocks kept for reuse and malloc's free pages to the system: after building a model, so that
    /// the process does not carry its construction's temporaries through inference.
    public static func releaseIdle() {
        BlockCache.shared.trim()
        _ = mallocTrim(0)
    }
}

/// glibc's malloc_trim (malloc.h, which the Glibc module does not export).
@_silgen_name("malloc_trim") private func mallocTrim(_ pad: Int) -> Int32
