import CKernels

// Depthwise convolution kernels (groups == Cin == Cout): planes are independent, so each is one work item.

/// Depthwise convolution (one filter per channel), one (image, channel) plane per work item. Square kernels and
/// strides without dilation run `vck_depthwise_plane` (`phasePlaneDepthwise`) unless the output rows are wide
/// and unstrided; the rest copy each plane into a padded, stride-phase-split scratch plane (`PhasePlaneLayout`)
/// and compute every output row 16 columns at a time with all kh x kw taps accumulated in registers.
func depthwiseConv(_ g: ConvGeometry, _ layout: PhasePlaneLayout, _ x: UnsafePointer<Float>,
                   _ w: UnsafePointer<Float>, _ epi: EpiloguePointers, _ out: UnsafeMutablePointer<Float>) {
    let c = g.inChannels, area = g.kernelArea
    if phasePlaneDepthwiseApplies(g) { return phasePlaneDepthwise(g, x, w, epi, out) }
    // A scale folds into the few weights (C x kh x kw) instead of costing a pass over the output.
    guard let scale = epi.scale else { return depthwiseConv(g, layout, x, w, epi.shift, epi, out) }
    let scaled = (0..<(c * area)).map { w[$0] * scale[$0 / area] }
    let post = EpiloguePointers(scale: nil, shift: nil, residual: epi.residual, activation: epi.activation,
                                parameter: epi.parameter, residualAfter: epi.residualAfter)
    scaled.withUnsafeBufferPointer { depthwiseConv(g, layout, x, $0.baseAddress!, epi.shift, post, out) }
}

/// Planes of `outputs` pixels a thread needs to pay for its fork: each is about 2 * kh * kw * outputs flops.
private func planesPerThread(_ outputs: Int) -> Int { max(1, 16_384 / max(outputs, 1)) }

/// The depthwise kernel proper: bias inside the tap loop, residual and activation on each plane after it.
private func depthwiseConv(_ g: ConvGeometry, _ layout: PhasePlaneLayout, _ x: UnsafePointer<Float>,
                           _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ post: EpiloguePointers,
                           _ out: UnsafeMutablePointer<Float>) {
    let c = g.inChannels, hw = g.height * g.width, ohw = g.outHeight * g.outWidth, area = g.kernelArea
    let sx = SendablePointer(UnsafeMutablePointer(mutating: x)), so = SendablePointer(out)
    let sw = SendablePointer(UnsafeMutablePointer(mutating: w)), sb = bias.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
    forEachWorkItem(g.batch * c, scratch: layout.count, minItemsPerThread: planesPerThread(ohw)) { plane, buf in
        let ch = plane % c
        layout.fill(buf, from: sx.p + plane * hw, fill: 0)
        let b = sb.map { $0.p[ch] } ?? 0
        if g.window.kernel == (3, 3) {
            depthwisePlane3x3(buf, layout, g, sw.p + ch * area, b, so.p + plane * ohw)
        } else {
            depthwisePlane(buf, layout, g, sw.p + ch * area, b, so.p + plane * ohw)
        }
        if post.needsRowPass { post.apply(so.p + plane * ohw, ohw, channel: ch, offset: plane * ohw) }
    }
}

/// The 3x3 depthwise kernel with its nine weights hoisted into registers (two 8-lane accumulators per step).
private func depthwisePlane3x3(_ buf: UnsafePointer<Float>, _ l: PhasePlaneLayout, _ g: ConvGeometry,
                               _ wt: UnsafePointer<Float>, _ bias: Float, _ out: UnsafeMutablePointer<Float>) {
    let (sh, _) = g.window.stride, (dh, dw) = g.window.dilation
    let rs = l.rowStride, wo = g.outWidth
    let t0 = l.tapOffset(0), t1 = l.tapOffset(dw), t2 = l.tapOffset(2 &* dw)
    let w00 = F8(repeating: wt[0]), w01 = F8(repeating: wt[1]), w02 = F8(repeating: wt[2])
    let w10 = F8(repeating: wt[3]), w11 = F8(repeating: wt[4]), w12 = F8(repeating: wt[5])
    let w20 = F8(repeating: wt[6]), w21 = F8(repeating: wt[7]), w22 = F8(repeating: wt[8])
    let vb = F8(repeating: bias)
    var first = 0
    if sh == 1 && dh == 1 {
        // Row stride 1 without row dilation (most depthwise layers): two output rows share two of their four
        // input rows, so computing them together saves a third of the loads. The tap offsets stay run-time
        // values on purpose: constant offsets let LLVM merge the overlapping loads into slow shuffles.
        while first + 2 <= g.outHeight {
            let r0 = buf + first &* rs, r1 = r0 + rs, r2 = r1 + rs, r3 = r2 + rs
            let o0 = out + first &* wo, o1 = o0 + wo
            var i = 0
            while i < wo {
                var a0 = vb, a1 = vb, b0 = vb, b1 = vb
                @inline(__always) func row(_ r: UnsafePointer<Float>, _ k: Int, _ wa: F8, _ wb: F8, _ top: Bool, _ bottom: Bool) {
                    let v0 = load8(r + (i &+ k)), v1 = load8(r + (i &+ k &+ 8))
                    if top { a0 = vmadd(v0, wa, a0); a1 = vmadd(v1, wa, a1) }
                    if bottom { b0 = vmadd(v0, wb, b0); b1 = vmadd(v1, wb, b1) }
                }
                row(r0, t0, w00, w00, true, false); row(r0, t1, w01, w01, true, false); row(r0, t2, w02, w02, true, false)
                row(r1, t0, w10, w00, true, true); row(r1, t1, w11, w01, true, true); row(r1, t2, w12, w02, true, true)
                row(r2, t0, w20, w10, true, true); row(r2, t1, w21, w11, true, true); row(r2, t2, w22, w12, true, true)
                row(r3, t0, w20, w20, false, true); row(r3, t1, w21, w21, false, true); row(r3, t2, w22, w22, false, true)
                store16(a0, a1, o0 + i, wo &- i)
                store16(b0, b1, o1 + i, wo &- i)
                i &+= 16
            }
            first &+= 2
        }
    }
    for oy in first..<g.outHeight {
        // The nine tap pointers of this output row; a step of 16 outputs advances each by 16 columns.
        let r0 = buf + oy &* sh &* rs, r1 = r0 + dh &* rs, r2 = r1 + dh &* rs
        var p00 = r0 + t0, p01 = r0 + t1, p02 = r0 + t2
        var p10 = r1 + t0, p11 = r1 + t1, p12 = r1 + t2
        var p20 = r2 + t0, p21 = r2 + t1, p22 = r2 + t2
        var o = out + oy &* wo
        var left = wo
        while left > 0 {
            var a0 = vmadd(load8(p00), w00, vb), a1 = vmadd(load8(p00 + 8), w00, vb)
            a0 = vmadd(load8(p01), w01, a0); a1 = vmadd(load8(p01 + 8), w01, a1)
            a0 = vmadd(load8(p02), w02, a0); a1 = vmadd(load8(p02 + 8), w02, a1)
            a0 = vmadd(load8(p10), w10, a0); a1 = vmadd(load8(p10 + 8), w10, a1)
            a0 = vmadd(load8(p11), w11, a0); a1 = vmadd(load8(p11 + 8), w11, a1)
            a0 = vmadd(load8(p12), w12, a0); a1 = vmadd(load8(p12 + 8), w12, a1)
            a0 = vmadd(load8(p20), w20, a0); a1 = vmadd(load8(p20 + 8), w20, a1)
            a0 = vmadd(load8(p21), w21, a0); a1 = vmadd(load8(p21 + 8), w21, a1)
            a0 = vmadd(load8(p22), w22, a0); a1 = vmadd(load8(p22 + 8), w22, a1)
            store16(a0, a1, o, left)
            p00 += 16; p01 += 16; p02 += 16; p10 += 16; p11 += 16; p12 += 16; p20 += 16; p21 += 16; p22 += 16
            o += 16
            left &-= 16
        }
    }
}

/// Depthwise kernel for any kernel size: the taps are a loop, weights broadcast from memory.
private func depthwisePlane(_ buf: UnsafePointer<Float>, _ l: PhasePlaneLayout, _ g: ConvGeometry,
                            _ wt: UnsafePointer<Float>, _ bias: Float, _ out: UnsafeMutablePointer<Float>) {
    let (kh, kw) = g.window.kernel, (sh, _) = g.window.stride, (dh, dw) = g.window.dilation
    let rs = l.rowStride, wo = g.outWidth
    withUnsafeTemporaryAllocation(of: Int.self, capacity: kw) { taps in
        for kx in 0..<kw { taps[kx] = l.tapOffset(kx &* dw) }
        let vb = F8(repeating: bias)
        for oy in 0..<g.outHeight {
            let base = buf + oy &* sh &* rs
            let o = out + oy &* wo
            var ox = 0
            while ox < wo {
                var a0 = vb, a1 = vb
                for ky in 0..<kh {
                    let r = base + ky &* dh &* rs + ox
                    let wr = wt + ky &* kw
                    for kx in 0..<kw {
                        let p = r + taps[kx], wv = F8(repeating: wr[kx])
                        a0 = vmadd(load8(p), wv, a0)
                        a1 = vmadd(load8(p + 8), wv, a1)
                    }
                }
                store16(a0, a1, o + ox, wo &- ox)
                ox &+= 16
            }
        }
    }
}

/// True when CKernels' phase-plane depthwise kernel runs `g`: square kernel and stride, dilation 1, and a
/// strided or narrow output (wide stride-1 rows fill the row kernel's vectors and need no phase split).
private func phasePlaneDepthwiseApplies(_ g: ConvGeometry) -> Bool {
    let w = g.window
    return w.kernel.0 == w.kernel.1 && w.stride.0 == w.stride.1 && w.dilation == (1, 1)
        && (w.stride.0 > 1 || g.outWidth <= 32)
        && vck_depthwise_scratch(g.outHeight, g.outWidth, w.kernel.0, w.stride.0) <= PhasePlaneLayout.maxCount
}

/// Depthwise convolution by `vck_depthwise_plane`, one (image, channel) plane per work item: the plane's
/// stride phases in scratch, one flat vectorized loop over all its outputs, the epilogue as rows are stored.
private func phasePlaneDepthwise(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                 _ epi: EpiloguePointers, _ out: UnsafeMutablePointer<Float>) {
    let c = g.inChannels, hw = g.height * g.width, ohw = g.outHeight * g.outWidth, area = g.kernelArea
    let k = g.window.kernel.0, s = g.window.stride.0, (ph, pw) = g.window.padding
    let sx = SendablePointer(UnsafeMutablePointer(mutating: x)), so = SendablePointer(out)
    let sw = SendablePointer(UnsafeMutablePointer(mutating: w))
    let act = epi.cActivation, residual = epi.cResidual.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
    let scratch = vck_depthwise_scratch(g.outHeight, g.outWidth, k, s)
    forEachWorkItem(g.batch * c, scratch: scratch, minItemsPerThread: planesPerThread(ohw)) { plane, buf in
        let ch = plane % c
        let scale: Float = epi.scale?[ch] ?? 1, shift: Float = epi.shift?[ch] ?? 0
        let res: UnsafePointer<Float>? = residual.map { UnsafePointer($0.p + plane &* ohw) }
        vck_depthwise_plane(sx.p + plane &* hw, g.height, g.width, k, s, ph, pw, g.outHeight, g.outWidth,
                            sw.p + ch &* area, scale, shift, res, act, epi.parameter, epi.residualAfter ? 1 : 0,
                            so.p + plane &* ohw, buf)
    }
    epi.finishDeferred(out, g.batch * c * ohw)
}
