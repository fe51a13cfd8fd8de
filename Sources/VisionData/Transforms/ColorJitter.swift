#if canImport(Glibc)
import Glibc
#endif
import VisionCore

// torchvision's colour adjustments on float tensors (torchvision/transforms/_functional_tensor.py), in float32
// with the same operation order, so results agree with torchvision to rounding (the contrast mean is summed
// in double here, in float by torch). Images are float32 [C, H, W] with C = 1 or 3, values in [0, 1].

private func colorImage(_ x: Tensor, _ op: String) throws -> (Int, Int, [Float]) {
    let (c, h, w) = try imageShape(x, op)
    guard c == 1 || c == 3 else { throw VisionError.shapeMismatch("\(op): expected 1 or 3 channels, got \(x.shape)") }
    return (c, h * w, try x.toArray(Float.self))
}

private func checkFactor(_ f: Double, _ op: String) throws {
    guard f.isFinite, f >= 0 else { throw VisionError.invalidArgument("\(op): the factor must be finite and >= 0, got \(f)") }
}

/// (ratio · a + (1 − ratio) · b) clamped to [0, 1], torchvision's `_blend` for float images.
@inline(__always) private func blend(_ a: Float, _ b: Float, _ r: Float, _ rc: Float) -> Float {
    min(max(r * a + rc * b, 0), 1)
}

/// Luma 0.2989 R + 0.587 G + 0.114 B of a [3, H, W] image as [1, H, W] (a 1-channel image is returned as is).
public func rgbToGrayscale(_ x: Tensor) throws -> Tensor {
    let (c, plane, p) = try colorImage(x, "rgbToGrayscale")
    if c == 1 { return try x.copyContiguous() }
    return try Tensor(grayscale(p, plane), shape: [1, x.shape[1], x.shape[2]])
}

private func grayscale(_ p: [Float], _ plane: Int) -> [Float] {
    (0..<plane).map { k in Float(0.2989) * p[k] + Float(0.587) * p[plane + k] + Float(0.114) * p[2 * plane + k] }
}

/// Multiplies by `factor` and clamps to [0, 1]. Errors: a negative or non-finite factor, a bad image.
public func adjustBrightness(_ x: Tensor, factor: Double) throws -> Tensor {
    try checkFactor(factor, "adjustBrightness")
    let (_, _, p) = try colorImage(x, "adjustBrightness")
    let r = Float(factor), rc = Float(1 - factor)
    return try Tensor(p.map { blend($0, 0, r, rc) }, shape: x.shape)
}

/// Blends with the mean grey level of the image (of its luma for RGB).
public func adjustContrast(_ x: Tensor, factor: Double) throws -> Tensor {
    try checkFactor(factor, "adjustContrast")
    let (c, plane, p) = try colorImage(x, "adjustContrast")
    let grey = c == 3 ? grayscale(p, plane) : p
    let mean = Float(grey.reduce(0.0) { $0 + Double($1) } / Double(grey.count))
    let r = Float(factor), rc = Float(1 - factor)
    return try Tensor(p.map { blend($0, mean, r, rc) }, shape: x.shape)
}

/// Blends with the image's own luma (a 1-channel image is returned unchanged, as torchvision does).
public func adjustSaturation(_ x: Tensor, factor: Double) throws -> Tensor {
    try checkFactor(factor, "adjustSaturation")
    let (c, plane, p) = try colorImage(x, "adjustSaturation")
    if c == 1 { return try x.copyContiguous() }
    let grey = grayscale(p, plane)
    let r = Float(factor), rc = Float(1 - factor)
    return try Tensor((0..<p.count).map { blend(p[$0], grey[$0 % plane], r, rc) }, shape: x.shape)
}

/// Rotates the hue by `factor` turns (−0.5...0.5) through HSV (a 1-channel image is returned unchanged).
public func adjustHue(_ x: Tensor, factor: Double) throws -> Tensor {
    guard factor.isFinite, factor >= -0.5, factor <= 0.5 else {
        throw VisionError.invalidArgument("adjustHue: the factor must be in [-0.5, 0.5], got \(factor)")
    }
    let (c, plane, p) = try colorImage(x, "adjustHue")
    if c == 1 { return try x.copyContiguous() }
    var out = [Float](repeating: 0, count: p.count)
    let hf = Float(factor)
    for k in 0..<plane {
        let (r, g, b) = (p[k], p[plane + k], p[2 * plane + k])
        // _rgb2hsv
        let maxc = max(r, max(g, b)), minc = min(r, min(g, b))
        let eqc = maxc == minc
        let cr = maxc - minc
        let s = cr / (eqc ? 1 : maxc)
        let crDivisor = eqc ? 1 : cr
        let rc = (maxc - r) / crDivisor, gc = (maxc - g) / crDivisor, bc = (maxc - b) / crDivisor
        let hr: Float = maxc == r ? bc - gc : 0
        let hg: Float = maxc == g && maxc != r ? 2 + rc - bc : 0
        let hb: Float = maxc != g && maxc != r ? 4 + gc - rc : 0
        var h = fmodf(((hr + hg) + hb) / 6 + 1, 1)
        // (h + factor) % 1.0: torch.remainder, a − b·floor(a / b)
        h = h + hf
        h = h - (h / 1).rounded(.down)
        // _hsv2rgb
        let i6 = (h * 6).rounded(.down)
        let f = h * 6 - i6
        let v = maxc
        let pp = min(max(v * (1 - s), 0), 1)
        let q = min(max(v * (1 - s * f), 0), 1)
        let t = min(max(v * (1 - s * (1 - f)), 0), 1)
        // NaN or infinite pixels give a NaN hue; any sector then yields NaN channels, so pick 0 instead of trapping.
        let i = i6.isFinite ? ((Int(i6) % 6) + 6) % 6 : 0
        let rgb: (Float, Float, Float)
        switch i {
        case 0: rgb = (v, t, pp)
        case 1: rgb = (q, v, pp)
        case 2: rgb = (pp, v, t)
        case 3: rgb = (pp, q, v)
        case 4: rgb = (t, pp, v)
        default: rgb = (v, pp, q)
        }
        (out[k], out[plane + k], out[2 * plane + k]) = rgb
    }
    return try Tensor(out, shape: x.shape)
}

/// torchvision's ColorJitter: the four adjustments in a random order (a permutation of 4, torch.randperm),
/// each with a factor drawn uniformly from its range as float32(lo + (hi − lo)·u) (torch's `uniform_` on a
/// float32 tensor). A range equal to the identity (1, 1), or (0, 0) for hue, is off and draws nothing, as in
/// torchvision. Draws: the permutation, then brightness, contrast, saturation, hue factors (those that are on).
public struct ColorJitter: Transform {
    public let brightness: (Double, Double)?
    public let contrast: (Double, Double)?
    public let saturation: (Double, Double)?
    public let hue: (Double, Double)?

    /// torchvision's number form: brightness b gives (max(0, 1 − b), 1 + b), likewise contrast and saturation;
    /// hue h gives (−h, h) with h <= 0.5. Errors: negative values or hue above 0.5.
    public init(brightness: Double = 0, contrast: Double = 0, saturation: Double = 0, hue: Double = 0) throws {
        for (v, n) in [(brightness, "brightness"), (contrast, "contrast"), (saturation, "saturation"), (hue, "hue")] {
            guard v.isFinite, v >= 0 else { throw VisionError.invalidArgument("ColorJitter: \(n) must be finite and >= 0, got \(v)") }
        }
        guard hue <= 0.5 else { throw VisionError.invalidArgument("ColorJitter: hue must be in [0, 0.5], got \(hue)") }
        try self.init(brightnessRange: (max(1 - brightness, 0), 1 + brightness), contrastRange: (max(1 - contrast, 0), 1 + contrast),
                      saturationRange: (max(1 - saturation, 0), 1 + saturation), hueRange: (-hue, hue))
    }

    /// Explicit (low, high) ranges. Errors: low > high, negative factors, hue outside [−0.5, 0.5].
    public init(brightnessRange: (Double, Double), contrastRange: (Double, Double), saturationRange: (Double, Double),
                hueRange: (Double, Double)) throws {
        func check(_ r: (Double, Double), _ n: String, _ lo: Double, _ hi: Double, _ center: Double) throws -> (Double, Double)? {
            guard r.0.isFinite, r.1.isFinite, lo <= r.0, r.0 <= r.1, r.1 <= hi else {
                throw VisionError.invalidArgument("ColorJitter: \(n) range \(r) must satisfy \(lo) <= low <= high <= \(hi)")
            }
            return r.0 == center && r.1 == center ? nil : r
        }
        brightness = try check(brightnessRange, "brightness", 0, .greatestFiniteMagnitude, 1)
        contrast = try check(contrastRange, "contrast", 0, .greatestFiniteMagnitude, 1)
        saturation = try check(saturationRange, "saturation", 0, .greatestFiniteMagnitude, 1)
        hue = try check(hueRange, "hue", -0.5, 0.5, 0)
    }

    /// torchvision's `get_params`: the order and the factors (nil when that adjustment is off).
    public func parameters<R: RandomDraws>(draws: inout R) -> (order: [Int], factors: [Double?]) {
        let order = draws.permutation(4)
        let factors = [brightness, contrast, saturation, hue].map { r in
            r.map { Double(Float($0.0 + ($0.1 - $0.0) * draws.uniform())) }
        }
        return (order, factors)
    }

    public func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example {
        _ = try colorImage(example.input, "ColorJitter")
        let (order, factors) = parameters(draws: &draws)
        guard order.sorted() == [0, 1, 2, 3] else {
            throw VisionError.invalidArgument("ColorJitter: the draws returned \(order), not a permutation of 0..<4")
        }
        var x = example.input
        for k in order {
            guard let f = factors[k] else { continue }
            switch k {
            case 0: x = try adjustBrightness(x, factor: f)
            case 1: x = try adjustContrast(x, factor: f)
            case 2: x = try adjustSaturation(x, factor: f)
            default: x = try adjustHue(x, factor: f)
            }
        }
        var e = example
        e.input = x
        return e
    }
}
