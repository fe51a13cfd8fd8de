// FashionBench: the `vc train` Fashion-MNIST recipe (resnet_fmnist, batch 128, flip + normalize, CutMix alpha 1
// prob 0.25, AdamP lr 2e-3 wd 1e-4, cosine, 15 epochs) timed per epoch in VisionCore and, in the same run, in PyTorch
// (tools/bench_fashion_torch.py: the same timm ResNet, the same recipe). Not a test: prints time per epoch for
// both, the ratio, and the test accuracies.
//
//   FashionBench [--epochs 15] [--max-steps S (time S steps per epoch and extrapolate)] [--rounds R] [--threads 2]
//                [--no-torch]
import VisionCore
import VisionData
import VisionModels
import VisionTrain
#if canImport(Glibc)
import Glibc
#endif

func option(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

let epochs = option("--epochs").flatMap { Int($0) } ?? 15
let stepsPerEpochLimit = option("--max-steps").flatMap { Int($0) }
let threads = option("--threads").flatMap { Int($0) } ?? 2
let root = option("--root") ?? FashionMNIST.defaultRoot
try Threading.setThreadCount(threads)

var config = ClassifierTrainingConfig(model: "resnet_fmnist")
(config.epochs, config.batchSize, config.lr, config.optimizer, config.weightDecay) = (epochs, 128, 2e-3, .adamp, 1e-4)
(config.mix, config.mixAlpha, config.mixProb, config.workers, config.logEvery) = (.cutmix, 1, 0.25, 1, 100)
// A timing run: one epoch cut to S steps (the epoch time is extrapolated from them).
if let s = stepsPerEpochLimit { (config.epochs, config.maxSteps) = (1, s) }
let norm = try Normalize(mean: SmallClassifiers.fashionMNISTMean, std: SmallClassifiers.fashionMNISTStd)
let train = try FashionMNIST(root: root, split: .train), test = try FashionMNIST(root: root, split: .test)
// Timing runs alternate VisionCore and PyTorch round by round (`--rounds`, 3 by default), so that a drift in the
// shared machine's speed reaches both sides alike; the ratio is the median of the rounds' ratios.
let rounds = option("--rounds").flatMap { Int($0) } ?? (stepsPerEpochLimit == nil ? 1 : 3)
let withTorch = !CommandLine.arguments.contains("--no-torch")

/// One VisionCore run of the recipe from scratch; its mean training time per epoch.
@MainActor func visionCoreRun(_ round: Int) throws -> Double {
    let trainer = try ClassifierTrainer(config: config, train: train, test: test, numClasses: 10, inChans: 1,
                                        trainTransform: Compose([try RandomHorizontalFlip(), norm]), testTransform: norm,
                                        outDir: "/tmp/fashionbench-\(getpid())-\(round)")
    if round == 0 {
        print("VisionCore resnet_fmnist, \(threads) threads, \(trainer.stepsPerEpoch) steps/epoch\(stepsPerEpochLimit.map { ", timing \($0) steps" } ?? "")")
    }
    var perEpoch: [Double] = []
    var wall = 0.0
    try trainer.run(epochDone: { m in
        let t = m.seconds * Double(trainer.stepsPerEpoch) / Double(m.steps)
        perEpoch.append(t)
        wall += m.seconds
        print("visioncore epoch \(m.epoch): \((t * 10).rounded() / 10) s/epoch, test acc \((m.testAccuracy * 10000).rounded() / 100)%, train time so far \(Int(wall)) s")
    })
    return perEpoch.reduce(0, +) / Double(max(perEpoch.count, 1))
}

/// One PyTorch run of the same recipe (tools/bench_fashion_torch.py); its mean time per epoch, or nil when PyTorch
/// (torch, timm, adamp) or the script is missing.
@MainActor func torchRun() -> Double? {
    let script = "tools/bench_fashion_torch.py"
    let args = "--epochs \(config.epochs) --threads \(threads) --root \(root)" + (stepsPerEpochLimit.map { " --max-steps \($0)" } ?? "")
    guard access(script, R_OK) == 0, let pipe = popen("python3 \(script) \(args) 2>&1", "r") else {
        print("PyTorch: not measured (\(script) not found; run from the repository root)")
        return nil
    }
    var perEpoch: [Double] = []
    var buffer = [CChar](repeating: 0, count: 4096)
    while fgets(&buffer, Int32(buffer.count), pipe) != nil {
        let line = String(cString: buffer).trimmingCharacters(in: "\n")
        if line.hasPrefix("torch_epoch_s"), let v = Double(line.split(separator: " ").last ?? "") {
            perEpoch.append(v)
            print("pytorch epoch \(perEpoch.count): \(v) s/epoch")
        } else if line.hasPrefix("torch_test_acc") {
            print("pytorch test acc \(line.split(separator: " ").last ?? "?")")
        } else if line.contains("Error") {
            print("pytorch: \(line)")
        }
    }
    pclose(pipe)
    guard !perEpoch.isEmpty else { print("PyTorch: not measured (torch, timm or adamp missing)"); return nil }
    return perEpoch.reduce(0, +) / Double(perEpoch.count)
}

func tenths(_ v: Double) -> Double { (v * 10).rounded() / 10 }
var ratios: [Double] = []
for round in 0..<max(1, rounds) {
    let vc = try visionCoreRun(round)
    guard withTorch, let torch = torchRun() else { continue }
    ratios.append(vc / torch)
    print("round \(round + 1): VisionCore \(tenths(vc)) s/epoch, PyTorch \(tenths(torch)) s/epoch, ratio \((vc / torch * 100).rounded() / 100)x")
}
if !ratios.isEmpty {
    let median = ratios.sorted()[ratios.count / 2]
    print("time/epoch ratio VisionCore / PyTorch, median of \(ratios.count) round(s): \((median * 100).rounded() / 100)x (target <= 1.0x)")
}

extension String {
    func trimmingCharacters(in s: String) -> String {
        var t = self
        while let last = t.last, s.contains(last) { t.removeLast() }
        return t
    }
}
