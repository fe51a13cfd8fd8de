import VisionCore
#if canImport(Glibc)
import Glibc
#endif

/// Face detection with EXTD on whole photos: pre-processing as the official demo (`demo.py`), the network, and
/// the detection step, with boxes returned in the photo's own pixels. Read-only after creation: one detector may
/// serve several threads.
public struct FaceDetector: Sendable {
    public let model: EXTD
    public var config = EXTDDetectionConfig()

    /// The per-channel means subtracted from RGB pixels (the BGR means [104, 117, 123] of `data/config.py`,
    /// reordered; the official code does not divide by a std).
    public static let mean: [Float] = [123, 117, 104]
    /// The largest network input accepted (pixels): about 2900 x 2900. The stride-2 stem alone keeps
    /// 64 x H/2 x W/2 floats, so this bounds the activations to a few hundred MB.
    public static let maxInputPixels = 1 << 23

    public init(model: EXTD) { self.model = model }

    /// Loads `variant` from `weightsPath`, or from the bundled weights when nil (see `bundledWeightsPath`).
    public init(variant: EXTDVariant, weightsPath: String? = nil) throws {
        let path: String
        if let weightsPath { path = weightsPath } else { path = try FaceDetector.bundledWeightsPath(variant) }
        model = try EXTD(variant: variant, weightsPath: path)
    }

    /// The scale `demo.py` runs at: sqrt(1700 * 1200 / (h * w)), i.e. the image resized to about 2.04 Mpixel
    /// (small photos are enlarged, which finds small faces).
    public static func defaultScale(height: Int, width: Int) -> Double {
        (1700.0 * 1200.0 / (Double(max(height, 1)) * Double(max(width, 1)))).squareRoot()
    }

    /// The network input size for an image at `scale`: round(side * scale), as cv2.resize with fx = fy = scale.
    public static func inputSize(height: Int, width: Int, scale: Double) throws -> (Int, Int) {
        guard scale.isFinite, scale > 0 else {
            throw VisionError.invalidArgument("face detector: scale must be positive and finite, got \(scale)")
        }
        let h = (Double(height) * scale).rounded(), w = (Double(width) * scale).rounded()
        guard h >= 1, w >= 1, h * w <= Double(maxInputPixels) else {
            throw VisionError.invalidArgument("face detector: image \(width) x \(height) at scale \(scale) gives a network input of \(Int(min(w, 1e9))) x \(Int(min(h, 1e9))); it must be at least 1 x 1 and at most \(maxInputPixels) pixels (choose another scale)")
        }
        return (Int(h), Int(w))
    }

    /// The network input [1, 3, h, w] for a uint8 [H, W, 3] image: RGB minus the means, resized bilinearly with
    /// half-pixel centres and no antialiasing (cv2.resize INTER_LINEAR's geometry, as in demo.py) when the size
    /// changes. Resizing reads the uint8 pixels directly, so a large photo is never converted to float whole.
    public static func preprocess(_ image: Tensor, height h: Int, width w: Int) throws -> Tensor {
        let (ih, iw) = try checkImage(image)
        guard h > 0, w > 0, h * w <= maxInputPixels else {
            throw VisionError.invalidArgument("face detector: network input \(w) x \(h) must be at least 1 x 1 and at most \(maxInputPixels) pixels")
        }
        let img = try image.contiguous()
        var x = try Tensor.uninitialized([1, 3, h, w])
        // Source coordinate and blend weight per output column / row: (dst + 0.5) * in / out - 0.5, clamped at 0.
        func taps(_ input: Int, _ output: Int) -> [(Int, Int, Float)] {
            let ratio = Double(input) / Double(output)
            return (0..<output).map { d in
                let src = max((Double(d) + 0.5) * ratio - 0.5, 0)
                let i0 = min(Int(src), input - 1)
                return (i0, min(i0 + 1, input - 1), Float(src - Double(i0)))
            }
        }
        let xs = taps(iw, w), ys = taps(ih, h), plane = h * w
        try x.withUnsafeMutableBufferPointer(as: Float.self) { dst in
            withExtendedLifetime(img) {
                let src = img.pointer(UInt8.self)
                for (oy, (y0, y1, fy)) in ys.enumerated() {
                    let row0 = src + y0 * iw * 3, row1 = src + y1 * iw * 3
                    for (ox, (x0, x1, fx)) in xs.enumerated() {
                        for c in 0..<3 {
                            let a = Float(row0[3 * x0 + c]), b = Float(row0[3 * x1 + c])
                            let d = Float(row1[3 * x0 + c]), e = Float(row1[3 * x1 + c])
                            let top = a + (b - a) * fx, bottom = d + (e - d) * fx
                            dst[c * plane + oy * w + ox] = top + (bottom - top) * fy - mean[c]
                        }
                    }
                }
            }
        }
        return x
    }

    /// Validates a uint8 [H, W, 3] image against `ImageLimits` and returns (H, W).
    static func checkImage(_ image: Tensor) throws -> (Int, Int) {
        guard image.dtype == .uint8, image.rank == 3, image.shape[2] == 3 else {
            throw VisionError.invalidArgument("face detector: the image must be uint8 [H, W, 3] (RGB), got \(image.dtype) \(image.shape)")
        }
        let h = image.shape[0], w = image.shape[1]
        guard h > 0, w > 0 else { throw VisionError.invalidArgument("face detector: the image is empty (\(w) x \(h))") }
        guard h <= ImageLimits.maxSide, w <= ImageLimits.maxSide, h * w <= ImageLimits.maxPixels else {
            throw VisionError.outOfMemory("face detector: image \(w) x \(h) exceeds the image limits (\(ImageLimits.maxSide) per side, \(ImageLimits.maxPixels) pixels)")
        }
        return (h, w)
    }

    /// Detects faces in a uint8 [H, W, 3] RGB image. `scale` nil uses `defaultScale` (the demo's); 1.0 runs the
    /// network at the image's own resolution. Returns float32 [K, 5] rows (x1, y1, x2, y2, score) in the
    /// image's pixels, best score first, scores >= `scoreThreshold`.
    public func detect(_ image: Tensor, scoreThreshold: Float = 0.5, scale: Double? = nil) throws -> Tensor {
        let (ih, iw) = try FaceDetector.checkImage(image)
        let s = scale ?? FaceDetector.defaultScale(height: ih, width: iw)
        let (h, w) = try FaceDetector.inputSize(height: ih, width: iw, scale: s)
        let x = try FaceDetector.preprocess(image, height: h, width: w)
        let out = try model.forward(x)
        let p = out.loc.shape[1]
        let priors = try S3FDAnchors.priors(inputHeight: h, inputWidth: w, featureSizes: out.featureSizes)
        let det = try extdDetections(loc: out.loc.reshape([p, 4]), conf: out.conf.reshape([p, 2]), priors: priors,
                                     scoreThreshold: scoreThreshold, config: config)
        // Normalised boxes times the photo's size, as demo.py scales them (not the resized input's size).
        var rows = try det.toArray(Float.self)
        for r in 0..<(rows.count / 5) {
            rows[5 * r] *= Float(iw); rows[5 * r + 2] *= Float(iw)
            rows[5 * r + 1] *= Float(ih); rows[5 * r + 3] *= Float(ih)
        }
        return try Tensor(rows, shape: [rows.count / 5, 5])
    }

    /// Loads an image file (PNG, JPEG, BMP; grey and RGBA are converted to RGB) and detects faces in it.
    public func detect(path: String, scoreThreshold: Float = 0.5, scale: Double? = nil) throws -> Tensor {
        try detect(try loadImage(path: path, channels: 3), scoreThreshold: scoreThreshold, scale: scale)
    }

    // MARK: - bundled weights

    /// The bundled `data/weights/extd/EXTD_NN.safetensors`: looked for under $VISIONCORE_EXTD_WEIGHTS (a
    /// directory), then above the running binary (the executable or libvisioncore.so, up to 6 levels) and the
    /// current directory. Errors name every place searched.
    public static func bundledWeightsPath(_ variant: EXTDVariant) throws -> String {
        var roots: [String] = []
        if let env = getenv("VISIONCORE_EXTD_WEIGHTS"), env.pointee != 0 { roots.append(String(cString: env)) }
        var bases: [String] = []
        if let lib = binaryPath() { bases.append(directory(of: lib)) }
        if let exe = readLink("/proc/self/exe") { bases.append(directory(of: exe)) }
        if let cwd = currentDirectory() { bases.append(cwd) }
        for base in bases {
            var dir = base
            for _ in 0..<7 {
                roots.append(dir + "/data/weights/extd")
                let parent = directory(of: dir)
                if parent == dir { break }
                dir = parent
            }
        }
        var seen = Set<String>()
        for root in roots where seen.insert(root).inserted {
            let file = root + "/" + variant.weightsFileName
            if access(file, R_OK) == 0 { return file }
        }
        throw VisionError.io("\(variant.name): no bundled weights \(variant.weightsFileName) found (searched $VISIONCORE_EXTD_WEIGHTS and data/weights/extd above \(bases.joined(separator: ", "))); pass a weights file")
    }
}

/// The file this code was loaded from (libvisioncore.so, or the executable when linked statically): the
/// mapping of /proc/self/maps that contains one of this module's functions.
private func binaryPath() -> String? {
    let anchor: @convention(c) () -> Void = { }
    let address = UInt(bitPattern: unsafeBitCast(anchor, to: UnsafeRawPointer.self))
    guard let f = fopen("/proc/self/maps", "r") else { return nil }
    defer { fclose(f) }
    var line: UnsafeMutablePointer<CChar>? = nil
    var capacity = 0
    defer { free(line) }
    while getline(&line, &capacity, f) > 0, let l = line {
        let text = String(cString: l)
        // "start-end perms offset dev inode   path"
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, let dash = fields[0].firstIndex(of: "-"),
              let lo = UInt(fields[0][..<dash], radix: 16),
              let hi = UInt(fields[0][fields[0].index(after: dash)...], radix: 16),
              lo <= address, address < hi else { continue }
        let path = fields[5...].joined(separator: " ").trimmingNewline()
        return path.hasPrefix("/") ? path : nil
    }
    return nil
}

private extension String {
    func trimmingNewline() -> String { hasSuffix("\n") ? String(dropLast()) : self }
}

/// The directory part of a path ("/" for "/x", the path itself for "/").
private func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

private func readLink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: 4097)
    let n = readlink(path, &buf, 4096)
    guard n > 0 else { return nil }
    return String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func currentDirectory() -> String? {
    // glibc allocates the buffer when given none.
    guard let p = getcwd(nil, 0) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

// MARK: - drawing detections

/// Draws rectangle outlines on a copy of a uint8 [H, W, C] image (C = 1...4): `boxes` [K, >= 4] float32 rows
/// (x1, y1, x2, y2, ...) in pixels, `color` one value per channel (missing channels get 255), `thickness` pixels
/// drawn inward from each edge. Boxes are clipped to the image; NaN or empty boxes are skipped, so any detector
/// output can be drawn without checks.
public func drawBoxes(_ image: Tensor, boxes: Tensor, color: [UInt8] = [255, 0, 0], thickness: Int = 2) throws -> Tensor {
    guard image.dtype == .uint8, image.rank == 3, (1...4).contains(image.shape[2]) else {
        throw VisionError.invalidArgument("draw_boxes: the image must be uint8 [H, W, C] with C in 1...4, got \(image.dtype) \(image.shape)")
    }
    guard boxes.dtype == .float32, boxes.rank == 2, boxes.shape[1] >= 4 else {
        throw VisionError.invalidArgument("draw_boxes: boxes must be float32 [K, 4 or more] (x1, y1, x2, y2, ...), got \(boxes.dtype) \(boxes.shape)")
    }
    guard (1...64).contains(thickness) else {
        throw VisionError.invalidArgument("draw_boxes: thickness must be in 1...64, got \(thickness)")
    }
    let h = image.shape[0], w = image.shape[1], c = image.shape[2], cols = boxes.shape[1]
    let values = try boxes.toArray(Float.self)
    let paint = (0..<c).map { $0 < color.count ? color[$0] : 255 }
    var out = try image.copyContiguous()
    guard h > 0, w > 0 else { return out }
    try out.withUnsafeMutableBufferPointer(as: UInt8.self) { px in
        /// Fills rows y0...y1, columns x0...x1 (inclusive, already clipped).
        func fill(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) {
            guard x0 <= x1, y0 <= y1 else { return }
            for y in y0...y1 {
                for x in x0...x1 {
                    for ch in 0..<c { px[(y * w + x) * c + ch] = paint[ch] }
                }
            }
        }
        for k in 0..<boxes.shape[0] {
            let r = values[(k * cols)..<(k * cols + 4)].map(Double.init)
            guard r.allSatisfy({ $0.isFinite }) else { continue }
            // Clip in Double before converting: a huge coordinate must not overflow Int.
            func clip(_ v: Double, _ hi: Int) -> Int { Int(min(max(v.rounded(), 0), Double(hi))) }
            let x0 = clip(min(r[0], r[2]), w - 1), x1 = clip(max(r[0], r[2]), w - 1)
            let y0 = clip(min(r[1], r[3]), h - 1), y1 = clip(max(r[1], r[3]), h - 1)
            // Skip boxes entirely outside the image (clipping would draw them on its border).
            if max(r[0], r[2]) < 0 || min(r[0], r[2]) > Double(w - 1) || max(r[1], r[3]) < 0 || min(r[1], r[3]) > Double(h - 1) {
                continue
            }
            let t = thickness - 1
            fill(x0, y0, x1, min(y0 + t, y1))          // top
            fill(x0, max(y1 - t, y0), x1, y1)          // bottom
            fill(x0, y0, min(x0 + t, x1), y1)          // left
            fill(max(x1 - t, x0), y0, x1, y1)          // right
        }
    }
    return out
}
