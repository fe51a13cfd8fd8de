// RoIAlign (torchvision.ops.roi_align): average-pools each box of a feature map into a fixed grid of bins, each
// bin the mean of bilinear samples taken on a regular sub-grid. ReLabel's LabelPooling and two-stage detectors
// use it.
//
// Semantics, identical to torchvision's:
// - A box (x1, y1, x2, y2) is scaled by `spatialScale`; with `aligned` the scaled box is shifted by -0.5 so that
//   pixel centres sit at integer + 0.5 (the "half-pixel" correction); without it the box is at least 1 x 1.
// - Each of the pooledH x pooledW bins takes gridH x gridW samples at the centres of a regular sub-grid, where
//   gridH = samplingRatio if samplingRatio > 0, else ceil(roiH / pooledH) (and likewise for the width).
// - A sample at (y, x) is 0 if y < -1, y > H, x < -1 or x > W; otherwise coordinates <= 0 are clamped to 0 and
//   coordinates at or beyond H-1 (W-1) use the last row (column) only. The bin value is the sum of its samples
//   divided by max(gridH * gridW, 1).

/// Largest number of samples per bin (gridH * gridW) accepted: a box of about 8000 x 8000 pixels pooled to 1 x 1.
/// It bounds the work a single absurd box (or an absurd spatial scale) can request.
let roiAlignMaxSamplesPerBin = 1 << 26

/// A box's geometry after scaling, as torchvision computes it, in Float and in the same operation order.
struct RoIGeometry {
    let batch: Int
    let startH: Float, startW: Float
    let binH: Float, binW: Float
    let gridH: Int, gridW: Int

    /// The normalised sample count: the divisor of each bin's sum.
    var count: Float { Float(max(gridH * gridW, 1)) }

    /// Sample coordinate `i` of bin `p` along one axis.
    @inline(__always) static func sample(_ start: Float, _ bin: Float, _ p: Int, _ i: Int, _ grid: Int) -> Float {
        start + Float(p) * bin + (Float(i) + 0.5) * bin / Float(grid)
    }
}

/// Validated arguments of roi_align: the shape (N, C, H, W), K and the per-box geometry.
private func roiAlignSetup(_ x: Tensor, _ boxes: Tensor, _ outputSize: (Int, Int), _ spatialScale: Float,
                           _ samplingRatio: Int, _ aligned: Bool) throws -> (Int, Int, Int, Int, [RoIGeometry]) {
    try x.requireDType(.float32, "roi_align")
    try boxes.requireDType(.float32, "roi_align")
    try x.requireRank(4, "roi_align", "input")
    guard boxes.rank == 2, boxes.shape[1] == 5 else {
        throw VisionError.shapeMismatch("roi_align: boxes must have shape [K, 5] (batch_index, x1, y1, x2, y2), got \(boxes.shape)")
    }
    let (ph, pw) = outputSize
    guard ph > 0, pw > 0, ph <= 1 << 16, pw <= 1 << 16 else {
        throw VisionError.invalidArgument("roi_align: output_size (\(ph), \(pw)) must be positive (and at most 65536)")
    }
    guard spatialScale.isFinite, spatialScale > 0 else {
        throw VisionError.invalidArgument("roi_align: spatial_scale must be positive and finite, got \(spatialScale)")
    }
    guard samplingRatio <= 1 << 13 else {
        throw VisionError.invalidArgument("roi_align: sampling_ratio \(samplingRatio) is too large (limit 8192)")
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let b = try boxes.toArray(Float.self)
    let offset: Float = aligned ? 0.5 : 0
    var geometry = [RoIGeometry]()
    geometry.reserveCapacity(boxes.shape[0])
    for k in 0..<boxes.shape[0] {
        let row = b[(5 * k)..<(5 * k + 5)]
        guard row.allSatisfy({ $0.isFinite }) else {
            throw VisionError.invalidArgument("roi_align: box \(k) has a non-finite value: \(Array(row))")
        }
        // torchvision converts the batch index with a C cast (truncation toward zero); negative values are
        // refused here rather than truncated to 0.
        let bi = b[5 * k]
        guard bi >= 0, bi < Float(n) else {
            throw VisionError.invalidArgument("roi_align: box \(k) has batch index \(bi), outside 0..<\(n) for input \(x.shape)")
        }
        let startW = b[5 * k + 1] * spatialScale - offset, startH = b[5 * k + 2] * spatialScale - offset
        let endW = b[5 * k + 3] * spatialScale - offset, endH = b[5 * k + 4] * spatialScale - offset
        var roiW = endW - startW, roiH = endH - startH
        if !aligned { roiW = max(roiW, 1); roiH = max(roiH, 1) }
        guard roiW.isFinite, roiH.isFinite else {
            throw VisionError.invalidArgument("roi_align: box \(k) overflows after scaling by \(spatialScale)")
        }
        let binH = roiH / Float(ph), binW = roiW / Float(pw)
        // The adaptive grid is ceil(roi / pooled), taken in Double so that huge boxes are caught before the
        // conversion to Int; reversed boxes (negative size, aligned=true) get an empty grid as in torchvision.
        let gh = samplingRatio > 0 ? Double(samplingRatio) : max(0, Double(roiH / Float(ph)).rounded(.up))
        let gw = samplingRatio > 0 ? Double(samplingRatio) : max(0, Double(roiW / Float(pw)).rounded(.up))
        guard gh * gw <= Double(roiAlignMaxSamplesPerBin), gh * Double(ph) <= 1e9, gw * Double(pw) <= 1e9 else {
            throw VisionError.invalidArgument(
                "roi_align: box \(k) needs a sampling grid of \(gh) x \(gw) per bin (limits: \(roiAlignMaxSamplesPerBin) samples per bin, 1e9 per box side); use sampling_ratio > 0")
        }
        geometry.append(RoIGeometry(batch: Int(bi), startH: startH, startW: startW, binH: binH, binW: binW,
                                    gridH: Int(gh), gridW: Int(gw)))
    }
    return (n, c, h, w, geometry)
}

/// Bilinear interpolation weights along one axis of length `size` for a sample at `v` (torchvision's boundary
/// rules, see the file comment): nil when the sample lies outside, else (low index, high index, low weight, high
/// weight). The 2-D weight of a sample is the product of its row and column weights.
@inline(__always) func roiAxisWeights(_ v: Float, _ size: Int) -> (Int, Int, Float, Float)? {
    // Written as a guard so that a NaN coordinate (impossible for validated boxes) is outside, never converted.
    guard v >= -1, v <= Float(size) else { return nil }
    var v = v
    if v <= 0 { v = 0 }
    var low = Int(v), high: Int
    if low >= size - 1 {
        low = size - 1; high = low; v = Float(low)
    } else {
        high = low + 1
    }
    let l = v - Float(low)
    return (low, high, 1 - l, l)
}

/// Sparse 1-D weights of every bin along an axis: bin p reads the `count(p)` consecutive indices from `first[p]`
/// with weights `weights[start[p] ..< start[p + 1]]`, the sums over the bin's samples of their bilinear weights.
/// Bins tile the box, so the windows overlap by at most a couple of indices and their total length stays near
/// the axis length plus a few per bin, however large the box.
private struct AxisBins {
    var first: [Int]
    var start: [Int]
    var weights: [Float]

    @inline(__always) func count(_ p: Int) -> Int { start[p + 1] - start[p] }

    init(start origin: Float, bin: Float, bins: Int, grid: Int, size: Int) {
        first = [Int](repeating: 0, count: bins)
        start = [Int](repeating: 0, count: bins + 1)
        for p in 0..<bins {
            var lo = Int.max, hi = -1
            for i in 0..<grid {
                if let (l, h, _, _) = roiAxisWeights(RoIGeometry.sample(origin, bin, p, i, grid), size) {
                    lo = min(lo, l); hi = max(hi, h)
                }
            }
            if hi >= 0 { first[p] = lo }
            start[p + 1] = start[p] + (hi >= 0 ? hi - lo + 1 : 0)
        }
        weights = [Float](repeating: 0, count: start[bins])
        for p in 0..<bins {
            for i in 0..<grid {
                guard let (l, h, wl, wh) = roiAxisWeights(RoIGeometry.sample(origin, bin, p, i, grid), size) else { continue }
                weights[start[p] + l - first[p]] += wl
                weights[start[p] + h - first[p]] += wh
            }
        }
    }

    /// The union of all windows (empty when no sample of any bin lies inside the axis).
    var span: Range<Int> {
        var lo = Int.max, hi = 0
        for p in 0..<first.count where count(p) > 0 { lo = min(lo, first[p]); hi = max(hi, first[p] + count(p)) }
        return lo < hi ? lo..<hi : 0..<0
    }
}

/// RoIAlign of `x` [N, C, H, W] (float32) over `boxes` [K, 5] rows (batch_index, x1, y1, x2, y2) in input
/// coordinates times `spatialScale`; the result is [K, C, outputSize.0, outputSize.1].
///
/// Errors: a batch index outside 0..<N (fractional indices truncate toward zero, as in torchvision), a NaN or
/// infinite box coordinate, a non-positive output size or spatial scale, or an adaptive sampling grid above
/// `roiAlignMaxSamplesPerBin` samples per bin. K = 0 gives an empty result; H or W = 0 gives zeros. Samples of a
/// bin are separable (row weight times column weight), so the kernel pre-sums them into per-bin row and column
/// weights and parallelises over boxes; its summation order differs from the reference by rounding only.
public func roiAlign(_ x: Tensor, boxes: Tensor, outputSize: (Int, Int), spatialScale: Float = 1,
                     samplingRatio: Int = -1, aligned: Bool = false) throws -> Tensor {
    let (_, c, h, w, rois) = try roiAlignSetup(x, boxes, outputSize, spatialScale, samplingRatio, aligned)
    let (ph, pw) = outputSize
    let inputShape = x.shape
    // Boxes are coordinates that select where to sample: like torchvision, no gradient flows to them.
    let out = recordGrad("roiAlign", try Tensor(zeros: [rois.count, c, ph, pw], dtype: .float32), inputs: [x, boxes]) { g in
        [try roiAlignBackward(g, inputShape: inputShape, rois: rois, outputSize: outputSize), nil]
    }
    if out.count == 0 || h == 0 || w == 0 { return out }
    let xc = try x.contiguous().detach()
    let px = SendablePointer(xc.pointer(Float.self)), po = SendablePointer(out.pointer(Float.self))
    let plane = h * w
    let minChunk = max(1, 65536 / max(c * ph * pw, 1))
    parallelFor(rois.count, minChunk: minChunk) { range in
        var rowsum = [Float]()
        for k in range {
            let r = rois[k]
            let ys = AxisBins(start: r.startH, bin: r.binH, bins: ph, grid: r.gridH, size: h)
            let xs = AxisBins(start: r.startW, bin: r.binW, bins: pw, grid: r.gridW, size: w)
            let scale = 1 / r.count
            // Columns that any bin reads: the union of the column windows.
            let cols = xs.span
            if cols.isEmpty { continue }
            let c0 = cols.lowerBound
            rowsum = [Float](repeating: 0, count: cols.count)
            rowsum.withUnsafeMutableBufferPointer { acc in
                for ch in 0..<c {
                    let src = UnsafePointer(px.p + (r.batch * c + ch) * plane)
                    let dst = po.p + (k * c + ch) * ph * pw
                    for p in 0..<ph {
                        // Collapse the bin's rows into one weighted row, then pool each column window of it.
                        for j in 0..<acc.count { acc[j] = 0 }
                        for t in 0..<ys.count(p) {
                            let wy = ys.weights[ys.start[p] + t]
                            let line = src + (ys.first[p] + t) * w + c0
                            for j in 0..<acc.count { acc[j] += wy * line[j] }
                        }
                        for q in 0..<pw {
                            var s: Float = 0
                            let base = xs.first[q] - c0, wq = xs.start[q]
                            for t in 0..<xs.count(q) { s += xs.weights[wq + t] * acc[base + t] }
                            dst[p * pw + q] = s * scale
                        }
                    }
                }
            }
        }
    }
    return out
}

// MARK: - RoIAlignBackward

/// The gradient of `roiAlign` with respect to its input (torchvision's roi_align backward): each bin's gradient,
/// divided by the bin's sample count, is scatter-added to the pixels its samples read with their bilinear
/// weights. Samples are separable, so the per-bin row and column weights of `AxisBins` (the sums over the bin's
/// samples) give the same result as visiting every sample: the bin's column weights spread a gradient row
/// across the box's columns, which is then added to each row the bin reads with that row's weight.
/// One task per (batch, channel) plane of the input, visiting the boxes of that batch element: boxes overlap,
/// so splitting by box would make threads add into the same pixels.
func roiAlignBackward(_ g: Tensor, inputShape: [Int], rois: [RoIGeometry], outputSize: (Int, Int)) throws -> Tensor {
    let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    let (ph, pw) = outputSize
    let gx = try Tensor(zeros: inputShape, dtype: .float32)
    if gx.count == 0 || rois.isEmpty { return gx }
    let gc = try g.contiguous()
    let bins = rois.map { r in
        (AxisBins(start: r.startH, bin: r.binH, bins: ph, grid: r.gridH, size: h),
         AxisBins(start: r.startW, bin: r.binW, bins: pw, grid: r.gridW, size: w))
    }
    var byBatch = [[Int]](repeating: [], count: n)
    for (k, r) in rois.enumerated() { byBatch[r.batch].append(k) }
    let pgo = SendablePointer(gc.pointer(Float.self)), pgx = SendablePointer(gx.pointer(Float.self))
    let plane = h * w, binsPerBox = ph * pw
    let work = max(1, rois.count / max(n, 1) * binsPerBox)
    withExtendedLifetime(gc) {
        parallelFor(n * c, minChunk: max(1, 16384 / work)) { planes in
            let spread = UnsafeMutablePointer<Float>.allocate(capacity: w)
            defer { spread.deallocate() }
            for pl in planes {
                let b = pl / c, ch = pl % c
                let dst = pgx.p + pl &* plane
                for k in byBatch[b] {
                    let (ys, xs) = bins[k]
                    let cols = xs.span
                    if cols.isEmpty { continue }
                    let c0 = cols.lowerBound, width = cols.count
                    let scale = 1 / rois[k].count
                    let gk = pgo.p + (k &* c &+ ch) &* binsPerBox
                    for p in 0..<ph where ys.count(p) > 0 {
                        spread.update(repeating: 0, count: width)
                        for q in 0..<pw {
                            let v = gk[p &* pw &+ q] * scale
                            let base = xs.first[q] &- c0, wq = xs.start[q]
                            for t in 0..<xs.count(q) { spread[base &+ t] += xs.weights[wq &+ t] * v }
                        }
                        for t in 0..<ys.count(p) {
                            let wy = ys.weights[ys.start[p] &+ t]
                            let line = dst + ((ys.first[p] &+ t) &* w &+ c0)
                            for j in 0..<width { line[j] += wy * spread[j] }
                        }
                    }
                }
            }
        }
    }
    return gx
}

/// RoIAlign by the definition (for tests): every sample of every bin is interpolated from its four neighbours
/// and summed, in the order torchvision uses. Same semantics and errors as `roiAlign`.
public func roiAlignReference(_ x: Tensor, boxes: Tensor, outputSize: (Int, Int), spatialScale: Float = 1,
                              samplingRatio: Int = -1, aligned: Bool = false) throws -> Tensor {
    let (_, c, h, w, rois) = try roiAlignSetup(x, boxes, outputSize, spatialScale, samplingRatio, aligned)
    let (ph, pw) = outputSize
    let out = try Tensor(zeros: [rois.count, c, ph, pw], dtype: .float32)
    if out.count == 0 || h == 0 || w == 0 { return out }
    let xs = try x.toArray(Float.self)
    let po = out.pointer(Float.self)
    for (k, r) in rois.enumerated() {
        for ch in 0..<c {
            let base = (r.batch * c + ch) * h * w
            for p in 0..<ph {
                for q in 0..<pw {
                    var sum: Float = 0
                    for iy in 0..<r.gridH {
                        let y = RoIGeometry.sample(r.startH, r.binH, p, iy, r.gridH)
                        for ix in 0..<r.gridW {
                            let xx = RoIGeometry.sample(r.startW, r.binW, q, ix, r.gridW)
                            guard let (yl, yh, wyl, wyh) = roiAxisWeights(y, h),
                                  let (xl, xh, wxl, wxh) = roiAxisWeights(xx, w) else { continue }
                            sum += wyl * wxl * xs[base + yl * w + xl] + wyl * wxh * xs[base + yl * w + xh]
                                + wyh * wxl * xs[base + yh * w + xl] + wyh * wxh * xs[base + yh * w + xh]
                        }
                    }
                    po[((k * c + ch) * ph + p) * pw + q] = sum / r.count
                }
            }
        }
    }
    return out
}
