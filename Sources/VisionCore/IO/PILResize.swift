// Pillow's `Image.resize` for 8-bit images, reproduced bit for bit (Pillow's src/libImaging/Resample.c).
//
// Classifiers are evaluated with the preprocessing their weights were measured with: timm and torchvision resize
// PIL images, so matching their accuracy means matching PIL's pixels, not just "a bilinear filter". PIL resamples
// separably (horizontal pass, then vertical), widens the filter support by the downscale factor (antialiasing),
// turns the normalised double coefficients into 22-bit fixed point and rounds/clips to uint8 after each pass.
// Every step below follows that order; the double arithmetic is written in the C source's evaluation order so
// the coefficients round identically.

/// Filters of `resizeImagePIL` (PIL's `Image.BILINEAR` and `Image.BICUBIC`, a = -0.5).
public enum PILResampleFilter: String, Sendable, CaseIterable {
    case bilinear, bicubic

    var support: Double { self == .bilinear ? 1.0 : 2.0 }

    @inline(__always) func weight(_ t: Double) -> Double {
        let x = t < 0.0 ? -t : t
        switch self {
        case .bilinear:
            return x < 1.0 ? 1.0 - x : 0.0
        case .bicubic:
            // ((a + 2) x - (a + 3)) x x + 1 and (((x - 5) x + 8) x - 4) a with a = -0.5, as Resample.c groups them.
            if x < 1.0 { return ((1.5 * x - 2.5) * x) * x + 1 }
            if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * -0.5 }
            return 0.0
        }
    }
}

/// Fixed-point bits of the coefficients (32 - 8 - 2: room for 8-bit values and for negative / >1 lobes).
private let precisionBits: Int32 = 22

/// One pass's filter taps: output index i reads `count[i]` inputs from `start[i]` with weights
/// `k[i * ksize ..< i * ksize + count[i]]`.
struct PILTaps {
    var start: [Int] = [], count: [Int] = []
    var k: [Int32] = []
    var ksize = 0
}

/// Resample.c's precompute_coeffs + normalize_coeffs_8bpc for the whole input range (box 0...inSize).
func pilTaps(inSize: Int, outSize: Int, filter: PILResampleFilter) -> PILTaps {
    // The box edges are C floats: in1 - in0 is computed in float, then widened.
    let in0: Float = 0, in1 = Float(inSize)
    let scale = Double(in1 - in0) / Double(outSize)
    let filterScale = max(scale, 1.0)
    let support = filter.support * filterScale
    let ksize = Int(support.rounded(.up)) * 2 + 1
    var taps = PILTaps()
    taps.ksize = ksize
    taps.start.reserveCapacity(outSize)
    taps.count.reserveCapacity(outSize)
    taps.k = [Int32](repeating: 0, count: outSize * ksize)
    var w = [Double](repeating: 0, count: ksize)
    let ss = 1.0 / filterScale
    for xx in 0..<outSize {
        let center = Double(in0) + (Double(xx) + 0.5) * scale
        // (int) casts truncate toward zero, like Int(_:) on a Double.
        let xmin = max(Int(center - support + 0.5), 0)
        let xmax = min(Int(center + support + 0.5), inSize) - xmin
        var ww = 0.0
        for x in 0..<max(xmax, 0) {
            w[x] = filter.weight((Double(x + xmin) - center + 0.5) * ss)
            ww += w[x]
        }
        for x in 0..<max(xmax, 0) {
            if ww != 0.0 { w[x] /= ww }
            let scaled = w[x] * Double(1 << precisionBits)
            taps.k[xx * ksize + x] = Int32(w[x] < 0 ? -0.5 + scaled : 0.5 + scaled)
        }
        taps.start.append(xmin)
        taps.count.append(max(xmax, 0))
    }
    return taps
}

/// Resample.c's clip8: the accumulator (rounding bias included) shifted down and clamped to 0...255.
@inline(__always) private func clip8(_ acc: Int32) -> UInt8 {
    let v = acc >> precisionBits
    return v < 0 ? 0 : v > 255 ? 255 : UInt8(truncatingIfNeeded: v)
}

/// Resizes a uint8 [H, W, C] (or [H, W]) image to `height` x `width` exactly as Pillow's `Image.resize(
/// (width, height), filter)` does for modes "L" and "RGB" (C = 1 and 3): the same antialiased coefficients, the
/// same fixed-point rounding and the same uint8 clipping between the passes, so the output bytes are equal.
/// Channels are resampled independently (Pillow premultiplies alpha for "LA"/"RGBA"; this does not). A pass whose
/// size does not change is skipped, as Pillow skips it, and a same-size resize returns a copy.
///
/// Errors: `.dtypeMismatch` for a non-uint8 tensor; `.shapeMismatch` for another rank or more than 4 channels;
/// `.invalidArgument` for an empty image or output, or sizes beyond `ImageLimits`.
public func resizeImagePIL(_ image: Tensor, height: Int, width: Int, filter: PILResampleFilter) throws -> Tensor {
    try image.requireDType(.uint8, "resize_image_pil")
    guard image.rank == 3 || image.rank == 2 else {
        throw VisionError.shapeMismatch("resize_image_pil: image must be [H, W, C] (or [H, W]), got shape \(image.shape)")
    }
    let inH = image.shape[0], inW = image.shape[1], c = image.rank == 3 ? image.shape[2] : 1
    guard (1...4).contains(c) else {
        throw VisionError.shapeMismatch("resize_image_pil: image must have 1 to 4 channels, got shape \(image.shape)")
    }
    guard inH > 0, inW > 0, inH <= ImageLimits.maxSide, inW <= ImageLimits.maxSide, inH * inW <= ImageLimits.maxPixels else {
        throw VisionError.invalidArgument("resize_image_pil: image \(image.shape) is empty or exceeds the limits (\(ImageLimits.maxSide) per side, \(ImageLimits.maxPixels) pixels)")
    }
    guard height > 0, width > 0, height <= ImageLimits.maxSide, width <= ImageLimits.maxSide,
          height * width <= ImageLimits.maxPixels else {
        throw VisionError.invalidArgument("resize_image_pil: output size \(height) x \(width) must be positive and within \(ImageLimits.maxSide) per side and \(ImageLimits.maxPixels) pixels")
    }
    let outShape = image.rank == 3 ? [height, width, c] : [height, width]
    let src = try image.contiguous()
    if height == inH && width == inW { return try src.copyContiguous() }

    let vertical = pilTaps(inSize: inH, outSize: height, filter: filter)
    // Rows of the input that the vertical pass reads: the horizontal pass computes only those (as Pillow does).
    let rowFirst = height == inH ? 0 : vertical.start[0]
    let rowLast = height == inH ? inH : vertical.start[height - 1] + vertical.count[height - 1]

    var current = src
    var currentRowOffset = 0
    if width != inW {
        let horizontal = pilTaps(inSize: inW, outSize: width, filter: filter)
        let rows = rowLast - rowFirst
        let tmp = try Tensor.uninitialized([rows, width, c], dtype: .uint8)
        withExtendedLifetime((src, tmp)) {
            let s = SendablePointer(src.pointer(UInt8.self)), d = SendablePointer(tmp.pointer(UInt8.self))
            horizontal.k.withUnsafeBufferPointer { kp in
                parallelFor(rows, minChunk: max(1, 4096 / max(width * c, 1))) { range in
                    for r in range {
                        let inRow = s.p + (r + rowFirst) * inW * c, outRow = d.p + r * width * c
                        for xx in 0..<width {
                            let xmin = horizontal.start[xx], n = horizontal.count[xx]
                            let kk = kp.baseAddress! + xx * horizontal.ksize
                            for ch in 0..<c {
                                var acc: Int32 = 1 << (precisionBits - 1)
                                let p = inRow + xmin * c + ch
                                for x in 0..<n { acc = acc &+ Int32(p[x * c]) &* kk[x] }
                                outRow[xx * c + ch] = clip8(acc)
                            }
                        }
                    }
                }
            }
        }
        current = tmp
        currentRowOffset = rowFirst
    }
    guard height != inH else { return try current.reshape(outShape) }

    let out = try Tensor.uninitialized(outShape, dtype: .uint8)
    let rowLength = width * c
    withExtendedLifetime((current, out)) {
        let s = SendablePointer(current.pointer(UInt8.self)), d = SendablePointer(out.pointer(UInt8.self))
        vertical.k.withUnsafeBufferPointer { kp in
            parallelFor(height, minChunk: max(1, 4096 / max(rowLength, 1))) { range in
                for yy in range {
                    let ymin = vertical.start[yy] - currentRowOffset, n = vertical.count[yy]
                    let kk = kp.baseAddress! + yy * vertical.ksize
                    let outRow = d.p + yy * rowLength
                    for i in 0..<rowLength {
                        var acc: Int32 = 1 << (precisionBits - 1)
                        let p = s.p + ymin * rowLength + i
                        for y in 0..<n { acc = acc &+ Int32(p[y * rowLength]) &* kk[y] }
                        outRow[i] = clip8(acc)
                    }
                }
            }
        }
    }
    return out
}
