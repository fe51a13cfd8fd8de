// Batch-1 and batch-8 inference time and peak memory of the classifiers (issue 4's speed table), against timm's
// model in PyTorch eager and in ONNX Runtime measured in the same run: for each model and batch, rounds of
// VisionCore, ONNX Runtime and PyTorch timings in turn (a Python process kept running beside this one), so that
// each round's ratios compare timings taken seconds apart; this machine's speed drifts by 30-60% over minutes.
// Times are the medians over the rounds of each round's median; ratios the median of the rounds' ratios, with
// their range.
//
//   ClassifierBench [threads=2] [runs=10] [model,model,...] [rounds=3]
//   ClassifierBench --memory MODEL BATCH    (internal: one model in a fresh process, prints its peak memory)
//   ClassifierBench --run MODEL BATCH N     (N forwards and nothing else, e.g. under `perf record`)
// PyTorch / ONNX Runtime come from tools/bench_classify_torch.py when python3 can import torch and timm.
#if canImport(Glibc)
import Glibc
#endif
import CBLAS
import VisionCore
import VisionModels
import VisionNN

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median wall time of `runs` calls after two warm-up calls, in milliseconds.
func medianMs(runs: Int, _ body: () throws -> Void) rethrows -> Double {
    try body(); try body()
    var t: [Double] = []
    for _ in 0..<runs {
        let t0 = now()
        try body()
        t.append((now() - t0) * 1000)
    }
    t.sort()
    return t[t.count / 2]
}

/// A field of /proc/self/status in MB (VmRSS: now, VmHWM: peak since start or the last reset).
func statusMB(_ field: String) -> Double {
    guard let f = fopen("/proc/self/status", "r") else { return .nan }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = String(cString: line)
        if s.hasPrefix(field + ":") {
            let digits = s.split(separator: " ").compactMap { Double($0) }
            return (digits.first ?? .nan) / 1024
        }
    }
    return .nan
}

/// Resets the peak-RSS mark to the current RSS, so that VmHWM measures what follows.
func resetPeak() {
    if let f = fopen("/proc/self/clear_refs", "w") { fputs("5", f); fclose(f) }
}

func makeInput(_ model: ImageClassifier, batch: Int) throws -> Tensor {
    var rng = RandomGenerator(seed: 1)
    return try Tensor.normal([batch] + model.config.inputSize, rng: &rng)
}

/// Runs lines of a shell command's output through `body`.
func eachLine(of command: String, _ body: (String) -> Void) {
    guard let p = popen(command, "r") else { return }
    var line = [CChar](repeating: 0, count: 1024)
    while fgets(&line, 1024, p) != nil { body(String(cString: line).trimmingSuffix("\n")) }
    pclose(p)
}

extension String {
    func trimmingSuffix(_ s: Character) -> String { last == s ? String(dropLast()) : self }
    func padded(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

func fmt(_ v: Double) -> String { v.isNaN ? "-" : String(Double(Int(v * 10 + 0.5)) / 10) }
func fmtRatio(_ r: Double) -> String { String(Double(Int(r * 100 + 0.5)) / 100) + "x" }

/// The median of the values (NaN for none).
func median(_ v: [Double]) -> Double {
    let s = v.filter { !$0.isNaN }.sorted()
    return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The median of the rounds' ratios a[i] / b[i] and their range, e.g. "1.02x (0.98-1.05)".
func ratios(_ a: [Double], _ b: [Double]) -> String {
    let r = zip(a, b).filter { !$0.0.isNaN && !$0.1.isNaN && $0.1 > 0 }.map { $0.0 / $0.1 }.sorted()
    guard let lo = r.first, let hi = r.last else { return "-" }
    return r.count == 1 ? fmtRatio(lo) : "\(fmtRatio(median(r))) (\(fmtRatio(lo))-\(fmtRatio(hi)))"
}

/// tools/bench_classify_torch.py kept running for one model and batch: it builds timm's model in PyTorch and
/// ONNX Runtime once, then answers each request for a round of timings (commands through a FIFO, answers on its
/// standard output).
final class PeerTimings {
    private let output: UnsafeMutablePointer<FILE>
    private let commands: UnsafeMutablePointer<FILE>
    private let fifo: String
    /// PyTorch's peak memory while creating and running the model (MB).
    let peakMB: Double

    init?(script: String, model: String, batch: Int, threads: Int) {
        fifo = "/tmp/classifierbench-\(getpid())"
        unlink(fifo)
        guard mkfifo(fifo, 0o600) == 0 else { return nil }
        guard let out = popen("python3 \(script) \(model) \(batch) \(threads) \(fifo) 2>/dev/null", "r") else {
            unlink(fifo)
            return nil
        }
        var line = [CChar](repeating: 0, count: 256)
        // "ready PEAK ORT", once both models are built; nothing when the script failed.
        guard fgets(&line, 256, out) != nil, case let f = String(cString: line).split(separator: " "), f.count == 3,
              f[0] == "ready", let commands = fopen(fifo, "w") else {
            pclose(out)
            unlink(fifo)
            return nil
        }
        (output, self.commands, peakMB) = (out, commands, Double(f[1]) ?? .nan)
    }

    /// The median ms of `runs` calls of "torch" or "ort" (NaN where it has none).
    func medianMs(_ what: String, runs: Int) -> Double {
        fputs("\(what) \(runs)\n", commands)
        fflush(commands)
        var line = [CChar](repeating: 0, count: 256)
        guard fgets(&line, 256, output) != nil else { return .nan }
        return Double(String(cString: line).trimmingSuffix("\n")) ?? .nan
    }

    func close() {
        fclose(commands)  // the script's end of input: it exits
        pclose(output)
        unlink(fifo)
    }
}

let args = CommandLine.arguments
do {
    if args.count == 4 && args[1] == "--memory" {
        // One model in a fresh process: peak resident memory while creating it and running one forward.
        try Threading.setThreadCount(2)
        let base = statusMB("VmRSS")
        resetPeak()
        let model = try ClassifierRegistry.create(args[2]).eval()
        let created = statusMB("VmHWM") - base, weights = statusMB("VmRSS") - base
        let x = try makeInput(model, batch: Int(args[3]) ?? 1)
        try Autograd.noGrad { _ = try model(x) }
        print("memory \(fmt(statusMB("VmHWM") - base)) (after creation: peak \(fmt(created)), resident \(fmt(weights)))")
        exit(0)
    }
    if args.count == 5 && args[1] == "--run" {
        try Threading.setThreadCount(2)
        if getenv("VC_BLAS1") != nil { openblas_set_num_threads(1) }
        let model = try ClassifierRegistry.create(args[2]).eval()
        let x = try makeInput(model, batch: Int(args[3]) ?? 1)
        let ms = try Autograd.noGrad { try medianMs(runs: max(1, Int(args[4]) ?? 10)) { _ = try model(x) } }
        print("\(args[2]) batch \(args[3]): median \(fmt(ms)) ms")
        exit(0)
    }
    let threads = args.count > 1 ? Int(args[1]) ?? 2 : 2
    let runs = max(1, args.count > 2 ? Int(args[2]) ?? 10 : 10)
    let names = args.count > 3 ? args[3].split(separator: ",").map(String.init)
                               : ["resnet50", "rexnet_100", "rexnet_150", "pit_ti_224", "pit_s_224"]
    let rounds = max(1, args.count > 4 ? Int(args[4]) ?? 3 : 3)
    try Threading.setThreadCount(threads)
    let root: String = {
        var dir = "\(#filePath)"
        for _ in 0..<3 { if let s = dir.lastIndex(of: "/") { dir = String(dir[..<s]) } }
        return dir
    }()
    let haveTorch = system("python3 -c 'import torch, timm' >/dev/null 2>&1") == 0
    print("Classifier inference, \(threads) threads, \(rounds) rounds of \(runs) runs each (ms, medians); ratios: median of the rounds' ratios (range);")
    print("peak memory above the process baseline (MB)")
    if !haveTorch { print("(python3 cannot import torch and timm: PyTorch / ONNX Runtime columns are empty)") }
    print("model        batch  VisionCore  PyTorch  ONNXRT  vs PyTorch           vs ONNXRT            peak MB VC / PyTorch")
    for name in names {
        guard ClassifierRegistry.names.contains(name) else { print("\(name): not registered"); continue }
        let model = try ClassifierRegistry.create(name).eval()
        for batch in [1, 8] {
            let x = try makeInput(model, batch: batch)
            var vcPeak = Double.nan
            if batch == 1 {
                eachLine(of: "\(args[0]) --memory \(name) 1") { l in if l.hasPrefix("memory ") { vcPeak = Double(l.dropFirst(7).split(separator: " ").first ?? "") ?? .nan } }
            }
            let peers = haveTorch ? PeerTimings(script: "\(root)/tools/bench_classify_torch.py", model: name, batch: batch,
                                                threads: threads) : nil
            var vc: [Double] = [], torch: [Double] = [], ort: [Double] = []
            for _ in 0..<rounds {
                vc.append(try Autograd.noGrad { try medianMs(runs: runs) { _ = try model(x) } })
                if let peers {
                    ort.append(peers.medianMs("ort", runs: runs))
                    torch.append(peers.medianMs("torch", runs: runs))
                }
            }
            peers?.close()
            let memory = batch == 1 ? "\(fmt(vcPeak)) / \(fmt(peers?.peakMB ?? .nan))" : ""
            print("\(name.padded(13))\(String(batch).padded(7))\(fmt(median(vc)).padded(12))\(fmt(median(torch)).padded(9))"
                  + "\(fmt(median(ort)).padded(8))\(ratios(vc, torch).padded(21))\(ratios(vc, ort).padded(21))\(memory)")
            fflush(nil)
        }
    }
} catch {
    print("ClassifierBench: \(error)")
    exit(1)
}
