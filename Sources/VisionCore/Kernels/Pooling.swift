import CKernels

/// The validated shapes of one max/avg pooling call (PyTorch semantics).
struct PoolGeometry {
    let planes: Int, height: Int, width: Int
    let window: Window2d
    let outHeight: Int, outWidth: Int
    let outShape: [Int]

    init(_ op: String, x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)?, padding: (Int, Int),
         dilation: (Int, Int), ceilMode: Bool) throws {
        try x.requireDType(.float32, op)
        try self.init(op, shape: x.shape, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
                      ceilMode: ceilMode)
    }

    /// The geometry of pooling an NCHW input of `shape` (the fused conv and pool's conv output included).
    init(_ op: String, shape: [Int], kernelSize: (Int, Int), stride: (Int, Int)?, padding: (Int, Int),
         dilation: (Int, Int), ceilMode: Bool) throws {
        let n = shape[0], c = shape[1]
        height = shape[2]; width = shape[3]
        guard c >= 1, height >= 1, width >= 1 else {
            throw VisionError.shapeMismatch("\(op): input \(shape) must have non-zero channels, height and width")
        }
        planes = n * c
        window = Window2d(kernel: kernelSize, stride: stride ?? kernelSize, padding: padding, dilation: dilation)
        try window.validate(op)
        // PyTorch's rule: padding at most half the (undilated) kernel, so that every window sees the input.
        guard padding.0 <= kernelSize.0 / 2, padding.1 <= kernelSize.1 / 2 else {
            throw VisionError.invalidArgument("\(op): padding \(padding) must be at most half of kernel size \(kernelSize)")
        }
        // Built only for an error message (interpolating the shapes costs microseconds per call).
        let placed = window
        func shapes() -> String { "input \(shape), \(placed)" }
        outHeight = try Window2d.poolOutput(op, input: height, kernel: kernelSize.0, stride: window.stride.0,
                                            padding: padding.0, dilation: dilation.0, ceilMode: ceilMode, shapes: shapes())
        outWidth = try Window2d.poolOutput(op, input: width, kernel: kernelSize.1, stride: window.stride.1,
                                           padding: padding.1, dilation: dilation.1, ceilMode: ceilMode, shapes: shapes())
        outShape = [n, c, outHeight, outWidth]
        _ = try Tensor.checkedCount(outShape)
    }

    /// The scratch-plane layout of the SIMD kernels, or an error when the padded plane is absurdly large.
    func layout(_ op: String) throws -> PhasePlaneLayout {
        guard let l = PhasePlaneLayout(height: height, width: width, window: window, outH: outHeight, outW: outWidth) else {
            throw VisionError.outOfMemory("\(op): the padded input plane for \(window) is too large")
        }
        return l
    }
}

/// 2-D max pooling (torch.nn.functional.max_pool2d) of an NCHW or CHW float32 input. `stride` defaults to the
/// kernel size. Padding counts as -inf; NaN in a window gives NaN (as PyTorch). In ceil mode a last, partial
/// window is added when it starts inside the input or the left padding.
/// Differentiable: the gradient goes to the first maximum of each window (NaN counting as the maximum).
public func maxPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      dilation: (Int, Int) = (1, 1), ceilMode: Bool = false) throws -> Tensor {
    guard Autograd.isRecording, x.gradState != nil else {
        return try maxPool2dForward(x, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
                                    ceilMode: ceilMode, indices: nil)
    }
    // Recorded: the forward notes where each maximum is, so that the backward is a scatter, not a second scan.
    let argmax = ArgmaxIndices()
    let y = try maxPool2dForward(x, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
                                 ceilMode: ceilMode, indices: argmax)
    let shape = x.shape
    return recordGrad("maxPool2d", y, inputs: [x]) { g in
        guard let indices = argmax.values else { throw VisionError.invalidArgument("max_pool2d backward: no forward indices") }
        return [try maxPoolBackward(g, indices, inputShape: shape)]
    }
}

/// Per output of a max pooling, the index in its input plane of the element its gradient goes to (-1: none):
/// an int32 tensor, so that its memory comes from the reused large blocks (every entry is written).
private final class ArgmaxIndices: @unchecked Sendable {
    var values: Tensor?
}

private func maxPool2dForward(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)?, padding: (Int, Int),
                              dilation: (Int, Int), ceilMode: Bool, indices: ArgmaxIndices?) throws -> Tensor {
    try withBatchDimension(x, "max_pool2d") { x in
        let g = try PoolGeometry("max_pool2d", x: x, kernelSize: kernelSize, stride: stride, padding: padding,
                                 dilation: dilation, ceilMode: ceilMode)
        if g.height * g.width <= acrossPlanesMaxArea && g.planes >= 16 {
            let out = try Tensor.uninitialized(g.outShape)
            let index = try indices.map { _ in try Tensor.uninitialized([out.count], dtype: .int32) }
            indices?.values = index
            let xc = try x.contiguous()
            withExtendedLifetime(xc) {
                maxPoolAcrossPlanes(xc.pointer(Float.self), g, out.pointer(Float.self), index?.pointer(Int32.self))
            }
            return out
        }
        let layout = try g.layout("max_pool2d")
        guard let indices else {
            return try windowKernel(x, g, layout, fill: -.infinity) { _, buf, out in maxPoolPlane(buf, layout, g, out) }
        }
        guard g.height * g.width <= Int(Int32.max) else {
            throw VisionError.invalidArgument("max_pool2d: an input plane of \(g.height) x \(g.width) is too large to differentiate")
        }
        let ohw = g.outHeight * g.outWidth
        let values = try Tensor.uninitialized([g.planes * ohw], dtype: .int32)
        indices.values = values
        let index = SendablePointer(values.pointer(Int32.self))
        return try windowKernel(x, g, layout, fill: -.infinity) { plane, buf, out in
            maxPoolPlaneIndexed(buf, layout, g, out, index.p + plane * ohw)
        }
    }
}

/// 2-D average pooling (torch.nn.functional.avg_pool2d) of an NCHW or CHW float32 input. `stride` defaults to
/// the kernel size. The divisor is the window's extent clipped to the padded input (`countIncludePad`) or to the
/// input itself.
/// Differentiable: each window spreads its gradient evenly over its input elements, with the forward's divisor.
public func avgPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
    let y = try avgPool2dForward(x, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
                                 countIncludePad: countIncludePad)
    let xd = x.detach()
    return recordGrad("avgPool2d", y, inputs: [x]) { g in
        [try avgPoolBackward(g, xd, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
                             includePad: countIncludePad)]
    }
}

private func avgPool2dForward(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)?, padding: (Int, Int),
                              ceilMode: Bool, countIncludePad: Bool) throws -> Tensor {
    try withBatchDimension(x, "avg_pool2d") { x in
        let g = try PoolGeometry("avg_pool2d", x: x, kernelSize: kernelSize, stride: stride, padding: padding,
                                 dilation: (1, 1), ceilMode: ceilMode)
        let layout = try g.layout("avg_pool2d")
        // The divisor is a product of a row term and a column term: compute each once.
        let rows = (0..<g.outHeight).map {
            Float(avgWindowCount($0, g.height, g.window.kernel.0, g.window.stride.0, padding.0, countIncludePad))
        }
        var cols = [Float](repeating: 1, count: (g.outWidth + 15) / 16 * 16)
        for ox in 0..<g.outWidth {
            cols[ox] = Float(avgWindowCount(ox, g.width, g.window.kernel.1, g.window.stride.1, padding.1, countIncludePad))
        }
        return try rows.withUnsafeBufferPointer { rowCount in
            try cols.withUnsafeBufferPointer { colCount in
                let r = UncheckedBox(rowCount), c = UncheckedBox(colCount)
                return try windowKernel(x, g, layout, fill: 0) { _, buf, out in
                    avgPoolPlane(buf, layout, g, r.value, c.value, out)
                }
            }
        }
    }
}

/// Elements of a 1-D average-pooling window: clipped to [-p, n + p) when padding counts, else to [0, n).
func avgWindowCount(_ o: Int, _ n: Int, _ k: Int, _ s: Int, _ p: Int, _ includePad: Bool) -> Int {
    let start = o * s - p, end = min(start + k, n + p)
    return includePad ? end - start : min(end, n) - max(start, 0)
}

/// Runs `plane(index, scratch, out)` for every (image, channel) plane after copying it into a padded scratch plane
/// filled with `fill`; planes are spread over threads, each with one scratch buffer.
private func windowKernel(_ x: Tensor, _ g: PoolGeometry, _ layout: PhasePlaneLayout, fill: Float,
                          _ plane: (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) throws -> Tensor {
    let out = try Tensor.uninitialized(g.outShape)
    if out.count == 0 { return out }
    let xc = try x.contiguous()
    let sx = SendablePointer(xc.pointer(Float.self)), so = SendablePointer(out.pointer(Float.self))
    let hw = g.height * g.width, ohw = g.outHeight * g.outWidth
    withExtendedLifetime(xc) {
        forEachWorkItem(g.planes, scratch: layout.count, minItemsPerThread: max(1, 32_768 / max(hw, 1))) { p, buf in
            layout.fill(buf, from: sx.p + p * hw, fill: fill)
            plane(p, buf, so.p + p * ohw)
        }
    }
    return out
}

/// Whether a window tap's value replaces the running maximum where its argmax is tracked: larger, or NaN over a
/// number (so the first maximum in scan order stays, and the first NaN).
/// (Concrete overloads: the generic form compiled to a lane-by-lane loop, 20x slower.)
@inline(__always) private func takesOver(_ v: F16, _ best: F16) -> SIMDMask<SIMD16<Int32>> {
    (v .> best) .| ((v .!= v) .& (best .== best))
}

@inline(__always) private func takesOver(_ v: F8, _ best: F8) -> SIMDMask<SIMD8<Int32>> {
    (v .> best) .| ((v .!= v) .& (best .== best))
}

/// Planes of at most this many pixels are pooled 16 planes at a time (`maxPoolAcrossPlanes`).
private let acrossPlanesMaxArea = 1024

/// Max pooling of small planes with the vector lanes across 16 planes: the group is transposed to [pixel][plane]
/// (`vck_transpose`), so each window tap is one full-width load whatever the map's width, windows need no padded
/// copy (their in-bounds taps are the same for every lane), and the results are transposed back. Each window
/// starts from its first in-bounds element and takes a later one when it is larger, or NaN over a number: the
/// first maximum in row-major order, the first NaN if any. `index` (optional) receives its input-plane index.
private func maxPoolAcrossPlanes(_ x: UnsafePointer<Float>, _ g: PoolGeometry, _ out: UnsafeMutablePointer<Float>,
                                 _ index: UnsafeMutablePointer<Int32>?) {
    typealias I16 = SIMD16<Int32>
    let (h, w, ho, wo) = (g.height, g.width, g.outHeight, g.outWidth), hw = h * w, ohw = ho * wo
    let (kh, kw) = g.window.kernel, (sh, sw) = g.window.stride, (ph, pw) = g.window.padding, (dh, dw) = g.window.dilation
    // In-bounds taps [lo, hi) of each output row and column.
    let rowTaps = (0..<ho).map { inBoundsTaps($0 * sh - ph, kh, dh, h) }
    let colTaps = (0..<wo).map { inBoundsTaps($0 * sw - pw, kw, dw, w) }
    let sx = SendablePointer(UnsafeMutablePointer(mutating: x)), so = SendablePointer(out)
    let si = index.map { SendablePointer($0) }
    rowTaps.withUnsafeBufferPointer { rt in
        colTaps.withUnsafeBufferPointer { ct in
            let rows = UncheckedBox(rt), cols = UncheckedBox(ct)
            forEachWorkItem((g.planes + 15) / 16, scratch: 16 * (hw + 2 * ohw), minItemsPerThread: max(1, 2048 / max(hw, 1))) { group, buf in
                let p0 = group * 16, n = min(16, g.planes - p0)
                let pixels = buf, best = buf + 16 * hw, argmaxLanes = UnsafeMutableRawPointer(best + 16 * ohw)
                if n < 16 { pixels.update(repeating: 0, count: 16 * hw) }
                vck_transpose(sx.p + p0 * hw, n, hw, hw, pixels, 16)
                for oy in 0..<ho {
                    let (kyLo, kyHi) = rows.value[oy], y0 = oy * sh - ph
                    for ox in 0..<wo {
                        let (kxLo, kxHi) = cols.value[ox], x0 = ox * sw - pw, o = oy * wo + ox
                        var m = F16(repeating: -.infinity), at = I16(repeating: -1)
                        if kyLo < kyHi && kxLo < kxHi {
                            let first = (y0 + kyLo * dh) * w + x0 + kxLo * dw
                            m = loadF16(pixels + first * 16); at = I16(repeating: Int32(truncatingIfNeeded: first))
                            for ky in kyLo..<kyHi {
                                let row = (y0 + ky * dh) * w + x0
                                for kx in kxLo..<kxHi where ky != kyLo || kx != kxLo {
                                    let i = row + kx * dw, v = loadF16(pixels + i * 16)
                                    let take = takesOver(v, m)
                                    m = m.replacing(with: v, where: take)
                                    if si != nil { at = at.replacing(with: I16(repeating: Int32(truncatingIfNeeded: i)), where: take) }
                                }
                            }
                        }
                        storeF16(m, best + o * 16)
                        if si != nil { argmaxLanes.storeBytes(of: at, toByteOffset: o * 64, as: I16.self) }
                    }
                }
                vck_transpose(best, ohw, n, 16, so.p + p0 * ohw, ohw)
                if let si {
                    for j in 0..<n {
                        let dst = si.p + (p0 + j) * ohw
                        for o in 0..<ohw { dst[o] = argmaxLanes.load(fromByteOffset: (o * 16 + j) * 4, as: Int32.self) }
                    }
                }
            }
        }
    }
}

/// max of each window, 16 outputs at a time; a lane takes the new value when it is larger or NaN, so NaN sticks.
private func maxPoolPlane(_ buf: UnsafePointer<Float>, _ l: PhasePlaneLayout, _ g: PoolGeometry,
                          _ out: UnsafeMutablePointer<Float>) {
    let (kh, kw) = g.window.kernel, (sh, _) = g.window.stride, (dh, dw) = g.window.dilation
    let rs = l.rowStride, wo = g.outWidth
    @inline(__always) func combine(_ acc: F8, _ v: F8) -> F8 { acc.replacing(with: v, where: (v .> acc) .| (v .!= v)) }
    withUnsafeTemporaryAllocation(of: Int.self, capacity: kw) { taps in
        for kx in 0..<kw { taps[kx] = l.tapOffset(kx &* dw) }
        for oy in 0..<g.outHeight {
            let base = buf + oy &* sh &* rs, o = out + oy &* wo
            var ox = 0
            while ox < wo {
                var a0 = F8(repeating: -.infinity), a1 = a0
                for ky in 0..<kh {
                    let r = base + (ky &* dh &* rs &+ ox)
                    for kx in 0..<kw {
                        let p = r + taps[kx]
                        a0 = combine(a0, load8(p))
                        a1 = combine(a1, load8(p + 8))
                    }
                }
                store16(a0, a1, o + ox, wo &- ox)
                ox &+= 16
            }
        }
    }
}

/// maxPoolPlane that also notes, per output, the input-plane index of its window's first maximum (the first NaN
/// when there is one), which is where PyTorch sends the gradient. A lane takes a tap when it is larger, or NaN
/// over a number, and keeps the tap's offset from the window's corner; windows whose input is all -inf keep no
/// tap (-1) and take their first in-bounds element.
private func maxPoolPlaneIndexed(_ buf: UnsafePointer<Float>, _ l: PhasePlaneLayout, _ g: PoolGeometry,
                                 _ out: UnsafeMutablePointer<Float>, _ index: UnsafeMutablePointer<Int32>) {
    typealias I8 = SIMD8<Int32>
    let (kh, kw) = g.window.kernel, (sh, sw) = g.window.stride, (dh, dw) = g.window.dilation
    let (ph, pw) = g.window.padding, rs = l.rowStride, wo = g.outWidth, w = g.width
    let lanes = I8(0, 1, 2, 3, 4, 5, 6, 7) &* Int32(sw)
    withUnsafeTemporaryAllocation(of: Int.self, capacity: kw) { taps in
        for kx in 0..<kw { taps[kx] = l.tapOffset(kx &* dw) }
        for oy in 0..<g.outHeight {
            let base = buf + oy &* sh &* rs, o = out + oy &* wo, y0 = oy &* sh &- ph
            var ox = 0
            while ox < wo {
                var a0 = F8(repeating: -.infinity), a1 = a0
                var t0 = I8(repeating: -1), t1 = t0
                for ky in 0..<kh {
                    let r = base + (ky &* dh &* rs &+ ox)
                    for kx in 0..<kw {
                        let p = r + taps[kx], v0 = load8(p), v1 = load8(p + 8)
                        let m0 = takesOver(v0, a0), m1 = takesOver(v1, a1)
                        let delta = I8(repeating: Int32(truncatingIfNeeded: ky &* dh &* w &+ kx &* dw))
                        a0 = a0.replacing(with: v0, where: m0); t0 = t0.replacing(with: delta, where: m0)
                        a1 = a1.replacing(with: v1, where: m1); t1 = t1.replacing(with: delta, where: m1)
                    }
                }
                store16(a0, a1, o + ox, wo &- ox)
                // Offsets from each window's corner (y0, x0) to indices in the plane.
                let corner = I8(repeating: Int32(truncatingIfNeeded: y0 &* w &+ ox &* sw &- pw)) &+ lanes
                var found = (corner &+ t0, corner &+ I8(repeating: Int32(truncatingIfNeeded: 8 &* sw)) &+ t1)
                let n = min(16, wo &- ox), at = index + (oy &* wo &+ ox)
                withUnsafeBytes(of: &found) { raw in
                    for j in 0..<n { at[j] = raw.load(fromByteOffset: j &* 4, as: Int32.self) }
                }
                if min(t0.min(), t1.min()) < 0 {
                    var taps = (t0, t1)
                    withUnsafeBytes(of: &taps) { raw in
                        for j in 0..<n where raw.load(fromByteOffset: j &* 4, as: Int32.self) < 0 {
                            let x0 = (ox &+ j) &* sw &- pw
                            let (ky, kyEnd) = inBoundsTaps(y0, kh, dh, g.height), (kx, kxEnd) = inBoundsTaps(x0, kw, dw, w)
                            at[j] = ky < kyEnd && kx < kxEnd ? Int32(truncatingIfNeeded: (y0 + ky * dh) * w + x0 + kx * dw) : -1
                        }
                    }
                }
                ox &+= 16
            }
        }
    }
}

/// The taps [lo, hi) of a window starting at `start` (taps start, start + d, ..., start + (k - 1) d) that lie in
/// [0, n); lo == hi when none does.
private func inBoundsTaps(_ start: Int, _ k: Int, _ d: Int, _ n: Int) -> (Int, Int) {
    var lo = 0, hi = k
    while lo < k && start + lo * d < 0 { lo += 1 }
    while hi > lo && start + (hi - 1) * d >= n { hi -= 1 }
    return (lo, hi)
}

/// Sum of each window divided by its element count (row count x column count).
private func avgPoolPlane(_ buf: UnsafePointer<Float>, _ l: PhasePlaneLayout, _ g: PoolGeometry,
                          _ rowCount: UnsafeBufferPointer<Float>, _ colCount: UnsafeBufferPointer<Float>,
                          _ out: UnsafeMutablePointer<Float>) {
    let (kh, kw) = g.window.kernel, (sh, _) = g.window.stride
    let rs = l.rowStride, wo = g.outWidth
    guard let cc = colCount.baseAddress else { return }
    withUnsafeTemporaryAllocation(of: Int.self, capacity: kw) { taps in
        for kx in 0..<kw { taps[kx] = l.tapOffset(kx) }
        for oy in 0..<g.outHeight {
            let base = buf + oy &* sh &* rs, o = out + oy &* wo
            let rc = F8(repeating: rowCount[oy])
            var ox = 0
            while ox < wo {
                var a0 = F8(), a1 = F8()
                for ky in 0..<kh {
                    let r = base + (ky &* rs &+ ox)
                    for kx in 0..<kw {
                        let p = r + taps[kx]
                        a0 += load8(p)
                        a1 += load8(p + 8)
                    }
                }
                store16(a0 / (rc * load8(cc + ox)), a1 / (rc * load8(cc + (ox &+ 8))), o + ox, wo &- ox)
                ox &+= 16
            }
        }
    }
}

/// Adaptive average pooling (torch.nn.functional.adaptive_avg_pool2d) to `outputSize` (height, width): output
/// cell i along an axis of input size n averages input [floor(i*n/o), ceil((i+1)*n/o)), so windows may overlap
/// and differ in size when o does not divide n. Per output row, the input rows of its window are summed into one
/// row buffer, whose column windows then give the outputs.
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (Int, Int)) throws -> Tensor {
    let y = try adaptiveAvgPool2dForward(x, outputSize: outputSize)
    let shape = x.shape
    return recordGrad("adaptiveAvgPool2d", y, inputs: [x]) { g in [try adaptiveAvgPoolBackward(g, inputShape: shape, outputSize)] }
}

private func adaptiveAvgPool2dForward(_ x: Tensor, outputSize: (Int, Int)) throws -> Tensor {
    try withBatchDimension(x, "adaptive_avg_pool2d") { x in
        let g = try AdaptiveGeometry(x, outputSize)
        let out = try Tensor.uninitialized(g.outShape)
        if out.count == 0 { return out }
        // The window tables hold one Range per output row and column (a fraction of the output's own size).
        let rowTable = AdaptiveGeometry.windows(input: g.height, output: outputSize.0)
        let colTable = AdaptiveGeometry.windows(input: g.width, output: outputSize.1)
        let xc = try x.contiguous()
        let (h, w) = (g.height, g.width), (ho, wo) = outputSize
        let sx = SendablePointer(xc.pointer(Float.self)), so = SendablePointer(out.pointer(Float.self))
        withExtendedLifetime(xc) {
            rowTable.withUnsafeBufferPointer { rows in
                colTable.withUnsafeBufferPointer { cols in
                    let rb = UncheckedBox(rows), cb = UncheckedBox(cols)
                    forEachWorkItem(g.planes, scratch: w, minItemsPerThread: max(1, 32_768 / max(h * w, 1))) { p, acc in
                        let rows = rb.value, cols = cb.value
                        let src = sx.p + p &* h &* w, dst = so.p + p &* ho &* wo
                        for oy in 0..<ho {
                            let r = rows[oy]
                            acc.update(from: src + r.lowerBound &* w, count: w)
                            for iy in (r.lowerBound + 1)..<max(r.upperBound, r.lowerBound + 1) {
                                let row = src + iy &* w
                                for ix in 0..<w { acc[ix] += row[ix] }
                            }
                            let rn = Float(r.count), o = dst + oy &* wo
                            for ox in 0..<wo {
                                let c = cols[ox]
                                var s: Float = 0
                                for ix in c { s += acc[ix] }
                                o[ox] = s / (rn * Float(c.count))
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// The validated shapes of adaptive average pooling.
struct AdaptiveGeometry {
    let planes: Int, height: Int, width: Int
    let outShape: [Int]

    init(_ x: Tensor, _ outputSize: (Int, Int)) throws {
        let op = "adaptive_avg_pool2d"
        try x.requireDType(.float32, op)
        let n = x.shape[0], c = x.shape[1]
        height = x.shape[2]; width = x.shape[3]
        guard c >= 1, height >= 1, width >= 1 else {
            throw VisionError.shapeMismatch("\(op): input \(x.shape) must have non-zero channels, height and width")
        }
        guard outputSize.0 >= 1, outputSize.1 >= 1 else {
            throw VisionError.invalidArgument("\(op): output size \(outputSize) must be positive")
        }
        // Each axis gets a table of windows: cap it so that a typo cannot ask for gigabytes of tables.
        guard outputSize.0 <= 1 << 24, outputSize.1 <= 1 << 24 else {
            throw VisionError.outOfMemory("\(op): output size \(outputSize) is too large (at most \(1 << 24) per axis)")
        }
        planes = n * c
        outShape = [n, c, outputSize.0, outputSize.1]
        _ = try Tensor.checkedCount(outShape)
    }

    /// [floor(i*n/o), ceil((i+1)*n/o)) for each output i, with full-width products (i*n may exceed Int.max).
    static func windows(input n: Int, output o: Int) -> [Range<Int>] {
        (0..<o).map { i in
            let lo = o.dividingFullWidth(i.multipliedFullWidth(by: n)).quotient
            let (q, r) = o.dividingFullWidth((i + 1).multipliedFullWidth(by: n))
            return lo..<(r == 0 ? q : q + 1)
        }
    }
}

// MARK: references

/// max_pool2d by its definition, in Double (for tests): every window scanned directly from the input.
public func maxPool2dReference(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil,
                               padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1),
                               ceilMode: Bool = false) throws -> Tensor {
    try withBatchDimension(x, "max_pool2d") { x in
        let g = try PoolGeometry("max_pool2d", x: x, kernelSize: kernelSize, stride: stride, padding: padding,
                                 dilation: dilation, ceilMode: ceilMode)
        return try referencePool(x, g) { xs, base, oy, ox in
            var m = -Double.infinity
            for ky in 0..<kernelSize.0 {
                for kx in 0..<kernelSize.1 {
                    let iy = oy * g.window.stride.0 - padding.0 + ky * dilation.0
                    let ix = ox * g.window.stride.1 - padding.1 + kx * dilation.1
                    guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                    let v = Double(xs[base + iy * g.width + ix])
                    if v.isNaN || v > m { m = v }
                    if m.isNaN { return m }
                }
            }
            return m
        }
    }
}

/// avg_pool2d by its definition, in Double (for tests).
public func avgPool2dReference(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil,
                               padding: (Int, Int) = (0, 0), ceilMode: Bool = false,
                               countIncludePad: Bool = true) throws -> Tensor {
    try withBatchDimension(x, "avg_pool2d") { x in
        let g = try PoolGeometry("avg_pool2d", x: x, kernelSize: kernelSize, stride: stride, padding: padding,
                                 dilation: (1, 1), ceilMode: ceilMode)
        let (sh, sw) = g.window.stride
        return try referencePool(x, g) { xs, base, oy, ox in
            let y0 = oy * sh - padding.0, x0 = ox * sw - padding.1
            let y1 = min(y0 + kernelSize.0, g.height + padding.0), x1 = min(x0 + kernelSize.1, g.width + padding.1)
            var sum = 0.0, valid = 0
            for iy in max(y0, 0)..<max(min(y1, g.height), max(y0, 0)) {
                for ix in max(x0, 0)..<max(min(x1, g.width), max(x0, 0)) {
                    sum += Double(xs[base + iy * g.width + ix]); valid += 1
                }
            }
            return sum / Double(countIncludePad ? (y1 - y0) * (x1 - x0) : valid)
        }
    }
}

/// adaptive_avg_pool2d by its definition, in Double (for tests): each window summed with divisions written out.
public func adaptiveAvgPool2dReference(_ x: Tensor, outputSize: (Int, Int)) throws -> Tensor {
    try withBatchDimension(x, "adaptive_avg_pool2d") { x in
        let g = try AdaptiveGeometry(x, outputSize)
        let xs = try x.toArray(Float.self)
        let (h, w) = (g.height, g.width), (ho, wo) = outputSize
        var out = [Float]()
        for p in 0..<g.planes {
            for oy in 0..<ho {
                let y0 = oy * h / ho, y1 = ((oy + 1) * h + ho - 1) / ho
                for ox in 0..<wo {
                    let x0 = ox * w / wo, x1 = ((ox + 1) * w + wo - 1) / wo
                    var s = 0.0
                    for iy in y0..<y1 { for ix in x0..<x1 { s += Double(xs[(p * h + iy) * w + ix]) } }
                    out.append(Float(s / Double((y1 - y0) * (x1 - x0))))
                }
            }
        }
        return try Tensor(out, shape: g.outShape)
    }
}

private func referencePool(_ x: Tensor, _ g: PoolGeometry,
                           _ window: ([Float], Int, Int, Int) -> Double) throws -> Tensor {
    let xs = try x.toArray(Float.self)
    var out = [Float]()
    out.reserveCapacity(g.outShape.reduce(1, *))
    for p in 0..<g.planes {
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth { out.append(Float(window(xs, p * g.height * g.width, oy, ox))) }
        }
    }
    return try Tensor(out, shape: g.outShape)
}

// MARK: backward

/// Gradient of max pooling with respect to its input: each output's gradient added at the input-plane index its
/// forward noted (-1: nowhere), plane by plane (planes spread over threads).
private func maxPoolBackward(_ g: Tensor, _ indices: Tensor, inputShape: [Int]) throws -> Tensor {
    let gc = try g.contiguous()
    let gx = try Tensor.zeros(inputShape)
    let hw = inputShape[inputShape.count - 2] * inputShape[inputShape.count - 1]
    let planes = hw == 0 ? 0 : gx.count / hw, ohw = planes == 0 ? 0 : indices.count / planes
    guard gc.count == indices.count else {
        throw VisionError.shapeMismatch("max_pool2d backward: gradient \(g.shape) does not match the forward's output")
    }
    let pg = SendablePointer(gc.pointer(Float.self)), po = SendablePointer(gx.pointer(Float.self))
    let pi = SendablePointer(indices.pointer(Int32.self))
    withExtendedLifetime((gc, indices)) {
        parallelFor(planes, minChunk: max(1, 16_384 / max(ohw, 1))) { range in
            for plane in range {
                let dst = po.p + plane &* hw, grad = pg.p + plane &* ohw, at = pi.p + plane &* ohw
                for o in 0..<ohw where at[o] >= 0 { dst[Int(at[o])] += grad[o] }
            }
        }
    }
    return gx
}

/// Gradient of average pooling with respect to its input, plane by plane (planes spread over threads): each
/// window spreads its gradient evenly over its input elements, with the forward's divisor.
func avgPoolBackward(_ g: Tensor, _ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)?, padding: (Int, Int),
                     ceilMode: Bool, includePad: Bool) throws -> Tensor {
    let x4 = x.rank == 3 ? try x.unsqueeze(axis: 0) : x
    let geo = try PoolGeometry("avg_pool2d", x: x4, kernelSize: kernelSize, stride: stride, padding: padding,
                               dilation: (1, 1), ceilMode: ceilMode)
    let gc = try g.contiguous()
    let gx = try Tensor.zeros(x4.shape)
    let (h, w, ho, wo) = (geo.height, geo.width, geo.outHeight, geo.outWidth)
    let (kh, kw) = geo.window.kernel, (sh, sw) = geo.window.stride, (ph, pw) = geo.window.padding
    let pg = SendablePointer(gc.pointer(Float.self)), po = SendablePointer(gx.pointer(Float.self))
    withExtendedLifetime(gc) {
        parallelFor(geo.planes) { planes in
            for plane in planes {
                let grad = pg.p + plane &* ho &* wo, dst = po.p + plane &* h &* w
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        let y0 = oy &* sh &- ph, x0 = ox &* sw &- pw
                        let divisor = Float(avgWindowCount(oy, h, kh, sh, ph, includePad) * avgWindowCount(ox, w, kw, sw, pw, includePad))
                        let share = grad[oy &* wo &+ ox] / divisor
                        for iy in max(y0, 0)..<max(min(y0 &+ kh, h), max(y0, 0)) {
                            for ix in max(x0, 0)..<max(min(x0 &+ kw, w), max(x0, 0)) { dst[iy &* w &+ ix] += share }
                        }
                    }
                }
            }
        }
    }
    return try gx.reshape(x.shape)
}

/// Gradient of adaptive average pooling: each output cell spreads its gradient over its (possibly overlapping)
/// input window.
func adaptiveAvgPoolBackward(_ g: Tensor, inputShape: [Int], _ outputSize: (Int, Int)) throws -> Tensor {
    let shape4 = inputShape.count == 3 ? [1] + inputShape : inputShape
    let (h, w) = (shape4[2], shape4[3]), (ho, wo) = outputSize
    let rows = AdaptiveGeometry.windows(input: h, output: ho), cols = AdaptiveGeometry.windows(input: w, output: wo)
    let gc = try g.contiguous()
    let gx = try Tensor.zeros(shape4)
    let planes = shape4[0] * shape4[1]
    let pg = gc.pointer(Float.self), po = gx.pointer(Float.self)
    withExtendedLifetime(gc) {
        for plane in 0..<planes {
            let grad = pg + plane &* ho &* wo, dst = po + plane &* h &* w
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let r = rows[oy], c = cols[ox]
                    let share = grad[oy &* wo &+ ox] / Float(r.count * c.count)
                    for iy in r { for ix in c { dst[iy &* w &+ ix] += share } }
                }
            }
        }
    }
    return try gx.reshape(inputShape)
}
