import CBLAS
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// The library's threading: one shared pool (Dispatch's, whose fork/join costs about 0.1 µs, reference/
/// toolchain.md section 7) for VisionCore's own kernels, and OpenBLAS's threads for GEMM. Kernels that split work
/// themselves call BLAS from inside `parallelFor` only with BLAS set to one thread, so the two never stack up.
public enum Threading {
    nonisolated(unsafe) private static var configured = 0

    /// Number of threads VisionCore's kernels use (default: the number of online CPUs).
    public static var threadCount: Int {
        get { configured > 0 ? configured : defaultThreadCount }
    }

    /// Sets the thread count for VisionCore's kernels and OpenBLAS (n >= 1; values above 256 are refused).
    public static func setThreadCount(_ n: Int) throws {
        guard n >= 1, n <= 256 else { throw VisionError.invalidArgument("thread count must be in 1...256, got \(n)") }
        configured = n
        openblas_set_num_threads(Int32(n))
    }

    static let defaultThreadCount: Int = {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }()

    /// Runs BLAS single-threaded for the duration of `body` (used when the caller already splits work).
    static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        return try body()
    }
}

/// A pointer wrapper that may cross into `concurrentPerform` (raw pointers are not `Sendable` in Swift 6).
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}

/// Runs `body(i)` for i in 0..<n on up to `Threading.threadCount` threads, in contiguous chunks.
/// `minChunk` is the smallest amount of work (in iterations) worth a thread of its own.
func parallelFor(_ n: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let threads = min(Threading.threadCount, max(1, n / max(minChunk, 1)))
    if threads <= 1 { body(0..<n); return }
    let chunk = (n + threads - 1) / threads
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let lo = t * chunk, hi = min(n, lo + chunk)
            if lo < hi { box.value(lo..<hi) }
        }
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A mutex for merging per-thread results.
final class ThreadLock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
