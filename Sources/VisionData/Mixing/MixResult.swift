import VisionCore

/// A rectangle of an image in pixel indices: rows `top..<bottom`, columns `left..<right` (possibly empty).
public struct MixBox: Equatable, Sendable, CustomStringConvertible {
    public var top: Int, bottom: Int, left: Int, right: Int

    public init(top: Int, bottom: Int, left: Int, right: Int) {
        self.top = top; self.bottom = bottom; self.left = left; self.right = right
    }

    /// Number of pixels inside (0 for an empty box).
    public var area: Int { max(0, bottom - top) * max(0, right - left) }

    public var description: String { "rows \(top)..<\(bottom), cols \(left)..<\(right)" }
}

/// What a mixing augmentation did to a batch.
public struct MixResult: Sendable {
    /// The mixed batch (a new tensor; the input is not modified), same shape as the input.
    public var images: Tensor
    /// Soft targets [N, K] float32: each row is `lambdas[i] * y_i + (1 - lambdas[i]) * y_partners[i]` (after any
    /// label smoothing), so rows sum to 1 when the inputs' rows do.
    public var targets: Tensor
    /// Weight of each sample's own target, after the area correction (1 for a sample left unchanged).
    public var lambdas: [Double]
    /// Index of the sample each sample was mixed with (itself when unmixed).
    public var partners: [Int]
    /// The pasted (CutMix) or erased (Cutout) region of each sample; nil for blended or unchanged samples.
    public var boxes: [MixBox?]
}

/// CutMix's box rule shared by the official code, ReLabel's copy and timm: a side of `Int(length * ratio)`
/// (truncation), a centre drawn uniformly in 0..<length, and ends clipped to 0...length. `lowHalf` and
/// `highHalf` are the extents below and above the centre: the official code uses cut/2 on both sides (so an odd
/// cut loses a pixel), timm 1.0 uses cut/2 below and (cut+1)/2 above.
@inline(__always)
func clippedSpan(center: Int, lowHalf: Int, highHalf: Int, length: Int) -> (Int, Int) {
    (min(max(center - lowHalf, 0), length), min(max(center + highHalf, 0), length))
}

/// Validates a float32 batch of rank `rank` with at least `minBatch` samples and returns a contiguous copy that
/// the mixing code may write into.
func mixableBatch(_ x: Tensor, rank: Int, minBatch: Int, _ op: String, layout: String) throws -> Tensor {
    guard x.dtype == .float32 else {
        throw VisionError.dtypeMismatch("\(op): images must be float32, got \(x.dtype)")
    }
    guard x.rank == rank else {
        throw VisionError.shapeMismatch("\(op): images must be \(layout), got shape \(x.shape)")
    }
    guard x.shape[0] >= minBatch else {
        throw VisionError.invalidArgument("\(op): a batch of \(x.shape[0]) is too small to mix; need at least \(minBatch) samples")
    }
    guard !x.shape.contains(0) else { throw VisionError.shapeMismatch("\(op): images \(x.shape) are empty") }
    return try x.copyContiguous()
}

/// A Beta(a, a) draw checked to lie in [0, 1]: a custom `RandomDraws` returning NaN or a value outside would
/// otherwise turn into NaN targets or nonsense boxes.
func drawLambda<R: RandomDraws>(_ draws: inout R, _ a: Double, _ op: String) throws -> Double {
    let v = draws.beta(a, a)
    guard v >= 0, v <= 1 else { throw VisionError.invalidArgument("\(op): the draws returned the Beta sample \(v), outside [0, 1]") }
    return v
}

/// λ clamped into [0, 1] for the public box helpers (NaN counts as 1: no box).
@inline(__always) func unitClamped(_ v: Double) -> Double { v.isNaN ? 1 : min(max(v, 0), 1) }

/// Checks that a probability-like parameter lies in 0...1.
func checkUnitInterval(_ v: Double, _ name: String, _ op: String) throws {
    guard v.isFinite, v >= 0, v <= 1 else {
        throw VisionError.invalidArgument("\(op): \(name) must be in [0, 1], got \(v)")
    }
}

/// Checks a Beta concentration: finite and > 0. Zero is refused rather than read as "off": to disable a method,
/// do not apply it (timm's `Mixup` is different — an alpha of 0 there switches that branch off, see `TimmMixup`).
func checkAlpha(_ a: Double, _ name: String, _ op: String) throws {
    guard a.isFinite, a > 0 else {
        throw VisionError.invalidArgument("\(op): \(name) must be > 0 and finite (Beta(\(name), \(name))), got \(a); to disable the augmentation, do not apply it")
    }
}
