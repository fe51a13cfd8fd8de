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
    withExtendedLifetime((xc, sc)) {
        parallelFor(planes, minChunk: max(1, 32_768 / max(plane, 1))) { range in
            for i in range {
                let s = ps.p[i], src = px.p + i * plane, dst = po.p + i * plane
                var j = 0
                let vs = F16(repeating: s)
                while j + 16 <= plane { storeF16(loadF16(src + j) * vs, dst + j); j += 16 }
                while j < plane { dst[j] = src[j] * s; j += 1 }
                if let activation { unaryKernel(activation, parameter, dst, dst, plane) }
            }
        }
    }
    return out
}
