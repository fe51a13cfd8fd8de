// One AdamW step over 25M parameters (five 5M tensors, all with gradients), VisionCore against PyTorch's
// torch.optim.AdamW measured in the same run (Benchmarks/optim_bench_torch.py, single-tensor and foreach
// paths); and one AdamP step over five [1000, 5000] weights against the adamp package (when installed). Optimizer steps are memory-bound: the bytes moved per step (p, g, m, v read; p, m, v written) over
// the time give the effective bandwidth. Best of N runs, because the machine is shared and noisy.
//
//   swift run -c release OptimBench [--threads N] [--no-torch]
import VisionCore
import VisionOptim
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

let args = CommandLine.arguments
let threads = args.firstIndex(of: "--threads").flatMap { i in i + 1 < args.count ? Int(args[i + 1]) : nil } ?? 2
try Threading.setThreadCount(threads)

let tensors = 5, perTensor = 5_000_000
var rng = RandomGenerator(seed: 1)
var params: [NamedParameter] = []
for i in 0..<tensors {
    let p = try Tensor.normal([perTensor], std: 0.02, rng: &rng).requiringGrad()
    try p.setGrad(try Tensor.normal([perTensor], std: 1e-3, rng: &rng))
    params.append(NamedParameter("p\(i)", p))
}
let opt = try AdamW(groups: [ParameterGroup(params, Adam.Options(lr: 1e-3, weightDecay: 0.05))])
try opt.step()  // creates the state (first-touch of the moment buffers)
var best = Double.infinity
for _ in 0..<10 {
    let t0 = now()
    try opt.step()
    best = min(best, now() - t0)
}

var adampParams: [NamedParameter] = []
for i in 0..<tensors {
    let p = try params[i].tensor.detach().reshape([1000, 5000]).copyContiguous().requiringGrad()
    try p.setGrad(try params[i].tensor.grad!.reshape([1000, 5000]))
    adampParams.append(NamedParameter("w\(i)", p))
}
let adamp = try AdamP(groups: [ParameterGroup(adampParams, AdamP.Options(lr: 1e-3, weightDecay: 1e-2))])
try adamp.step()
var bestP = Double.infinity
for _ in 0..<5 {
    let t0 = now()
    try adamp.step()
    bestP = min(bestP, now() - t0)
}
let bytes = Double(tensors * perTensor) * 4 * 7
/// One decimal, without Foundation's String(format:).
func fixed1(_ x: Double) -> String { String(Double(Int((x * 10).rounded())) / 10) }
print("VisionCore AdamW step, 25M params, \(threads) threads: \(fixed1(best * 1e3)) ms (\(fixed1(bytes / best / 1e9)) GB/s)")
print("VisionCore AdamP step, 5 x [1000, 5000], \(threads) threads: \(fixed1(bestP * 1e3)) ms")

if !args.contains("--no-torch") {
    let file = "\(#filePath)"
    let dir = String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)])
    fflush(nil)  // print's buffer would otherwise come out after the child's lines
    let status = system("python3 \(dir)/../optim_bench_torch.py --threads \(threads) --visioncore-ms \(best * 1e3) --visioncore-adamp-ms \(bestP * 1e3)")
    if status != 0 { print("(PyTorch comparison unavailable: python3 with torch is needed)") }
}
