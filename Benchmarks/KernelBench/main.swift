// Kernel throughput next to the machine's own ceilings, measured in the same run: OpenBLAS sgemm (GFLOP/s) for
// compute-bound kernels and memcpy (GB/s) for streaming ones. Prints ratios and the targets of the Foundation
// issue; a ratio, not an absolute time, is what to compare across these shared, noisy machines.
//
//   out/bin/KernelBench [--quick]
import CBLAS
import VisionCore
#if canImport(Glibc)
import Glibc
#endif

let quick = CommandLine.arguments.contains("--quick")

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Best time of `body` over at least `minRuns` runs and `minSeconds` seconds (best-of-N resists noisy neighbours).
func bestTime(minRuns: Int = 5, minSeconds: Double = quick ? 0.2 : 1.0, _ body: () throws -> Void) rethrows -> Double {
    try body()  // warm-up
    var best = Double.infinity, runs = 0
    let start = now()
    while runs < minRuns || now() - start < minSeconds {
        let t0 = now()
        try body()
        best = min(best, now() - t0)
        runs += 1
    }
    return best
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func fmt(_ v: Double, _ digits: Int = 1) -> String {
    let p = pow(10.0, Double(digits))
    let r = (v * p).rounded() / p
    return "\(r)"
}

@MainActor func report(_ name: String, _ value: Double, _ unit: String, ratioTo ref: Double? = nil, target: String = "") {
    let ratio = ref.map { value / $0 }
    print(pad(name, 44), pad(fmt(value) + " " + unit, 16), pad(ratio.map { fmt($0, 2) + "x" } ?? "", 8), target)
}

var rng = RandomGenerator(seed: 0)
let threadsAll = Threading.threadCount

// MARK: ceilings
let n = quick ? 1 << 22 : 1 << 24
let big = try Tensor.uniform([n], low: -3, high: 3, rng: &rng)
let big2 = try Tensor.uniform([n], low: -3, high: 3, rng: &rng)
let dst = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
let copyTime = bestTime { memcpy(dst, big.pointer(Float.self), n * 4) }
let copyGBs = Double(2 * n * 4) / copyTime / 1e9
print("VisionCore KernelBench — \(threadsAll) threads available; ratios are against the ceilings of this same run\n")
report("memcpy \(n / (1 << 20))M floats (read+write)", copyGBs, "GB/s")

@MainActor func sgemmGFlops(_ m: Int, _ nn: Int, _ k: Int) throws -> Double {
    let a = try Tensor.uniform([m, k], rng: &rng), b = try Tensor.uniform([k, nn], rng: &rng)
    let t = try bestTime { _ = try matmul(a, b) }
    return 2.0 * Double(m * nn * k) / t / 1e9
}

for threads in Set([1, threadsAll]).sorted() {
    try Threading.setThreadCount(threads)
    report("sgemm 1024x1024x1024, \(threads) thread(s)", try sgemmGFlops(1024, 1024, 1024), "GFLOP/s")
    report("sgemm 64x3136x576 (im2col shape), \(threads) thr", try sgemmGFlops(64, 3136, 576), "GFLOP/s")
}
try Threading.setThreadCount(threadsAll)

// MARK: element-wise and activations (bytes moved: inputs read + output written)
@MainActor func streaming(_ name: String, bytesPerElement: Int, _ body: () throws -> Tensor) throws {
    let t = try bestTime { _ = try body() }
    report(name, Double(bytesPerElement * n) / t / 1e9, "GB/s", ratioTo: copyGBs, target: "target >= 0.70x copy")
}
try streaming("add (broadcast-free) \(threadsAll) thr", bytesPerElement: 12) { try add(big, big2) }
try streaming("mul by scalar \(threadsAll) thr", bytesPerElement: 8) { try mul(big, try Tensor.full([], value: 2)) }
for op in [UnaryOp.relu, .geluErf, .geluTanh, .silu, .sigmoid, .tanh, .hardSwish] {
    try streaming("\(op) \(threadsAll) thr", bytesPerElement: 8) { try unary(op, big) }
}
dst.deallocate()
