import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// False when the environment sets VISIONCORE_NO_WINOGRAD: every convolution then runs on the direct conv GEMM
/// (a diagnostic switch; the two differ in rounding only).
let winogradEnabled = getenv("VISIONCORE_NO_WINOGRAD") == nil

/// Whether conv2d runs by Winograd's F(2x2, 3x3) (winograd.c): 3x3 kernels at stride and dilation 1, ungrouped,
/// with enough channels that its 16 GEMMs (4 multiply-adds per output and channel pair instead of 9) outweigh its
/// transforms.
func winogradApplies(_ g: ConvGeometry) -> Bool {
    let w = g.window
    return winogradEnabled && w.kernel == (3, 3) && w.stride == (1, 1) && w.dilation == (1, 1) && g.groups == 1
        && g.inChannels >= 16 && g.outChannels >= 16 && g.outHeight >= 2 && g.outWidth >= 2
}

/// Conv2d of contiguous NCHW `x` with OIHW 3x3 weights `w`, the epilogue fused, by Winograd's F(2x2, 3x3): the
/// weights are transformed once (in parallel over output channels), then chunks of 2x2 output tiles, their
/// transformed inputs and GEMM results sized to stay near L2, run on the threads.
func winogradConv(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ epi: EpiloguePointers,
                  _ out: UnsafeMutablePointer<Float>) throws {
    let cin = g.inChannels, cout = g.outChannels
    let u = try Tensor.uninitialized([16 * cout * cin])
    let pu = SendablePointer(u.pointer(Float.self)), pw = SendablePointer(UnsafeMutablePointer(mutating: w))
    let threads = Threading.threadCount
    let blocks = min(cout, 4 * threads), per = (cout + blocks - 1) / blocks
    forEachWorkItem(blocks, scratch: 9 * cin) { item, buf in
        let o0 = item * per
        guard o0 < cout else { return }
        vck_winograd_weights(pw.p, cout, cin, 0, o0, min(cout, o0 + per), pu.p, buf)
    }
    let job = vck_winograd(x: x, cin: cin, h: g.height, w: g.width, ph: g.window.padding.0, pw: g.window.padding.1,
                           u: UnsafePointer(pu.p), cout: cout, oh: g.outHeight, ow: g.outWidth, y: out,
                           scale: epi.scale, shift: epi.shift, residual: epi.cResidual, activation: epi.cActivation,
                           parameter: epi.parameter, residual_after: epi.residualAfter ? 1 : 0)
    // Tiles per chunk: a multiple of the GEMM tile's width, with the chunk's V and M (16 (cin + cout) floats per
    // tile) near 1.5 MB, and at least three chunks per thread where the batch has them.
    let nr = convGemmTile.columns, tiles = g.batch * ((g.outHeight + 1) / 2) * ((g.outWidth + 1) / 2)
    let fit = max(1, 24_576 / (cin + cout) / nr) * nr, share = (tiles + 3 * threads - 1) / (3 * threads)
    let chunk = min(fit, max(nr, (share + nr - 1) / nr * nr)), chunks = (tiles + chunk - 1) / chunk
    var scratchJob = job
    let scratch = vck_winograd_scratch(&scratchJob, chunk)
    let failed = Atomic<Bool>(false)
    let box = UncheckedBox(job)
    withExtendedLifetime(u) {
        forEachWorkItem(chunks, scratch: scratch) { item, buf in
            var job = box.value
            let t0 = item * chunk
            if vck_winograd_run(&job, t0, min(tiles, t0 + chunk), buf) != 0 { failed.store(true, ordering: .relaxed) }
        }
    }
    if failed.load(ordering: .relaxed) { throw VisionError.outOfMemory("conv2d: no memory for the Winograd GEMMs' scratch") }
    epi.finishDeferred(out, g.batch * cout * g.outHeight * g.outWidth)
}
