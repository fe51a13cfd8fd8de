import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// VisionCore's worker threads: persistent threads that poll for the next job for a short while after each one
/// (about 0.1 ms) before they sleep on a condition variable, so that the short parallel ops of a forward pass,
/// back to back, find their threads awake. Dispatch's `concurrentPerform` wakes a parked thread for most such
/// ops; on ReXNet at batch 1 (about 300 parallel ops per image, many of a few dozen microseconds) that wake-up
/// cost about 13% of the time.
///
/// One job at a time: a call made while the pool runs another (a nested call from inside a job, or a second
/// thread of the application) runs its participants one after another on the calling thread, in order, so the
/// work split, and with it every result, stays the same. Workers are created on first use, up to the thread
/// count minus one, and a fork's child starts with none.
final class SpinPool: @unchecked Sendable {
    static let shared = SpinPool()

    private var mutex = pthread_mutex_t(), cond = pthread_cond_t()
    /// The published job: its generation (bumped per job; a worker runs each once) << 16 | its width (the number
    /// of participants), in one word, so that a worker never pairs one job's generation with another's width.
    private let state = Atomic<Int>(0)
    /// Workers still running the current job.
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    // Written by the caller that holds `busy` before it publishes the job, read by workers after they see it.
    nonisolated(unsafe) private var job: UncheckedBox<(Int) -> Void>?
    /// The caller's kernel ISA choice (thread-local, set by tests), which the workers take for the job.
    nonisolated(unsafe) private var jobISA = vck_isa_choice()
    nonisolated(unsafe) private var workers = 0
    /// Polls of about 50-150 cycles each (`pause`) before a worker sleeps.
    private let pollsBeforeSleep = 4_000

    private init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        pthread_atfork(nil, nil) { SpinPool.shared.resetInChild() }
    }

    /// Runs body(t) for t in 0..<n, each on its own thread (the caller's is t = 0), and returns when all are done.
    func run(_ n: Int, _ body: (Int) -> Void) {
        guard n > 1, n < 1 << 16, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for t in 0..<max(n, 0) { body(t) }
            return
        }
        while workers < n - 1 && spawn(workers + 1) {}
        if workers < n - 1 {
            // No thread could be created: the participants run here.
            busy.store(false, ordering: .releasing)
            for t in 0..<n { body(t) }
            return
        }
        withoutActuallyEscaping(body) { body in
            job = UncheckedBox(body)
            vck_isa_choice_get(&jobISA)
            remaining.store(n - 1, ordering: .relaxed)
            let generation = (state.load(ordering: .relaxed) >> 16) + 1
            state.store(generation << 16 | n, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&cond)
                pthread_mutex_unlock(&mutex)
            }
            body(0)
            var polls = 0
            while remaining.load(ordering: .acquiring) > 0 {
                // A worker the OS has descheduled (a loaded machine): give it the core instead of spinning.
                if polls < pollsBeforeSleep { polls += 1; vck_cpu_relax() } else { sched_yield() }
            }
            job = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Starts worker `index`, which takes the job about to be published as its first; false when it cannot.
    private func spawn(_ index: Int) -> Bool {
        let start = state.load(ordering: .acquiring) >> 16
        let context = Unmanaged.passRetained(SpinWorker(pool: self, index: index, start: start)).toOpaque()
        var tid = pthread_t()
        let created = pthread_create(&tid, nil, { raw in
            let worker = Unmanaged<SpinWorker>.fromOpaque(raw!).takeRetainedValue()
            worker.pool.loop(worker.index, from: worker.start)
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<SpinWorker>.fromOpaque(context).release()
            return false
        }
        pthread_detach(tid)
        workers = index
        return true
    }

    /// Calls the job; its reference is released before this returns (the caller's closure must not escape).
    @inline(never) private func runJob(_ index: Int) {
        vck_isa_choice_set(&jobISA)
        job?.value(index)
    }

    private func loop(_ index: Int, from start: Int) -> Never {
        var seen = start
        while true {
            var polls = 0
            var published = state.load(ordering: .acquiring)
            while published >> 16 == seen {
                if polls < pollsBeforeSleep {
                    polls += 1
                    vck_cpu_relax()
                } else {
                    pthread_mutex_lock(&mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while state.load(ordering: .sequentiallyConsistent) >> 16 == seen { pthread_cond_wait(&cond, &mutex) }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(&mutex)
                }
                published = state.load(ordering: .acquiring)
            }
            seen = published >> 16
            if index < published & 0xFFFF {
                runJob(index)
                remaining.subtract(1, ordering: .releasing)
            }
        }
    }

    /// A fork's child has only the forking thread: no workers, and no job in flight.
    private func resetInChild() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        (workers, job) = (0, nil)
        sleepers.store(0, ordering: .relaxed)
        remaining.store(0, ordering: .relaxed)
        busy.store(false, ordering: .relaxed)
    }
}

private final class SpinWorker {
    let pool: SpinPool, index: Int, start: Int
    init(pool: SpinPool, index: Int, start: Int) { (self.pool, self.index, self.start) = (pool, index, start) }
}
