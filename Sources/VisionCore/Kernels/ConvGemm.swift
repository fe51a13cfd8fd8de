import CKernels
import Synchronization

/// How a (non-depthwise) convolution becomes GEMMs without im2col (CKernels' `vck_conv_gemm`): row (ci, ky, kx)
/// of the implicit column matrix is the input plane of ci, zero-padded and split by stride phase
/// (`vck_conv_pack_input`), read from the tap's constant offset. Output (oy, ox) is virtual column
/// q = oy * rowWidth + ox; the columns with ox >= outWidth are computed over the padding and dropped.
/// A strided conv whose taps reach past their phase's row (3x3 at stride 2: tap kx = 2 reads phase 0 one column
/// on) would waste such a column per output row; one image's GEMM instead gets a plane per row phase and column
/// tap (`columnTaps`), rows exactly the output's width, so that its outputs are contiguous columns.
/// Large maps: one GEMM per image and group; a 1x1, stride-1, unpadded convolution reads the NCHW input in place.
/// Small maps (a few register tiles per image, e.g. 7x7 and below): all images of a batch share one GEMM, the
/// packed planes of a channel laid out image after image (`batched`), so the tiles are full and few; where the
/// padding columns would cost more multiply-adds than explicit columns cost to write (most small maps), the
/// batch's explicit im2col columns instead (`columnMatrix`: row (ci, ky, kx), column image * Ho * Wo + output
/// pixel, nothing dropped), built chunk by chunk where the weights fit in L2 (`columnChunkImages`). A single image
/// takes them too, as they waste fewer lanes than its padded rows (resnet50's 512-channel 3x3 convs at 7x7:
/// 1.56 -> 1.41 ms); only its 1x1 convs keep reading the input in place.
struct ConvGemmPlan {
    let g: ConvGeometry
    /// True when the input is read in place (no packed copy).
    let inPlace: Bool
    /// True when the images share one column space (packed as [Cin][batch][channelSize]).
    let batched: Bool
    /// True when that column space is the explicit im2col matrix [groups][K][batch * Ho * Wo].
    let columnMatrix: Bool
    /// True when a channel's planes are its row phases times the kernel's column taps (rows of Wo columns, none
    /// dropped) rather than its row and column stride phases.
    let columnTaps: Bool
    /// Rows and row width of one stride phase of a packed channel.
    let phaseRows: Int, rowWidth: Int
    /// Floats per packed channel plane of one image (all sh * sw phases, or sh * kw phase and tap planes).
    let channelSize: Int
    /// Offset of each GEMM row (ci, ky, kx) from the group's first packed channel.
    let offsets: [Int]
    /// Virtual columns of one image.
    var imageColumns: Int { columnMatrix ? g.outHeight * g.outWidth : (g.outHeight - 1) * rowWidth + g.outWidth }
    /// Virtual columns between consecutive images of a batched GEMM.
    var period: Int { columnMatrix ? g.outHeight * g.outWidth : channelSize }
    /// Virtual row width (output row stride in the column space).
    var virtualWidth: Int { columnMatrix ? g.outWidth : rowWidth }
    /// Floats of packed input per group (what one GEMM reads).
    var groupInput: Int { columnMatrix ? offsets.count * g.batch * period : g.inPerGroup * g.batch * channelSize }
    /// Virtual columns of one GEMM.
    var columns: Int { batched ? (g.batch - 1) * period + imageColumns : imageColumns }
    /// GEMMs: one per group, times the images unless batched.
    var gemms: Int { batched ? g.groups : g.batch * g.groups }

    /// `singleImageColumns`: a single image's small map shares the layout of a batch's, and per-image GEMMs of
    /// strided convs take column taps unless `allowColumnTaps` is false (the forward conv; the weight gradient
    /// keeps its per-image GEMMs on stride phases).
    init(_ g: ConvGeometry, singleImageColumns: Bool = false, allowColumnTaps: Bool = true) throws {
        self.g = g
        let w = g.window
        let (kh, kw) = w.kernel, (sh, sw) = w.stride, (dh, dw) = w.dilation
        // Validated windows keep these terms below 2^40; the product is checked against the allocation limit.
        phaseRows = g.outHeight + (kh - 1) * dh / sh
        let phaseWidth = g.outWidth + (kw - 1) * dw / sw, images = g.inChannels * max(g.batch, 1)
        let (phaseSize, o1) = (sh * sw * phaseRows).multipliedReportingOverflow(by: phaseWidth)
        let (phaseAll, o2) = phaseSize.multipliedReportingOverflow(by: images)
        guard !o1, !o2, phaseAll <= Limits.maxBytes / 4 else { throw ConvGemmPlan.tooLarge(g) }
        let pointwise = w.kernel == (1, 1) && w.stride == (1, 1) && w.padding == (0, 0)
        // A single image's 1x1 conv reads its input in place.
        batched = (g.batch > 1 || singleImageColumns && !pointwise)
            && (g.outHeight - 1) * phaseWidth + g.outWidth < 4 * convGemmTile.columns
        // Column taps for the forward's per-image GEMMs of strided convs with extra columns, where the taps are at
        // most twice the phases (the packed input at most twice as large, so the products below stay far from
        // overflowing): resnet50's stride-2 3x3 convs wasted one column in 29 or 15 and copied every tile out.
        columnTaps = allowColumnTaps && singleImageColumns && !batched && sw > 1 && phaseWidth > g.outWidth && kw <= 2 * sw
        rowWidth = columnTaps ? g.outWidth : phaseWidth
        let size = columnTaps ? sh * kw * phaseRows * rowWidth : phaseSize
        guard size * images <= Limits.maxBytes / 4 else { throw ConvGemmPlan.tooLarge(g) }
        channelSize = size
        let ohw = g.outHeight * g.outWidth
        // An explicit column costs about as much to write and read back as 12 multiply-adds (AVX-512 permutes,
        // bound by memory); a padding column of the packed planes costs one per output channel and tap, so the
        // explicit columns win once the padding columns times the output channels reach 12 per output pixel.
        // Without padding columns (1x1, stride 1, unpadded) both layouts hold the same floats, and im2col writes
        // them in fewer, longer runs than the plane-by-plane packing.
        // (vck_im2col_batch's pixel offsets are 32-bit.)
        columnMatrix = batched && g.height * g.width <= Int(Int32.max)
            && (size == ohw || (size - ohw) * g.outPerGroup >= 12 * ohw)
        inPlace = !batched && pointwise
        // Row (ci, tap) reads at ci's plane plus the tap's offset in it, computed once per tap (each conv call
        // builds the table: 9 * Cin rows for a 3x3 conv, whose division and overflow checks per row cost about
        // 0.1 ms of resnet50's forward). The sizes were checked above, so the products do not overflow.
        let channelStride = batched ? g.batch * size : size, taps = kh * kw, rows = g.inPerGroup * taps
        let (columnMatrix, step, inPerGroup) = (columnMatrix, g.batch * ohw, g.inPerGroup)
        let (phaseRows, rowWidth, columnTaps) = (phaseRows, rowWidth, columnTaps)
        let tapOffsets = (0..<taps).map {
            ConvGemmPlan.tapOffset(g, $0, phaseRows: phaseRows, rowWidth: rowWidth, columnTaps: columnTaps)
        }
        offsets = [Int](unsafeUninitializedCapacity: rows) { table, count in
            for ci in 0..<inPerGroup {
                let base = ci &* channelStride
                for tap in 0..<taps {
                    let row = ci &* taps &+ tap
                    table[row] = columnMatrix ? row &* step : base &+ tapOffsets[tap]
                }
            }
            count = rows
        }
    }

    static func tooLarge(_ g: ConvGeometry) -> VisionError {
        .outOfMemory("conv2d: the padded input for \(g.inChannels) x \(g.height) x \(g.width) with this window is too large")
    }

    /// Where kernel tap `tap` (ky * kw + kx) reads, relative to a packed channel plane: in its stride phase, the
    /// row and column shift of the tap; with column taps, in the plane of its row phase and column tap, the row
    /// shift.
    static func tapOffset(_ g: ConvGeometry, _ tap: Int, phaseRows: Int, rowWidth: Int, columnTaps: Bool) -> Int {
        let w = g.window, kw = w.kernel.1, (sh, sw) = w.stride
        let y = (tap / kw) * w.dilation.0, x = (tap % kw) * w.dilation.1
        if columnTaps { return ((y % sh) * kw + tap % kw) * phaseRows * rowWidth + (y / sh) * rowWidth }
        return ((y % sh) * sw + x % sw) * phaseRows * rowWidth + (y / sh) * rowWidth + x / sw
    }
}

extension ConvGemmPlan {
    /// Where the GEMM of (image, group) reads its input in the packed layout (a batched plan's one GEMM per
    /// group starts at image 0; image n's columns follow at n * period).
    func inputBase(image n: Int, group grp: Int) -> Int {
        batched ? grp * groupInput : (n * g.inChannels + grp * g.inPerGroup) * channelSize
    }
}

/// The input in the layout the plan's GEMMs read (`vck_conv_pack_input`, packed in parallel over planes, or the
/// batch's explicit columns); nil when the plan reads `x` in place.
func packedInput(_ plan: ConvGemmPlan, _ x: UnsafePointer<Float>) throws -> Tensor? {
    if plan.inPlace { return nil }
    let g = plan.g
    let packed = try Tensor.uninitialized([g.groups * plan.groupInput])
    if plan.columnMatrix {
        try batchColumns(plan, x, into: packed.pointer(Float.self))
        return packed
    }
    let dst = SendablePointer(packed.pointer(Float.self)), src = SendablePointer(UnsafeMutablePointer(mutating: x))
    let hw = g.height * g.width, win = g.window, batch = g.batch, cin = g.inChannels
    // Planes per item: about 64K floats of copying, so that small maps do not pay a fork per plane.
    let per = max(1, 65_536 / max(plan.channelSize, 1)), total = batch * cin
    forEachWorkItem((total + per - 1) / per, scratch: 0) { item, _ in
        for plane in (item * per)..<min(total, (item + 1) * per) {
            // Plane (image, channel) of the NCHW input; batched layouts put it at [channel][image].
            let slot = plan.batched ? (plane % cin) * batch + plane / cin : plane
            vck_conv_pack_input(src.p + plane * hw, 1, g.height, g.width, win.stride.0, win.stride.1, win.padding.0,
                                win.padding.1, plan.phaseRows, plan.rowWidth, plan.columnTaps ? win.kernel.1 : win.stride.1,
                                plan.columnTaps ? win.dilation.1 : 1, dst.p + slot * plan.channelSize)
        }
    }
    return packed
}

/// The register tile of the CPU's GEMM kernels (rows, columns).
let convGemmTile: (rows: Int, columns: Int) = {
    var mr = 0, nr = 0
    vck_conv_gemm_tile(&mr, &nr)
    return (mr, nr)
}()

/// Convolution (any groups, stride, padding, dilation) of contiguous NCHW `x` with OIHW `w`, epilogue fused:
/// packs the input (in parallel over channels) unless it is read in place, then runs the GEMMs split over
/// (GEMM, column chunk, row block) work items.
func convGemm(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ epi: EpiloguePointers,
              _ out: UnsafeMutablePointer<Float>, allowColumnTaps: Bool = true) throws {
    let plan = try ConvGemmPlan(g, singleImageColumns: true, allowColumnTaps: allowColumnTaps)
    if let images = columnChunkImages(plan) {
        try convGemmColumnChunks(plan, x, w, epi, out, images: images)
        epi.finishDeferred(out, g.batch * g.outChannels * g.outHeight * g.outWidth)
        return
    }
    let packed = try packedInput(plan, x)
    let b = packed.map { UnsafePointer($0.pointer(Float.self)) } ?? x
    let m = g.outPerGroup, k = plan.offsets.count, nq = plan.columns, ohw = g.outHeight * g.outWidth
    let (mr, nr) = convGemmTile
    // The work is cut into units of whole register tiles of one GEMM: column tiles where the columns outnumber
    // the rows, else row panels (a column unit re-reads all the weights, a row unit all the input columns, so
    // the larger operand is the one cut). The threads take pieces of units (`Threading.forEachPiece`); each output
    // is computed whole by one piece, so the split does not change its bits.
    let gemms = plan.gemms, byColumns = nq >= m
    let unitsPerGemm = byColumns ? (nq + nr - 1) / nr : (m + mr - 1) / mr, unit = byColumns ? nr : mr
    let act = epi.cActivation, residual = epi.cResidual
    let failed = Atomic<Bool>(false)
    let sb = SendablePointer(UnsafeMutablePointer(mutating: b)), sw = SendablePointer(UnsafeMutablePointer(mutating: w))
    let so = SendablePointer(out)
    try withExtendedLifetime(packed) {
        try plan.offsets.withUnsafeBufferPointer { offsets in
            let so2 = SendablePointer(UnsafeMutablePointer(mutating: offsets.baseAddress!))
            // Row blocks would each read every column tile of B where it lies (k rows a B row apart; in a network,
            // fresh from the previous layer in L3): one tile-major copy packed beforehand serves them all.
            let columns = !byColumns && gemms == 1 && Threading.threadCount > 1
                ? try packedColumns(b + plan.inputBase(image: 0, group: 0), offsets: offsets.baseAddress!, k: k, nq: nq)
                : nil
            let pb = columns.map { SendablePointer($0.tensor.pointer(Float.self)) }, packedNR = columns?.nr ?? 0
            func runGemm(_ gemm: Int, _ rowRange: Range<Int>, _ columnRange: Range<Int>) {
                guard !rowRange.isEmpty, !columnRange.isEmpty else { return }
                let (n, grp) = plan.batched ? (0, gemm) : (gemm / g.groups, gemm % g.groups)
                let channel0 = grp * m
                let inBase = plan.inputBase(image: n, group: grp)
                let outBase = (n * g.outChannels + channel0) * ohw
                var job = vck_conv_gemm(
                    a: sw.p + channel0 * k, lda: k, m: m, k: k, aoff: nil, b: sb.p + inBase,
                    boff: so2.p, nq: nq, vw: plan.virtualWidth, ow: g.outWidth, c: so.p + outBase, ldc: ohw,
                    scale: epi.scale.map { $0 + channel0 }, shift: epi.shift.map { $0 + channel0 },
                    residual: residual.map { $0 + outBase }, activation: act, parameter: epi.parameter,
                    residual_after: epi.residualAfter ? 1 : 0, period: plan.batched ? plan.period : 0,
                    oh: g.outHeight, image_stride: g.outChannels * ohw, readable: nq,
                    packed_b: pb.map { UnsafePointer($0.p) }, packed_nr: packedNR)
                if vck_conv_gemm_run(&job, rowRange.lowerBound, rowRange.upperBound, columnRange.lowerBound,
                                     columnRange.upperBound) != 0 {
                    failed.store(true, ordering: .relaxed)
                }
            }
            Threading.forEachPiece(gemms * unitsPerGemm) { piece in
                // A piece may span GEMMs (batches, groups): each GEMM's part of it in turn.
                var u = piece.lowerBound
                while u < piece.upperBound {
                    let gemm = u / unitsPerGemm, end = min(piece.upperBound, (gemm + 1) * unitsPerGemm)
                    let cut = (u - gemm * unitsPerGemm) * unit..<min(byColumns ? nq : m, (end - gemm * unitsPerGemm) * unit)
                    runGemm(gemm, byColumns ? 0..<m : cut, byColumns ? cut : 0..<nq)
                    u = end
                }
            }
            withExtendedLifetime(columns) {}
        }
    }
    if failed.load(ordering: .relaxed) { throw VisionError.outOfMemory("conv2d: no memory for the GEMM's scratch buffers") }
    epi.finishDeferred(out, g.batch * g.outChannels * ohw)
}

/// The most floats of B that `packedColumns` copies (4 MB; resnet50 at batch 1 packs up to 2 MB).
private let packedColumnsLimit = 1 << 20

/// One GEMM's B (row kk at b + offsets[kk], nq columns) packed into column tiles by the threads
/// (vck_conv_gemm_pack_b), with the tile width the kernels read them with; nil where they read B in place
/// (AVX-512's wide tiles) or where the copy would exceed `packedColumnsLimit`. The threads pack with the caller's
/// kernels (the pool hands its ISA choice to the workers), so every part reports the same width.
private func packedColumns(_ b: UnsafePointer<Float>, offsets: UnsafePointer<Int>, k: Int, nq: Int) throws
    -> (tensor: Tensor, nr: Int)? {
    var job = vck_conv_gemm()
    job.b = b
    job.boff = offsets
    job.k = k
    job.nq = nq
    job.readable = nq
    let floats = vck_conv_gemm_packed_floats(&job)
    guard floats > 0, floats <= packedColumnsLimit else { return nil }
    let packed = try Tensor.uninitialized([floats])
    let parts = min(k, 2 * Threading.threadCount)
    var widths = [Int](repeating: 0, count: parts)
    let box = UncheckedBox(job), dst = SendablePointer(packed.pointer(Float.self))
    widths.withUnsafeMutableBufferPointer { w in
        let sw = SendablePointer(w.baseAddress!)
        forEachWorkItem(parts, scratch: 0) { part, _ in
            withUnsafePointer(to: box.value) {
                sw.p[part] = vck_conv_gemm_pack_b($0, part * k / parts, (part + 1) * k / parts, dst.p, floats)
            }
        }
    }
    guard let nr = widths.first, nr > 0, widths.allSatisfy({ $0 == nr }) else { return nil }
    return (packed, nr)
}

/// Floats of explicit columns that one chunk of `convGemmColumnChunks` builds (half of a 1 MB L2), and the most
/// weights one GEMM of it reads.
private let columnChunkFloats = 131_072

/// Images per chunk when `convGemm` builds a plan's explicit columns chunk by chunk (as many as fit
/// `columnChunkFloats`, at least one), or nil when it builds the batch's whole column matrix: chunks need weights
/// that stay in L2 while the chunks go by, and enough chunks to share out (a rule that ignores the thread count,
/// so that tests see the same paths everywhere).
func columnChunkImages(_ plan: ConvGemmPlan) -> Int? {
    let g = plan.g, k = plan.offsets.count
    guard plan.columnMatrix, g.outPerGroup * k <= columnChunkFloats else { return nil }
    let images = max(1, columnChunkFloats / max(k * plan.period, 1))
    return g.groups * ((g.batch + images - 1) / images) >= 4 ? images : nil
}

/// A plan on explicit columns without the batch's column matrix: each work item (group, chunk of `images`
/// images) writes its chunk's columns into its own scratch (`vck_im2col_batch`) and runs the GEMM on them while
/// they are in L2. Every output is the same sum in the same order as from the whole matrix.
private func convGemmColumnChunks(_ plan: ConvGemmPlan, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                  _ epi: EpiloguePointers, _ out: UnsafeMutablePointer<Float>, images: Int) throws {
    let g = plan.g, m = g.outPerGroup, k = plan.offsets.count, ohw = g.outHeight * g.outWidth
    let chunks = (g.batch + images - 1) / images, width = images * ohw
    let slack = convGemmTile.columns  // a last partial column tile reads up to a tile past the chunk's columns
    let act = epi.cActivation, residual = epi.cResidual
    let sx = SendablePointer(UnsafeMutablePointer(mutating: x)), sw = SendablePointer(UnsafeMutablePointer(mutating: w))
    let so = SendablePointer(out)
    let failed = Atomic<Int32>(0)
    forEachWorkItem(g.groups * chunks, scratch: k * width + slack) { item, scratch in
        let grp = item / chunks, n0 = (item % chunks) * images, count = min(images, g.batch - n0), cw = count * ohw
        guard g.im2colRows(sx.p, group: grp, images: n0..<(n0 + count), rows: 0..<k, into: scratch) else {
            failed.store(1, ordering: .relaxed)
            return
        }
        let rowOffsets = (0..<k).map { $0 * cw }
        let channel0 = grp * m, outBase = (n0 * g.outChannels + channel0) * ohw
        rowOffsets.withUnsafeBufferPointer { offsets in
            var job = vck_conv_gemm(
                a: sw.p + channel0 * k, lda: k, m: m, k: k, aoff: nil, b: scratch, boff: offsets.baseAddress!, nq: cw,
                vw: g.outWidth, ow: g.outWidth, c: so.p + outBase, ldc: ohw,
                scale: epi.scale.map { $0 + channel0 }, shift: epi.shift.map { $0 + channel0 },
                residual: residual.map { $0 + outBase }, activation: act, parameter: epi.parameter,
                residual_after: epi.residualAfter ? 1 : 0, period: ohw, oh: g.outHeight,
                image_stride: g.outChannels * ohw, readable: cw + slack, packed_b: nil, packed_nr: 0)
            if vck_conv_gemm_run(&job, 0, m, 0, cw) != 0 { failed.store(2, ordering: .relaxed) }
        }
    }
    switch failed.load(ordering: .relaxed) {
    case 1: throw VisionError.outOfMemory("conv2d: no memory for the im2col table")
    case 2: throw VisionError.outOfMemory("conv2d: no memory for the GEMM's scratch buffers")
    default: break
    }
}

/// The batch's im2col matrix, [groups][Cin/g * kh * kw][batch * Ho * Wo] (column image * Ho * Wo + output pixel),
/// written to `col` straight from the NCHW input (`vck_im2col_batch`: a gather through a table of pixel offsets
/// per tap), rows spread over threads.
func batchColumns(_ plan: ConvGemmPlan, _ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>) throws {
    let g = plan.g
    guard g.height * g.width <= Int(Int32.max) else {
        throw VisionError.invalidArgument("conv2d: an input plane of \(g.height) x \(g.width) is too large for the small-map im2col")
    }
    let (h, w) = (g.height, g.width)
    try im2colBatch(x, batch: g.batch, imageStride: g.inChannels * h * w, groups: g.groups, groupStride: g.inPerGroup * h * w,
                    rows: plan.offsets.count, height: h, width: w, window: g.window, outHeight: g.outHeight,
                    outWidth: g.outWidth, into: col)
}

/// [channels][batch * pixels] from NCHW [batch][channels][pixels] (images side by side per channel): the im2col
/// of a 1x1 convolution, which lays an output gradient on the columns of a batched GEMM.
func imageColumns(_ x: UnsafePointer<Float>, batch: Int, channels: Int, pixels: Int,
                  into col: UnsafeMutablePointer<Float>) throws {
    let pointwise = Window2d(kernel: (1, 1), stride: (1, 1), padding: (0, 0), dilation: (1, 1))
    try im2colBatch(x, batch: batch, imageStride: channels * pixels, groups: 1, groupStride: 0, rows: channels,
                    height: 1, width: pixels, window: pointwise, outHeight: 1, outWidth: pixels, into: col)
}

/// `vck_im2col_batch` over the threads: per group, `rows` rows of batch * outHeight * outWidth columns.
private func im2colBatch(_ x: UnsafePointer<Float>, batch: Int, imageStride: Int, groups: Int, groupStride: Int,
                         rows k: Int, height: Int, width: Int, window w: Window2d, outHeight: Int, outWidth: Int,
                         into col: UnsafeMutablePointer<Float>) throws {
    let ld = batch * outHeight * outWidth
    let src = SendablePointer(UnsafeMutablePointer(mutating: x)), dst = SendablePointer(col)
    // Rows per item: about 16K floats of output, so that a small layer is not split into forks that cost more.
    let per = max(1, 16_384 / max(ld, 1)), chunks = (k + per - 1) / per
    let failed = Atomic<Bool>(false)
    forEachWorkItem(groups * chunks, scratch: 0) { item, _ in
        let grp = item / chunks, r0 = (item % chunks) * per
        if !im2colRows(src.p + grp * groupStride, images: batch, imageStride: imageStride, height: height, width: width,
                       window: w, outHeight: outHeight, outWidth: outWidth, rows: r0..<min(k, r0 + per),
                       into: dst.p + (grp * k + r0) * ld) {
            failed.store(true, ordering: .relaxed)
        }
    }
    if failed.load(ordering: .relaxed) { throw VisionError.outOfMemory("conv2d: no memory for the im2col table") }
}

/// Rows `rows` of the im2col columns of `images` images, the first at `x` and the others `imageStride` floats
/// apart (`vck_im2col_batch`), row `rows.lowerBound` at `dst`; false when its table could not be allocated.
private func im2colRows(_ x: UnsafePointer<Float>, images: Int, imageStride: Int, height: Int, width: Int,
                        window w: Window2d, outHeight: Int, outWidth: Int, rows: Range<Int>,
                        into dst: UnsafeMutablePointer<Float>) -> Bool {
    vck_im2col_batch(x, images, imageStride, height, width, w.kernel.0, w.kernel.1, w.stride.0, w.stride.1,
                     w.padding.0, w.padding.1, w.dilation.0, w.dilation.1, outHeight, outWidth, rows.lowerBound,
                     rows.upperBound, dst) == 0
}

extension ConvGeometry {
    /// Rows `rows` of group `group`'s im2col columns for the images `images` of the NCHW input `x`, row
    /// `rows.lowerBound` at `dst` (a chunk of the batch's explicit columns); false when the table could not be
    /// allocated.
    func im2colRows(_ x: UnsafePointer<Float>, group: Int, images: Range<Int>, rows: Range<Int>,
                    into dst: UnsafeMutablePointer<Float>) -> Bool {
        let plane = height * width, imageStride = inChannels * plane
        return VisionCore.im2colRows(x + images.lowerBound * imageStride + group * inPerGroup * plane,
                                     images: images.count, imageStride: imageStride, height: height, width: width,
                                     window: window, outHeight: outHeight, outWidth: outWidth, rows: rows, into: dst)
    }
}

extension UnaryOp {
    /// The code the C conv epilogue applies, or -1 for the few that it leaves to a pass afterwards.
    var cEpilogueCode: Int32 {
        switch self {
        case .relu, .relu6, .leakyRelu, .hardSwish, .hardSigmoid, .silu, .geluErf, .geluTanh, .sigmoid, .tanh, .exp: rawValue
        case .log, .sqrt, .neg, .abs: -1
        }
    }
}
