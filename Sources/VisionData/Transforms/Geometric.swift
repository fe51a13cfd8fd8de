import VisionCore

/// torchvision's RandomHorizontalFlip: one uniform u; the image is mirrored left-right when u < p.
public struct RandomHorizontalFlip: Transform {
    public let p: Double

    /// Errors: p outside [0, 1].
    public init(p: Double = 0.5) throws {
        try checkUnitInterval(p, "p", "RandomHorizontalFlip")
        self.p = p
    }

    public func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example {
        _ = try imageShape(example.input, "RandomHorizontalFlip")
        guard draws.uniform() < p else { return example }
        var e = example
        e.input = try horizontalFlip(example.input)
        e.flipped.toggle()
        return e
    }
}

/// The image mirrored left-right (torchvision's `hflip`) of a float32 [C, H, W] image.
public func horizontalFlip(_ x: Tensor) throws -> Tensor {
    let (c, h, w) = try imageShape(x, "horizontalFlip")
    let src = try x.toArray(Float.self)
    var out = [Float](repeating: 0, count: src.count)
    for row in 0..<(c * h) {
        let o = row * w
        for k in 0..<w { out[o + k] = src[o + w - 1 - k] }
    }
    return try Tensor(out, shape: [c, h, w])
}

/// torchvision's Resize: to a fixed height x width, or with `shorter` the smaller side becomes that length and
/// the other Int(shorter · long / short) (truncation, as torchvision). Resampling is `resizeImage`'s (stb).
public struct Resize: Transform {
    public enum Size: Sendable { case exact(height: Int, width: Int), shorter(Int) }
    public let size: Size
    public let filter: ResizeFilter

    /// Errors: non-positive sizes or sizes above `ImageLimits.maxSide`.
    public init(_ size: Size, filter: ResizeFilter = .bilinear) throws {
        let sides: [Int]
        switch size {
        case .exact(let h, let w): sides = [h, w]
        case .shorter(let s): sides = [s]
        }
        guard sides.allSatisfy({ $0 > 0 && $0 <= ImageLimits.maxSide }) else {
            throw VisionError.invalidArgument("Resize: sizes must be in 1...\(ImageLimits.maxSide), got \(size)")
        }
        self.size = size
        self.filter = filter
    }

    /// The output size for an H x W input (torchvision's `_compute_resized_output_size` without max_size).
    public func outputSize(height h: Int, width w: Int) -> (Int, Int) {
        switch size {
        case .exact(let oh, let ow): return (oh, ow)
        case .shorter(let s):
            let (short, long) = w <= h ? (w, h) : (h, w)
            guard short > 0 else { return (h, w) }
            // Capped so that an absurd aspect ratio gives a size resizeImage refuses, not an Int overflow.
            let newLong = Int(min(Double(s) * Double(long) / Double(short), 1e15))
            return w <= h ? (newLong, s) : (s, newLong)
        }
    }

    public func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example {
        let (_, h, w) = try imageShape(example.input, "Resize")
        let (oh, ow) = outputSize(height: h, width: w)
        var e = example
        if (oh, ow) != (h, w) { e.input = try resizeImage(example.input, height: oh, width: ow, filter: filter) }
        return e
    }
}

/// torchvision's CenterCrop: top = round((H − h) / 2), left = round((W − w) / 2) (half to even); an image
/// smaller than the crop is first zero-padded by (w − W)/2 on the left and (w − W + 1)/2 on the right (same for
/// rows), as torchvision pads.
public struct CenterCrop: Transform {
    public let height: Int, width: Int

    public init(height: Int, width: Int) throws {
        guard height > 0, width > 0, height <= ImageLimits.maxSide, width <= ImageLimits.maxSide else {
            throw VisionError.invalidArgument("CenterCrop: size \(height) x \(width) must be positive and at most \(ImageLimits.maxSide)")
        }
        self.height = height; self.width = width
    }

    public init(size: Int) throws { try self.init(height: size, width: size) }

    public func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example {
        var e = example
        e.input = try centerCrop(example.input, height: height, width: width)
        return e
    }
}

/// The centre `height` x `width` crop of a float32 [C, H, W] image (torchvision's `center_crop`).
public func centerCrop(_ x: Tensor, height ch: Int, width cw: Int) throws -> Tensor {
    var (_, h, w) = try imageShape(x, "centerCrop")
    guard ch > 0, cw > 0, ch <= ImageLimits.maxSide, cw <= ImageLimits.maxSide else {
        throw VisionError.invalidArgument("centerCrop: size \(ch) x \(cw) must be positive and at most \(ImageLimits.maxSide)")
    }
    var img = x
    if cw > w || ch > h {
        let left = cw > w ? (cw - w) / 2 : 0, right = cw > w ? (cw - w + 1) / 2 : 0
        let top = ch > h ? (ch - h) / 2 : 0, bottom = ch > h ? (ch - h + 1) / 2 : 0
        img = try pad(x, pads: [left, right, top, bottom])
        (h, w) = (img.shape[1], img.shape[2])
        if h == ch && w == cw { return img }
    }
    let top = Int((Double(h - ch) / 2).rounded(.toNearestOrEven)), left = Int((Double(w - cw) / 2).rounded(.toNearestOrEven))
    return try img.slice(axis: 1, start: top, end: top + ch).slice(axis: 2, start: left, end: left + cw).copyContiguous()
}

/// torchvision's Normalize: (x − mean[c]) / std[c] per channel, in float32.
public struct Normalize: Transform {
    public let mean: [Float], std: [Float]

    /// ImageNet's mean and std (timm's IMAGENET_DEFAULT_MEAN / STD).
    public static let imagenet = (mean: [Float(0.485), 0.456, 0.406], std: [Float(0.229), 0.224, 0.225])

    /// Errors: mean and std of different lengths or empty, a std that is not positive and finite.
    public init(mean: [Float], std: [Float]) throws {
        guard !mean.isEmpty, mean.count == std.count, std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy({ $0.isFinite }) else {
            throw VisionError.invalidArgument("Normalize: mean and std need the same non-zero count, finite values and std > 0; got \(mean), \(std)")
        }
        self.mean = mean; self.std = std
    }

    public func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example {
        let (c, h, w) = try imageShape(example.input, "Normalize")
        guard mean.count == c || mean.count == 1 else {
            throw VisionError.shapeMismatch("Normalize: \(mean.count) means for an image of \(c) channels")
        }
        var x = try example.input.copyContiguous()
        try x.withUnsafeMutableBufferPointer(as: Float.self) { p in
            for ch in 0..<c {
                let m = mean[mean.count == 1 ? 0 : ch], s = std[std.count == 1 ? 0 : ch]
                for k in (ch * h * w)..<((ch + 1) * h * w) { p[k] = (p[k] - m) / s }
            }
        }
        var e = example
        e.input = x
        return e
    }
}
