// Kernel throughput next to the machine's own ceilings, measured in the same run: OpenBLAS sgemm (GFLOP/s) for
// compute-bound kernels and memcpy (GB/s) for streaming ones. Prints ratios and the targets of the Foundation
// issue; a ratio, not an absolute time, is what to compare across these shared, noisy machines.
//
//   out/bin/KernelBench [--quick]
import CBLAS
import Dispatch
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
// The copy ceiling uses as many threads as the streaming kernels it is compared with, and is re-measured next to
// each streaming kernel so that a noisy neighbour affects both sides of a ratio alike.
let srcAddress = UInt(bitPattern: big.pointer(Float.self)), dstAddress = UInt(bitPattern: dst)
func copyBandwidth() -> Double {
    let t = bestTime(minSeconds: quick ? 0.1 : 0.3) {
        let chunk = (n + threadsAll - 1) / threadsAll
        DispatchQueue.concurrentPerform(iterations: threadsAll) { t in
            let lo = t * chunk, len = max(0, min(n, lo + chunk) - lo)
            memcpy(UnsafeMutableRawPointer(bitPattern: dstAddress)! + lo * 4, UnsafeRawPointer(bitPattern: srcAddress)! + lo * 4, len * 4)
        }
    }
    return Double(2 * n * 4) / t / 1e9
}
let copyGBs = copyBandwidth()
print("VisionCore KernelBench — \(threadsAll) threads available; ratios are against the ceilings of this same run\n")
report("memcpy \(n / (1 << 20))M floats (read+write), \(threadsAll) thr", copyGBs, "GB/s")

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
    let copy = copyBandwidth()
    let t = try bestTime { _ = try body() }
    report(name, Double(bytesPerElement * n) / t / 1e9, "GB/s", ratioTo: copy, target: "target >= 0.70x copy")
}
try streaming("add (broadcast-free) \(threadsAll) thr", bytesPerElement: 12) { try add(big, big2) }
try streaming("mul by scalar \(threadsAll) thr", bytesPerElement: 8) { try mul(big, try Tensor.full([], value: 2)) }
for op in [UnaryOp.relu, .geluErf, .geluTanh, .silu, .sigmoid, .tanh, .hardSwish] {
    try streaming("\(op) \(threadsAll) thr", bytesPerElement: 8) { try unary(op, big) }
}

// MARK: softmax and normalization (bytes moved: input read + output written)
let logits = try big.reshape([-1, 1024])
try streaming("softmax rows of 1024 \(threadsAll) thr", bytesPerElement: 8) { try softmax(logits, axis: 1) }
let tokens = try big.reshape([-1, 512])
try streaming("layer_norm over 512 \(threadsAll) thr", bytesPerElement: 8) { try layerNorm(tokens, normalizedShape: [512]) }
let maps = try big.reshape([4, 64, -1])
let stats = try Tensor.ones([64]), shift = try Tensor.zeros([64])
try streaming("batch_norm (inference) \(threadsAll) thr", bytesPerElement: 8) {
    try batchNorm(maps, runningMean: shift, runningVar: stats, weight: stats, bias: shift)
}
try streaming("group_norm 32 groups \(threadsAll) thr", bytesPerElement: 8) { try groupNorm(maps, numGroups: 32) }

// MARK: convolutions and pooling (GFLOP/s counts multiply and add separately: 2 x MACs)
@MainActor func convGFlops(_ x: Tensor, _ w: Tensor, padding: (Int, Int), stride: (Int, Int) = (1, 1), groups: Int = 1) throws -> Double {
    let y = try conv2d(x, weight: w, padding: padding, groups: groups)
    let macs = Double(y.count) * Double(w.shape[1] * w.shape[2] * w.shape[3])
    let t = try bestTime { _ = try conv2d(x, weight: w, stride: stride, padding: padding, groups: groups) }
    return 2 * macs / t / 1e9
}

for threads in Set([1, threadsAll]).sorted() {
    try Threading.setThreadCount(threads)
    let sg = try sgemmGFlops(64, 3136, 576)
    report("sgemm 64x3136x576 again, \(threads) thr", sg, "GFLOP/s")
    let x = try Tensor.uniform([1, 64, 56, 56], rng: &rng), w = try Tensor.uniform([64, 64, 3, 3], rng: &rng)
    report("conv2d 3x3 64->64 56x56 b1, \(threads) thr", try convGFlops(x, w, padding: (1, 1)), "GFLOP/s",
           ratioTo: sg, target: "target >= 0.60x sgemm")
    let w1 = try Tensor.uniform([256, 64, 1, 1], rng: &rng)
    report("conv2d 1x1 64->256 56x56 b1, \(threads) thr", try convGFlops(x, w1, padding: (0, 0)), "GFLOP/s", ratioTo: sg)
}
try Threading.setThreadCount(1)
let xd = try Tensor.uniform([1, 64, 112, 112], rng: &rng), wd = try Tensor.uniform([64, 1, 3, 3], rng: &rng)
report("depthwise 3x3 64x112x112, 1 thread", try convGFlops(xd, wd, padding: (1, 1), groups: 64), "GFLOP/s",
       target: "target >= 30 GFLOP/s")
try Threading.setThreadCount(threadsAll)
let poolTime = try bestTime { _ = try maxPool2d(xd, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1)) }
report("max_pool2d 3x3/2 64x112x112, \(threadsAll) thr", Double(xd.byteCount + xd.byteCount / 4) / poolTime / 1e9, "GB/s",
       ratioTo: copyBandwidth())
dst.deallocate()
