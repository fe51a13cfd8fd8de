import CKernels

/// Training-mode batch normalization as one op: the batch statistics, the normalization and the affine transform
/// in two passes over x, and a backward in two passes over (x, dL/dy) — instead of the ten or so separate
/// element-wise ops (and their backward rules) of the composed formula.

/// y = (x - mean) / sqrt(var + eps) * weight + bias with the mean and biased variance of x over every dimension
/// but 1 (x is [N, C, ...]). Returns y and the batch mean and biased variance [C] (for the running statistics;
/// not differentiable). Differentiable in x, weight and bias, through the statistics, as torch's batch_norm in
/// training mode.
///
/// `residual` (x's shape) is added to y and `relu` applied after, in the same pass over the output: a ResNet
/// block's BatchNorm → add → ReLU as one op, whose backward masks the gradient by the output once for both.
public func batchNormTraining(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5, residual: Tensor? = nil,
                              relu: Bool = false) throws -> (output: Tensor, mean: Tensor, variance: Tensor) {
    try x.requireDType(.float32, "batchNormTraining")
    guard x.rank >= 2, x.shape[1] >= 1 else {
        throw VisionError.shapeMismatch("batchNormTraining: input must be [N, C, ...] with C >= 1, got \(x.shape)")
    }
    guard eps >= 0, eps.isFinite else { throw VisionError.invalidArgument("batchNormTraining: eps must be finite and >= 0, got \(eps)") }
    let c = x.shape[1], spans = x.shape[0], span = x.shape[2...].reduce(1, *)
    let count = spans * span
    guard count > 1 else {
        throw VisionError.invalidArgument("batchNormTraining: needs more than one value per channel, got input \(x.shape)")
    }
    for (t, name) in [(weight, "weight"), (bias, "bias")] {
        guard let t else { continue }
        try t.requireDType(.float32, "batchNormTraining \(name)")
        guard t.shape == [c] else { throw VisionError.shapeMismatch("batchNormTraining: \(name) \(t.shape) must be [\(c)]") }
    }
    if let residual {
        try residual.requireDType(.float32, "batchNormTraining residual")
        guard residual.shape == x.shape else {
            throw VisionError.shapeMismatch("batchNormTraining: residual \(residual.shape) must match the input \(x.shape)")
        }
    }
    let xc = try x.detach().contiguous(), rc = try residual?.detach().contiguous()
    let pr = rc.map { SendablePointer($0.pointer(Float.self)) }
    let w = try weight?.detach().toArray(Float.self) ?? [Float](repeating: 1, count: c)
    let b = try bias?.detach().toArray(Float.self) ?? [Float](repeating: 0, count: c)
    var meanOut = [Float](repeating: 0, count: c), varOut = meanOut, rstdOut = meanOut
    let y = try Tensor.uninitialized(x.shape)
    let px = SendablePointer(xc.pointer(Float.self)), py = SendablePointer(y.pointer(Float.self))
    meanOut.withUnsafeMutableBufferPointer { mb in
        varOut.withUnsafeMutableBufferPointer { vb in
            rstdOut.withUnsafeMutableBufferPointer { rb in
                let pm = SendablePointer(mb.baseAddress!), pv = SendablePointer(vb.baseAddress!), prs = SendablePointer(rb.baseAddress!)
                withExtendedLifetime((xc, rc)) {
                    parallelFor(c, minChunk: max(1, 65_536 / max(count, 1))) { channels in
                        if span < smallSpan {
                            smallSpanStatistics(px.p, py.p, spans, c, span, channels, w, b, eps, pm.p, pv.p, prs.p,
                                                residual: pr?.p, relu: relu)
                            return
                        }
                        // Each pass runs image after image over the chunk's channels, which are contiguous in each
                        // image (a stream the prefetcher follows); every channel still sums its spans in image order.
                        let c0 = channels.lowerBound, width = channels.count
                        var total = [Double](repeating: 0, count: width)
                        for n in 0..<spans {
                            for j in 0..<width { total[j] += rowSum(px.p + (n * c + c0 + j) * span, span) { $0 } }
                        }
                        let m = total.map { Float($0 / Double(count)) }
                        var d = [Double](repeating: 0, count: width), q = d
                        for n in 0..<spans {
                            for j in 0..<width {
                                let (dn, qn) = rowDeviationSums(px.p + (n * c + c0 + j) * span, span, m[j])
                                d[j] += dn; q[j] += qn
                            }
                        }
                        var a = [Float](repeating: 0, count: width), shift = a
                        for j in 0..<width {
                            let ch = c0 + j
                            let mean = Double(m[j]) + d[j] / Double(count)
                            let variance = max(0, (q[j] - d[j] * d[j] / Double(count)) / Double(count))
                            let rstd = 1 / (variance + eps).squareRoot()
                            (a[j], shift[j]) = (Float(Double(w[ch]) * rstd), Float(Double(b[ch]) - mean * Double(w[ch]) * rstd))
                            (pm.p[ch], pv.p[ch], prs.p[ch]) = (Float(mean), Float(variance), Float(rstd))
                        }
                        for n in 0..<spans {
                            for j in 0..<width {
                                let o = (n * c + c0 + j) * span
                                affineSpan(px.p + o, py.p + o, span, a[j], shift[j])
                                if pr != nil || relu { addAndRectify(py.p + o, pr.map { UnsafePointer($0.p + o) }, span, relu) }
                            }
                        }
                    }
                }
            }
        }
    }
    let meanT = try Tensor(meanOut, shape: [c]), varT = try Tensor(varOut, shape: [c])
    let saved = (x: xc, mean: meanOut, rstd: rstdOut, weight: w, y: relu ? y : nil)
    let inputs = [x] + [weight, bias, residual].compactMap { $0 }
    let out = recordGrad("batchNormTraining", y, inputs: inputs) { g in
        // Below the ReLU the gradient flows where the output is positive. Without a residual both passes read it
        // masked; a residual receives it, so then it is written out first.
        let gc = try g.contiguous(), maskInside = relu && residual == nil
        let gm = try saved.y.map { maskInside ? gc : try unaryGradient(.relu, gc, $0, $0, parameter: 0) } ?? gc
        let (gx, gw, gb) = try batchNormTrainingBackward(gm, saved.x, mean: saved.mean, rstd: saved.rstd,
                                                         weight: saved.weight, mask: maskInside ? saved.y : nil)
        return [gx] + (weight != nil ? [gw] : []) + (bias != nil ? [gb] : []) + (residual != nil ? [gm] : [])
    }
    return (out, meanT, varT)
}

/// y += residual (when given), then y = relu(y), over a span.
@inline(__always) private func addAndRectify(_ y: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>?, _ n: Int, _ relu: Bool) {
    @inline(__always) func finish(_ v: F16) -> F16 { relu ? v.replacing(with: 0, where: v .< 0) : v }  // NaN stays NaN
    var i = 0
    while i + 16 <= n {
        let v = loadF16(y + i)
        storeF16(finish(r.map { v + loadF16($0 + i) } ?? v), y + i)
        i += 16
    }
    if i < n {
        let v = loadPartial(y + i, n - i, fill: 0)
        storePartial(finish(r.map { v + loadPartial($0 + i, n - i, fill: 0) } ?? v), y + i, n - i)
    }
}

/// With x̂ = (x - mean) * rstd and a = weight * rstd: dL/dbias = Σ g, dL/dweight = Σ g x̂ and
/// dL/dx = a * (g - Σg / M - x̂ * Σ(g x̂) / M), an affine function of (g, x) per channel. With `mask` (a following
/// ReLU's output), g is read as 0 where the mask is not positive: the ReLU's gradient inside both passes.
private func batchNormTrainingBackward(_ g: Tensor, _ x: Tensor, mean: [Float], rstd: [Float], weight: [Float],
                                       mask: Tensor? = nil) throws -> (Tensor, Tensor, Tensor) {
    let c = x.shape[1], spans = x.shape[0], span = x.shape[2...].reduce(1, *), count = Double(spans * span)
    let gx = try Tensor.uninitialized(x.shape)
    var gw = [Float](repeating: 0, count: c), gb = gw
    let px = SendablePointer(x.pointer(Float.self)), pg = SendablePointer(g.pointer(Float.self)), po = SendablePointer(gx.pointer(Float.self))
    let pk = mask.map { SendablePointer($0.pointer(Float.self)) }
    gw.withUnsafeMutableBufferPointer { wb in
        gb.withUnsafeMutableBufferPointer { bb in
            let pw = SendablePointer(wb.baseAddress!), pb = SendablePointer(bb.baseAddress!)
            withExtendedLifetime((x, g, mask)) {
                parallelFor(c, minChunk: max(1, 65_536 / max(Int(count), 1))) { channels in
                    if span < smallSpan {
                        smallSpanBackward(pg.p, pk.map { UnsafePointer($0.p) }, px.p, po.p, spans, c, span, channels, mean, rstd,
                                          weight, pw.p, pb.p)
                        return
                    }
                    // Image after image over the chunk's channels, as in the forward.
                    let c0 = channels.lowerBound, width = channels.count
                    var sg = [Double](repeating: 0, count: width), sgx = sg
                    for n in 0..<spans {
                        for j in 0..<width {
                            let o = (n * c + c0 + j) * span
                            let (a, b) = spanGradientSums(pg.p + o, pk.map { UnsafePointer($0.p + o) }, px.p + o, span,
                                                          mean[c0 + j])
                            sg[j] += a; sgx[j] += b
                        }
                    }
                    var coefficients = [(Float, Float, Float)](repeating: (0, 0, 0), count: width)
                    for j in 0..<width {
                        let ch = c0 + j, r = Double(rstd[ch])
                        let sgxhat = sgx[j] * r   // Σ g x̂
                        let a = Double(weight[ch]) * r
                        // dx = a g + p x + q with p = -a r Σ(g x̂) / M and q = -a Σg / M - p mean.
                        let p = -a * r * sgxhat / count
                        let q = -a * sg[j] / count - p * Double(mean[ch])
                        coefficients[j] = (Float(a), Float(p), Float(q))
                        pw.p[ch] = Float(sgxhat); pb.p[ch] = Float(sg[j])
                    }
                    for n in 0..<spans {
                        for j in 0..<width {
                            let o = (n * c + c0 + j) * span, (a, p, q) = coefficients[j]
                            affinePairSpan(pg.p + o, pk.map { UnsafePointer($0.p + o) }, px.p + o, po.p + o, span, a, p, q)
                        }
                    }
                }
            }
        }
    }
    return (gx, try Tensor(gw, shape: [c]), try Tensor(gb, shape: [c]))
}

/// g, or 0 where the mask (a ReLU's output) is not positive.
@inline(__always) private func masked(_ g: F16, _ mask: F16) -> F16 { F16().replacing(with: g, where: mask .> 0) }

/// (Σ g, Σ g (x - m)) over a span, g masked by `mask` when given.
@inline(__always) private func spanGradientSums(_ g: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?, _ x: UnsafePointer<Float>,
                                                _ n: Int, _ m: Float) -> (Double, Double) {
    let vm = F16(repeating: m)
    var s = 0.0, t = 0.0, i = 0
    while i < n {
        let end = min(n, i + sumBlock)
        var a = F16(), b = F16()
        while i + 16 <= end {
            let gv = mask.map { masked(loadF16(g + i), loadF16($0 + i)) } ?? loadF16(g + i)
            a += gv; b = vmadd(gv, loadF16(x + i) - vm, b); i += 16
        }
        if i < end {
            let gp = loadPartial(g + i, end - i, fill: 0)
            let gv = mask.map { masked(gp, loadPartial($0 + i, end - i, fill: 0)) } ?? gp
            a += gv; b = vmadd(gv, loadPartial(x + i, end - i, fill: m) - vm, b); i = end
        }
        s += Double(a.sum()); t += Double(b.sum())
    }
    return (s, t)
}

/// o = a g + p x + q over a span, g masked by `mask` when given.
@inline(__always) private func affinePairSpan(_ g: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?, _ x: UnsafePointer<Float>,
                                              _ o: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float, _ p: Float, _ q: Float) {
    let va = F16(repeating: a), vp = F16(repeating: p), vq = F16(repeating: q)
    var i = 0
    while i + 16 <= n {
        let gv = mask.map { masked(loadF16(g + i), loadF16($0 + i)) } ?? loadF16(g + i)
        storeF16(vmadd(gv, va, vmadd(loadF16(x + i), vp, vq)), o + i); i += 16
    }
    if i < n {
        let gp = loadPartial(g + i, n - i, fill: 0)
        let gv = mask.map { masked(gp, loadPartial($0 + i, n - i, fill: 0)) } ?? gp
        storePartial(vmadd(gv, va, vmadd(loadPartial(x + i, n - i, fill: 0), vp, vq)), o + i, n - i)
    }
}

/// Below this many values per image and channel (maps under 8x8), the passes run over each image's contiguous
/// block of channels (CKernels' vck_bn_*) instead of channel by channel over spans of a few values.
private let smallSpan = 64

/// The forward of batchNormTraining for the channels `channels` of x [n, c, span]: the same statistics (mean,
/// then the centred sums, in double), y, and mean / biased variance / rstd per channel.
private func smallSpanStatistics(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ c: Int,
                                 _ span: Int, _ channels: Range<Int>, _ w: [Float], _ b: [Float], _ eps: Double,
                                 _ meanOut: UnsafeMutablePointer<Float>, _ varOut: UnsafeMutablePointer<Float>,
                                 _ rstdOut: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>?, relu: Bool) {
    let (c0, c1, count) = (channels.lowerBound, channels.upperBound, Double(n * span))
    let width = channels.count, scratch = UnsafeMutablePointer<Double>.allocate(capacity: 3 * width * span + 3 * width)
    defer { scratch.deallocate() }
    let s1 = scratch + 3 * width * span, s2 = s1 + width
    let floats = UnsafeMutableRawPointer(s2 + width).bindMemory(to: Float.self, capacity: 2 * width)
    let center = floats - c0, scale = floats + width - c0   // indexed by channel
    vck_bn_sums(nil, nil, x, n, c, span, c0, c1, nil, s1, nil, scratch)
    for ch in channels { center[ch] = Float(s1[ch - c0] / count) }
    vck_bn_sums(nil, nil, x, n, c, span, c0, c1, center, s1, s2, scratch)
    for ch in channels {
        let d = s1[ch - c0], q = s2[ch - c0]
        let mean = Double(center[ch]) + d / count
        let variance = max(0, (q - d * d / count) / count)
        let rstd = 1 / (variance + eps).squareRoot()
        scale[ch] = Float(Double(w[ch]) * rstd)
        center[ch] = Float(Double(b[ch]) - mean * Double(w[ch]) * rstd)   // now the shift
        (meanOut[ch], varOut[ch], rstdOut[ch]) = (Float(mean), Float(variance), Float(rstd))
    }
    vck_bn_affine(x, y, n, c, span, c0, c1, scale, center, residual, relu ? 1 : 0, UnsafeMutableRawPointer(scratch).bindMemory(to: Float.self, capacity: 2 * width * span))
}

/// The backward of batchNormTraining for the channels `channels` (see batchNormTrainingBackward for the formulas).
private func smallSpanBackward(_ g: UnsafeMutablePointer<Float>, _ mask: UnsafePointer<Float>?, _ x: UnsafeMutablePointer<Float>,
                               _ o: UnsafeMutablePointer<Float>, _ n: Int, _ c: Int, _ span: Int, _ channels: Range<Int>,
                               _ mean: [Float], _ rstd: [Float], _ weight: [Float], _ gw: UnsafeMutablePointer<Float>,
                               _ gb: UnsafeMutablePointer<Float>) {
    let (c0, c1, count) = (channels.lowerBound, channels.upperBound, Double(n * span))
    let width = channels.count, scratch = UnsafeMutablePointer<Double>.allocate(capacity: 3 * width * span + 2 * width)
    defer { scratch.deallocate() }
    let sg = scratch + 3 * width * span, sgx = sg + width
    let coefficients = UnsafeMutablePointer<Float>.allocate(capacity: 3 * width)
    defer { coefficients.deallocate() }
    let (a, p, q) = (coefficients - c0, coefficients + width - c0, coefficients + 2 * width - c0)
    mean.withUnsafeBufferPointer { m in
        vck_bn_sums(g, mask, x, n, c, span, c0, c1, m.baseAddress!, sg, sgx, scratch)
    }
    for ch in channels {
        let r = Double(rstd[ch]), sgxhat = sgx[ch - c0] * r, ach = Double(weight[ch]) * r
        let pch = -ach * r * sgxhat / count
        (a[ch], p[ch], q[ch]) = (Float(ach), Float(pch), Float(-ach * sg[ch - c0] / count - pch * Double(mean[ch])))
        (gw[ch], gb[ch]) = (Float(sgxhat), Float(sg[ch - c0]))
    }
    vck_bn_grad_apply(g, mask, x, o, n, c, span, c0, c1, a, p, q, UnsafeMutableRawPointer(scratch).bindMemory(to: Float.self, capacity: 3 * width * span))
}
