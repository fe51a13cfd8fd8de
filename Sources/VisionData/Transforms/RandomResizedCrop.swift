#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// The region a crop took from its source image: rows i..<i+h, columns j..<j+w of an imageHeight x imageWidth
/// image (torchvision's `(i, j, h, w)`).
public struct CropBox: Equatable, Sendable, CustomStringConvertible {
    public var i: Int, j: Int, h: Int, w: Int
    public var imageHeight: Int, imageWidth: Int

    public init(i: Int, j: Int, h: Int, w: Int, imageHeight: Int, imageWidth: Int) {
        self.i = i; self.j = j; self.h = h; self.w = w
        self.imageHeight = imageHeight; self.imageWidth = imageWidth
    }

    /// ReLabel's normalised coordinates (i/H, j/W, h/H, w/W), in double as Python computes them.
    public var normalized: (Double, Double, Double, Double) {
        let hh = Double(imageHeight), ww = Double(imageWidth)
        return (Double(i) / hh, Double(j) / ww, Double(h) / hh, Double(w) / ww)
    }

    public var description: String { "(i \(i), j \(j), h \(h), w \(w)) of \(imageHeight) x \(imageWidth)" }
}

/// torchvision's RandomResizedCrop: a random area fraction and aspect ratio, cropped and resized to `size`;
/// the crop box is kept in the example (`cropBox`) for ReLabel's LabelPooling.
///
/// `parameters` is `RandomResizedCrop.get_params` decision for decision. Each try draws two uniforms u1, u2:
/// scale s = float32(s0 + (s1 − s0)·u1) (torch's `empty(1).uniform_(s0, s1)` on a float32 tensor), aspect =
/// expf(float32(l0 + (l1 − l0)·u2)) with l = logf(float32(ratio)) (torch.log of a float32 tensor);
/// w = round(sqrt(area·s·aspect)), h = round(sqrt(area·s / aspect)) (Python's round: half to even); if
/// 0 < w <= W and 0 < h <= H, i = randint(0, H − h + 1), j = randint(0, W − w + 1). After 10 failed tries: the
/// centre crop, clamped to the ratio range. The resize is `resizeImage` (stb's antialiased triangle filter for
/// bilinear, like PIL's and torchvision's antialias=True resize, not bit-identical to them).
public struct RandomResizedCrop: Transform {
    public let height: Int, width: Int
    public let scale: (Double, Double)
    public let ratio: (Double, Double)
    public let filter: ResizeFilter

    /// Errors: a non-positive size, scale or ratio bounds that are not positive finite with low <= high
    /// (torchvision only warns about reversed ranges; they are refused here).
    public init(height: Int, width: Int, scale: (Double, Double) = (0.08, 1), ratio: (Double, Double) = (3.0 / 4, 4.0 / 3),
                filter: ResizeFilter = .bilinear) throws {
        guard height > 0, width > 0, height <= ImageLimits.maxSide, width <= ImageLimits.maxSide else {
            throw VisionError.invalidArgument("RandomResizedCrop: size \(height) x \(width) must be positive and at most \(ImageLimits.maxSide)")
        }
        guard scale.0.isFinite, scale.1.isFinite, scale.0 > 0, scale.0 <= scale.1,
              ratio.0.isFinite, ratio.1.isFinite, ratio.0 > 0, ratio.0 <= ratio.1 else {
            throw VisionError.invalidArgument("RandomResizedCrop: scale \(scale) and ratio \(ratio) must be positive, finite (low, high) pairs with low <= high")
        }
        self.height = height; self.width = width
        self.scale = scale; self.ratio = ratio
        self.filter = filter
    }

    public init(size: Int, scale: (Double, Double) = (0.08, 1), ratio: (Double, Double) = (3.0 / 4, 4.0 / 3)) throws {
        try self.init(height: size, width: size, scale: scale, ratio: ratio)
    }

    /// torchvision's `get_params` for an H x W image (see the type's documentation for the draws).
    public static func parameters<R: RandomDraws>(height: Int, width: Int, scale: (Double, Double),
                                                  ratio: (Double, Double), draws: inout R) -> CropBox {
        let area = Double(height) * Double(width)
        let logLo = Double(logf(Float(ratio.0))), logHi = Double(logf(Float(ratio.1)))
        for _ in 0..<10 {
            let s = Double(Float(scale.0 + (scale.1 - scale.0) * draws.uniform()))
            let targetArea = area * s
            let aspect = Double(expf(Float(logLo + (logHi - logLo) * draws.uniform())))
            // Compared before the conversion to Int, so absurd scales or ratios (inf, NaN) fail the try, not trap.
            let wd = (targetArea * aspect).squareRoot().rounded(.toNearestOrEven)
            let hd = (targetArea / aspect).squareRoot().rounded(.toNearestOrEven)
            if wd > 0 && wd <= Double(width) && hd > 0 && hd <= Double(height) {
                let w = Int(wd), h = Int(hd)
                let i = draws.integer(0, height - h + 1), j = draws.integer(0, width - w + 1)
                return CropBox(i: i, j: j, h: h, w: w, imageHeight: height, imageWidth: width)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.0 {
            h = Int((Double(w) / ratio.0).rounded(.toNearestOrEven))
        } else if inRatio > ratio.1 {
            w = Int((Double(h) * ratio.1).rounded(.toNearestOrEven))
        }
        return CropBox(i: (height - h) / 2, j: (width - w) / 2, h: h, w: w, imageHeight: height, imageWidth: width)
    }

    public func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example {
        let (_, h, w) = try imageShape(example.input, "RandomResizedCrop")
        let box = RandomResizedCrop.parameters(height: h, width: w, scale: scale, ratio: ratio, draws: &draws)
        guard box.i >= 0, box.j >= 0, box.h > 0, box.w > 0, box.i <= h - box.h, box.j <= w - box.w else {
            throw VisionError.invalidArgument("RandomResizedCrop: the draws gave the crop \(box), outside the image")
        }
        var e = example
        e.input = try resizedCrop(example.input, box, height: height, width: width, filter: filter)
        e.cropBox = box
        return e
    }
}

/// Rows i..<i+h, columns j..<j+w of a [C, H, W] image, resized to height x width (the box lies inside).
func resizedCrop(_ x: Tensor, _ b: CropBox, height: Int, width: Int, filter: ResizeFilter) throws -> Tensor {
    let crop = try x.slice(axis: 1, start: b.i, end: b.i + b.h).slice(axis: 2, start: b.j, end: b.j + b.w)
    if b.h == height && b.w == width { return try crop.copyContiguous() }
    return try resizeImage(crop.contiguous(), height: height, width: width, filter: filter)
}
