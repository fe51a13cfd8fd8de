import CKernels
import Synchronization

/// An inverted-residual block's 1x1 expansion followed by its depthwise conv, in inference:
/// `conv2dFused(conv2dFused(x, expandWeight, expand), depthwiseWeight, groups: C, depthwise)`, computed band of
/// output rows and block of channels so that the expanded map (six times the input's channels, on the largest
/// maps of a MobileNet-like network) never leaves the cache: each work item expands the input rows its band reads
/// into scratch, for its channels, and convolves them there. Bands overlap by the kernel's extra rows, which are
/// expanded twice.
///
/// - Parameters:
///   - x: [N, Cin, H, W] float32.
///   - expandWeight: [C, Cin, 1, 1]; `expand` is its epilogue (no residual).
///   - depthwiseWeight: [C, 1, k, k], square, at `stride` and `padding` on both axes; `depthwise` is its epilogue
///     (no residual).
/// - Returns: [N, C, Ho, Wo], as the composition gives it.
/// - Throws: what the composition would throw for bad shapes, and `invalidArgument` for a residual in either
///   epilogue.
public func expandDepthwiseConv(_ x: Tensor, expandWeight: Tensor, expand: ConvEpilogue, depthwiseWeight: Tensor,
                                stride: Int, padding: Int, depthwise: ConvEpilogue) throws -> Tensor {
    guard expand.residual == nil, depthwise.residual == nil else {
        throw VisionError.invalidArgument("expandDepthwiseConv: the epilogues take no residual")
    }
    func composition() throws -> Tensor {
        let expanded = try conv2dFused(x, weight: expandWeight, epilogue: expand)
        return try conv2dFused(expanded, weight: depthwiseWeight, stride: (stride, stride), padding: (padding, padding),
                               groups: expandWeight.shape.first ?? 1, epilogue: depthwise)
    }
    guard x.dtype == .float32, x.rank == 4, expandWeight.rank == 4, depthwiseWeight.rank == 4,
          expandWeight.dtype == .float32, depthwiseWeight.dtype == .float32 else { return try composition() }
    let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let c = expandWeight.shape[0], k = depthwiseWeight.shape[2]
    guard expandWeight.shape == [c, cin, 1, 1], depthwiseWeight.shape == [c, 1, k, k], stride >= 1, padding >= 0,
          n >= 1, h >= 1, w >= 1, c >= 1, cin >= 1, expand.activation?.cEpilogueCode ?? 0 >= 0,
          depthwise.activation?.cEpilogueCode ?? 0 >= 0 else { return try composition() }
    // Sizes below 2^40 keep this arithmetic far from overflow; the composition reports the rest.
    guard max(n, cin, c, h, w, k, stride, padding) < 1 << 40, h + 2 * padding >= k, w + 2 * padding >= k else {
        return try composition()
    }
    let (oh, ow) = ((h + 2 * padding - k) / stride + 1, (w + 2 * padding - k) / stride + 1)
    let blockChannels = min(c, expandDepthwiseChannelBlock), blocks = (c + blockChannels - 1) / blockChannels
    let band = expandDepthwiseBand(channels: blockChannels, width: w, kernel: k, stride: stride, outHeight: oh)
    let dwScratch = vck_depthwise_scratch(band, ow, k, stride)
    let rowsIn = (band - 1) * stride + k, bands = (oh + band - 1) / band
    let expandedFloats = blockChannels * min(rowsIn, h) * w
    // Scratch beyond 256 MiB per thread (absurdly wide maps): the composition allocates, or reports, instead.
    guard oh >= 1, ow >= 1, dwScratch <= PhasePlaneLayout.maxCount, expandedFloats <= PhasePlaneLayout.maxCount else {
        return try composition()
    }
    try expand.validate(outShape: [n, c, h, w])
    try depthwise.validate(outShape: [n, c, oh, ow])
    let out = try Tensor.uninitialized([n, c, oh, ow])
    let xc = try x.contiguous(), we = try expandWeight.contiguous(), wd = try depthwiseWeight.contiguous()
    let inputOffsets = (0..<cin).map { $0 * h * w }
    let failed = Atomic<Bool>(false)
    try withExtendedLifetime((xc, we, wd)) {
        let px = SendablePointer(xc.pointer(Float.self)), po = SendablePointer(out.pointer(Float.self))
        let pe = SendablePointer(we.pointer(Float.self)), pd = SendablePointer(wd.pointer(Float.self))
        try expand.scale.withOptionalBuffer { es in try expand.shift.withOptionalBuffer { et in
        try depthwise.scale.withOptionalBuffer { ds in try depthwise.shift.withOptionalBuffer { dt in
        inputOffsets.withUnsafeBufferPointer { offsets in
            let (eAct, dAct) = (expand.activation?.cEpilogueCode ?? -1, depthwise.activation?.cEpilogueCode ?? -1)
            forEachWorkItem(n * bands * blocks, scratch: expandedFloats + dwScratch) { item, scratch in
                let image = item / (bands * blocks), oy0 = (item / blocks % bands) * band, oy1 = min(oh, oy0 + band)
                let c0 = item % blocks * blockChannels, c1 = min(c, c0 + blockChannels)
                // Input rows [iy0, iy1) that output rows [oy0, oy1) read; padding rows above the map stay padding.
                let top = oy0 * stride - padding, iy0 = max(0, top), iy1 = min(h, (oy1 - 1) * stride - padding + k)
                let expanded = scratch, nq = (iy1 - iy0) * w
                if nq > 0 {
                    // Rows c0..<c1 of the expansion: the block's channels over the band's input rows.
                    var job = vck_conv_gemm(
                        a: pe.p + c0 * cin, lda: cin, m: c1 - c0, k: cin, aoff: nil,
                        b: px.p + image * cin * h * w + iy0 * w, boff: offsets.baseAddress!, nq: nq, vw: nq, ow: nq,
                        c: expanded, ldc: nq, scale: es.map { $0 + c0 }, shift: et.map { $0 + c0 }, residual: nil,
                        activation: eAct, parameter: expand.activationParameter, residual_after: 0, period: 0, oh: 1,
                        image_stride: 0, readable: nq, packed_b: nil, packed_nr: 0)
                    if vck_conv_gemm_run(&job, 0, c1 - c0, 0, nq) != 0 { failed.store(true, ordering: .relaxed); return }
                }
                // No input rows (every tap of the band in the padding): the depthwise conv of zeros.
                for ch in c0..<c1 {
                    vck_depthwise_plane(expanded + (ch - c0) * nq, iy1 - iy0, w, k, stride, top < 0 ? -top : 0, padding,
                                        oy1 - oy0, ow, pd.p + ch * k * k, ds.map { $0[ch] } ?? 1, dt.map { $0[ch] } ?? 0,
                                        nil, dAct, depthwise.activationParameter, 0,
                                        po.p + ((image * c + ch) * oh + oy0) * ow, scratch + expandedFloats)
                }
            }
        } } } } }
    }
    if failed.load(ordering: .relaxed) { throw VisionError.outOfMemory("expandDepthwiseConv: no memory for the GEMM's scratch buffers") }
    return out
}

/// Expanded channels per work item of `expandDepthwiseConv`: blocks of channels share a band out over the threads
/// without expanding any row twice (a multiple of the GEMM's register tiles).
let expandDepthwiseChannelBlock = 64

/// Output rows per band of `expandDepthwiseConv`: as many as keep the band's expanded input rows within about
/// 384 KB (a third of a 1 MB L2, beside the GEMM's packed weights and the depthwise scratch), at least one. The
/// rule depends on the shapes only, so results do not depend on the thread count.
func expandDepthwiseBand(channels: Int, width: Int, kernel: Int, stride: Int, outHeight: Int) -> Int {
    let rows = 98_304 / max(channels * width, 1)
    return min(max(1, (rows - kernel) / stride + 1), max(outHeight, 1))
}
