import VisionCore

/// CutMix (Yun et al., ICCV 2019) with the semantics of the official clovaai/CutMix-PyTorch `train.py`, and of
/// ReLabel's `utils/data_augment.py` copy when `labelSmoothing > 0`, soft targets or `enabled = false` are used.
///
/// Per batch: draw r = U(0, 1) (not drawn when `enabled` is false); if r < prob: λ ~ Beta(α, α), a partner
/// permutation (torch.randperm), then one box for the whole batch from `randBBox`; the box of every sample is
/// replaced by its partner's, and λ is corrected to the pasted area: λ = 1 − area / (H·W). Targets are
/// λ·y + (1 − λ)·y[perm] after smoothing (ε = 0 reproduces the official one-hot mix). When the batch is not mixed
/// the targets are only smoothed.
///
/// ```swift
/// var rng = RandomGenerator(seed: 0)
/// let cutmix = try CutMix(alpha: 1, prob: 0.5, numClasses: 10)
/// let out = try cutmix(images, labels: labels, draws: &rng)   // out.images, out.targets [N, 10]
/// ```
public struct CutMix: Sendable {
    /// Beta concentration α (> 0; the official default is 1, i.e. λ uniform).
    public let alpha: Double
    /// Probability of mixing a batch.
    public let prob: Double
    public let numClasses: Int
    /// ε of ReLabel's `smooth_target`, applied before mixing (0 = the official CutMix).
    public let labelSmoothing: Double
    /// ReLabel's `disable` (true in the last `off_epoch` epochs there): when false nothing is drawn or mixed.
    public var enabled: Bool = true

    /// Errors: α not > 0 (no "α = 0 means off" here), prob outside [0, 1], numClasses < 1, ε outside [0, 1).
    public init(alpha: Double = 1, prob: Double = 1, numClasses: Int, labelSmoothing: Double = 0) throws {
        try checkAlpha(alpha, "alpha", "CutMix")
        try checkUnitInterval(prob, "prob", "CutMix")
        guard numClasses >= 1 else { throw VisionError.invalidArgument("CutMix: numClasses must be >= 1, got \(numClasses)") }
        guard labelSmoothing.isFinite, labelSmoothing >= 0, labelSmoothing < 1 else {
            throw VisionError.invalidArgument("CutMix: labelSmoothing must be in [0, 1), got \(labelSmoothing)")
        }
        self.alpha = alpha
        self.prob = prob
        self.numClasses = numClasses
        self.labelSmoothing = labelSmoothing
    }

    /// The official `rand_bbox` for an input whose last two dimensions are `dim2` x `dim3` (rows x columns in
    /// NCHW; the official code names them W and H, which changes nothing because it uses them consistently):
    /// cut = Int(dim · sqrt(1 − λ)) (truncation), centres c2 = randint(dim2) then c3 = randint(dim3), ends
    /// c ∓ cut/2 clipped to 0...dim — so an unclipped box is 2·(cut/2), one pixel short of `cut` when it is odd.
    /// Returns the box and λ corrected to its area. λ is clamped into [0, 1] (NaN counts as 1); dims must be > 0.
    public static func randBBox<R: RandomDraws>(dim2: Int, dim3: Int, lambda: Double, draws: inout R) -> (MixBox, Double) {
        let cutRatio = (1 - unitClamped(lambda)).squareRoot()
        let cut2 = Int(Double(dim2) * cutRatio), cut3 = Int(Double(dim3) * cutRatio)
        let c2 = draws.integer(0, dim2), c3 = draws.integer(0, dim3)
        let (t, b) = clippedSpan(center: c2, lowHalf: cut2 / 2, highHalf: cut2 / 2, length: dim2)
        let (l, r) = clippedSpan(center: c3, lowHalf: cut3 / 2, highHalf: cut3 / 2, length: dim3)
        let box = MixBox(top: t, bottom: b, left: l, right: r)
        return (box, 1 - Double(box.area) / Double(dim3 * dim2))
    }

    /// Mixes a float32 [N, C, H, W] batch (N >= 2) with its labels: int32/int64 class indices [N] or float32
    /// soft targets [N, numClasses] (e.g. ReLabel's `LabelPooling` output).
    public func callAsFunction<R: RandomDraws>(_ images: Tensor, labels: Tensor, draws: inout R) throws -> MixResult {
        var x = try mixableBatch(images, rank: 4, minBatch: 2, "CutMix", layout: "[N, C, H, W]")
        let n = x.shape[0], h = x.shape[2], w = x.shape[3]
        let targets = try SoftTargets(labels, batch: n, numClasses: numClasses, smoothing: labelSmoothing, "CutMix")
        guard enabled, draws.uniform() < prob else {
            return MixResult(images: x, targets: try targets.tensor(), lambdas: Array(repeating: 1, count: n),
                             partners: Array(0..<n), boxes: Array(repeating: nil, count: n))
        }
        let lam0 = try drawLambda(&draws, alpha, "CutMix")
        let perm = draws.permutation(n)
        try checkPermutation(perm, n, "CutMix")
        let (box, lam) = CutMix.randBBox(dim2: h, dim3: w, lambda: lam0, draws: &draws)
        let source = try images.contiguous()
        try x.withUnsafeMutableBufferPointer(as: Float.self) { dst in
            try source.withUnsafeBufferPointer(as: Float.self) { src in
                for i in 0..<n { copyBox(from: src, sample: perm[i], to: dst, sample: i, shape: source.shape, box: box) }
            }
        }
        let mixed = try targets.mixed(partners: perm, weightOwn: Array(repeating: Float(lam), count: n),
                                      weightPartner: Array(repeating: Float(1 - lam), count: n))
        return MixResult(images: x, targets: mixed, lambdas: Array(repeating: lam, count: n), partners: perm,
                         boxes: Array(repeating: box, count: n))
    }
}

/// Refuses a permutation that a custom `RandomDraws` returned with the wrong length or values.
func checkPermutation(_ p: [Int], _ n: Int, _ op: String) throws {
    var seen = [Bool](repeating: false, count: n)
    var ok = p.count == n
    for v in p where ok {
        if v < 0 || v >= n || seen[v] { ok = false } else { seen[v] = true }
    }
    guard ok else {
        throw VisionError.invalidArgument("\(op): the draws returned \(p.prefix(16)) (\(p.count) values), not a permutation of 0..<\(n)")
    }
}

/// Copies `box` of every channel of sample `from` in `src` into the same box of sample `to` in `dst`, both
/// contiguous [N, C, H, W] (or [N, C, T, H, W] with the extra leading spatial axes folded into C).
func copyBox(from src: UnsafeBufferPointer<Float>, sample s: Int, to dst: UnsafeMutableBufferPointer<Float>,
             sample d: Int, shape: [Int], box: MixBox) {
    guard box.area > 0 else { return }
    let h = shape[shape.count - 2], w = shape[shape.count - 1]
    let planes = shape[1..<(shape.count - 2)].reduce(1, *)
    let sampleSize = planes * h * w
    for p in 0..<planes {
        for y in box.top..<box.bottom {
            let so = s * sampleSize + p * h * w + y * w, doff = d * sampleSize + p * h * w + y * w
            for x in box.left..<box.right { dst[doff + x] = src[so + x] }
        }
    }
}
