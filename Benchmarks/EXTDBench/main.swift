// EXTD network and whole-detection time on a 640x480 photo, per variant, VisionCore's threads set to 2 (or argv[1]).
// With PyTorch installed, tools/bench_extd_torch.py can be run beside it for the official model's time.
#if canImport(Glibc)
import Glibc
#endif
import VisionCore
import VisionModels

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median of `runs` timings after one warm-up run, in milliseconds.
func medianMs(runs: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var t: [Double] = []
    for _ in 0..<runs {
        let t0 = now()
        try body()
        t.append((now() - t0) * 1000)
    }
    return t.sorted()[t.count / 2]
}

let args = CommandLine.arguments
let threads = args.count > 1 ? Int(args[1]) ?? 2 : 2
let runs = args.count > 2 ? Int(args[2]) ?? 7 : 7
do {
    try Threading.setThreadCount(threads)
    // The bundled astronaut photo resized to 640x480 (the VGA benchmark size).
    let photoPath = (try? FaceDetector.bundledWeightsPath(.extd32)).map { p -> String in
        var dir = p
        for _ in 0..<4 { if let s = dir.lastIndex(of: "/") { dir = String(dir[..<s]) } }
        return dir + "/data/images/astronaut.png"
    } ?? "data/images/astronaut.png"
    let photo = try resizeImage(try loadImage(path: photoPath), height: 480, width: 640)
    print("EXTD on a 640x480 photo, \(threads) threads, median of \(runs) runs")
    print("variant   network ms   detect ms (scale 1, incl. pre/post)   faces")
    for v in EXTDVariant.allCases {
        let det = try FaceDetector(variant: v)
        let x = try FaceDetector.preprocess(photo, height: 480, width: 640)
        let net = try medianMs(runs: runs) { _ = try det.model.forward(x) }
        var faces = 0
        let whole = try medianMs(runs: runs) { faces = try det.detect(photo, scoreThreshold: 0.5, scale: 1).shape[0] }
        print("\(v.name)    \(String(format1(net)).padding(12))   \(String(format1(whole)).padding(12))                          \(faces)")
    }
} catch {
    print("EXTDBench: \(error)")
    exit(1)
}

func format1(_ v: Double) -> String { String(Double(Int(v * 10 + 0.5)) / 10) }
extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
