// FashionBench: the `vc train` Fashion-MNIST recipe (resnet_fmnist, batch 128, flip + normalize, CutMix alpha 1
// prob 0.25, AdamP lr 2e-3 wd 1e-4, cosine, 15 epochs) timed per epoch in VisionCore and, in the same run, in PyTorch
// (tools/bench_fashion_torch.py: the same timm ResNet, the same recipe). Not a test: prints time per epoch for
// both, the ratio, and the test accuracies.
//
//   FashionBench [--epochs 15] [--max-steps S (time S steps per epoch and extrapolate)] [--threads 2] [--no-torch]
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
let trainer = try ClassifierTrainer(config: config, train: try FashionMNIST(root: root, split: .train),
                                    test: try FashionMNIST(root: root, split: .test), numClasses: 10, inChans: 1,
                                    trainTransform: Compose([try RandomHorizontalFlip(), norm]), testTransform: norm,
                                    outDir: "/tmp/fashionbench-\(getpid())")
print("VisionCore resnet_fmnist, \(threads) threads, \(trainer.stepsPerEpoch) steps/epoch\(stepsPerEpochLimit.map { ", timing \($0) steps" } ?? "")")
var vcEpoch: [Double] = []
var wall = 0.0
try trainer.run(epochDone: { m in
    let perEpoch = m.seconds * Double(trainer.stepsPerEpoch) / Double(m.steps)
    vcEpoch.append(perEpoch)
    wall += m.seconds
    print("visioncore epoch \(m.epoch): \((perEpoch * 10).rounded() / 10) s/epoch, test acc \((m.testAccuracy * 10000).rounded() / 100)%, train time so far \(Int(wall)) s")
})
let vcMean = vcEpoch.reduce(0, +) / Double(max(vcEpoch.count, 1))

guard !CommandLine.arguments.contains("--no-torch") else { exit(0) }
let script = "tools/bench_fashion_torch.py"
let args = "--epochs \(config.epochs) --threads \(threads) --root \(root)" + (stepsPerEpochLimit.map { " --max-steps \($0)" } ?? "")
guard access(script, R_OK) == 0, let pipe = popen("python3 \(script) \(args) 2>&1", "r") else {
    print("PyTorch: not measured (\(script) not found; run from the repository root)")
    exit(0)
}
var torchEpoch: [Double] = []
var buffer = [CChar](repeating: 0, count: 4096)
while fgets(&buffer, Int32(buffer.count), pipe) != nil {
    let line = String(cString: buffer).trimmingCharacters(in: "\n")
    if line.hasPrefix("torch_epoch_s"), let v = Double(line.split(separator: " ").last ?? "") {
        torchEpoch.append(v)
        print("pytorch epoch \(torchEpoch.count): \(v) s/epoch")
    } else if line.hasPrefix("torch_test_acc") {
        print("pytorch test acc \(line.split(separator: " ").last ?? "?")")
    } else if line.contains("Error") {
        print("pytorch: \(line)")
    }
}
pclose(pipe)
guard !torchEpoch.isEmpty else { print("PyTorch: not measured (torch, timm or adamp missing)"); exit(0) }
let torchMean = torchEpoch.reduce(0, +) / Double(torchEpoch.count)
print("time/epoch: VisionCore \((vcMean * 10).rounded() / 10) s, PyTorch \((torchMean * 10).rounded() / 10) s; ratio VisionCore / PyTorch \((vcMean / torchMean * 100).rounded() / 100)x (target <= 1.0x)")

extension String {
    func trimmingCharacters(in s: String) -> String {
        var t = self
        while let last = t.last, s.contains(last) { t.removeLast() }
        return t
    }
}
