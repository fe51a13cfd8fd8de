import VisionCore

/// Cutout (DeVries & Taylor, arXiv 1708.04552) as the reference uoguelph-mlrg/Cutout `util/cutout.py`: per
/// image, `holes` times: centre y = randint(H), then x = randint(W); the square rows y − L/2 ..< y + L/2 and
/// columns x − L/2 ..< x + L/2 (L/2 truncated, ends clipped, so a hole may lie partly outside) is zeroed in
/// every channel. Apply it to the normalised tensor, as the paper does, so a hole holds the dataset mean.
///
/// The reference multiplies by a 0/1 mask; here holes are set to 0, which differs only for NaN or infinite
/// pixels (they become 0 instead of NaN). Labels are unchanged (optionally smoothed).
public struct Cutout: Sendable {
    /// Side L of the square hole (CIFAR-10: 16, CIFAR-100: 8 in the paper).
    public let length: Int
    /// Holes per image (the reference's n_holes, default 1).
    public let holes: Int

    /// Errors: length < 1 or holes < 1.
    public init(length: Int, holes: Int = 1) throws {
        guard length >= 1, holes >= 1, holes <= 1 << 16 else {
            throw VisionError.invalidArgument("Cutout: length and holes must be >= 1 (holes at most 65536), got length \(length), holes \(holes)")
        }
        self.length = length
        self.holes = holes
    }

    /// The holes of one H x W image, drawing y then x for each.
    public func boxes<R: RandomDraws>(height h: Int, width w: Int, draws: inout R) -> [MixBox] {
        (0..<holes).map { _ in
            let y = draws.integer(0, h), x = draws.integer(0, w)
            let (t, b) = clippedSpan(center: y, lowHalf: length / 2, highHalf: length / 2, length: h)
            let (l, r) = clippedSpan(center: x, lowHalf: length / 2, highHalf: length / 2, length: w)
            return MixBox(top: t, bottom: b, left: l, right: r)
        }
    }

    /// Cuts holes in one float32 [C, H, W] image.
    public func apply<R: RandomDraws>(_ image: Tensor, draws: inout R) throws -> Tensor {
        guard image.dtype == .float32, image.rank == 3, image.shape[1] > 0, image.shape[2] > 0 else {
            throw VisionError.shapeMismatch("Cutout: expected a non-empty float32 [C, H, W] image, got \(image.dtype) \(image.shape)")
        }
        var x = try image.copyContiguous()
        let bs = boxes(height: image.shape[1], width: image.shape[2], draws: &draws)
        try x.withUnsafeMutableBufferPointer(as: Float.self) { p in
            for b in bs { zeroBox(p, sample: 0, shape: [1] + image.shape, box: b) }
        }
        return x
    }

    /// Cuts holes in every image of a float32 [N, C, H, W] batch (N >= 1), images in order. The targets are
    /// the labels as [N, K] rows (class indices one-hot, with `labelSmoothing` as `CutMix`); `boxes` holds each
    /// image's first hole.
    public func callAsFunction<R: RandomDraws>(_ images: Tensor, labels: Tensor, numClasses: Int,
                                               labelSmoothing: Double = 0, draws: inout R) throws -> MixResult {
        var x = try mixableBatch(images, rank: 4, minBatch: 1, "Cutout", layout: "[N, C, H, W]")
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        guard h > 0, w > 0 else { throw VisionError.shapeMismatch("Cutout: empty images \(x.shape)") }
        let targets = try SoftTargets(labels, batch: n, numClasses: numClasses, smoothing: labelSmoothing, "Cutout")
        var first = [MixBox?](repeating: nil, count: n)
        let shape = x.shape
        try x.withUnsafeMutableBufferPointer(as: Float.self) { p in
            for i in 0..<n {
                let bs = boxes(height: h, width: w, draws: &draws)
                first[i] = bs.first
                for b in bs { zeroBox(p, sample: i, shape: shape, box: b) }
            }
        }
        return MixResult(images: x, targets: try targets.tensor(), lambdas: Array(repeating: 1, count: n),
                         partners: Array(0..<n), boxes: first)
    }
}

/// Sets `box` of every channel of sample `s` of a contiguous [N, C, H, W] buffer to 0.
func zeroBox(_ p: UnsafeMutableBufferPointer<Float>, sample s: Int, shape: [Int], box: MixBox) {
    guard box.area > 0 else { return }
    let (c, h, w) = (shape[1], shape[2], shape[3])
    for ch in 0..<c {
        for y in box.top..<box.bottom {
            let o = ((s * c + ch) * h + y) * w
            for x in box.left..<box.right { p[o + x] = 0 }
        }
    }
}
