import ArgumentParser
import VisionCore
#if canImport(Glibc)
import Glibc
#endif

/// The main job for now: load a photo and run a small pipeline of ops on it, printing what each step produced
/// and writing the edge map it computes.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load an image and run a pipeline of VisionCore ops on it (resize, normalize, conv, pooling, softmax).")

    @Argument(help: "Image to process (PNG, JPEG or BMP).")
    var image: String = "data/images/chelsea.png"

    @Option(help: "Where to write the edge map (PNG or JPEG).")
    var out: String = "out/demo/edges.png"

    @Option(help: "Threads for VisionCore and OpenBLAS (default: all cores).")
    var threads: Int?

    func run() throws {
        if let threads { try Threading.setThreadCount(threads) }
        var clock = Stopwatch()
        let pixels = try loadImage(path: image, channels: 3)
        clock.lap("load \(image)", pixels)

        // timm's ImageNet normalisation, then a 224x224 bilinear resize (as torch's F.interpolate).
        let chw = try imageToTensor(pixels, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
        let x = try interpolate(try chw.unsqueeze(axis: 0), size: (224, 224), mode: .bilinear, alignCorners: false)
        clock.lap("normalize + resize to 224x224", x)

        // Luma, then Sobel gradients: one 2-output conv2d over the single luma channel.
        let luma = try conv2d(x, weight: try Tensor([Float(0.299), 0.587, 0.114], shape: [1, 3, 1, 1]))
        let sobel = try Tensor([Float(-1), 0, 1, -2, 0, 2, -1, 0, 1,
                                -1, -2, -1, 0, 0, 0, 1, 2, 1], shape: [2, 1, 3, 3])
        let grad = try conv2d(luma, weight: sobel, padding: (1, 1))
        let magnitude = try unary(.sqrt, try sum(try mul(grad, grad), axes: [1], keepDim: true))
        clock.lap("luma (1x1 conv) + Sobel (3x3 conv) + magnitude", magnitude)

        // A small feature pipeline: depthwise blur, GELU, 2x2 max pool, global average, softmax over channels.
        let blur = try Tensor.full([3, 1, 3, 3], value: 1.0 / 9)
        let features = try maxPool2d(try gelu(try conv2d(x, weight: blur, padding: (1, 1), groups: 3)), kernelSize: (2, 2))
        let pooled = try adaptiveAvgPool2d(features, outputSize: (1, 1))
        let probabilities = try softmax(try pooled.flatten(start: 1), axis: 1)
        clock.lap("depthwise blur + GELU + max pool + avg pool + softmax", probabilities)
        print("channel softmax of the pooled features:", try probabilities.toArray(Float.self).map { ($0 * 1000).rounded() / 1000 })

        // Write the edge map as an 8-bit image, scaled to its maximum.
        let peak = try amax(magnitude).item()
        let scaled = try mul(magnitude, try Tensor.full([], value: 255 / max(peak, 1e-6)))
        let edges = try scaled.reshape([224, 224, 1]).to(.uint8)
        try makeParentDirectory(out)
        try saveImage(edges, path: out)
        clock.lap("save \(out)", edges)
        print("edge map written to \(out)")
    }
}

/// Wall-clock laps for the demo's report.
struct Stopwatch {
    var last = Stopwatch.now()

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    mutating func lap(_ what: String, _ result: Tensor) {
        let t = Stopwatch.now()
        let ms = ((t - last) * 10_000).rounded() / 10
        print("\(what): \(result.dtype) \(result.shape) in \(ms) ms")
        last = t
    }
}

/// Creates the folders that will hold `path`, where missing.
func makeParentDirectory(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/", omittingEmptySubsequences: false).dropLast() where !part.isEmpty {
        prefix += "/" + part
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw VisionError.io("cannot create folder '\(prefix)': \(String(cString: strerror(errno)))")
        }
    }
}
