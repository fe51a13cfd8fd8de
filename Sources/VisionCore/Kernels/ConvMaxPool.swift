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
    // max_pool2d's checks and pooled size, on the conv's output map.
    let pooled = try PoolGeometry("max_pool2d", shape: g.outShape, kernelSize: pool.kernel, stride: pool.stride,
                                  padding: pool.padding, dilation: (1, 1), ceilMode: false)
    let (ph, pw) = (pooled.outHeight, pooled.outWidth)
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
