import VisionCore

/// Mixup (Zhang et al., arXiv 1710.09412) as the authors' facebookresearch/mixup-cifar10 `mixup_data`:
/// λ ~ Beta(α, α), a partner permutation (torch.randperm), x̃ = λ·x + (1 − λ)·x[perm] and
/// ỹ = λ·y + (1 − λ)·y[perm], one λ for the batch.
///
/// Draws: a uniform against `prob` first, only when prob < 1 (the reference always mixes); then the beta, then
/// the permutation. Labels: class indices [N] or soft targets [N, K]; `labelSmoothing` as `CutMix`.
public struct Mixup: Sendable {
    public let alpha: Double
    public let prob: Double
    public let numClasses: Int
    public let labelSmoothing: Double

    /// Errors: α not > 0 (the reference's "α <= 0 means λ = 1" is refused: do not apply Mixup instead), prob
    /// outside [0, 1], numClasses < 1, ε outside [0, 1).
    public init(alpha: Double = 1, prob: Double = 1, numClasses: Int, labelSmoothing: Double = 0) throws {
        try checkAlpha(alpha, "alpha", "Mixup")
        try checkUnitInterval(prob, "prob", "Mixup")
        guard numClasses >= 1 else { throw VisionError.invalidArgument("Mixup: numClasses must be >= 1, got \(numClasses)") }
        guard labelSmoothing.isFinite, labelSmoothing >= 0, labelSmoothing < 1 else {
            throw VisionError.invalidArgument("Mixup: labelSmoothing must be in [0, 1), got \(labelSmoothing)")
        }
        self.alpha = alpha
        self.prob = prob
        self.numClasses = numClasses
        self.labelSmoothing = labelSmoothing
    }

    /// Mixes a float32 batch [N, ...] (any rank >= 2, N >= 2: images, clips or features).
    public func callAsFunction<R: RandomDraws>(_ images: Tensor, labels: Tensor, draws: inout R) throws -> MixResult {
        guard images.rank >= 2 else {
            throw VisionError.shapeMismatch("Mixup: images must be [N, ...] with at least 2 dimensions, got \(images.shape)")
        }
        var x = try mixableBatch(images, rank: images.rank, minBatch: 2, "Mixup", layout: "[N, ...]")
        let n = x.shape[0]
        let targets = try SoftTargets(labels, batch: n, numClasses: numClasses, smoothing: labelSmoothing, "Mixup")
        if prob < 1 && !(draws.uniform() < prob) {
            return MixResult(images: x, targets: try targets.tensor(), lambdas: Array(repeating: 1, count: n),
                             partners: Array(0..<n), boxes: Array(repeating: nil, count: n))
        }
        let lam = try drawLambda(&draws, alpha, "Mixup")
        let perm = draws.permutation(n)
        try checkPermutation(perm, n, "Mixup")
        let a = Float(lam), b = Float(1 - lam), size = x.count / n
        let src = try images.contiguous()
        try x.withUnsafeMutableBufferPointer(as: Float.self) { d in
            try src.withUnsafeBufferPointer(as: Float.self) { s in
                for i in 0..<n {
                    let o = i * size, p = perm[i] * size
                    for e in 0..<size { d[o + e] = s[o + e] * a + s[p + e] * b }
                }
            }
        }
        return MixResult(images: x, targets: try targets.mixed(partners: perm, weightOwn: Array(repeating: a, count: n),
                                                               weightPartner: Array(repeating: b, count: n)),
                         lambdas: Array(repeating: lam, count: n), partners: perm, boxes: Array(repeating: nil, count: n))
    }
}
