import ArgumentParser
import VisionCore
import VisionModels
#if canImport(Glibc)
import Glibc
#endif

/// `vc detect-faces`: EXTD face detection on one photo, with the bundled official weights by default.
struct DetectFaces: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect-faces",
        abstract: "Find the faces in a photo with EXTD (the bundled official weights) and draw or print them.")

    @Argument(help: "Photo to search (PNG, JPEG or BMP).")
    var image: String

    @Option(help: "Model: extd_32, extd_48 or extd_64.")
    var model: String = "extd_32"

    @Option(help: "Weights (safetensors with the official key names); default: the bundled data/weights/extd file.")
    var weights: String?

    @Option(help: "Write the photo with the boxes drawn (PNG or JPEG).")
    var out: String?

    @Flag(help: "Print the detections as JSON: [{\"box\": [x1, y1, x2, y2], \"score\": s}, ...] in the photo's pixels.")
    var json = false

    @Option(help: "Keep detections scoring at least this (0...1).")
    var scoreThreshold: Float = 0.5

    @Option(help: "Resize factor for the network input; default: the official demo's sqrt(1700*1200/(h*w)); 1.0 = the photo's own resolution.")
    var scale: Double?

    @Option(help: "Threads for VisionCore and OpenBLAS (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard EXTDVariant(name: model) != nil else {
            throw ValidationError("unknown model '\(model)': use extd_32, extd_48 or extd_64")
        }
        guard scoreThreshold.isFinite, (0...1).contains(scoreThreshold) else {
            throw ValidationError("--score-threshold must be in 0...1, got \(scoreThreshold)")
        }
        if let scale, !(scale.isFinite && scale > 0) { throw ValidationError("--scale must be positive, got \(scale)") }
    }

    func run() throws {
        if let threads { try Threading.setThreadCount(threads) }
        guard let variant = EXTDVariant(name: model) else { throw ValidationError("unknown model '\(model)'") }
        let detector = try FaceDetector(variant: variant, weightsPath: weights)
        let photo = try loadImage(path: image, channels: 3)
        let boxes = try detector.detect(photo, scoreThreshold: scoreThreshold, scale: scale)
        let rows = try boxes.toArray(Float.self)
        let count = rows.count / 5
        if json {
            print(detectionsJSON(rows))
        } else {
            print("\(count) face\(count == 1 ? "" : "s") in \(image) (\(variant.name), score >= \(scoreThreshold)):")
            for r in 0..<count {
                let b = rows[(5 * r)..<(5 * r + 5)].map { ($0 * 10).rounded() / 10 }
                print("  box [\(b[0]), \(b[1]), \(b[2]), \(b[3])]  score \(String(rows[5 * r + 4]))")
            }
        }
        if let out {
            try makeParentDirectory(out)
            try saveImage(try drawBoxes(photo, boxes: boxes, color: [255, 32, 32], thickness: max(2, min(photo.shape[0], photo.shape[1]) / 200)), path: out)
            if !json { print("annotated image written to \(out)") }
        }
    }
}

/// [{"box": [x1, y1, x2, y2], "score": s}, ...]; Swift's shortest round-trip float printing keeps every digit.
func detectionsJSON(_ rows: [Float]) -> String {
    let items = stride(from: 0, to: rows.count - rows.count % 5, by: 5).map { i in
        "{\"box\": [\(rows[i]), \(rows[i + 1]), \(rows[i + 2]), \(rows[i + 3])], \"score\": \(rows[i + 4])}"
    }
    return "[" + items.joined(separator: ", ") + "]"
}
