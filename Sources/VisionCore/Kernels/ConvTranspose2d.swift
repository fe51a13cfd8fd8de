/// The validated shapes of one conv_transpose2d call (PyTorch semantics: input [N, Cin, H, W], weight
/// [Cin, Cout/groups, kh, kw], output [N, Cout, Ho, Wo] with Ho = (H-1)*sh - 2*ph + dh*(kh-1) + oph + 1).
struct ConvTransposeGeometry {
    let batch: Int, inChannels: Int, height: Int, width: Int
    let outChannels: Int, groups: Int
    let window: Window2d
    let outputPadding: (Int, Int)
    let outHeight: Int, outWidth: Int

    var inPerGroup: Int { inChannels / groups }
    var outPerGroup: Int { outChannels / groups }
    var kernelArea: Int { window.kernel.0 * window.kernel.1 }
    var outShape: [Int] { [batch, outChannels, outHeight, outWidth] }

    init(_ op: String, x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
         outputPadding: (Int, Int), groups: Int, dilation: (Int, Int)) throws {
        try x.requireDType(.float32, op)
        try weight.requireDType(.float32, op)
        try bias?.requireDType(.float32, op)
        try weight.requireRank(4, op, "weight")
        // Built only for an error message (interpolating the shapes costs microseconds per call).
        func shapes() -> String { "input \(x.shape), weight \(weight.shape)" }
        guard groups >= 1 else { throw VisionError.invalidArgument("\(op): groups must be positive, got \(groups)") }
        batch = x.shape[0]; inChannels = x.shape[1]; height = x.shape[2]; width = x.shape[3]
        self.groups = groups
        guard weight.shape[0] == inChannels else {
            throw VisionError.shapeMismatch("\(op): weight's first dimension \(weight.shape[0]) must equal the input channels \(inChannels) (\(shapes()))")
        }
        guard inChannels >= 1, inChannels % groups == 0 else {
            throw VisionError.shapeMismatch("\(op): input channels \(inChannels) must be a positive multiple of groups \(groups) (\(shapes()))")
        }
        guard weight.shape[1] >= 1 else {
            throw VisionError.shapeMismatch("\(op): weight \(weight.shape) has no output channels")
        }
        outChannels = weight.shape[1] * groups
        if let bias, bias.shape != [outChannels] {
            throw VisionError.shapeMismatch("\(op): bias \(bias.shape) must be [\(outChannels)] (\(shapes()))")
        }
        window = Window2d(kernel: (weight.shape[2], weight.shape[3]), stride: stride, padding: padding, dilation: dilation)
        try window.validate(op)
        guard outputPadding.0 >= 0, outputPadding.1 >= 0,
              outputPadding.0 < stride.0 || outputPadding.0 < dilation.0,
              outputPadding.1 < stride.1 || outputPadding.1 < dilation.1 else {
            throw VisionError.invalidArgument("\(op): output padding \(outputPadding) must be non-negative and smaller than either stride \(stride) or dilation \(dilation)")
        }
        self.outputPadding = outputPadding
        guard height >= 1, width >= 1 else {
            throw VisionError.shapeMismatch("\(op): input \(x.shape) has an empty spatial dimension")
        }
        func size(_ input: Int, _ s: Int, _ p: Int, _ span: Int, _ op2: Int) throws -> Int {
            // Every term is validated below 2^40 except (input - 1) * s, which can reach 2^68.
            let (m, o) = (input - 1).multipliedReportingOverflow(by: s)
            guard !o, m <= Limits.maxBytes else {
                throw VisionError.outOfMemory("\(op): output of input \(x.shape) with stride \(stride) is too large")
            }
            return m - 2 * p + span + op2
        }
        let span = window.span
        outHeight = try size(height, stride.0, padding.0, span.0, outputPadding.0)
        outWidth = try size(width, stride.1, padding.1, span.1, outputPadding.1)
        // PyTorch's main kernels refuse an output with an empty axis ("output size is too small").
        guard outHeight >= 1, outWidth >= 1 else {
            throw VisionError.shapeMismatch("\(op): output size (\(outHeight), \(outWidth)) is too small (\(shapes()), stride \(stride), padding \(padding), dilation \(dilation))")
        }
        _ = try Tensor.checkedCount(outShape)
    }
}

/// 2-D transposed convolution (torch.nn.functional.conv_transpose2d): the gradient of conv2d with respect to its
/// input, used for learned upsampling. Input NCHW (or CHW), weight [Cin, Cout/groups, kh, kw], bias [Cout].
///
/// Kernel: work items are (images, group, block of output channels). For a tile of input pixels a GEMM gives the
/// block's contributions col[(co, ky, kx), pixel] = W^T X (a contiguous row range of the full GEMM), and col2im
/// adds them into the block's own output planes, which start as the bias: items never write the same memory, so
/// they run on separate threads with single-threaded BLAS. An item is one image, or, for input maps under 256
/// pixels, a few images whose pixels share one GEMM. Groups are split into channel blocks only when the items
/// are too few to keep every thread busy.
/// Edge cases: an empty batch gives an empty output; output padding must be below the stride or the dilation.
public func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                            padding: (Int, Int) = (0, 0), outputPadding: (Int, Int) = (0, 0), groups: Int = 1,
                            dilation: (Int, Int) = (1, 1)) throws -> Tensor {
    let y = try convTranspose2dForward(x, weight: weight, bias: bias, stride: stride, padding: padding,
                                       outputPadding: outputPadding, groups: groups, dilation: dilation)
    let (xd, wd) = (x.detach(), weight.detach())
    return recordGrad("convTranspose2d", y, inputs: [x, weight] + (bias.map { [$0] } ?? [])) { g in
        // conv_transpose2d is the adjoint of conv2d in its input: y = conv2d^T(x; w). So dL/dx = conv2d(g; w), and
        // dL/dw is conv2d's weight gradient with the roles of input (g) and output gradient (x) exchanged.
        let gx = try conv2d(g, weight: wd, stride: stride, padding: padding, dilation: dilation, groups: groups)
        let g4 = g.rank == 3 ? try g.unsqueeze(axis: 0) : g, x4 = xd.rank == 3 ? try xd.unsqueeze(axis: 0) : xd
        let geo = try ConvGeometry("conv_transpose2d", x: g4, weight: wd, bias: nil, stride: stride, padding: padding,
                                   dilation: dilation, groups: groups)
        let gw = try conv2dWeightGrad(geo, g4.contiguous(), x4.contiguous(), weightShape: wd.shape)
        let gb = bias != nil ? try sum(g4, axes: [0, 2, 3]) : nil
        let gxs = try gx.reshape(xd.shape)
        return bias != nil ? [gxs, gw, gb] : [gxs, gw]
    }
}

private func convTranspose2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                                    outputPadding: (Int, Int), groups: Int, dilation: (Int, Int)) throws -> Tensor {
    try withBatchDimension(x, "conv_transpose2d") { x in
        let g = try ConvTransposeGeometry("conv_transpose2d", x: x, weight: weight, bias: bias, stride: stride,
                                          padding: padding, outputPadding: outputPadding, groups: groups, dilation: dilation)
        let out = try Tensor.uninitialized(g.outShape)
        if out.count == 0 { return out }
        let area = g.kernelArea, og = g.outPerGroup, m = og * area, hw = g.height * g.width
        let ohw = g.outHeight * g.outWidth
        // Small input maps (a stride-2 conv's gradient on 4x4 and below): several images share one GEMM of about
        // 256 columns, so that the GEMM is not a matrix-vector product per image.
        let imagesPerItem = hw >= 256 ? 1 : max(1, min(256 / hw, g.batch / (3 * Threading.threadCount)))
        let chunks = (g.batch + imagesPerItem - 1) / imagesPerItem
        let perGroup = min(og, max(1, (4 * Threading.threadCount) / max(chunks * g.groups, 1)))
        let blockChannels = (og + perGroup - 1) / perGroup, blocks = (og + blockChannels - 1) / blockChannels
        let rows = blockChannels * area
        let tile = imagesPerItem > 1 ? imagesPerItem * hw : gemmTileColumns(rows: rows, columns: hw)
        let gathered = imagesPerItem > 1 ? g.inPerGroup * tile : 0
        guard rows <= Limits.maxBytes / 4 / tile else {
            throw VisionError.outOfMemory("conv_transpose2d: the column buffer for weight \(weight.shape) is too large")
        }
        let xc = try x.contiguous(), wc = try weight.contiguous(), bc = try bias?.contiguous()
        let sx = SendablePointer(xc.pointer(Float.self)), sw = SendablePointer(wc.pointer(Float.self))
        let so = SendablePointer(out.pointer(Float.self)), sb = bc.map { SendablePointer($0.pointer(Float.self)) }
        withExtendedLifetime((xc, wc, bc)) {
            forEachWorkItem(chunks * g.groups * blocks, scratch: rows * tile + gathered) { item, scratch in
                let blk = item % blocks, grp = (item / blocks) % g.groups, chunk = item / (blocks * g.groups)
                let c0 = blk * blockChannels, cn = min(og - c0, blockChannels)
                let firstChannel = grp * og + c0
                let n0 = chunk * imagesPerItem, images = min(imagesPerItem, g.batch - n0)
                for b in n0..<(n0 + images) {
                    let o = so.p + (b * g.outChannels + firstChannel) * ohw
                    for c in 0..<cn { (o + c * ohw).update(repeating: sb.map { $0.p[firstChannel + c] } ?? 0, count: ohw) }
                }
                // Wg is [Cin/g, m] row-major; the block's GEMM rows are its columns c0 * area ..< (c0 + cn) * area.
                let wg = sw.p + grp * g.inPerGroup * m + c0 * area
                let col = scratch
                if imagesPerItem > 1 {
                    // The chunk's input as [Cin/g][image][pixel], then one GEMM and a col2im per image.
                    let b = scratch + rows * tile, n = images * hw
                    for ci in 0..<g.inPerGroup {
                        for j in 0..<images {
                            (b + ci * n + j * hw).update(from: sx.p + ((n0 + j) * g.inChannels + grp * g.inPerGroup + ci) * hw, count: hw)
                        }
                    }
                    sgemm(true, false, cn * area, n, g.inPerGroup, 1, wg, m, b, n, 0, col, n)
                    for j in 0..<images {
                        col2imTile(g, col + j * hw, ld: n, channels: cn, pixels: 0..<hw,
                                   so.p + ((n0 + j) * g.outChannels + firstChannel) * ohw)
                    }
                    return
                }
                let xg = sx.p + (n0 * g.inChannels + grp * g.inPerGroup) * hw
                let o = so.p + (n0 * g.outChannels + firstChannel) * ohw
                var p0 = 0
                while p0 < hw {
                    let n = min(tile, hw - p0)
                    sgemm(true, false, cn * area, n, g.inPerGroup, 1, wg, m, xg + p0, hw, 0, col, n)
                    col2imTile(g, col, ld: n, channels: cn, pixels: p0..<(p0 + n), o)
                    p0 += n
                }
            }
        }
        return out
    }
}

/// Adds col [channels * kh * kw, pixels.count] (rows `ld` floats apart) into `channels` consecutive output planes:
/// the value of input pixel (iy, ix) for tap (ky, kx) lands at (iy*sh - ph + ky*dh, ix*sw - pw + kx*dw). The valid
/// input-column range of each tap is computed once, so the inner loop has no bounds tests.
private func col2imTile(_ g: ConvTransposeGeometry, _ col: UnsafePointer<Float>, ld: Int, channels: Int, pixels: Range<Int>,
                        _ out: UnsafeMutablePointer<Float>) {
    let w = g.window, wi = g.width, ho = g.outHeight, wo = g.outWidth, n = ld
    let (sh, sw) = w.stride, (ph, pw) = w.padding, (dh, dw) = w.dilation
    let (kh, kw) = w.kernel
    for co in 0..<channels {
        let plane = out + co &* ho &* wo
        for ky in 0..<kh {
            for kx in 0..<kw {
                var src = col + ((co &* kh &+ ky) &* kw &+ kx) &* n
                // Input columns ix whose output column ix*sw - pw + kx*dw lies in [0, wo).
                let shift = kx &* dw &- pw
                let lo = shift >= 0 ? 0 : (-shift + sw - 1) / sw
                let hi = wo - 1 - shift < 0 ? 0 : min(wi, (wo - 1 - shift) / sw + 1)
                var p = pixels.lowerBound
                while p < pixels.upperBound {
                    let iy = p / wi, ix0 = p - iy &* wi
                    let ix1 = min(wi, ix0 &+ (pixels.upperBound - p))
                    let oy = iy &* sh &- ph &+ ky &* dh
                    let a = max(ix0, lo), b = min(ix1, hi)
                    if oy >= 0 && oy < ho && a < b {
                        let dst = plane + (oy &* wo &+ shift)
                        let s = src - ix0
                        if sw == 1 {
                            for ix in a..<b { dst[ix] += s[ix] }
                        } else {
                            for ix in a..<b { dst[ix &* sw] += s[ix] }
                        }
                    }
                    src += ix1 - ix0
                    p &+= ix1 - ix0
                }
            }
        }
    }
}

/// conv_transpose2d by its definition, in Double (for tests): every input element scatters its products with
/// the kernel into the output.
public func convTranspose2dReference(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                                     padding: (Int, Int) = (0, 0), outputPadding: (Int, Int) = (0, 0),
                                     groups: Int = 1, dilation: (Int, Int) = (1, 1)) throws -> Tensor {
    try withBatchDimension(x, "conv_transpose2d") { x in
        let g = try ConvTransposeGeometry("conv_transpose2d", x: x, weight: weight, bias: bias, stride: stride,
                                          padding: padding, outputPadding: outputPadding, groups: groups, dilation: dilation)
        let xs = try x.toArray(Float.self), ws = try weight.toArray(Float.self), bs = try bias?.toArray(Float.self)
        let (kh, kw) = g.window.kernel, ho = g.outHeight, wo = g.outWidth
        var acc = [Double](repeating: 0, count: g.outShape.reduce(1, *))
        for n in 0..<g.batch {
            for co in 0..<g.outChannels {
                for i in 0..<(ho * wo) { acc[(n * g.outChannels + co) * ho * wo + i] = Double(bs?[co] ?? 0) }
            }
            for ci in 0..<g.inChannels {
                let grp = ci / g.inPerGroup
                for iy in 0..<g.height {
                    for ix in 0..<g.width {
                        let xv = Double(xs[((n * g.inChannels + ci) * g.height + iy) * g.width + ix])
                        for cog in 0..<g.outPerGroup {
                            let co = grp * g.outPerGroup + cog
                            for ky in 0..<kh {
                                let oy = iy * stride.0 - padding.0 + ky * dilation.0
                                if oy < 0 || oy >= ho { continue }
                                for kx in 0..<kw {
                                    let ox = ix * stride.1 - padding.1 + kx * dilation.1
                                    if ox < 0 || ox >= wo { continue }
                                    let wv = Double(ws[((ci * g.outPerGroup + cog) * kh + ky) * kw + kx])
                                    acc[((n * g.outChannels + co) * ho + oy) * wo + ox] += xv * wv
                                }
                            }
                        }
                    }
                }
            }
        }
        return try Tensor(acc.map { Float($0) }, shape: g.outShape)
    }
}
