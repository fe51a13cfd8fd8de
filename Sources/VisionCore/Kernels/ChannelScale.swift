/// Squeeze-and-excitation gating for inference: y[n, c, ...] = act(x[n, c, ...] * scale[n, c]) in one pass per
/// plane (instead of a broadcast multiply and a separate activation, each a full pass with its own output).
/// Not differentiable: training composes `mul` and the activation.
public func channelScaled(_ x: Tensor, by scale: Tensor, activation: UnaryOp? = nil, parameter: Float = 0.01) throws -> Tensor {
    try x.requireDType(.float32, "channelScaled")
    try scale.requireDType(.float32, "channelScaled scale")
    guard x.rank >= 2, scale.count == x.shape[0] * x.shape[1],
          scale.shape.count == x.rank, scale.shape[0] == x.shape[0], scale.shape[1] == x.shape[1],
          scale.shape.dropFirst(2).allSatisfy({ $0 == 1 }) else {
        throw VisionError.shapeMismatch("channelScaled: scale \(scale.shape) must be [N, C, 1, ...] for input \(x.shape)")
    }
    let xc = try x.detach().contiguous(), sc = try scale.detach().contiguous()
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    let planes = x.shape[0] * x.shape[1], plane = planes == 0 ? 0 : x.count / planes
    let px = SendablePointer(xc.pointer(Float.self)), ps = SendablePointer(sc.pointer(Float.self))
    let po = SendablePointer(out.pointer(Float.self))
    let clamp: (Float, Float)? = activation == .relu ? (0, .infinity) : activation == .relu6 ? (0, 6) : nil
    withExtendedLifetime((xc, sc)) {
        parallelFor(planes, minChunk: max(1, 32_768 / max(plane, 1))) { range in
            for i in range {
                let s = ps.p[i], src = px.p + i * plane, dst = po.p + i * plane
                var j = 0
                let vs = F16(repeating: s)
                if let (low, high) = clamp {
                    // ReLU / ReLU6 in the loop (NaN passes through, as in their kernels).
                    while j + 16 <= plane { storeF16(vclamp(loadF16(src + j) * vs, low, high), dst + j); j += 16 }
                    while j < plane { let v = src[j] * s; dst[j] = v < low ? low : (v > high ? high : v); j += 1 }
                    continue
                }
                while j + 16 <= plane { storeF16(loadF16(src + j) * vs, dst + j); j += 16 }
                while j < plane { dst[j] = src[j] * s; j += 1 }
                if let activation { unaryKernel(activation, parameter, dst, dst, plane) }
            }
        }
    }
    return out
}

/// A partial shortcut for inference: `y` [N, C, ...] with `x` [N, Cx, ...] (Cx <= C, same other sizes) added to
/// its first Cx channels, the other channels unchanged — `y + pad(x, channels up to C)` without the padded copy
/// (ReXNet's blocks that widen their channels). Writes into `y`'s storage when nothing else shares it.
/// Not differentiable: training composes `pad` and `add`.
public func addingLeadingChannels(_ y: consuming Tensor, _ x: Tensor) throws -> Tensor {
    try y.requireDType(.float32, "addingLeadingChannels")
    try x.requireDType(.float32, "addingLeadingChannels")
    guard y.rank >= 2, x.rank == y.rank, x.shape[0] == y.shape[0], x.shape[1] <= y.shape[1],
          x.shape.dropFirst(2).elementsEqual(y.shape.dropFirst(2)) else {
        throw VisionError.shapeMismatch("addingLeadingChannels: x \(x.shape) must be y \(y.shape) with at most as many channels")
    }
    var out = consume y
    out.gradState = nil  // a plain value: no autograd history
    let xc = try x.detach().contiguous()
    let images = out.shape[0], plane = out.shape.dropFirst(2).reduce(1, *)
    let (xImage, yImage) = (x.shape[1] * plane, out.shape[1] * plane)
    guard images * xImage > 0 else { return out }
    // Pieces of 16K floats of each image, spread over the threads.
    let piece = 16_384, pieces = (xImage + piece - 1) / piece
    try out.withUnsafeMutableBufferPointer(as: Float.self) { o in
        let po = SendablePointer(o.baseAddress!), px = SendablePointer(xc.pointer(Float.self))
        withExtendedLifetime(xc) {
            parallelFor(images * pieces, minChunk: 4) { range in
                for item in range {
                    let n = item / pieces, i0 = (item % pieces) * piece
                    addInPlace(po.p + n * yImage + i0, px.p + n * xImage + i0, min(piece, xImage - i0))
                }
            }
        }
    }
    return out
}
