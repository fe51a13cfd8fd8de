import CKernels

// Training convolutions on maps with fewer pixels than kernel taps (a 3x3 kernel on a 2x2 map): there each output
// pixel sees only a few input pixels, and the conv GEMM, which multiplies every tap, would spend most of its work
// on padding. Such a conv is a plain matrix product of the NCHW input rows [N, Cin * H * W] with the dense matrix
// of the convolution, [Cin * H * W, Cout * Ho * Wo], whose entry (ci, input pixel; co, output pixel) is the weight
// of the tap joining the two pixels (or zero): Cin * H * W multiply-adds per output instead of Cin * kh * kw, and
// no im2col. The dense matrix is a differentiable function of the weights, so matmul's backward gives the input
// gradient (G · W'^T) and the dense matrix's gradient (X^T · G), which `denseConvMatrix`'s backward folds back onto
// the taps.

/// Whether `conv2d` trains `g` through its dense matrix: ungrouped, fewer input pixels than taps, and a dense
/// matrix of at most 4M floats.
func denseConvApplies(_ g: ConvGeometry) -> Bool {
    let rows = g.inChannels.multipliedReportingOverflow(by: g.height * g.width)
    let columns = g.outChannels.multipliedReportingOverflow(by: g.outHeight * g.outWidth)
    let size = rows.partialValue.multipliedReportingOverflow(by: columns.partialValue)
    return g.groups == 1 && g.height * g.width < g.kernelArea && g.batch > 0
        && !rows.overflow && !columns.overflow && !size.overflow && size.partialValue <= 1 << 22
}

/// conv2d of 4-D `x` through its dense matrix (`denseConvApplies(g)` must hold): differentiable in x, weight and
/// bias through matmul and `denseConvMatrix`.
func denseConv(_ x: Tensor, weight: Tensor, bias: Tensor?, _ g: ConvGeometry) throws -> Tensor {
    let dense = try denseConvMatrix(weight, g)
    let rows = try x.reshape([g.batch, g.inChannels * g.height * g.width])
    let y = try matmul(rows, dense).reshape(g.outShape)
    guard let bias else { return y }
    return try add(y, bias.reshape([1, g.outChannels, 1, 1]))
}

/// Per input pixel i and output pixel o that a tap joins: (i, o, tap). At most one tap joins a pair.
private func tapPairs(_ g: ConvGeometry) -> [(input: Int, output: Int, tap: Int)] {
    let w = g.window, (kh, kw) = w.kernel
    var pairs: [(input: Int, output: Int, tap: Int)] = []
    for oy in 0..<g.outHeight {
        for ox in 0..<g.outWidth {
            for ky in 0..<kh {
                let iy = oy * w.stride.0 - w.padding.0 + ky * w.dilation.0
                guard iy >= 0 && iy < g.height else { continue }
                for kx in 0..<kw {
                    let ix = ox * w.stride.1 - w.padding.1 + kx * w.dilation.1
                    guard ix >= 0 && ix < g.width else { continue }
                    pairs.append((iy * g.width + ix, oy * g.outWidth + ox, ky * kw + kx))
                }
            }
        }
    }
    return pairs
}

/// The dense matrix W' [Cin * H * W, Cout * Ho * Wo] of the convolution `g` with OIHW `weight`:
/// W'[ci * HW + i][co * HoWo + o] = weight[co][ci][tap] for each (i, o, tap) of `tapPairs`, zero elsewhere.
/// Backward: the gradient of weight[co][ci][tap] is the sum of W''s gradient over the tap's pairs, in pair order.
/// Both directions go through the weights transposed to [Cin * taps][Cout], so that the inner loops over the
/// output channels read or write contiguous floats.
func denseConvMatrix(_ weight: Tensor, _ g: ConvGeometry) throws -> Tensor {
    let hw = g.height * g.width, ohw = g.outHeight * g.outWidth, area = g.kernelArea
    let cin = g.inChannels, cout = g.outChannels, columns = cout * ohw, taps = cin * area
    let pairs = tapPairs(g)
    let wc = try weight.detach().contiguous()
    let transposed = try Tensor.uninitialized([taps, cout]), dense = try Tensor.zeros([cin * hw, columns])
    let pt = transposed.pointer(Float.self), pd = dense.pointer(Float.self)
    withExtendedLifetime(wc) { vck_transpose(wc.pointer(Float.self), cout, taps, taps, pt, cout) }
    for ci in 0..<cin {
        for (i, o, tap) in pairs {
            let row = pd + (ci * hw + i) * columns + o, src = pt + (ci * area + tap) * cout
            for co in 0..<cout { row[co * ohw] = src[co] }
        }
    }
    return recordGrad("denseConvMatrix", dense, inputs: [weight]) { grad in
        let gc = try grad.contiguous()
        let sums = try Tensor.zeros([taps, cout]), gw = try Tensor.uninitialized(weight.shape)
        let pg = gc.pointer(Float.self), ps = sums.pointer(Float.self)
        withExtendedLifetime(gc) {
            for ci in 0..<cin {
                for (i, o, tap) in pairs {
                    let row = pg + (ci * hw + i) * columns + o, dst = ps + (ci * area + tap) * cout
                    for co in 0..<cout { dst[co] += row[co * ohw] }
                }
            }
        }
        vck_transpose(ps, taps, cout, cout, gw.pointer(Float.self), taps)
        return [gw]
    }
}
