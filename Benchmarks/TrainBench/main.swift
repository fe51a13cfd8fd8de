// One training step (forward, backward, AdamW) of resnet18, batch 8, 224x224, next to PyTorch's
// (torchvision resnet18, measured in the same run by tools/bench_train_torch.py when torch is installed).
//
//   out/bin/TrainBench [--steps N] [--batch B] [--size S] [--threads T]
import VisionCore
import VisionNN
import VisionOptim
import VisionModels
#if canImport(Glibc)
import Glibc
#endif

func option(_ name: String, _ fallback: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) else { return fallback }
    return v
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// torchvision's BasicBlock: conv3x3-bn-relu-conv3x3-bn plus the (projected) shortcut, then relu.
let steps = option("--steps", 5), batch = option("--batch", 8), size = option("--size", 224)
let threads = option("--threads", 2)
try Threading.setThreadCount(threads)
var rng = RandomGenerator(seed: 0)
// VisionModels' resnet18 (timm / torchvision layout), as tools/bench_train_torch.py's torchvision resnet18.
let model = try ClassifierRegistry.create("resnet18")
let optimizer = try AdamW(parameters: model.trainableParameters(), lr: 1e-3, weightDecay: 0.05)
let x = try Tensor.normal([batch, 3, size, size], rng: &rng)
let y = try Tensor((0..<batch).map { _ in Int64(rng.next() % 1000) }, shape: [batch])
print("ResNet-18 training step: batch \(batch), \(size)x\(size), \(threads) threads, \(model.parameterCount()) parameters")

var times: [Double] = []
for i in 0...steps {
    let t0 = now()
    optimizer.zeroGrad()
    let loss = try Loss.crossEntropy(try model(x), target: y)
    try loss.backward()
    try optimizer.step()
    let dt = now() - t0
    if i > 0 { times.append(dt) }  // the first step warms caches and allocators
}
times.sort()
let vc = times[times.count / 2] * 1000
print("VisionCore: median \(Int(vc.rounded())) ms/step (best \(Int((times[0] * 1000).rounded())) ms)")

// PyTorch in the same run, when installed (tools/ is beside the executable's repository root or the cwd).
let script = "tools/bench_train_torch.py"
if access(script, R_OK) == 0, let pipe = popen("python3 \(script) --steps \(steps) --batch \(batch) --size \(size) --threads \(threads) 2>/dev/null", "r") {
    var output = ""
    var buffer = [CChar](repeating: 0, count: 4096)
    while fgets(&buffer, Int32(buffer.count), pipe) != nil { output += String(cString: buffer) }
    pclose(pipe)
    if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("torch_ms") }),
       let ms = Double(line.split(separator: " ").last ?? "") {
        print("PyTorch: median \(Int(ms.rounded())) ms/step")
        print("ratio VisionCore / PyTorch: \((vc / ms * 100).rounded() / 100)x (target <= 1.0x)")
    } else {
        print("PyTorch: not measured (torch/torchvision not installed)")
    }
}
