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

/// What `convRowsApplies` convolutions read: each image's input zero-padded (threads over channels), the weights
/// transposed to taps x channels (zero-padded to whole 16-channel blocks), and each tap's offset in a padded image.
private struct ConvRowsOperands {
    let padded: Tensor, weights: Tensor, offsets: [Int]
    let plane: Int, hp: Int, wp: Int, cp: Int

    init(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>) throws {
        let win = g.window, cin = g.inChannels
        hp = (g.outHeight - 1) * win.stride.0 + win.span.0
        wp = (g.outWidth - 1) * win.stride.1 + win.span.1
        plane = hp * wp
        cp = (g.outChannels + 15) / 16 * 16
        let k = cin * g.kernelArea
        padded = try Tensor.uninitialized([g.batch * cin * plane])
        weights = try Tensor.zeros([k * cp])
        let sx = SendablePointer(UnsafeMutablePointer(mutating: x)), sp = SendablePointer(padded.pointer(Float.self))
        let (h, wd, hp, wp, plane) = (g.height, g.width, hp, wp, plane)
        forEachWorkItem(g.batch * cin, scratch: 0) { item, _ in
            vck_conv_pack_input(sx.p + item * h * wd, 1, h, wd, 1, 1, win.padding.0, win.padding.1, hp, wp, 1, 1,
                                sp.p + item * plane)
        }
        vck_transpose(w, g.outChannels, k, k, weights.pointer(Float.self), cp)
        var offsets = [Int]()
        offsets.reserveCapacity(k)
        for c in 0..<cin {
            for ky in 0..<win.kernel.0 {
                for kx in 0..<win.kernel.1 { offsets.append(c * plane + ky * win.dilation.0 * wp + kx * win.dilation.1) }
            }
        }
        self.offsets = offsets
    }

    /// The C job for image `n`, writing to `y` (that image's output).
    func job(_ g: ConvGeometry, image n: Int, offsets koff: UnsafePointer<Int>, _ epi: EpiloguePointers,
             _ y: UnsafeMutablePointer<Float>) -> vck_conv_rows {
        let win = g.window, ohw = g.outHeight * g.outWidth
        return vck_conv_rows(
            x: padded.pointer(Float.self) + n * g.inChannels * plane, hp: hp, wp: wp, sh: win.stride.0,
            sw: win.stride.1, koff: koff, k: offsets.count, wt: weights.pointer(Float.self), cout: g.outChannels,
            cp: cp, y: y, oh: g.outHeight, ow: g.outWidth, scale: epi.scale, shift: epi.shift,
            residual: epi.cResidual.map { $0 + n * g.outChannels * ohw }, activation: epi.cActivation,
            parameter: epi.parameter, residual_after: epi.residualAfter ? 1 : 0)
    }
}

/// `convRowsApplies` convolutions: the operands prepared (`ConvRowsOperands`), then output rows spread over the
/// threads (`vck_conv_rows_run`).
func convRows(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ epi: EpiloguePointers,
              _ out: UnsafeMutablePointer<Float>) throws {
    let operands = try ConvRowsOperands(g, x, w)
    let failed = Atomic<Bool>(false)
    let so = SendablePointer(out), oh = g.outHeight, image = g.outChannels * oh * g.outWidth
    withExtendedLifetime(operands) {
        operands.offsets.withUnsafeBufferPointer { koff in
            let sk = SendablePointer(UnsafeMutablePointer(mutating: koff.baseAddress!))
            forEachWorkItem(g.batch * oh, scratch: 32 * g.outWidth + 256) { item, scratch in
                let n = item / oh, oy = item % oh
                var job = operands.job(g, image: n, offsets: sk.p, epi, so.p + n * image)
                if vck_conv_rows_run(&job, oy, oy + 1, scratch) != 0 { failed.store(true, ordering: .relaxed) }
            }
        }
    }
    if failed.load(ordering: .relaxed) { throw VisionError.unsupported("conv2d: the row kernels need AVX2 and FMA") }
    epi.finishDeferred(out, g.batch * g.outChannels * oh * g.outWidth)
}

/// Whether `convRowsMaxPool` runs a `convRowsApplies` conv with max pooling `pool` after it: an epilogue the row
/// tiles apply themselves (no residual; ReLU, none, or an activation vck_activation runs on the rows), and a
/// pooling window of at most 4 rows.
func convRowsMaxPoolApplies(_ g: ConvGeometry, _ pool: Window2d, _ epi: ConvEpilogue?) -> Bool {
    guard convRowsApplies(g), pool.dilation == (1, 1), pool.kernel.0 <= 4, epi?.residual == nil else { return false }
    switch epi?.activation {
    case nil: return true
    case let op?: return op.cEpilogueCode >= 0 && ![.relu6, .leakyRelu, .hardSwish, .hardSigmoid].contains(op)
    }
}

/// A `convRowsMaxPoolApplies` conv and the max pooling of its output (floor mode) in one pass: each thread makes
/// the conv rows its pooled rows need into a ring of `pool.kernel.0` rows (kept while its rows run on in order),
/// pools them there and writes only the pooled map to `out` ([N, Cout, ph, pw]). The conv output never goes to
/// memory: resnet50's stem wrote 3.2 MB across 64 planes, then the pooling read it back.
func convRowsMaxPool(_ g: ConvGeometry, _ pool: Window2d, pooledHeight ph: Int, pooledWidth pw: Int,
                     _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ epi: EpiloguePointers,
                     _ out: UnsafeMutablePointer<Float>) throws {
    let operands = try ConvRowsOperands(g, x, w)
    var window = vck_pool_window(kh: pool.kernel.0, kw: pool.kernel.1, sh: pool.stride.0, sw: pool.stride.1,
                                 ph: pool.padding.0, pw: pool.padding.1, oh: ph, ow: pw)
    let threads = Threading.threadCount
    let perThread = vck_conv_rows_pool_scratch(g.outChannels, g.outWidth, &window)
    let scratch = try Tensor.uninitialized([threads * perThread])
    // Per thread: the image its ring holds, then the ring's row numbers.
    let kh = pool.kernel.0
    let state = UnsafeMutablePointer<Int>.allocate(capacity: threads * (kh + 1))
    defer { state.deallocate() }
    state.initialize(repeating: -1, count: threads * (kh + 1))
    let failed = Atomic<Bool>(false)
    let so = SendablePointer(out), ss = SendablePointer(scratch.pointer(Float.self)), st = SendablePointer(state)
    let image = g.outChannels * ph * pw, box = UncheckedBox(window)
    withExtendedLifetime((operands, scratch)) {
        operands.offsets.withUnsafeBufferPointer { koff in
            let sk = SendablePointer(UnsafeMutablePointer(mutating: koff.baseAddress!))
            Threading.forEachPiece(g.batch * ph) { piece, thread in
                let tags = st.p + thread * (kh + 1) + 1
                var py = piece.lowerBound
                while py < piece.upperBound {
                    let n = py / ph, end = min(piece.upperBound, (n + 1) * ph)
                    if st.p[thread * (kh + 1)] != n {
                        st.p[thread * (kh + 1)] = n
                        tags.update(repeating: -1, count: kh)
                    }
                    var job = operands.job(g, image: n, offsets: sk.p, epi, so.p + n * image)
                    let status = withUnsafePointer(to: box.value) {
                        vck_conv_rows_pool_run(&job, $0, py - n * ph, end - n * ph, tags, ss.p + thread * perThread)
                    }
                    if status != 0 { failed.store(true, ordering: .relaxed) }
                    py = end
                }
            }
        }
    }
    if failed.load(ordering: .relaxed) { throw VisionError.unsupported("conv2d: the row kernels need AVX2 and FMA") }
}
