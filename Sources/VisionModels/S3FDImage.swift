#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (the layout of `np.array(pil_image)`): the working
/// type of the S3FD training augmentations, which reproduce PIL's and OpenCV's integer arithmetic on it.
public struct S3FDImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// height * width * 3 bytes, R G B per pixel.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width >= 1, height >= 1, width <= ImageLimits.maxSide, height <= ImageLimits.maxSide,
              width * height <= ImageLimits.maxPixels else {
            throw VisionError.invalidArgument("S3FD image: size \(width) x \(height) must be at least 1 x 1 and within \(ImageLimits.maxSide) per side and \(ImageLimits.maxPixels) pixels")
        }
        guard pixels.count == width * height * 3 else {
            throw VisionError.shapeMismatch("S3FD image: \(width) x \(height) RGB needs \(width * height * 3) bytes, got \(pixels.count)")
        }
        (self.width, self.height, self.pixels) = (width, height, pixels)
    }

    /// A uint8 [H, W, 3] tensor (as `loadImage` returns); a gray [H, W] or [H, W, 1] image is replicated to RGB, as
    /// the official dataset converts mode 'L' images.
    public init(_ tensor: Tensor) throws {
        guard tensor.dtype == .uint8 else {
            throw VisionError.dtypeMismatch("S3FD image: expected a uint8 [H, W, 3] image, got \(tensor.dtype)")
        }
        guard (tensor.rank == 3 && (tensor.shape[2] == 3 || tensor.shape[2] == 1)) || tensor.rank == 2 else {
            throw VisionError.shapeMismatch("S3FD image: expected [H, W, 3] (or gray [H, W]), got \(tensor.shape)")
        }
        let h = tensor.shape[0], w = tensor.shape[1]
        guard h >= 1, w >= 1 else { throw VisionError.invalidArgument("S3FD image: zero-sized image \(tensor.shape)") }
        let raw = try tensor.contiguous().toArray(UInt8.self)
        if tensor.rank == 3 && tensor.shape[2] == 3 {
            try self.init(width: w, height: h, pixels: raw)
        } else {
            var p = [UInt8](repeating: 0, count: h * w * 3)
            for i in 0..<(h * w) { p[3 * i] = raw[i]; p[3 * i + 1] = raw[i]; p[3 * i + 2] = raw[i] }
            try self.init(width: w, height: h, pixels: p)
        }
    }

    /// The image as a uint8 [H, W, 3] tensor.
    public func tensor() throws -> Tensor { try Tensor(pixels, shape: [height, width, 3]) }

    /// Rows y0..<y1 and columns x0..<x1 (already within the image).
    func crop(x0: Int, y0: Int, x1: Int, y1: Int) throws -> S3FDImage {
        let w = x1 - x0, h = y1 - y0
        var out = [UInt8](repeating: 0, count: max(w, 0) * max(h, 0) * 3)
        if w > 0 && h > 0 {
            for y in 0..<h {
                let s = ((y0 + y) * width + x0) * 3
                out.withUnsafeMutableBufferPointer { o in
                    pixels.withUnsafeBufferPointer { p in
                        for i in 0..<(w * 3) { o[y * w * 3 + i] = p[s + i] }
                    }
                }
            }
        }
        return try S3FDImage(width: w, height: h, pixels: out)
    }

    /// Mirrored left to right.
    public func flippedHorizontally() -> S3FDImage {
        var out = pixels
        for y in 0..<height {
            for x in 0..<width {
                let s = (y * width + x) * 3, d = (y * width + (width - 1 - x)) * 3
                out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2]
            }
        }
        // Size and byte count are unchanged, so the checked initializer cannot fail.
        return (try? S3FDImage(width: width, height: height, pixels: out)) ?? self
    }
}

// MARK: - PIL's resampling (Image.resize), bit-exact for 8-bit RGB

/// PIL's resampling filters, in the order of the official `preprocess` list [BILINEAR, HAMMING, NEAREST, BICUBIC,
/// LANCZOS].
public enum PILResample: Int, Sendable, CaseIterable {
    case bilinear = 0, hamming, nearest, bicubic, lanczos

    /// (filter, support) as PIL's Resample.c.
    fileprivate var kernel: ((Double) -> Double, Double) {
        switch self {
        case .bilinear: return ({ x in let a = abs(x); return a < 1 ? 1 - a : 0 }, 1)
        case .hamming:
            return ({ x in
                let a = abs(x)
                if a == 0 { return 1 }
                if a >= 1 { return 0 }
                let t = a * Double.pi
                // 0.54f and 0.46f are float constants in PIL: their float values, promoted to double.
                return sin(t) / t * (Double(Float(0.54)) + Double(Float(0.46)) * cos(t))
            }, 1)
        case .bicubic:
            return ({ x in
                let a = -0.5, v = abs(x)
                if v < 1 { return ((a + 2) * v - (a + 3)) * v * v + 1 }
                if v < 2 { return (((v - 5) * v + 8) * v - 4) * a }
                return 0
            }, 2)
        case .lanczos:
            func sinc(_ x: Double) -> Double { x == 0 ? 1 : sin(x * Double.pi) / (x * Double.pi) }
            return ({ x in (-3 <= x && x < 3) ? sinc(x) * sinc(x / 3) : 0 }, 3)
        case .nearest: return ({ _ in 0 }, 0)
        }
    }
}

/// `Image.resize((width, height), resample)` of Pillow (13) for an RGB image: the separable convolution of
/// Resample.c (22-bit fixed-point coefficients, uint8 between the passes, Pillow 13's choice of which pass runs
/// first) or, for NEAREST, the affine nearest-neighbour scan of Geometry.c. The same size returns a copy.
public func pilResize(_ image: S3FDImage, width: Int, height: Int, resample: PILResample) throws -> S3FDImage {
    guard width >= 1, height >= 1, width <= ImageLimits.maxSide, height <= ImageLimits.maxSide,
          width * height <= ImageLimits.maxPixels else {
        throw VisionError.invalidArgument("PIL resize: output size \(width) x \(height) must be at least 1 x 1 and within the image limits")
    }
    if width == image.width && height == image.height { return image }
    if resample == .nearest { return try pilResizeNearest(image, width: width, height: height) }
    let precision = 22
    // Coefficients as precompute_coeffs + normalize_coeffs_8bpc: per output index (first input index, taps).
    func coefficients(_ inSize: Int, _ outSize: Int) -> (bounds: [(Int, Int)], k: [[Int]]) {
        let (filter, baseSupport) = resample.kernel
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterscale = max(scale, 1)
        let support = baseSupport * filterscale
        var bounds: [(Int, Int)] = [], kk: [[Int]] = []
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1 / filterscale
            // C's (int) conversion truncates toward zero.
            let xmin = max(Int((center - support + 0.5).rounded(.towardZero)), 0)
            let xmax = min(Int((center + support + 0.5).rounded(.towardZero)), inSize) - xmin
            var w = [Double](repeating: 0, count: max(xmax, 0)), ww = 0.0
            for x in 0..<max(xmax, 0) {
                w[x] = filter((Double(x + xmin) - center + 0.5) * ss)
                ww += w[x]
            }
            if ww != 0 { for x in 0..<w.count { w[x] /= ww } }
            let one = Double(1 << precision)
            kk.append(w.map { v in Int((v < 0 ? -0.5 + v * one : 0.5 + v * one).rounded(.towardZero)) })
            bounds.append((xmin, max(xmax, 0)))
        }
        return (bounds, kk)
    }
    @inline(__always) func clip8(_ ss: Int) -> UInt8 { UInt8(clamping: ss >> precision) }
    let half = 1 << (precision - 1)
    // One horizontal pass: rows rowOffset..<rowOffset + rows of `src` (width srcW) to `width` columns.
    func horizontal(_ src: [UInt8], _ srcW: Int, _ rowOffset: Int, _ rows: Int, _ c: (bounds: [(Int, Int)], k: [[Int]])) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: rows * width * 3)
        for yy in 0..<rows {
            let row = (yy + rowOffset) * srcW * 3
            for xx in 0..<width {
                let (xmin, n) = c.bounds[xx], k = c.k[xx]
                var s0 = half, s1 = half, s2 = half
                for x in 0..<n {
                    let p = row + (x + xmin) * 3
                    s0 += Int(src[p]) * k[x]; s1 += Int(src[p + 1]) * k[x]; s2 += Int(src[p + 2]) * k[x]
                }
                let d = (yy * width + xx) * 3
                out[d] = clip8(s0); out[d + 1] = clip8(s1); out[d + 2] = clip8(s2)
            }
        }
        return out
    }
    // One vertical pass over all columns of `src` (width srcW), source rows shifted by `rowShift`.
    func vertical(_ src: [UInt8], _ srcW: Int, _ rowShift: Int, _ c: (bounds: [(Int, Int)], k: [[Int]])) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: height * srcW * 3)
        for yy in 0..<height {
            let (ymin, n) = c.bounds[yy], k = c.k[yy]
            for xx in 0..<srcW {
                var s0 = half, s1 = half, s2 = half
                for y in 0..<n {
                    let p = ((y + ymin - rowShift) * srcW + xx) * 3
                    s0 += Int(src[p]) * k[y]; s1 += Int(src[p + 1]) * k[y]; s2 += Int(src[p + 2]) * k[y]
                }
                let d = (yy * srcW + xx) * 3
                out[d] = clip8(s0); out[d + 1] = clip8(s1); out[d + 2] = clip8(s2)
            }
        }
        return out
    }
    let needH = width != image.width, needV = height != image.height
    let vc = coefficients(image.height, height), hc = coefficients(image.width, width)
    // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the
    // width (earlier Pillow always went horizontal first); the order changes the rounding between the passes.
    let dy = image.height - height, dx = image.width - width
    let horizontalFirst = !(dy > 0 && dy > dx * 2)
    var px = image.pixels
    if horizontalFirst {
        // The horizontal pass covers only the rows the vertical pass reads.
        let first = vc.bounds[0].0, last = vc.bounds[height - 1].0 + vc.bounds[height - 1].1
        if needH { px = horizontal(px, image.width, first, last - first, hc) }
        if needV { px = vertical(px, needH ? width : image.width, needH ? first : 0, vc) }
    } else {
        if needV { px = vertical(px, image.width, 0, vc) }
        if needH { px = horizontal(px, image.width, 0, height, hc) }
    }
    return try S3FDImage(width: width, height: height, pixels: px)
}

/// Pillow's NEAREST resize: ImagingScaleAffine, source position accumulated from scale / 2 by steps of scale.
private func pilResizeNearest(_ image: S3FDImage, width: Int, height: Int) throws -> S3FDImage {
    func table(_ inSize: Int, _ outSize: Int) -> [Int] {
        let a = Double(Float(inSize)) / Double(outSize)
        var o = a * 0.5, t: [Int] = []
        for _ in 0..<outSize {
            t.append(min(max(o < 0 ? -1 : Int(o), 0), inSize - 1))
            o += a
        }
        return t
    }
    let xs = table(image.width, width), ys = table(image.height, height)
    var out = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let s = (ys[y] * image.width + xs[x]) * 3, d = (y * width + x) * 3
            out[d] = image.pixels[s]; out[d + 1] = image.pixels[s + 1]; out[d + 2] = image.pixels[s + 2]
        }
    }
    return try S3FDImage(width: width, height: height, pixels: out)
}

// MARK: - OpenCV's cv2.resize(img, None, fx=r, fy=r, interpolation)

/// The OpenCV interpolations of the anchor-sampling list [INTER_LINEAR, INTER_CUBIC, INTER_AREA, INTER_NEAREST,
/// INTER_LANCZOS4].
public enum CVInterpolation: Int, Sendable, CaseIterable {
    case linear = 0, cubic, area, nearest, lanczos4
}

/// cv2.resize with fx = fy = `ratio` on an 8-bit RGB image, following OpenCV's generic C++ path (resize.cpp):
/// output size round(side * ratio) (half to even), source positions from 1 / ratio, 11-bit fixed-point
/// coefficients, clamped borders; INTER_AREA averages for shrinking and uses its bilinear variant for enlarging.
/// Bit-exact with OpenCV's own implementation (cv2.ipp.setUseIPP(False)); the IPP back end that the opencv-python
/// wheels enable by default computes INTER_CUBIC differently and differs by at most 1 level on some values.
public func cvResize(_ image: S3FDImage, ratio: Double, interpolation: CVInterpolation) throws -> S3FDImage {
    guard ratio.isFinite, ratio > 0 else { throw VisionError.invalidArgument("cv resize: ratio must be positive and finite, got \(ratio)") }
    let dwD = (Double(image.width) * ratio).rounded(.toNearestOrEven), dhD = (Double(image.height) * ratio).rounded(.toNearestOrEven)
    guard dwD >= 1, dhD >= 1, dwD <= Double(ImageLimits.maxSide), dhD <= Double(ImageLimits.maxSide),
          dwD * dhD <= Double(ImageLimits.maxPixels) else {
        throw VisionError.invalidArgument("cv resize: \(image.width) x \(image.height) at ratio \(ratio) gives \(dwD) x \(dhD); it must be at least 1 x 1 and within the image limits")
    }
    let dw = Int(dwD), dh = Int(dhD)
    if dw == image.width && dh == image.height { return image }
    let sw = image.width, sh = image.height, src = image.pixels
    let scale = 1 / ratio
    if interpolation == .nearest {
        let xs = (0..<dw).map { min(Int(floor(Double($0) * scale)), sw - 1) }
        let ys = (0..<dh).map { min(Int(floor(Double($0) * scale)), sh - 1) }
        var out = [UInt8](repeating: 0, count: dw * dh * 3)
        for y in 0..<dh {
            for x in 0..<dw {
                let s = (ys[y] * sw + xs[x]) * 3, d = (y * dw + x) * 3
                out[d] = src[s]; out[d + 1] = src[s + 1]; out[d + 2] = src[s + 2]
            }
        }
        return try S3FDImage(width: dw, height: dh, pixels: out)
    }
    var mode = interpolation
    let iscale = Int(scale.rounded(.toNearestOrEven))
    let isAreaFast = abs(scale - Double(iscale)) < Double.ulpOfOne
    if mode == .linear && isAreaFast && iscale == 2 { mode = .area }
    if mode == .area && scale >= 1 {
        return isAreaFast ? try cvResizeAreaFast(image, dw, dh, iscale) : try cvResizeArea(image, dw, dh, scale)
    }

    let ksize = mode == .cubic ? 4 : mode == .lanczos4 ? 8 : 2, ksize2 = ksize / 2
    let areaMode = mode == .area
    func coefficients(_ fx: Float) -> [Float] {
        switch mode {
        case .cubic:
            let a: Float = -0.75
            var c = [Float](repeating: 0, count: 4)
            c[0] = ((a * (fx + 1) - 5 * a) * (fx + 1) + 8 * a) * (fx + 1) - 4 * a
            c[1] = ((a + 2) * fx - (a + 3)) * fx * fx + 1
            c[2] = ((a + 2) * (1 - fx) - (a + 3)) * (1 - fx) * (1 - fx) + 1
            c[3] = 1 - c[0] - c[1] - c[2]
            return c
        case .lanczos4:
            let s45 = 0.70710678118654752440084436210485
            let cs: [(Double, Double)] = [(1, 0), (-s45, -s45), (0, 1), (s45, -s45), (-1, 0), (s45, s45), (0, -1), (-s45, s45)]
            var c = [Float](repeating: 0, count: 8), sum: Float = 0
            let y0 = -Double(fx + 3) * Double.pi * 0.25, s0 = sin(y0), c0 = cos(y0)
            for i in 0..<8 {
                let y0i = fx + 3 - Float(i)
                if abs(y0i) >= 1e-6 {
                    let y = -Double(y0i) * Double.pi * 0.25
                    c[i] = Float((cs[i].0 * s0 + cs[i].1 * c0) / (y * y))
                } else {
                    c[i] = 1e30
                }
                sum += c[i]
            }
            sum = 1 / sum
            for i in 0..<8 { c[i] *= sum }
            return c
        default: return [1 - fx, fx]
        }
    }
    // saturate_cast<short>(c * 2048): rounded half to even.
    func fixed(_ c: [Float]) -> [Int] { c.map { Int(Int16(clamping: Int(($0 * 2048).rounded(.toNearestOrEven)))) } }
    // Columns are clamped at the borders (linear / area: weight moved onto the edge pixel); rows keep their raw
    // position and weights, the rows themselves being clamped when read (as resizeGeneric_).
    func axis(_ dsize: Int, _ ssize: Int, clampEdges: Bool) -> (ofs: [Int], coef: [[Int]], xmin: Int, xmax: Int) {
        var ofs: [Int] = [], coef: [[Int]] = [], xmin = 0, xmax = dsize
        for d in 0..<dsize {
            var s: Int, f: Float
            if !areaMode {
                f = Float((Double(d) + 0.5) * scale - 0.5)
                s = Int(floor(f)); f -= Float(s)
            } else {
                s = Int(floor(Double(d) * scale))
                f = Float(Double(d + 1) - Double(s + 1) * ratio)
                f = f <= 0 ? 0 : f - floor(f)
            }
            if clampEdges && s < ksize2 - 1 {
                xmin = d + 1
                if s < 0 && (mode == .linear || mode == .area) { f = 0; s = 0 }
            }
            if clampEdges && s + ksize2 >= ssize {
                xmax = min(xmax, d)
                if s >= ssize - 1 && (mode == .linear || mode == .area) { f = 0; s = ssize - 1 }
            }
            ofs.append(s); coef.append(fixed(coefficients(f)))
        }
        return (ofs, coef, xmin, xmax)
    }
    let hx = axis(dw, sw, clampEdges: true), vy = axis(dh, sh, clampEdges: false)
    // Horizontal pass of one source row into int sums (weights sum to 2048).
    func hresize(_ sy: Int) -> [Int] {
        var d = [Int](repeating: 0, count: dw * 3)
        let row = sy * sw * 3
        for dx in 0..<dw {
            let sx = hx.ofs[dx], a = hx.coef[dx]
            for c in 0..<3 {
                var v = 0
                if ksize == 2 {
                    v = dx < hx.xmax ? Int(src[row + sx * 3 + c]) * a[0] + Int(src[row + min(sx + 1, sw - 1) * 3 + c]) * a[1]
                        : Int(src[row + sx * 3 + c]) * 2048
                } else {
                    for k in 0..<ksize {
                        let j = min(max(sx - (ksize2 - 1) + k, 0), sw - 1)
                        v += Int(src[row + j * 3 + c]) * a[k]
                    }
                }
                d[dx * 3 + c] = v
            }
        }
        return d
    }
    var cache: [Int: [Int]] = [:]
    var out = [UInt8](repeating: 0, count: dw * dh * 3)
    let width = dw * 3
    for dy in 0..<dh {
        let sy0 = vy.ofs[dy], b = vy.coef[dy]
        var rows: [[Int]] = []
        for k in 0..<ksize {
            let sy = min(max(sy0 - ksize2 + 1 + k, 0), sh - 1)
            if let r = cache[sy] { rows.append(r) } else { let r = hresize(sy); cache[sy] = r; rows.append(r) }
        }
        if cache.count > 3 * ksize { cache = cache.filter { $0.key >= sy0 - ksize } }
        for x in 0..<width {
            var v: Int
            if ksize == 2 {
                // OpenCV's vertical linear kernel for 8-bit (VResizeLinearVec_32s8u, which its results follow on
                // every value): v_mul_hi of (S >> 4) packed to int16, saturating add, then (v + 2) >> 2.
                let p0 = (Int(Int16(clamping: rows[0][x] >> 4)) * b[0]) >> 16
                let p1 = (Int(Int16(clamping: rows[1][x] >> 4)) * b[1]) >> 16
                v = (Int(Int16(clamping: p0 + p1)) + 2) >> 2
            } else {
                // FixedPtCast<int, uchar, 22>: round half up.
                var acc = 0
                for k in 0..<ksize { acc += rows[k][x] * b[k] }
                v = (acc + (1 << 21)) >> 22
            }
            out[dy * width + x] = UInt8(clamping: v)
        }
    }
    return try S3FDImage(width: dw, height: dh, pixels: out)
}

/// INTER_AREA for shrinking (resizeArea_): each output pixel is the area-weighted mean of the source pixels it
/// covers, accumulated in float and rounded half to even.
private func cvResizeArea(_ image: S3FDImage, _ dw: Int, _ dh: Int, _ scale: Double) throws -> S3FDImage {
    struct Tap { var d: Int; var s: Int; var alpha: Float }
    func table(_ ssize: Int, _ dsize: Int) -> [Tap] {
        var tab: [Tap] = []
        for dx in 0..<dsize {
            let fsx1 = Double(dx) * scale, fsx2 = fsx1 + scale
            let cellWidth = min(scale, Double(ssize) - fsx1)
            var sx1 = Int(ceil(fsx1)), sx2 = Int(floor(fsx2))
            sx2 = min(sx2, ssize - 1); sx1 = min(sx1, sx2)
            if Double(sx1) - fsx1 > 1e-3 { tab.append(Tap(d: dx, s: sx1 - 1, alpha: Float((Double(sx1) - fsx1) / cellWidth))) }
            if sx1 < sx2 { for sx in sx1..<sx2 { tab.append(Tap(d: dx, s: sx, alpha: Float(1.0 / cellWidth))) } }
            if fsx2 - Double(sx2) > 1e-3 {
                tab.append(Tap(d: dx, s: sx2, alpha: Float(min(min(fsx2 - Double(sx2), 1), cellWidth) / cellWidth)))
            }
        }
        return tab
    }
    let xtab = table(image.width, dw), ytab = table(image.height, dh)
    let src = image.pixels, sw = image.width
    var out = [UInt8](repeating: 0, count: dw * dh * 3)
    var sum = [Float](repeating: 0, count: dw * 3), buf = [Float](repeating: 0, count: dw * 3)
    var prev = ytab.first?.d ?? 0
    func flush(_ dy: Int) {
        for i in 0..<(dw * 3) { out[dy * dw * 3 + i] = UInt8(clamping: Int(sum[i].rounded(.toNearestOrEven))) }
    }
    for (j, t) in ytab.enumerated() {
        for i in 0..<buf.count { buf[i] = 0 }
        let row = t.s * sw * 3
        for x in xtab {
            for c in 0..<3 { buf[x.d * 3 + c] = buf[x.d * 3 + c] + Float(src[row + x.s * 3 + c]) * x.alpha }
        }
        if j == 0 || t.d != prev {
            if j != 0 { flush(prev) }
            for i in 0..<sum.count { sum[i] = t.alpha * buf[i] }
            prev = t.d
        } else {
            for i in 0..<sum.count { sum[i] += t.alpha * buf[i] }
        }
    }
    flush(prev)
    return try S3FDImage(width: dw, height: dh, pixels: out)
}

/// INTER_AREA for an integer shrink factor k (resizeAreaFast_): the mean of each k x k cell; for k = 2 the SIMD
/// kernel's (sum + 2) >> 2, otherwise sum * (1 / k²) rounded half to even; cells cut by the border average the
/// pixels they have.
private func cvResizeAreaFast(_ image: S3FDImage, _ dw: Int, _ dh: Int, _ k: Int) throws -> S3FDImage {
    let sw = image.width, sh = image.height, src = image.pixels
    var out = [UInt8](repeating: 0, count: dw * dh * 3)
    let inverseArea = 1 / Float(k * k)
    for y in 0..<dh {
        for x in 0..<dw {
            for c in 0..<3 {
                var sum = 0, count = 0
                for a in 0..<k where y * k + a < sh {
                    for b in 0..<k where x * k + b < sw { sum += Int(src[((y * k + a) * sw + x * k + b) * 3 + c]); count += 1 }
                }
                let v: Int
                if count == k * k {
                    v = k == 2 ? (sum + 2) >> 2 : Int((Float(sum) * inverseArea).rounded(.toNearestOrEven))
                } else {
                    v = count == 0 ? 0 : Int((Float(sum) / Float(count)).rounded(.toNearestOrEven))
                }
                out[(y * dw + x) * 3 + c] = UInt8(clamping: v)
            }
        }
    }
    return try S3FDImage(width: dw, height: dh, pixels: out)
}
