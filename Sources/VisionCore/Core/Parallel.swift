import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// The library's threading: one shared pool (`SpinPool`: persistent threads that poll for the next job for about
/// 0.1 ms before they sleep) for all of VisionCore's work, OpenBLAS calls included: OpenBLAS runs on one thread
/// (`blasSingleThreaded`), and callers split large products themselves. OpenBLAS's own threads would spin
/// (sched_yield) for a long while after every threaded call, or after a change of its thread count, taking the
/// cores from this pool (measured: 15% of a Fashion-MNIST training run).
public enum Threading {
    nonisolated(unsafe) private static var configured = 0

    /// Number of threads VisionCore's kernels use: `withThreadCount`'s inside its body, else the number set by
    /// `setThreadCount` (default: the number of online CPUs).
    public static var threadCount: Int {
        get { scoped ?? (configured > 0 ? configured : defaultThreadCount) }
    }

    @TaskLocal private static var scoped: Int?

    /// Runs `body` with VisionCore's kernels called from it (in this task) on `n` threads, leaving the process-wide
    /// count, and so any other task's kernels, as they are: e.g. a test comparing thread counts while other work
    /// runs. Kernels split work by the thread count, and their results are the same from run to run only at a
    /// given count.
    public static func withThreadCount<R>(_ n: Int, _ body: () throws -> R) throws -> R {
        guard n >= 1, n <= 256 else { throw VisionError.invalidArgument("thread count must be in 1...256, got \(n)") }
        return try $scoped.withValue(n) { try body() }
    }

    /// Sets the thread count for VisionCore's kernels (n >= 1; values above 256 are refused).
    public static func setThreadCount(_ n: Int) throws {
        guard n >= 1, n <= 256 else { throw VisionError.invalidArgument("thread count must be in 1...256, got \(n)") }
        configured = n
    }

    /// Runs body(t) for t in 0..<n, each on its own thread of VisionCore's pool (the caller's is t = 0), and
    /// returns when all are done; while the pool runs another job (a call from inside a job, or from another
    /// application thread) the n calls run in order on the calling thread.
    public static func runOnThreads(_ n: Int, _ body: (Int) -> Void) { SpinPool.shared.run(n, body) }

    /// Sets OpenBLAS to one thread (once). Code that calls CBLAS directly, outside VisionCore's kernels, calls it
    /// first: otherwise OpenBLAS splits each product over its own threads, which then compete with this pool's.
    public static func prepareBLAS() { _ = blasSingleThreaded }

    /// OpenBLAS set to one thread, once, before the library's first BLAS call.
    static let blasSingleThreaded: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    static let defaultThreadCount: Int = {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }()
}

/// A pointer wrapper that may cross into the pool's jobs (raw pointers are not `Sendable` in Swift 6).
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
        SpinPool.shared.run(threads) { t in
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
