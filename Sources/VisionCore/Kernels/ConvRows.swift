import CKernels
import Synchronization

/// Whether a conv runs on `convRows` (conv_rows.c, output pixels as the register tile's rows): the networks'
/// stems, a few input channels (ResNet's 3 -> 64 at 7x7 and ReXNet's 3 -> 32 at 3x3, stride 2, padded), whose
/// GEMM has too few rows of k (27 to 147) to pay for the conv GEMM's tiles and whose strided rows go through its
/// phase copy. Ungrouped, undilated, at least two taps and six output columns, on kernels with AVX2 (the calling
/// thread's choice, which the pool's workers share).
func convRowsApplies(_ g: ConvGeometry) -> Bool {
    let w = g.window
    return g.groups == 1 && g.inChannels <= 4 && w.dilation == (1, 1) && g.kernelArea > 1 && g.outWidth >= 6
        && vck_conv_gemm_isa() >= 3
}

/// `convRowsApplies` convolutions: each image's input zero-padded (threads over channels), the weights
/// transposed to taps x channels, then output rows spread over the threads (`vck_conv_rows_run`).
func convRows(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ epi: EpiloguePointers,
              _ out: UnsafeMutablePointer<Float>) throws {
    let win = g.window, cin = g.inChannels, cout = g.outChannels, oh = g.outHeight, ow = g.outWidth
    let hp = (oh - 1) * win.stride.0 + win.span.0, wp = (ow - 1) * win.stride.1 + win.span.1
    let plane = hp * wp, k = cin * g.kernelArea, cp = (cout + 15) / 16 * 16
    let padded = try Tensor.uninitialized([g.batch * cin * plane])
    let weights = try Tensor.zeros([k * cp])
    let sx = SendablePointer(UnsafeMutablePointer(mutating: x)), sp = SendablePointer(padded.pointer(Float.self))
    forEachWorkItem(g.batch * cin, scratch: 0) { item, _ in
        vck_conv_pack_input(sx.p + item * g.height * g.width, 1, g.height, g.width, 1, 1, win.padding.0,
                            win.padding.1, hp, wp, sp.p + item * plane)
    }
    vck_transpose(w, cout, k, k, weights.pointer(Float.self), cp)
    var offsets = [Int]()
    offsets.reserveCapacity(k)
    for c in 0..<cin {
        for ky in 0..<win.kernel.0 {
            for kx in 0..<win.kernel.1 { offsets.append(c * plane + ky * win.dilation.0 * wp + kx * win.dilation.1) }
        }
    }
    let failed = Atomic<Bool>(false)
    let sw = SendablePointer(weights.pointer(Float.self)), so = SendablePointer(out)
    let act = epi.cActivation, residual = epi.cResidual, ohw = oh * ow
    withExtendedLifetime((padded, weights)) {
        offsets.withUnsafeBufferPointer { koff in
            let sk = SendablePointer(UnsafeMutablePointer(mutating: koff.baseAddress!))
            forEachWorkItem(g.batch * oh, scratch: 32 * ow + 256) { item, scratch in
                let n = item / oh, oy = item % oh
                var job = vck_conv_rows(
                    x: sp.p + n * cin * plane, hp: hp, wp: wp, sh: win.stride.0, sw: win.stride.1, koff: sk.p, k: k,
                    wt: sw.p, cout: cout, cp: cp, y: so.p + n * cout * ohw, oh: oh, ow: ow,
                    scale: epi.scale, shift: epi.shift, residual: residual.map { $0 + n * cout * ohw },
                    activation: act, parameter: epi.parameter, residual_after: epi.residualAfter ? 1 : 0)
                if vck_conv_rows_run(&job, oy, oy + 1, scratch) != 0 { failed.store(true, ordering: .relaxed) }
            }
        }
    }
    if failed.load(ordering: .relaxed) { throw VisionError.unsupported("conv2d: the row kernels need AVX2 and FMA") }
    epi.finishDeferred(out, g.batch * cout * ohw)
}
