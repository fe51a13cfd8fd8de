import VisionCore

/// timm's `Mixup` (timm/data/mixup.py, checked against timm 1.0.31): Mixup or CutMix, switched per batch, per
/// pair or per element, always pairing sample i with sample N−1−i (the batch mixed with its flip).
///
/// Draws, in timm's order (`RandomDraws.uniform` for numpy `rand`, `beta`, `integer` for `randint`):
/// - `.batch`: u < prob decides mixing; with both alphas > 0 a second u < switchProb picks CutMix; λ ~ Beta of
///   the chosen method. λ == 1 leaves the batch unchanged.
/// - `.elem` / `.pair` (N or N/2 parameter sets): with both alphas, N uniforms for the switch, then N CutMix
///   betas, then N Mixup betas (numpy evaluates both `np.where` branches); then N uniforms against prob. λ is
///   float32 in these modes, as in timm; CutMix boxes are then computed in float32 too.
/// - CutMix box (`rand_bbox`): cut = Int(H·sqrt(1−λ)), centre y then x uniform in 0..<H / 0..<W, rows
///   cy − cut/2 ..< cy + (cut+1)/2 clipped (timm 1.0 adds the odd pixel on the high side; the official CutMix
///   does not). With `cutmixMinMax` (mn, mx): cut_h = randint(Int(H·mn), Int(H·mx)), cut_w likewise, then
///   top = randint(0, H−cut_h+1), left = randint(0, W−cut_w+1): the box lies inside the image and λ is always
///   corrected.
/// - Targets: one-hot with off = ε/K, on = 1 − ε + ε/K, mixed λ·y + (1−λ)·flip(y).
///
/// Bad input: an odd batch (timm asserts for every mode), a batch under 2, negative alphas, both alphas 0
/// without minmax (timm asserts), `cutmixMinMax` with Int(H·mn) >= Int(H·mx) (numpy's randint refuses it).
/// An alpha of 0 disables that method, as in timm.
public struct TimmMixup: Sendable {
    /// How parameters are shared: one λ for the batch, one per mirrored pair (i, N−1−i), or one per element.
    public enum Mode: String, Sendable, CaseIterable { case batch, pair, elem }

    public let mixupAlpha: Double
    public let cutmixAlpha: Double
    public let cutmixMinMax: (Double, Double)?
    public let prob: Double
    public let switchProb: Double
    public let mode: Mode
    public let correctLambda: Bool
    public let labelSmoothing: Double
    public let numClasses: Int
    /// timm's `mixup_enabled` (a training loop turns it off at `mixup_off_epoch`): when false nothing is drawn
    /// and the targets are only smoothed.
    public var enabled: Bool = true

    /// timm's constructor defaults. With `cutmixMinMax`, cutmixAlpha is forced to 1 as timm does.
    public init(mixupAlpha: Double = 1, cutmixAlpha: Double = 0, cutmixMinMax: (Double, Double)? = nil,
                prob: Double = 1, switchProb: Double = 0.5, mode: Mode = .batch, correctLambda: Bool = true,
                labelSmoothing: Double = 0.1, numClasses: Int = 1000) throws {
        let op = "TimmMixup"
        guard mixupAlpha.isFinite, mixupAlpha >= 0, cutmixAlpha.isFinite, cutmixAlpha >= 0 else {
            throw VisionError.invalidArgument("\(op): alphas must be finite and >= 0 (0 disables that method), got mixupAlpha \(mixupAlpha), cutmixAlpha \(cutmixAlpha)")
        }
        if let (mn, mx) = cutmixMinMax {
            guard mn.isFinite, mx.isFinite, mn >= 0, mn < mx, mx <= 1 else {
                throw VisionError.invalidArgument("\(op): cutmixMinMax must satisfy 0 <= min < max <= 1, got (\(mn), \(mx))")
            }
        }
        let cutAlpha = cutmixMinMax != nil ? 1 : cutmixAlpha
        guard mixupAlpha > 0 || cutAlpha > 0 else {
            throw VisionError.invalidArgument("\(op): one of mixupAlpha > 0, cutmixAlpha > 0 or cutmixMinMax is needed (both alphas are 0)")
        }
        try checkUnitInterval(prob, "prob", op)
        try checkUnitInterval(switchProb, "switchProb", op)
        guard numClasses >= 1 else { throw VisionError.invalidArgument("\(op): numClasses must be >= 1, got \(numClasses)") }
        guard labelSmoothing.isFinite, labelSmoothing >= 0, labelSmoothing < 1 else {
            throw VisionError.invalidArgument("\(op): labelSmoothing must be in [0, 1), got \(labelSmoothing)")
        }
        self.mixupAlpha = mixupAlpha
        self.cutmixAlpha = cutAlpha
        self.cutmixMinMax = cutmixMinMax
        self.prob = prob
        self.switchProb = switchProb
        self.mode = mode
        self.correctLambda = correctLambda
        self.labelSmoothing = labelSmoothing
        self.numClasses = numClasses
    }

    /// timm's `rand_bbox` / `rand_bbox_minmax` + `cutmix_bbox_and_lam` for one H x W image. `ratio` is
    /// sqrt(1 − λ), computed by the caller in the precision of its mode (clamped into [0, 1]). Throws when
    /// minmax gives an empty range or the image is empty.
    public func bboxAndLambda<R: RandomDraws>(height h: Int, width w: Int, ratio: Double,
                                              lambda: Double, draws: inout R) throws -> (MixBox, Double) {
        try bboxAndLambda(height: h, width: w, ratio: ratio, lambda: lambda, draws: &draws, float32Cut: false)
    }

    /// `float32Cut`: the side is Int(Float(H) * Float(ratio)), numpy's float32 arithmetic when λ is a float32
    /// (elem and pair modes).
    func bboxAndLambda<R: RandomDraws>(height h: Int, width w: Int, ratio: Double, lambda: Double,
                                       draws: inout R, float32Cut: Bool) throws -> (MixBox, Double) {
        guard h > 0, w > 0 else { throw VisionError.invalidArgument("TimmMixup: empty image \(h) x \(w)") }
        let ratio = ratio.isNaN ? 0 : min(max(ratio, 0), 1)
        var box: MixBox
        if let (mn, mx) = cutmixMinMax {
            let (h0, h1) = (Int(Double(h) * mn), Int(Double(h) * mx)), (w0, w1) = (Int(Double(w) * mn), Int(Double(w) * mx))
            guard h0 < h1, w0 < w1 else {
                throw VisionError.invalidArgument("TimmMixup: cutmixMinMax \(mn)...\(mx) gives no box size for a \(h) x \(w) image (randint(\(h0), \(h1)) / randint(\(w0), \(w1)) is empty)")
            }
            let ch = draws.integer(h0, h1), cw = draws.integer(w0, w1)
            let top = draws.integer(0, h - ch + 1), left = draws.integer(0, w - cw + 1)
            box = MixBox(top: top, bottom: top + ch, left: left, right: left + cw)
        } else {
            let ch = float32Cut ? Int(Float(h) * Float(ratio)) : Int(Double(h) * ratio)
            let cw = float32Cut ? Int(Float(w) * Float(ratio)) : Int(Double(w) * ratio)
            let cy = draws.integer(0, h), cx = draws.integer(0, w)
            let (t, b) = clippedSpan(center: cy, lowHalf: ch / 2, highHalf: (ch + 1) / 2, length: h)
            let (l, r) = clippedSpan(center: cx, lowHalf: cw / 2, highHalf: (cw + 1) / 2, length: w)
            box = MixBox(top: t, bottom: b, left: l, right: r)
        }
        if correctLambda || cutmixMinMax != nil { return (box, 1 - Double(box.area) / Double(h * w)) }
        return (box, lambda)
    }

    /// Mixes a float32 [N, C, H, W] batch (N even, >= 2) and returns it with [N, numClasses] targets. `labels`
    /// are int32/int64 class indices [N] or float32 soft targets [N, numClasses] (smoothed as ReLabel does).
    public func callAsFunction<R: RandomDraws>(_ images: Tensor, labels: Tensor, draws: inout R) throws -> MixResult {
        let op = "TimmMixup"
        var x = try mixableBatch(images, rank: 4, minBatch: 2, op, layout: "[N, C, H, W]")
        let n = x.shape[0]
        guard n % 2 == 0 else {
            throw VisionError.invalidArgument("\(op): the batch size must be even (sample i is mixed with N-1-i), got \(n)")
        }
        let targets = try SoftTargets(labels, batch: n, numClasses: numClasses, smoothing: labelSmoothing, op)
        let flip = (0..<n).map { n - 1 - $0 }
        let source = try images.contiguous()
        let (lambdas, boxes): ([Double], [MixBox?])
        switch mode {
        case .batch: (lambdas, boxes) = try mixBatch(&x, source, flip, &draws)
        case .elem: (lambdas, boxes) = try mixElements(&x, source, flip, pairs: false, &draws)
        case .pair: (lambdas, boxes) = try mixElements(&x, source, flip, pairs: true, &draws)
        }
        // timm: y1·λ + y2·(1 − λ), with 1 − λ taken in double for the batch's Python float λ and in float32 for
        // the per-element float32 λ tensor.
        let mixed = try targets.mixed(partners: flip, weightOwn: lambdas.map { Float($0) },
                                      weightPartner: mode == .batch ? lambdas.map { Float(1 - $0) } : lambdas.map { 1 - Float($0) })
        return MixResult(images: x, targets: mixed, lambdas: lambdas, partners: flip, boxes: boxes)
    }

    /// `_mix_batch`: mixes x in place; returns each sample's λ and box.
    private func mixBatch<R: RandomDraws>(_ x: inout Tensor, _ src: Tensor, _ flip: [Int],
                                          _ draws: inout R) throws -> ([Double], [MixBox?]) {
        let n = flip.count, (h, w) = (x.shape[2], x.shape[3])
        var lam = 1.0, useCutmix = false
        if enabled && draws.uniform() < prob {
            if mixupAlpha > 0 && cutmixAlpha > 0 {
                useCutmix = draws.uniform() < switchProb
                lam = try drawLambda(&draws, useCutmix ? cutmixAlpha : mixupAlpha, "TimmMixup")
            } else if mixupAlpha > 0 {
                lam = try drawLambda(&draws, mixupAlpha, "TimmMixup")
            } else {
                useCutmix = true
                lam = try drawLambda(&draws, cutmixAlpha, "TimmMixup")
            }
        }
        var boxes = [MixBox?](repeating: nil, count: n)
        if lam != 1 {
            if useCutmix {
                let (box, l) = try bboxAndLambda(height: h, width: w, ratio: (1 - lam).squareRoot(), lambda: lam, draws: &draws)
                lam = l
                try x.withUnsafeMutableBufferPointer(as: Float.self) { d in
                    try src.withUnsafeBufferPointer(as: Float.self) { s in
                        for i in 0..<n { copyBox(from: s, sample: flip[i], to: d, sample: i, shape: src.shape, box: box) }
                    }
                }
                boxes = Array(repeating: box, count: n)
            } else {
                let a = Float(lam), b = Float(1 - lam)
                try blend(&x, src, flip, own: Array(repeating: a, count: n), partner: Array(repeating: b, count: n))
            }
        }
        return (Array(repeating: lam, count: n), boxes)
    }

    /// `_params_per_elem`: float32 λ per element (1 when not mixed) and the CutMix switch.
    private func paramsPerElement<R: RandomDraws>(_ count: Int, _ draws: inout R) throws -> ([Float], [Bool]) {
        var lam = [Float](repeating: 1, count: count), useCutmix = [Bool](repeating: false, count: count)
        guard enabled else { return (lam, useCutmix) }
        var mix: [Double]
        if mixupAlpha > 0 && cutmixAlpha > 0 {
            useCutmix = (0..<count).map { _ in draws.uniform() < switchProb }
            let cut = try (0..<count).map { _ in try drawLambda(&draws, cutmixAlpha, "TimmMixup") }
            let blend = try (0..<count).map { _ in try drawLambda(&draws, mixupAlpha, "TimmMixup") }
            mix = (0..<count).map { useCutmix[$0] ? cut[$0] : blend[$0] }
        } else if mixupAlpha > 0 {
            mix = try (0..<count).map { _ in try drawLambda(&draws, mixupAlpha, "TimmMixup") }
        } else {
            useCutmix = Array(repeating: true, count: count)
            mix = try (0..<count).map { _ in try drawLambda(&draws, cutmixAlpha, "TimmMixup") }
        }
        for i in 0..<count where draws.uniform() < prob { lam[i] = Float(mix[i]) }
        return (lam, useCutmix)
    }

    /// `_mix_elem` / `_mix_pair`: mixes x in place; returns each sample's λ and box.
    private func mixElements<R: RandomDraws>(_ x: inout Tensor, _ src: Tensor, _ flip: [Int], pairs: Bool,
                                             _ draws: inout R) throws -> ([Double], [MixBox?]) {
        let n = flip.count, (h, w) = (x.shape[2], x.shape[3])
        let count = pairs ? n / 2 : n
        let params = try paramsPerElement(count, &draws)
        var lam = params.0
        let useCutmix = params.1
        var boxes = [MixBox?](repeating: nil, count: n)
        var own = [Float](repeating: 1, count: n), partner = [Float](repeating: 0, count: n)
        for i in 0..<count where lam[i] != 1 {
            let j = n - 1 - i
            if useCutmix[i] {
                // numpy float32 arithmetic: sqrt(1 - lam) stays float32, and Int(H * ratio) multiplies in float32.
                let ratio = (1 - lam[i]).squareRoot()
                let (box, l) = try bboxAndLambda(height: h, width: w, ratio: Double(ratio), lambda: Double(lam[i]),
                                                 draws: &draws, float32Cut: true)
                lam[i] = Float(l)
                boxes[i] = box
                if pairs { boxes[j] = box }
            } else {
                own[i] = lam[i]; partner[i] = 1 - lam[i]
                if pairs { own[j] = lam[i]; partner[j] = 1 - lam[i] }
            }
        }
        try x.withUnsafeMutableBufferPointer(as: Float.self) { d in
            try src.withUnsafeBufferPointer(as: Float.self) { s in
                for i in 0..<n { if let b = boxes[i] { copyBox(from: s, sample: flip[i], to: d, sample: i, shape: src.shape, box: b) } }
            }
        }
        try blend(&x, src, flip, own: own, partner: partner, only: (0..<n).filter { boxes[$0] == nil && own[$0] != 1 })
        let perSample: [Float] = pairs ? lam + lam.reversed() : lam
        return (perSample.map { Double($0) }, boxes)
    }

    /// x[i] = own[i]·x[i] + partner[i]·src[flip[i]] for the listed samples (all when nil), in float.
    private func blend(_ x: inout Tensor, _ src: Tensor, _ flip: [Int], own: [Float], partner: [Float],
                       only: [Int]? = nil) throws {
        let n = flip.count, size = src.count / max(n, 1)
        try x.withUnsafeMutableBufferPointer(as: Float.self) { d in
            try src.withUnsafeBufferPointer(as: Float.self) { s in
                for i in only ?? Array(0..<n) {
                    let a = own[i], b = partner[i], o = i * size, p = flip[i] * size
                    for e in 0..<size { d[o + e] = s[o + e] * a + s[p + e] * b }
                }
            }
        }
    }
}
