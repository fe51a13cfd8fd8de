#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// A cuboid of a clip: frames `t0..<t1`, rows `top..<bottom`, columns `left..<right`.
public struct Cuboid: Equatable, Sendable, CustomStringConvertible {
    public var t0: Int, t1: Int, top: Int, bottom: Int, left: Int, right: Int

    public init(t0: Int, t1: Int, top: Int, bottom: Int, left: Int, right: Int) {
        self.t0 = t0; self.t1 = t1; self.top = top; self.bottom = bottom; self.left = left; self.right = right
    }

    /// Number of voxels inside (0 when any side is empty).
    public var volume: Int { max(0, t1 - t0) * max(0, bottom - top) * max(0, right - left) }

    public var description: String { "frames \(t0)..<\(t1), rows \(top)..<\(bottom), cols \(left)..<\(right)" }
}

/// The result of `VideoMix`: the mixed clips, soft targets and the cuboid pasted into every clip.
public struct VideoMixResult: Sendable {
    /// Mixed clips, same shape as the input [N, C, T, H, W].
    public var clips: Tensor
    /// [N, K]: λ_M·y + (1 − λ_M)·y[partners], rows summing to 1.
    public var targets: Tensor
    /// λ_M: the fraction of each clip's voxels that are still its own (1 when not mixed).
    public var lambda: Double
    public var partners: [Int]
    /// The cuboid taken from the partner (nil when the batch was not mixed).
    public var cuboid: Cuboid?
}

/// VideoMix (Yun et al., arXiv 2012.03457): a cuboid of each clip is replaced by the same cuboid of a partner
/// clip and the labels are mixed by the voxel fraction, x̃ = M ⊙ x_A + (1 − M) ⊙ x_B, ỹ = λ_M·y_A + (1 − λ_M)·y_B.
///
/// No official code exists; this follows the CutMix reference code of the same first author (one λ and one
/// cuboid per batch, partner = permutation), with these sizes (documented conventions, not the paper's):
/// - `.spatial`: all frames; the H x W box of CutMix: side Int(len · sqrt(1 − λ)).
/// - `.temporal`: whole frames; Int(T · (1 − λ)) frames.
/// - `.spatioTemporal`: each of T, H, W gets Int(len · cbrt(1 − λ)), so the unclipped cuboid holds about
///   1 − λ of the voxels, as the other two variants do.
/// A side `cut` is centred at c = randint(len) and spans c − cut/2 ..< c + cut/2, clipped (CutMix's rule), and
/// λ_M = 1 − volume / (T·H·W) is recomputed from the clipped cuboid.
/// Draws: a uniform against prob, the beta, the permutation, then the centres in t, y, x order (only the axes
/// the variant cuts).
public struct VideoMix: Sendable {
    public enum Variant: String, Sendable, CaseIterable { case spatial, temporal, spatioTemporal }

    public let alpha: Double
    public let prob: Double
    public let variant: Variant
    public let numClasses: Int
    public let labelSmoothing: Double

    /// Errors: α not > 0, prob outside [0, 1], numClasses < 1, ε outside [0, 1).
    public init(variant: Variant = .spatial, alpha: Double = 1, prob: Double = 1, numClasses: Int,
                labelSmoothing: Double = 0) throws {
        try checkAlpha(alpha, "alpha", "VideoMix")
        try checkUnitInterval(prob, "prob", "VideoMix")
        guard numClasses >= 1 else { throw VisionError.invalidArgument("VideoMix: numClasses must be >= 1, got \(numClasses)") }
        guard labelSmoothing.isFinite, labelSmoothing >= 0, labelSmoothing < 1 else {
            throw VisionError.invalidArgument("VideoMix: labelSmoothing must be in [0, 1), got \(labelSmoothing)")
        }
        self.variant = variant
        self.alpha = alpha
        self.prob = prob
        self.numClasses = numClasses
        self.labelSmoothing = labelSmoothing
    }

    /// The cuboid for a T x H x W clip (sides > 0) and λ (clamped into [0, 1]), and λ_M corrected to its volume.
    public static func cuboid<R: RandomDraws>(frames t: Int, height h: Int, width w: Int, lambda: Double,
                                              variant: Variant, draws: inout R) -> (Cuboid, Double) {
        let lambda = unitClamped(lambda)
        func span(_ len: Int, _ cut: Int, _ draws: inout R) -> (Int, Int) {
            clippedSpan(center: draws.integer(0, len), lowHalf: cut / 2, highHalf: cut / 2, length: len)
        }
        var c = Cuboid(t0: 0, t1: t, top: 0, bottom: h, left: 0, right: w)
        switch variant {
        case .spatial:
            let r = (1 - lambda).squareRoot()
            (c.top, c.bottom) = span(h, Int(Double(h) * r), &draws)
            (c.left, c.right) = span(w, Int(Double(w) * r), &draws)
        case .temporal:
            (c.t0, c.t1) = span(t, Int(Double(t) * (1 - lambda)), &draws)
        case .spatioTemporal:
            let r = cbrt(1 - lambda)
            (c.t0, c.t1) = span(t, Int(Double(t) * r), &draws)
            (c.top, c.bottom) = span(h, Int(Double(h) * r), &draws)
            (c.left, c.right) = span(w, Int(Double(w) * r), &draws)
        }
        return (c, 1 - Double(c.volume) / Double(t * h * w))
    }

    /// Mixes float32 clips [N, C, T, H, W] (N >= 2, T, H, W >= 1) with class indices [N] or soft targets [N, K].
    public func callAsFunction<R: RandomDraws>(_ clips: Tensor, labels: Tensor, draws: inout R) throws -> VideoMixResult {
        var x = try mixableBatch(clips, rank: 5, minBatch: 2, "VideoMix", layout: "[N, C, T, H, W]")
        let (n, c, t, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
        guard t > 0, h > 0, w > 0 else { throw VisionError.shapeMismatch("VideoMix: empty clips \(x.shape)") }
        let targets = try SoftTargets(labels, batch: n, numClasses: numClasses, smoothing: labelSmoothing, "VideoMix")
        guard draws.uniform() < prob else {
            return VideoMixResult(clips: x, targets: try targets.tensor(), lambda: 1, partners: Array(0..<n), cuboid: nil)
        }
        let lam0 = try drawLambda(&draws, alpha, "VideoMix")
        let perm = draws.permutation(n)
        try checkPermutation(perm, n, "VideoMix")
        let (box, lam) = VideoMix.cuboid(frames: t, height: h, width: w, lambda: lam0, variant: variant, draws: &draws)
        let src = try clips.contiguous()
        if box.volume > 0 {
            try x.withUnsafeMutableBufferPointer(as: Float.self) { d in
                try src.withUnsafeBufferPointer(as: Float.self) { s in
                    for i in 0..<n {
                        for ch in 0..<c {
                            for f in box.t0..<box.t1 {
                                let frame = ((ch * t) + f) * h * w
                                for y in box.top..<box.bottom {
                                    let di = i * c * t * h * w + frame + y * w, si = perm[i] * c * t * h * w + frame + y * w
                                    for xx in box.left..<box.right { d[di + xx] = s[si + xx] }
                                }
                            }
                        }
                    }
                }
            }
        }
        let mixed = try targets.mixed(partners: perm, weightOwn: Array(repeating: Float(lam), count: n),
                                      weightPartner: Array(repeating: Float(1 - lam), count: n))
        return VideoMixResult(clips: x, targets: mixed, lambda: lam, partners: perm, cuboid: box)
    }
}
