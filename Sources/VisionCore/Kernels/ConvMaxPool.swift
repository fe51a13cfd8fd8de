/// conv2dFused followed by max_pool2d of its output (floor mode, no dilation): the inference path of a network
/// stem (conv → BatchNorm → ReLU → max pool). Where the row kernels take the conv (a few input channels, e.g.
/// ResNet's 3 -> 64 at 7x7, stride 2; an epilogue without a residual), both run in one pass that writes only the
/// pooled map (`convRowsMaxPool`); elsewhere the two ops run one after the other. Either way the result has the
/// bits of `maxPool2d(conv2dFused(...))`. Not differentiable (inference only).
public func conv2dFusedMaxPool(_ x: Tensor, weight: Tensor, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                               epilogue: consuming ConvEpilogue, poolKernel: (Int, Int), poolStride: (Int, Int)? = nil,
                               poolPadding: (Int, Int) = (0, 0)) throws -> Tensor {
    let pool = Window2d(kernel: poolKernel, stride: poolStride ?? poolKernel, padding: poolPadding, dilation: (1, 1))
    func unfused(_ epilogue: consuming ConvEpilogue) throws -> Tensor {
        try maxPool2d(try conv2dFused(x, weight: weight, stride: stride, padding: padding, epilogue: epilogue),
                      kernelSize: pool.kernel, stride: pool.stride, padding: pool.padding)
    }
    guard x.rank == 4, x.dtype == .float32, weight.dtype == .float32,
          try withoutUnreachableTaps(x, weight.detach(), stride: stride, padding: padding, dilation: (1, 1)) == nil
    else { return try unfused(epilogue) }
    let g = try ConvGeometry("conv2d", x: x, weight: weight.detach(), bias: nil, stride: stride, padding: padding,
                             dilation: (1, 1), groups: 1)
    try epilogue.validate(outShape: g.outShape)
    guard convRowsMaxPoolApplies(g, pool, epilogue) else { return try unfused(epilogue) }
    // The pooled map's size and max_pool2d's checks (on the conv's output map).
    try pool.validate("max_pool2d")
    guard pool.padding.0 <= pool.kernel.0 / 2, pool.padding.1 <= pool.kernel.1 / 2 else { return try unfused(epilogue) }
    let shapes = "conv output \(g.outShape), \(pool)"
    let ph = try Window2d.poolOutput("max_pool2d", input: g.outHeight, kernel: pool.kernel.0, stride: pool.stride.0,
                                     padding: pool.padding.0, dilation: 1, ceilMode: false, shapes: shapes)
    let pw = try Window2d.poolOutput("max_pool2d", input: g.outWidth, kernel: pool.kernel.1, stride: pool.stride.1,
                                     padding: pool.padding.1, dilation: 1, ceilMode: false, shapes: shapes)
    let out = try Tensor.uninitialized([g.batch, g.outChannels, ph, pw])
    if out.count == 0 { return out }
    let xc = try x.contiguous(), wc = try weight.detach().contiguous()
    try withExtendedLifetime((xc, wc)) {
        try epilogue.shift.withOptionalBuffer { sh in
            try epilogue.scale.withOptionalBuffer { sc in
                let epi = EpiloguePointers(scale: sc, shift: sh, residual: nil, activation: epilogue.activation,
                                           parameter: epilogue.activationParameter, residualAfter: false)
                try convRowsMaxPool(g, pool, pooledHeight: ph, pooledWidth: pw, xc.pointer(Float.self),
                                    UnsafePointer(wc.pointer(Float.self)), epi, out.pointer(Float.self))
            }
        }
    }
    return out
}
