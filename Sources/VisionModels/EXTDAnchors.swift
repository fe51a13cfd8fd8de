import VisionCore
#if canImport(Glibc)
import Glibc
#endif

// S3FD prior boxes and box decoding as EXTD uses them (`layers/functions/prior_box.py`, `bbox_utils.decode`,
// `data/config.py`), and the test-time detection step (`layers/functions/detection.py`).

/// S3FD anchor settings: one square anchor per cell on each of the six scales, no clipping.
public enum S3FDAnchors {
    public static let steps = [4, 8, 16, 32, 64, 128]
    public static let sizes = [16, 32, 64, 128, 256, 512]
    /// Variances of the (cx, cy) and (w, h) offsets.
    public static let variances: (Float, Float) = (0.1, 0.2)

    /// Priors [P, 4] as (cx, cy, w, h) normalised by the input size, row-major per scale. As in the official
    /// PriorBox the cell centre is divided by input / step (not by the feature size), which differs when the
    /// input is not a multiple of the step; values are computed in Double and stored as float32, like
    /// `torch.Tensor(list of Python floats)`.
    public static func priors(inputHeight: Int, inputWidth: Int, featureSizes: [(Int, Int)]) throws -> Tensor {
        guard inputHeight > 0, inputWidth > 0, featureSizes.count <= steps.count else {
            throw VisionError.invalidArgument("s3fd priors: input \(inputHeight) x \(inputWidth) and \(featureSizes.count) feature maps (at most \(steps.count))")
        }
        let total = featureSizes.reduce(0) { $0 + $1.0 * $1.1 }
        var out = [Float](repeating: 0, count: total * 4)
        var i = 0
        let imh = Double(inputHeight), imw = Double(inputWidth)
        for (k, (fh, fw)) in featureSizes.enumerated() {
            let fkw = imw / Double(steps[k]), fkh = imh / Double(steps[k])
            let sw = Double(sizes[k]) / imw, sh = Double(sizes[k]) / imh
            for y in 0..<fh {
                for x in 0..<fw {
                    out[i] = Float((Double(x) + 0.5) / fkw)
                    out[i + 1] = Float((Double(y) + 0.5) / fkh)
                    out[i + 2] = Float(sw)
                    out[i + 3] = Float(sh)
                    i += 4
                }
            }
        }
        return try Tensor(out, shape: [total, 4])
    }

    /// Decodes one offset row against its prior into (x1, y1, x2, y2), normalised, with the official float32
    /// operation order (centre + offset * 0.1 * size; size * exp(offset * 0.2); x1 = cx - w / 2; x2 = x1 + w).
    @inline(__always)
    static func decode(_ l: UnsafePointer<Float>, _ p: UnsafePointer<Float>) -> (Float, Float, Float, Float) {
        let cx = p[0] + l[0] * variances.0 * p[2]
        let cy = p[1] + l[1] * variances.0 * p[3]
        let w = p[2] * expf(l[2] * variances.1)
        let h = p[3] * expf(l[3] * variances.1)
        let x1 = cx - w / 2, y1 = cy - h / 2
        return (x1, y1, x1 + w, y1 + h)
    }

    /// Decodes loc [P, 4] against priors [P, 4] into boxes [P, 4] (x1, y1, x2, y2), normalised.
    public static func decode(loc: Tensor, priors: Tensor) throws -> Tensor {
        guard loc.rank == 2, loc.shape[1] == 4, loc.shape == priors.shape, loc.dtype == .float32,
              priors.dtype == .float32 else {
            throw VisionError.shapeMismatch("s3fd decode: loc \(loc.shape) and priors \(priors.shape) must both be float32 [P, 4]")
        }
        let l = try loc.contiguous(), p = try priors.contiguous()
        var out = try Tensor.zeros(loc.shape)
        try out.withUnsafeMutableBufferPointer(as: Float.self) { o in
            withExtendedLifetime((l, p)) {
                for i in 0..<loc.shape[0] {
                    let b = decode(l.pointer(Float.self) + 4 * i, p.pointer(Float.self) + 4 * i)
                    o[4 * i] = b.0; o[4 * i + 1] = b.1; o[4 * i + 2] = b.2; o[4 * i + 3] = b.3
                }
            }
        }
        return out
    }
}

/// The test-time settings of `data/config.py`.
public struct EXTDDetectionConfig: Sendable {
    /// Scores must exceed this to enter NMS (CONF_THRESH).
    public var confidenceThreshold: Float = 0.05
    /// Greedy NMS suppresses a box whose IoU with a kept one is above this (NMS_THRESH).
    public var nmsThreshold: Float = 0.3
    /// Boxes considered by NMS, best scores first (NMS_TOP_K).
    public var nmsTopK = 5000
    /// Boxes kept after NMS (TOP_K).
    public var topK = 750
    public init() {}
}

/// One image's detection step: softmax over (background, face), keep scores > confidenceThreshold and >=
/// scoreThreshold, the best nmsTopK of them, greedy NMS, at most topK. Returns [K, 5] rows (x1, y1, x2, y2,
/// score) normalised to the network input, best first.
///
/// Boxes that decode to non-finite coordinates are dropped.
/// Filtering at the user's threshold before NMS gives the same boxes as the official code (NMS at 0.05, then
/// the demo's `>= thresh`): a box's fate in greedy NMS depends only on the boxes scored above it.
public func extdDetections(loc: Tensor, conf: Tensor, priors: Tensor, scoreThreshold: Float,
                           config: EXTDDetectionConfig = EXTDDetectionConfig()) throws -> Tensor {
    let p = priors.shape.first ?? 0
    guard loc.shape == [p, 4], conf.shape == [p, 2], priors.shape == [p, 4] else {
        throw VisionError.shapeMismatch("extd detect: loc \(loc.shape), conf \(conf.shape) and priors \(priors.shape) must be [P, 4], [P, 2], [P, 4]")
    }
    guard !scoreThreshold.isNaN else { throw VisionError.invalidArgument("extd detect: the score threshold is NaN") }
    let logits = try conf.toArray(Float.self)
    var candidates: [(Int, Float)] = []
    for i in 0..<p {
        // 2-class softmax as torch computes it: exp(x - max) / sum.
        let a = logits[2 * i], b = logits[2 * i + 1], m = max(a, b)
        let ea = expf(a - m), eb = expf(b - m)
        let s = eb / (ea + eb)
        if s > config.confidenceThreshold && s >= scoreThreshold { candidates.append((i, s)) }
    }
    // Best first, ties by index (the stable order VisionCore's nms also uses).
    candidates.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    if candidates.count > config.nmsTopK { candidates.removeLast(candidates.count - config.nmsTopK) }
    let l = try loc.contiguous(), pr = try priors.contiguous()
    var boxes = [Float](repeating: 0, count: candidates.count * 4)
    withExtendedLifetime((l, pr)) {
        for (j, c) in candidates.enumerated() {
            let b = S3FDAnchors.decode(l.pointer(Float.self) + 4 * c.0, pr.pointer(Float.self) + 4 * c.0)
            boxes[4 * j] = b.0; boxes[4 * j + 1] = b.1; boxes[4 * j + 2] = b.2; boxes[4 * j + 3] = b.3
        }
    }
    // A network that is barely trained (or fed extreme inputs) can decode to infinite or NaN boxes: they are no
    // detections, and NMS or a drawing would misbehave on them. (The official code passes them through.)
    let finite = candidates.indices.filter { j in (0..<4).allSatisfy { boxes[4 * j + $0].isFinite } }
    if finite.count < candidates.count {
        candidates = finite.map { candidates[$0] }
        boxes = finite.flatMap { j in boxes[(4 * j)..<(4 * j + 4)] }
    }
    let keep = candidates.isEmpty ? [] : try nms(try Tensor(boxes, shape: [candidates.count, 4]),
                                                 scores: try Tensor(candidates.map(\.1), shape: [candidates.count]),
                                                 iouThreshold: config.nmsThreshold).toArray(Int64.self)
    var rows: [Float] = []
    rows.reserveCapacity(min(keep.count, config.topK) * 5)
    for k in keep.prefix(config.topK) {
        let j = Int(k)
        rows += [boxes[4 * j], boxes[4 * j + 1], boxes[4 * j + 2], boxes[4 * j + 3], candidates[j].1]
    }
    return try Tensor(rows, shape: [rows.count / 5, 5])
}
