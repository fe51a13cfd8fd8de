/// Squeeze-and-excitation for inference in one call (ReXNet's SE with BatchNorm, or any SE of 1x1 convs):
///
///     pooled = mean of each H x W plane of x            [N, C]
///     hidden = reduce epilogue(W1 pooled)                [N, R]   (W1: [R, C, 1, 1]; BatchNorm folded, activation)
///     gate   = expand epilogue(W2 hidden)                [N, C]   (W2: [C, R, 1, 1]; bias as shift, e.g. sigmoid)
///     y      = activation(x * gate)                      per plane
///
/// the composition of `mean`, two 1x1 convs, `mul` and the activation, in three passes spread over the threads. The
/// composition ran those small products (a few hundred KB of weights at batch 1) on one thread through the
/// generic ops, while the other thread waited (ReXNet-1.0: 13 SE blocks, about 8% of a forward).
/// Not differentiable: training composes the ops.
public func squeezeExcitation(_ x: Tensor, reduceWeight: Tensor, reduce: ConvEpilogue, expandWeight: Tensor,
                              expand: ConvEpilogue, activation: UnaryOp? = nil, parameter: Float = 0.01) throws -> Tensor {
    try x.requireDType(.float32, "squeezeExcitation")
    try reduceWeight.requireDType(.float32, "squeezeExcitation reduce weight")
    try expandWeight.requireDType(.float32, "squeezeExcitation expand weight")
    guard x.rank == 4 else { throw VisionError.shapeMismatch("squeezeExcitation: input \(x.shape) must be [N, C, H, W]") }
    let (n, c) = (x.shape[0], x.shape[1]), r = reduceWeight.shape.first ?? 0
    guard reduceWeight.shape == [r, c, 1, 1], expandWeight.shape == [c, r, 1, 1], r > 0 else {
        throw VisionError.shapeMismatch(
            "squeezeExcitation: weights \(reduceWeight.shape) and \(expandWeight.shape) must be [R, \(c), 1, 1] and [\(c), R, 1, 1]")
    }
    guard reduce.residual == nil, expand.residual == nil else {
        throw VisionError.invalidArgument("squeezeExcitation: the epilogues take no residual")
    }
    try reduce.validate(outShape: [n, r, 1, 1])
    try expand.validate(outShape: [n, c, 1, 1])
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    let planes = n * c, plane = planes == 0 ? 0 : x.count / planes
    guard planes > 0, plane > 0 else { return out }
    let xc = try x.detach().contiguous(), w1 = try reduceWeight.detach().contiguous(), w2 = try expandWeight.detach().contiguous()
    let pooled = try Tensor.uninitialized([planes]), hidden = try Tensor.uninitialized([n * r])
    let px = SendablePointer(xc.pointer(Float.self)), po = SendablePointer(out.pointer(Float.self))
    let pp = SendablePointer(pooled.pointer(Float.self)), ph = SendablePointer(hidden.pointer(Float.self))
    let pw1 = SendablePointer(w1.pointer(Float.self)), pw2 = SendablePointer(w2.pointer(Float.self))
    let clamp = activationClamp(activation)
    withExtendedLifetime((xc, w1, w2, pooled, hidden)) {
        reduce.scale.withOptionalBuffer { s1 in reduce.shift.withOptionalBuffer { t1 in
        expand.scale.withOptionalBuffer { s2 in expand.shift.withOptionalBuffer { t2 in
            // Chunks of at least 8K floats of planes (the threads spin between jobs, so a few microseconds of
            // work is worth a second thread).
            let planeChunk = max(1, 8_192 / plane)
            parallelFor(planes, minChunk: planeChunk) { range in
                for i in range { pp.p[i] = Float(rowSum(px.p + i * plane, plane) { $0 } / Double(plane)) }
            }
            parallelFor(n * r, minChunk: max(1, 16_384 / c)) { range in
                for i in range {
                    let (image, j) = i.quotientAndRemainder(dividingBy: r)
                    ph.p[i] = dotFloats(pw1.p + j * c, pp.p + image * c, c) * (s1?[j] ?? 1) + (t1?[j] ?? 0)
                }
                if let act = reduce.activation { unaryKernel(act, reduce.activationParameter, ph.p + range.lowerBound, ph.p + range.lowerBound, range.count) }
            }
            parallelFor(planes, minChunk: planeChunk) { range in
                // This chunk's gates (into pooled, whose values are no longer needed), then its planes.
                for i in range {
                    let (image, ch) = i.quotientAndRemainder(dividingBy: c)
                    pp.p[i] = dotFloats(pw2.p + ch * r, ph.p + image * r, r) * (s2?[ch] ?? 1) + (t2?[ch] ?? 0)
                }
                if let act = expand.activation { unaryKernel(act, expand.activationParameter, pp.p + range.lowerBound, pp.p + range.lowerBound, range.count) }
                for i in range {
                    scalePlane(px.p + i * plane, po.p + i * plane, plane, pp.p[i], clamp: clamp, activation: activation, parameter: parameter)
                }
            }
        } } } }
    }
    return out
}

/// The dot product of n floats, in 16 lanes.
@inline(__always) private func dotFloats(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
    var acc = F16(), j = 0
    while j + 16 <= n { acc = vmadd(loadF16(a + j), loadF16(b + j), acc); j += 16 }
    var s = acc.sum()
    while j < n { s += a[j] * b[j]; j += 1 }
    return s
}

/// The bounds of ReLU / ReLU6, which `scalePlane` applies in its loop; nil for other activations.
private func activationClamp(_ activation: UnaryOp?) -> (Float, Float)? {
    activation == .relu ? (0, .infinity) : activation == .relu6 ? (0, 6) : nil
}

/// dst[j] = act(src[j] * s) for one plane of n floats: ReLU / ReLU6 (`clamp`) in the loop (NaN passes through, as
/// in their kernels), another activation as a pass over the plane.
@inline(__always) private func scalePlane(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
                                          _ s: Float, clamp: (Float, Float)?, activation: UnaryOp?, parameter: Float) {
    var j = 0
    let vs = F16(repeating: s)
    if let (low, high) = clamp {
        while j + 16 <= n { storeF16(vclamp(loadF16(src + j) * vs, low, high), dst + j); j += 16 }
        while j < n { let v = src[j] * s; dst[j] = v < low ? low : (v > high ? high : v); j += 1 }
        return
    }
    while j + 16 <= n { storeF16(loadF16(src + j) * vs, dst + j); j += 16 }
    while j < n { dst[j] = src[j] * s; j += 1 }
    if let activation { unaryKernel(activation, parameter, dst, dst, n) }
}
