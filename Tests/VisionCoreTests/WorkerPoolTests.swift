import CKernels
import Foundation
import Synchronization
import Testing
@testable import VisionCore
#if canImport(Glibc)
import Glibc
#endif

/// VisionCore's worker pool (`SpinPool`, `Threading.runOnThreads`): every participant runs once, on its own thread
/// when the pool is free; calls made while it runs a job (nested, or from other threads) run in order on the
/// calling thread and still give every participant once.
@Suite struct WorkerPoolTests {
    @Test func everyParticipantRunsOnceOnItsOwnThread() throws {
        for n in [1, 2, 3, 5] {
            let counts = Mutex<[Int]>(Array(repeating: 0, count: n))
            let threads = Mutex<Set<UInt>>([])
            Threading.runOnThreads(n) { t in
                counts.withLock { $0[t] += 1 }
                let me = UInt(pthread_self())
                threads.withLock { _ = $0.insert(me) }
            }
            #expect(counts.withLock { $0 } == Array(repeating: 1, count: n), "n \(n)")
            // Other tests may hold the pool at the same moment; then all n ran on this thread.
            let distinct = threads.withLock { $0.count }
            #expect(distinct == n || distinct == 1, "n \(n): \(distinct) threads")
        }
    }

    @Test func jobsOfVaryingWidthsRunEachParticipantOnce() throws {
        // Workers idle in one job (beyond its width) must neither join the next one late nor run it twice.
        let widths = [5, 2, 4, 3, 1, 5]
        let counts = Mutex<[Int]>(Array(repeating: 0, count: 5))
        var want = Array(repeating: 0, count: 5)
        for i in 0..<3000 {
            let n = widths[i % widths.count]
            Threading.runOnThreads(n) { t in counts.withLock { $0[t] += 1 } }
            for t in 0..<n { want[t] += 1 }
        }
        #expect(counts.withLock { $0 } == want)
    }

    @Test func nestedCallsRunInOrderOnTheCallingThread() throws {
        let log = Mutex<[[Int]]>(Array(repeating: [], count: 3))
        Threading.runOnThreads(3) { outer in
            Threading.runOnThreads(4) { inner in log.withLock { $0[outer].append(inner) } }
        }
        #expect(log.withLock { $0 } == Array(repeating: [0, 1, 2, 3], count: 3))
    }

    @Test func concurrentCallersAllComplete() async throws {
        // Several tasks run parallel kernels at once: whichever holds the pool, each result is the same as alone,
        // bit for bit (tests that pick kernel ISAs do so for their own threads only: `vck_isa_choice`).
        let x = try randomTensor([2, 16, 64, 64], seed: 90), w = try randomTensor([24, 16, 3, 3], seed: 91)
        let dw = try randomTensor([16, 1, 3, 3], seed: 92)
        func run() throws -> [Float] {
            try conv2d(x, weight: w, padding: (1, 1)).toArray(Float.self)
                + conv2d(x, weight: dw, padding: (1, 1), groups: 16).toArray(Float.self)
        }
        let want = try run()
        try await withThrowingTaskGroup(of: [Float].self) { group in
            for _ in 0..<6 { group.addTask { try run() } }
            for try await got in group { #expect(got == want) }
        }
    }

    /// A kernel ISA picked on one thread (as the ISA tests do) holds for the pool's workers in that thread's jobs,
    /// and for no other thread.
    @Test func isaChoiceIsPerThreadAndReachesTheWorkers() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let best = vck_conv_gemm_isa()
        #expect(vck_conv_gemm_set_isa(1) == 0)
        #expect(vck_conv_gemm_isa() == 1)
        // The level each of two pool participants runs its part at.
        func participantLevels() -> [Int32] {
            let levels = Mutex<[Int32]>([0, 0])
            Threading.runOnThreads(2) { t in
                let level = vck_conv_gemm_isa()
                levels.withLock { $0[t] = level }
            }
            return levels.withLock { $0 }
        }
        #expect(participantLevels() == [1, 1])
        let elsewhere = Mutex<Int32>(0), done = DispatchSemaphore(value: 0)
        Thread {
            elsewhere.withLock { $0 = vck_conv_gemm_isa() }
            done.signal()
        }.start()
        done.wait()
        #expect(elsewhere.withLock { $0 } == best)
        #expect(vck_conv_gemm_set_isa(0) == 0)
        #expect(participantLevels() == [best, best])
    }
}

/// `Threading.forEachPiece`: pieces that cover the units exactly once at any thread count, nested or not, and a
/// thread that stalls has the rest of its share taken by the others.
@Suite struct BalancedPiecesTests {
    /// How many times each unit was run, and the pieces (thread, range), for `units` at `threads` threads.
    static func run(_ units: Int, threads: Int) throws -> (counts: [Int], pieces: [(Int, Range<Int>)]) {
        let counts = Mutex<[Int]>(Array(repeating: 0, count: units)), pieces = Mutex<[(Int, Range<Int>)]>([])
        try Threading.withThreadCount(threads) {
            Threading.forEachPiece(units) { piece, thread in
                counts.withLock { for u in piece { $0[u] += 1 } }
                pieces.withLock { $0.append((thread, piece)) }
            }
        }
        return (counts.withLock { $0 }, pieces.withLock { $0 })
    }

    @Test func piecesCoverEveryUnitOnce() throws {
        for threads in [1, 2, 3, 8] {
            for units in [0, 1, 2, 5, 17, 98, 1000] {
                let (counts, pieces) = try Self.run(units, threads: threads)
                #expect(counts == Array(repeating: 1, count: units), "\(units) units, \(threads) threads")
                #expect(pieces.allSatisfy { !$0.1.isEmpty && $0.0 >= 0 && $0.0 < max(1, min(threads, units)) })
            }
        }
        // One thread: one piece, the whole range.
        #expect(try Self.run(40, threads: 1).pieces.map(\.1) == [0..<40])
    }

    @Test func nestedCallsStillCoverEveryUnitOnce() throws {
        // Inside a pool job the participants run one after another on the calling thread.
        let counts = Mutex<[Int]>(Array(repeating: 0, count: 64))
        try Threading.withThreadCount(2) {
            Threading.runOnThreads(2) { t in
                guard t == 0 else { return }
                Threading.forEachPiece(64) { piece in counts.withLock { for u in piece { $0[u] += 1 } } }
            }
        }
        #expect(counts.withLock { $0 } == Array(repeating: 1, count: 64))
    }

    @Test func piecesShrinkAndStartOnContiguousShares() throws {
        // Thread 0's first piece starts its share [0, 500) and is a third of what was left of it: 167 units when
        // the other thread took none of it (which it may, when the caller's thread starts late on a loaded
        // machine); the pieces it then takes from its share's front follow on, each no larger than the one before.
        let (_, pieces) = try Self.run(1000, threads: 2)
        let mine = pieces.filter { $0.0 == 0 }.map(\.1)
        let stolen = pieces.contains { $0.0 != 0 && $0.1.lowerBound < 500 }
        #expect(mine.first?.lowerBound == 0 && (mine.first?.count ?? 0) <= 167)
        if !stolen { #expect(mine.first == 0..<167) }
        var front = [mine[0]]
        for piece in mine.dropFirst() where piece.lowerBound == front.last!.upperBound { front.append(piece) }
        #expect(zip(front, front.dropFirst()).allSatisfy { $0.count >= $1.count }, "\(front)")
        if !stolen { #expect(front.count >= 2) }
    }

    @Test func aStalledThreadHasItsShareTaken() throws {
        // The thread that starts on the second share sleeps through its first piece; the other takes the rest.
        let clock = ContinuousClock()
        let woke = Mutex<ContinuousClock.Instant?>(nil)
        let (counts, pieces) = try { () throws -> ([Int], [(Int, Range<Int>, ContinuousClock.Instant)]) in
            let counts = Mutex<[Int]>(Array(repeating: 0, count: 300))
            let pieces = Mutex<[(Int, Range<Int>, ContinuousClock.Instant)]>([])
            try Threading.withThreadCount(2) {
                Threading.forEachPiece(300) { piece, thread in
                    if piece.lowerBound == 150 {
                        usleep(200_000)
                        woke.withLock { $0 = clock.now }
                    }
                    counts.withLock { for u in piece { $0[u] += 1 } }
                    pieces.withLock { $0.append((thread, piece, clock.now)) }
                }
            }
            return (counts.withLock { $0 }, pieces.withLock { $0 })
        }()
        #expect(counts == Array(repeating: 1, count: 300))
        // Unless a loaded machine kept the other thread from finishing its own share well before the stalled one
        // woke, the thread that did not stall ran most of the stalled thread's share [150, 300). (When another test
        // holds the pool, the two run one after the other on one thread: the first still takes the second's share.)
        if let stalled = pieces.first(where: { $0.1.lowerBound == 150 })?.0,
           let wake = woke.withLock({ $0 }),
           let ownDone = pieces.filter({ $0.0 != stalled && $0.1.lowerBound < 150 }).map(\.2).max(),
           ownDone < wake - .milliseconds(50) {
            let taken = pieces.filter { $0.0 != stalled && $0.1.lowerBound >= 150 }.map(\.1.count).reduce(0, +)
            #expect(taken >= 90, "\(pieces.map { ($0.0, $0.1) })")
        }
    }
}
