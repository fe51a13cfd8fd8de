import CKernels
import Synchronization

/// dL/dW of conv2d for an input x and an output gradient G (both contiguous NCHW).
/// Groups of at least 16 output channels with rows of at least 256 taps run on VisionCore's conv GEMM
/// (`weightGradGemm`, large maps image by image, a batch of small maps over its shared column space); the rest on
/// OpenBLAS (`weightGradBLAS`): narrow groups (depthwise and the like, a few GEMM rows wide) and short tap rows
/// such as a 3-channel stem's or a 1x1 conv's.
func conv2dWeightGrad(_ geo: ConvGeometry, _ x: Tensor, _ g: Tensor, weightShape: [Int]) throws -> Tensor {
    if geo.outHeight * geo.outWidth == 0 || geo.batch == 0 { return try Tensor.zeros(weightShape) }
    let plan = try ConvGemmPlan(geo)
    if geo.outPerGroup >= 16 && plan.offsets.count >= 256 {
        let gw = try Tensor.uninitialized(weightShape)
        try withExtendedLifetime((x, g)) {
            try weightGradGemm(plan, x.pointer(Float.self), g.pointer(Float.self), into: gw.pointer(Float.self))
        }
        return gw
    }
    return try weightGradBLAS(geo, x, g, weightShape: weightShape)
}

/// Reduction columns per GEMM pass: a chunk of G^T (chunk x Cout/groups floats) stays in L2 and a row panel of
/// A (register-tile rows x chunk) in L1.
private let reductionChunk = 256

/// dL/dW on the conv GEMM, computed transposed: dW^T[group][tap][co] = Σ_q A[tap][q] · G^T[q][co]. Row
/// tap = (ci, ky, kx) of A is the forward's packed input read at the tap's offset (the same plan), and G^T is the
/// output gradient laid out on the same virtual columns, with zero rows where the forward computes a padding
/// column, stored by column tiles of the register tile's width so that the kernel streams it. Threads own
/// disjoint blocks of taps, and the sum over columns runs in an order fixed by the geometry
/// (`weightGradFromPacked`, `weightGradFromColumns`), so the result is the same from run to run.
private func weightGradGemm(_ plan: ConvGemmPlan, _ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>,
                            into gw: UnsafeMutablePointer<Float>) throws {
    let geo = plan.g
    let cout = geo.outChannels, m = geo.outPerGroup, k = plan.offsets.count, ohw = geo.outHeight * geo.outWidth
    // The register tile's rows, and the column tile width B is laid out for: the full width, or the narrowest
    // that holds m (32 output channels compute no zero columns); the C side runs kernels that cover it.
    var mr = 0, fullWidth = 0
    vck_conv_gemm_tile(&mr, &fullWidth)
    let nr = vck_conv_weight_grad_width(m)
    let tiles = (m + nr - 1) / nr
    // G^T rows: per image its virtual columns (`span`, at `imageStride` rows from the previous image's), one
    // reduction run per image, or, batched, one run over the batch's shared column space.
    let span = plan.batched ? plan.columns : plan.imageColumns, runs = plan.batched ? 1 : geo.batch
    let imageStride = plan.batched ? plan.period : span, tileStride = runs * span * nr
    let gt = try Tensor.uninitialized([geo.groups * tiles * tileStride])
    let dwt = try Tensor.uninitialized([geo.groups * k * m])
    let pg = SendablePointer(UnsafeMutablePointer(mutating: g)), pt = SendablePointer(gt.pointer(Float.self))
    forEachWorkItem(geo.batch * geo.groups * tiles, scratch: 0) { item, _ in
        let n = item / (geo.groups * tiles), block = item % (geo.groups * tiles), grp = block / tiles, t = block % tiles
        let c0 = grp * m + t * nr, width = min(nr, m - t * nr)
        let dst = pt.p + block * tileStride + n * imageStride * nr
        // The image's rows: up to the next image's (batched) or the run's end.
        let rows = min(imageStride, runs * span - n * imageStride)
        if width < nr { dst.update(repeating: 0, count: rows * nr) }
        vck_conv_grad_rows(pg.p + (n * cout + c0) * ohw, width, geo.outHeight, geo.outWidth, plan.virtualWidth, rows,
                           dst, nr)
    }
    let panels = (k + mr - 1) / mr, threads = Threading.threadCount
    let blocks = geo.groups >= 2 * threads ? 1 : min(panels, (3 * threads + geo.groups - 1) / geo.groups)
    let blockSize = (panels + blocks - 1) / blocks * mr
    let rowStride = (0..<reductionChunk).map { $0 * nr }
    let reduction = GradReduction(gt: UnsafePointer(pt.p), tiles: tiles, tileStride: tileStride, nr: nr, blocks: blocks,
                                  blockSize: blockSize)
    try withExtendedLifetime((gt, dwt)) {
        try rowStride.withUnsafeBufferPointer { strides in
            if plan.columnMatrix {
                try weightGradFromColumns(plan, x, reduction, boff: strides.baseAddress!, into: dwt.pointer(Float.self))
            } else {
                try weightGradFromPacked(plan, x, reduction, boff: strides.baseAddress!, into: dwt.pointer(Float.self))
            }
        }
    }
    let pd = SendablePointer(dwt.pointer(Float.self))
    // dW[grp * m + co][tap] = dW^T[grp][tap][co], in blocks of 16 output channels.
    let pw = SendablePointer(gw), coBlocks = (m + 15) / 16
    withExtendedLifetime(dwt) {
        forEachWorkItem(geo.groups * coBlocks, scratch: 0) { item, _ in
            let grp = item / coBlocks, co0 = (item % coBlocks) * 16
            vck_transpose(pd.p + grp * k * m + co0, k, min(16, m - co0), m, pw.p + grp * m * k + co0 * k, k)
        }
    }
}

/// What the weight gradient's reduction reads and how it is split: G^T (`tiles` column tiles of width `nr`,
/// `tileStride` floats apart, per group) and `blocks` blocks of `blockSize` taps per group, one per work item.
private struct GradReduction {
    let gt: UnsafePointer<Float>
    let tiles: Int, tileStride: Int, nr: Int, blocks: Int, blockSize: Int
}

/// dW^T of a plan on packed planes (or the input in place): the sum runs image after image (batched: once over the
/// batch's shared columns) in chunks of `reductionChunk` columns, each chunk added to the tiles.
private func weightGradFromPacked(_ plan: ConvGemmPlan, _ x: UnsafePointer<Float>, _ r: GradReduction,
                                  boff: UnsafePointer<Int>, into dwt: UnsafeMutablePointer<Float>) throws {
    let geo = plan.g, k = plan.offsets.count, m = geo.outPerGroup
    let span = plan.batched ? plan.columns : plan.imageColumns, runs = plan.batched ? 1 : geo.batch
    let packed = try packedInput(plan, x)
    let a = SendablePointer(UnsafeMutablePointer(mutating: packed.map { UnsafePointer($0.pointer(Float.self)) } ?? x))
    let sg = SendablePointer(UnsafeMutablePointer(mutating: r.gt)), sb = SendablePointer(UnsafeMutablePointer(mutating: boff))
    let sd = SendablePointer(dwt), failed = Atomic<Bool>(false)
    withExtendedLifetime(packed) {
        plan.offsets.withUnsafeBufferPointer { offsets in
            let po = SendablePointer(UnsafeMutablePointer(mutating: offsets.baseAddress!))
            forEachWorkItem(geo.groups * r.blocks, scratch: 0) { item, _ in
                let grp = item / r.blocks, m0 = (item % r.blocks) * r.blockSize
                guard m0 < k else { return }
                let aGroup = plan.inputBase(image: 0, group: grp)
                for n in 0..<runs {
                    let aImage = aGroup + (plan.batched ? 0 : plan.inputBase(image: n, group: 0))
                    for q0 in stride(from: 0, to: span, by: reductionChunk) {
                        // The first chunk stores the tiles; the others add to them.
                        let status = vck_conv_weight_grad_run(
                            a.p + aImage + q0, po.p, m0, min(k, m0 + r.blockSize), min(reductionChunk, span - q0),
                            sg.p + grp * r.tiles * r.tileStride + (n * span + q0) * r.nr, r.nr, r.tileStride, sb.p, m,
                            sd.p + grp * k * m, m, n == 0 && q0 == 0 ? 0 : 1)
                        if status != 0 { failed.store(true, ordering: .relaxed) }
                    }
                }
            }
        }
    }
    if failed.load(ordering: .relaxed) {
        throw VisionError.invalidArgument("conv2d backward: no GEMM kernel has the register tile \(r.nr)")
    }
}

/// Explicit im2col columns per L2-sized chunk for `weightGradGemm`: about this many columns (whole images) ...
private let columnChunk = 1024
/// ... of this many rows at a time, built by the work item that owns the rows right before its GEMM reads them.
private let columnChunkRows = 64

/// dW^T of a plan on explicit columns without the batch's column matrix: each work item owns a block of rows
/// (taps) and builds its rows of the columns a chunk of images at a time (`vck_im2col_batch`) into its scratch,
/// where the GEMM reads them from cache. The sum runs over the image chunks in order (their size depends only on
/// the map), each in chunks of `reductionChunk` columns: the same order for any thread count.
private func weightGradFromColumns(_ plan: ConvGemmPlan, _ x: UnsafePointer<Float>, _ r: GradReduction,
                                   boff: UnsafePointer<Int>, into dwt: UnsafeMutablePointer<Float>) throws {
    let (tiles, tileStride, nr, blocks, blockSize) = (r.tiles, r.tileStride, r.nr, r.blocks, r.blockSize)
    let geo = plan.g, k = plan.offsets.count, m = geo.outPerGroup, ohw = geo.outHeight * geo.outWidth
    let chunkImages = max(1, columnChunk / max(ohw, 1)), chunkColumns = chunkImages * ohw
    let sx = SendablePointer(UnsafeMutablePointer(mutating: x)), sg = SendablePointer(UnsafeMutablePointer(mutating: r.gt))
    let sb = SendablePointer(UnsafeMutablePointer(mutating: boff)), sd = SendablePointer(dwt)
    let failed = Atomic<Int32>(0)
    forEachWorkItem(geo.groups * blocks, scratch: columnChunkRows * chunkColumns) { item, scratch in
        let grp = item / blocks, m0 = (item % blocks) * blockSize, m1 = min(k, m0 + blockSize)
        guard m0 < k else { return }
        let rowOffsets = UnsafeMutablePointer<Int>.allocate(capacity: columnChunkRows)
        defer { rowOffsets.deallocate() }
        for r0 in stride(from: m0, to: m1, by: columnChunkRows) {
            let r1 = min(m1, r0 + columnChunkRows)
            for n0 in stride(from: 0, to: geo.batch, by: chunkImages) {
                let images = min(chunkImages, geo.batch - n0), cw = images * ohw
                guard geo.im2colRows(sx.p, group: grp, images: n0..<(n0 + images), rows: r0..<r1, into: scratch) else {
                    failed.store(1, ordering: .relaxed)
                    return
                }
                for r in 0..<(r1 - r0) { rowOffsets[r] = r * cw }
                for q0 in stride(from: 0, to: cw, by: reductionChunk) {
                    // The first chunk stores the tiles; the others add to them.
                    let status = vck_conv_weight_grad_run(
                        scratch + q0, rowOffsets, 0, r1 - r0, min(reductionChunk, cw - q0),
                        sg.p + grp * tiles * tileStride + (n0 * ohw + q0) * nr, nr, tileStride, sb.p, m,
                        sd.p + (grp * k + r0) * m, m, n0 == 0 && q0 == 0 ? 0 : 1)
                    if status != 0 { failed.store(2, ordering: .relaxed) }
                }
            }
        }
    }
    switch failed.load(ordering: .relaxed) {
    case 1: throw VisionError.outOfMemory("conv2d backward: no memory for the im2col table")
    case 2: throw VisionError.invalidArgument("conv2d backward: no GEMM kernel has the register tile \(nr)")
    default: break
    }
}

/// dL/dW on OpenBLAS: dL/dW[group] = Σ over images and pixel tiles of G[group] (Cout/g x tile) x im2col(X[group])^T (tile x K).
/// The (image, tile) items are split into one contiguous run per thread, each accumulating into its own copy of
/// dL/dW (single-threaded BLAS), and the copies are added in run order: small per-tile GEMMs do not thread well
/// inside BLAS, and a fixed split keeps the sum bit-identical from run to run. A 1x1 stride-1 unpadded conv
/// reads the input rows in place instead of through im2col.
private func weightGradBLAS(_ geo: ConvGeometry, _ x: Tensor, _ g: Tensor, weightShape: [Int]) throws -> Tensor {
    let gw = try Tensor.zeros(weightShape)
    let howo = geo.outHeight * geo.outWidth, k = geo.inPerGroup * geo.kernelArea, m = geo.outPerGroup
    let pointwise = geo.window.kernel == (1, 1) && geo.window.stride == (1, 1) && geo.window.padding == (0, 0)
    if geo.batch > 1 && howo < 64 && !pointwise {
        // Small maps: one GEMM over the whole batch, dW[group] = G[group] (Cout/g x batch*Ho*Wo) x columns^T,
        // instead of a small GEMM and an im2col per image (1x1 stride-1 convs need no im2col: below, per image).
        let ld = geo.batch * howo
        let cols = try Tensor.uninitialized([geo.groups * k * ld]), gt = try Tensor.uninitialized([geo.outChannels * ld])
        try batchColumns(try ConvGemmPlan(geo), x.pointer(Float.self), into: cols.pointer(Float.self))
        let pt = gt.pointer(Float.self)
        try withExtendedLifetime(g) {
            try imageColumns(g.pointer(Float.self), batch: geo.batch, channels: geo.outChannels, pixels: howo, into: pt)
        }
        // Each thread computes a block of dW's columns (OpenBLAS runs single-threaded; see Threading).
        let parts = min(Threading.threadCount, max(1, k / 64)), width = (k + parts - 1) / parts
        let pc = SendablePointer(cols.pointer(Float.self)), pw = SendablePointer(gw.pointer(Float.self))
        let pgt = SendablePointer(pt)
        withExtendedLifetime((cols, gt)) {
            forEachWorkItem(geo.groups * parts, scratch: 0) { item, _ in
                let grp = item / parts, k0 = (item % parts) * width, kn = min(width, k - k0)
                guard kn > 0 else { return }
                sgemm(false, true, m, kn, ld, 1, pgt.p + grp * m * ld, ld, pc.p + (grp * k + k0) * ld, ld, 0,
                      pw.p + grp * m * k + k0, k)
            }
        }
        return gw
    }
    let tile = gemmTileColumns(rows: k, columns: howo), tiles = (howo + tile - 1) / tile
    let items = geo.batch * tiles, runs = min(Threading.threadCount, items), perRun = (items + runs - 1) / runs
    let weightCount = gw.count, colCount = pointwise ? 0 : k * tile
    // Run 0 accumulates straight into the result; the others into their own zeroed copies.
    let extra = try Tensor.zeros([max(runs - 1, 0) * weightCount + 1])
    let px = SendablePointer(x.pointer(Float.self)), pg = SendablePointer(g.pointer(Float.self))
    let pw = SendablePointer(gw.pointer(Float.self)), pe = SendablePointer(extra.pointer(Float.self))
    withExtendedLifetime((x, g, gw, extra)) {
        let work = {
            parallelFor(runs) { range in
                let col = UnsafeMutablePointer<Float>.allocate(capacity: max(colCount, 1))
                defer { col.deallocate() }
                for run in range {
                    let acc = run == 0 ? pw.p : pe.p + (run - 1) * weightCount
                    for item in (run * perRun)..<min(items, (run + 1) * perRun) {
                        let b = item / tiles, p0 = (item % tiles) * tile, n = min(tile, howo - p0)
                        for grp in 0..<geo.groups {
                            let plane = px.p + (b * geo.inChannels + grp * geo.inPerGroup) * geo.height * geo.width
                            let gRows = pg.p + (b * geo.outChannels + grp * m) * howo + p0
                            if pointwise {
                                sgemm(false, true, m, k, n, 1, gRows, howo, plane + p0, howo, 1, acc + grp * m * k, k)
                            } else {
                                im2colTile(geo, plane, channels: geo.inPerGroup, pixels: p0..<(p0 + n), col)
                                sgemm(false, true, m, k, n, 1, gRows, howo, col, n, 1, acc + grp * m * k, k)
                            }
                        }
                    }
                }
            }
        }
        work()
        for run in 1..<max(runs, 1) { addInto(pw.p, pe.p + (run - 1) * weightCount, weightCount) }
    }
    return gw
}

/// dst[i] += src[i] over n floats.
private func addInto(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n { storeF16(loadF16(dst + i) + loadF16(src + i), dst + i); i += 16 }
    while i < n { dst[i] += src[i]; i += 1 }
}
