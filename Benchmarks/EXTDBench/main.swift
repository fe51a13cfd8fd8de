// EXTD network and whole-detection time on a 640x480 photo, per variant, VisionCore's threads set to 2 (or argv[1]).
// With PyTorch installed, tools/bench_extd_torch.py runs in the same benchmark for the official model's network
// time in PyTorch and in ONNX Runtime (the exported network), and the ratios against both are printed.
#if canImport(Glibc)
import Glibc
#endif
import VisionCore
import VisionModels

func clock(_ id: clockid_t) -> Double {
    var ts = timespec()
    clock_gettime(id, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Timings of `runs` calls after one warm-up call, in milliseconds: the fastest and the median wall time, and
/// the process CPU time per call (all threads). The machine is shared, so the minimum is the figure least
/// disturbed by other work; CPU time shows the work done whatever the contention.
struct Timing { var min: Double; var median: Double; var cpu: Double }

func measure(runs: Int, _ body: () throws -> Void) rethrows -> Timing {
    try body()
    var t: [Double] = []
    let cpu0 = clock(CLOCK_PROCESS_CPUTIME_ID)
    for _ in 0..<runs {
        let t0 = clock(CLOCK_MONOTONIC)
        try body()
        t.append((clock(CLOCK_MONOTONIC) - t0) * 1000)
    }
    let cpu = (clock(CLOCK_PROCESS_CPUTIME_ID) - cpu0) * 1000 / Double(runs)
    t.sort()
    return Timing(min: t[0], median: t[t.count / 2], cpu: cpu)
}

let args = CommandLine.arguments
let threads = args.count > 1 ? Int(args[1]) ?? 2 : 2
let runs = max(1, args.count > 2 ? Int(args[2]) ?? 7 : 7)
do {
    try Threading.setThreadCount(threads)
    // The bundled astronaut photo resized to 640x480 (the VGA benchmark size).
    let root = (try? FaceDetector.bundledWeightsPath(.extd32)).map { p -> String in
        var dir = p
        for _ in 0..<4 { if let s = dir.lastIndex(of: "/") { dir = String(dir[..<s]) } }
        return dir
    } ?? "."
    let photoPath = root + "/data/images/astronaut.png"
    let photo = try resizeImage(try loadImage(path: photoPath), height: 480, width: 640)
    print("EXTD on a 640x480 photo, \(threads) threads, \(runs) runs (ms: fastest / median wall, CPU per run)")
    print("variant   network                     whole detection (scale 1)   faces")
    var ours: [(name: String, network: Timing, whole: Timing)] = []
    for v in EXTDVariant.allCases {
        let det = try FaceDetector(variant: v)
        let x = try FaceDetector.preprocess(photo, height: 480, width: 640)
        let net = try measure(runs: runs) { _ = try det.model.forward(x) }
        var faces = 0
        let whole = try measure(runs: runs) { faces = try det.detect(photo, scoreThreshold: 0.5, scale: 1).shape[0] }
        func show(_ t: Timing) -> String { "\(format1(t.min)) / \(format1(t.median)), cpu \(format1(t.cpu))".padding(28) }
        print("\(v.name)   \(show(net))\(show(whole))\(faces)")
        ours.append((v.name, net, whole))
    }
    // The official PyTorch model and ONNX Runtime on the same input in the same run, when torch and the official
    // code are there (the official forward also rebuilds the priors in a Python loop on every call).
    guard system("python3 -c 'import torch' >/dev/null 2>&1") == 0 else {
        print("(PyTorch not importable: the official model and ONNX Runtime are not measured)")
        exit(0)
    }
    print("official PyTorch network and ONNX Runtime (exported network), tools/bench_extd_torch.py, \(threads) threads")
    fflush(nil)
    var reference: [String: (torch: Double, ort: Double)] = [:]
    if let pipe = popen("python3 \(root)/tools/bench_extd_torch.py \(threads) \(runs) 2>/dev/null", "r") {
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), pipe) != nil {
            let fields = String(cString: line).split(separator: " ").map(String.init)
            // extd_V torch MIN MEDIAN CPU ort MIN MEDIAN CPU
            guard fields.count >= 9, fields[0].hasPrefix("extd_"), let t = Double(fields[2]), let o = Double(fields[6]) else { continue }
            reference[fields[0]] = (t, o)
        }
        pclose(pipe)
    }
    print("variant   fastest ms: VC network  VC whole  torch net  ORT net   VC net/ORT  VC whole/ORT  VC whole/torch")
    for r in ours {
        guard let ref = reference[r.name] else { print("\(r.name)   (no reference numbers)"); continue }
        func ratio(_ a: Double, _ b: Double) -> String { b.isNaN ? "n/a" : format2(a / b) + "x" }
        print("\(r.name)   " + "".padding(12) + format1(r.network.min).padding(12) + format1(r.whole.min).padding(10)
              + format1(ref.torch).padding(11) + format1(ref.ort).padding(10) + ratio(r.network.min, ref.ort).padding(12)
              + ratio(r.whole.min, ref.ort).padding(14) + ratio(r.whole.min, ref.torch))
    }
} catch {
    print("EXTDBench: \(error)")
    exit(1)
}

func format1(_ v: Double) -> String { v.isNaN ? "nan" : String(Double(Int(v * 10 + 0.5)) / 10) }
func format2(_ v: Double) -> String { String(Double(Int(v * 100 + 0.5)) / 100) }
extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
