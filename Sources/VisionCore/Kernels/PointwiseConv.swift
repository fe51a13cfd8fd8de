import CKernels

/// Whether a conv is 1x1, stride 1, unpadded and ungrouped on small maps (under 64 pixels) and either has under
/// 16 pixels or, on CPUs without AVX-512, reduces the channels: such a conv is a product per image, Y_n = W · X_n,
/// which the batched conv GEMM would run only after packing the input into its shared column space and before
/// scattering the outputs back, copies that cost more than the products on maps of a few dozen pixels. Expansions
/// on 16 to 63 pixels run on the conv GEMM all the same, measured faster at batch 1 and no slower at 8 (resnet50's
/// 512 -> 2048 at 7x7: 0.69 -> 0.59 ms; its 2048 -> 512, 0.62 here against 0.65 there, on AVX2). With AVX-512's
/// kernels (a 7x7 map's last column on the columns kernel) the reductions go there too: on a Zen 4, in-process,
/// resnet50's 2048 -> 512 at 7x7 0.75-0.89x the time at batch 1 and 0.8-0.85x at 8, rexnet_150 0.99x at both.
/// The rule ignores the batch size, so that an image gets the same bits alone or in a batch.
func pointwiseSmallMapsApplies(_ g: ConvGeometry) -> Bool {
    let w = g.window, pixels = g.outHeight * g.outWidth
    return w.kernel == (1, 1) && w.stride == (1, 1) && w.padding == (0, 0) && g.groups == 1
        && pixels < 64 && (pixels < 16 || g.outChannels < g.inChannels && vck_conv_gemm_isa() < 4)
}

/// Output channels per OpenBLAS product of `pointwiseSmallMapsConv`: an even number of blocks (multiples of 8) of
/// up to 256 channels, as equal as that allows, so that a single image gives two threads equal work: a projection
/// to 150-200 channels two halves, rexnet_150's 1560 -> 277 at 7x7 144 + 133 channels where blocks of 256 left
/// the second thread 21 (and its 1458 -> 260, 4); 2 threads, 1566 -> 277: 0.74 -> 0.45 ms. The rule reads the
/// channel count only, so an image is computed the same way whatever the batch.
func pointwiseRowBlock(outChannels cout: Int) -> Int {
    let blocks = (cout + 255) / 256, even = max(2, blocks + blocks % 2)
    return max(8, ((cout + even - 1) / even + 7) / 8 * 8)
}

/// `pointwiseSmallMapsApplies` convolutions: OpenBLAS products per image and block of output channels on the NCHW
/// input in place (spread over the threads), then the epilogue row by row (the conv GEMM's own,
/// `vck_conv_finish_row`).
func pointwiseSmallMapsConv(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                            _ epi: EpiloguePointers, _ out: UnsafeMutablePointer<Float>) {
    let hw = g.outHeight * g.outWidth, cin = g.inChannels, cout = g.outChannels
    let act = epi.cActivation, residual = epi.cResidual
    let rowPass = epi.scale != nil || epi.shift != nil || residual != nil || act >= 0
    let sx = SendablePointer(UnsafeMutablePointer(mutating: x)), sw = SendablePointer(UnsafeMutablePointer(mutating: w))
    let so = SendablePointer(out)
    let rowBlock = pointwiseRowBlock(outChannels: cout), blocks = (cout + rowBlock - 1) / rowBlock
    // Waking a second thread costs more than a product of under a million flops (the SE convs on 1x1 maps).
    let flops = 2 * g.batch * cout * cin * hw
    forEachWorkItem(g.batch * blocks, scratch: 0, minItemsPerThread: flops < 1 << 20 ? Int.max : 1) { item, _ in
        let n = item / blocks, c0 = (item % blocks) * rowBlock, rows = min(rowBlock, cout - c0)
        let y = so.p + n * cout * hw
        sgemm(false, false, rows, hw, cin, 1, sw.p + c0 * cin, cin, sx.p + n * cin * hw, hw, 0, y + c0 * hw, hw)
        guard rowPass else { return }
        for co in c0..<(c0 + rows) {
            let row = y + co * hw
            vck_conv_finish_row(row, row, hw, epi.scale?[co] ?? 1, epi.shift?[co] ?? 0,
                                residual.map { $0 + (n * cout + co) * hw }, act, epi.parameter, epi.residualAfter ? 1 : 0)
        }
    }
    epi.finishDeferred(out, g.batch * cout * hw)
}
