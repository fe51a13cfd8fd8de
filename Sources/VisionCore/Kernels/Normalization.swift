/// Batch, layer and group normalization with PyTorch's inference semantics: statistics use the biased variance
/// (divide by n), y = (x - mean) / sqrt(var + eps) * weight + bias, and a missing weight/bias means 1/0.
/// Every kernel reduces to "y = x * a + b per contiguous span" once the statistics are known, which is streamed
/// with SIMD16 and split over threads by spans.

/// Statistics of a span: mean and biased variance, by the corrected two-pass algorithm in Double.
@inline(__always) func spanMeanVariance(_ p: UnsafePointer<Float>, _ n: Int) -> (mean: Double, variance: Double) {
    if n == 0 { return (.nan, .nan) }
    let m = rowSum(p, n) { $0 } / Double(n)
    let (d, ss) = rowDeviationSums(p, n, Float(m))
    let mf = Double(Float(m))
    return (mf + d / Double(n), max(0, (ss - d * d / Double(n)) / Double(n)))
}

/// dst[i] = src[i] * a + b over n floats.
@inline(__always) func affineSpan(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float, _ b: Float) {
    let va = F16(repeating: a), vb = F16(repeating: b)
    var i = 0
    while i + 16 <= n { storeF16(vmadd(loadF16(src + i), va, vb), dst + i); i += 16 }
    if i < n { storePartial(vmadd(loadPartial(src + i, n - i, fill: 0), va, vb), dst + i, n - i) }
}

private func floatParam(_ t: Tensor?, count: Int, _ op: String, _ name: String, default value: Float) throws -> [Float] {
    guard let t else { return [Float](repeating: value, count: count) }
    try t.requireDType(.float32, "\(op) \(name)")
    guard t.rank == 1, t.count == count else {
        throw VisionError.shapeMismatch("\(op): \(name) has shape \(t.shape); expected [\(count)]")
    }
    return try t.toArray(Float.self)
}

private func checkEps(_ eps: Double, _ op: String) throws {
    guard eps >= 0, eps.isFinite else { throw VisionError.invalidArgument("\(op): eps must be finite and >= 0, got \(eps)") }
}

/// Inference-mode batch normalization of x [N, C, ...] (rank >= 2, channels in dimension 1) with running
/// statistics [C]: y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]. Folded into one multiply-add
/// per element. A negative running variance with small eps gives NaN, as torch.
/// Differentiable in every argument (see `batchNormBackward`).
public func batchNorm(_ x: Tensor, runningMean: Tensor, runningVar: Tensor, weight: Tensor? = nil, bias: Tensor? = nil,
                      eps: Double = 1e-5) throws -> Tensor {
    let y = try batchNormForward(x, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias, eps: eps)
    let (xd, md, vd, wd) = (x.detach(), runningMean.detach(), runningVar.detach(), weight?.detach())
    let inputs = [x, runningMean, runningVar] + [weight, bias].compactMap { $0 }
    return recordGrad("batchNorm", y, inputs: inputs) { g in
        try batchNormBackward(g, xd, md, vd, wd, biasShape: bias?.shape, eps: eps)
    }
}

private func batchNormForward(_ x: Tensor, runningMean: Tensor, runningVar: Tensor, weight: Tensor?, bias: Tensor?,
                              eps: Double) throws -> Tensor {
    try x.requireDType(.float32, "batchNorm")
    guard x.rank >= 2 else { throw VisionError.shapeMismatch("batchNorm: input must have at least 2 dimensions (N, C, ...), got \(x.shape)") }
    try checkEps(eps, "batchNorm")
    let c = x.shape[1]
    let mean = try floatParam(runningMean, count: c, "batchNorm", "running_mean", default: 0)
    let vars = try floatParam(runningVar, count: c, "batchNorm", "running_var", default: 1)
    let w = try floatParam(weight, count: c, "batchNorm", "weight", default: 1)
    let b = try floatParam(bias, count: c, "batchNorm", "bias", default: 0)
    var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
    for k in 0..<c {
        let inv = 1 / (Double(vars[k]) + eps).squareRoot()
        scale[k] = Float(Double(w[k]) * inv)
        shift[k] = Float(Double(b[k]) - Double(mean[k]) * Double(w[k]) * inv)
    }
    let src = try x.contiguous()
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    let spatial = x.shape[2...].reduce(1, *), planes = x.shape[0] * c
    let s = SendablePointer(src.pointer(Float.self)), d = SendablePointer(out.pointer(Float.self))
    withExtendedLifetime(src) {
        parallelFor(planes, minChunk: max(1, (1 << 16) / max(spatial, 1))) { range in
            for pl in range {
                let k = pl % c
                affineSpan(s.p + pl * spatial, d.p + pl * spatial, spatial, scale[k], shift[k])
            }
        }
    }
    return out
}

/// Layer normalization over the trailing dimensions `normalizedShape` (which x's shape must end with); weight
/// and bias, when given, have shape `normalizedShape`.
/// Differentiable in x, weight and bias.
public func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor? = nil, bias: Tensor? = nil,
                      eps: Double = 1e-5) throws -> Tensor {
    let y = try layerNormForward(x, normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps)
    let (xd, wd) = (x.detach(), weight?.detach())
    let inputs = [x] + [weight, bias].compactMap { $0 }
    return recordGrad("layerNorm", y, inputs: inputs) { g in
        let axes = Array((xd.rank - normalizedShape.count)..<xd.rank)
        let lead = Array(0..<(xd.rank - normalizedShape.count))
        let (gx, xhat) = try normalizedBackward(g, xd, axes: axes, eps: eps, scale: wd)
        var grads: [Tensor?] = [gx]
        if weight != nil { grads.append(try sumOrSelf(try mul(g, xhat), axes: lead)) }
        if bias != nil { grads.append(try sumOrSelf(g, axes: lead)) }
        return grads
    }
}

private func layerNormForward(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?,
                              eps: Double) throws -> Tensor {
    try x.requireDType(.float32, "layerNorm")
    try checkEps(eps, "layerNorm")
    let k = normalizedShape.count
    guard k >= 1, k <= x.rank, Array(x.shape.suffix(k)) == normalizedShape else {
        throw VisionError.shapeMismatch("layerNorm: normalized_shape \(normalizedShape) is not a non-empty suffix of input shape \(x.shape)")
    }
    let n = normalizedShape.reduce(1, *)
    for (t, name) in [(weight, "weight"), (bias, "bias")] {
        if let t {
            try t.requireDType(.float32, "layerNorm \(name)")
            guard t.shape == normalizedShape else {
                throw VisionError.shapeMismatch("layerNorm: \(name) has shape \(t.shape); expected \(normalizedShape)")
            }
        }
    }
    let src = try x.contiguous(), w = try weight?.contiguous(), b = try bias?.contiguous()
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    if x.count == 0 { return out }
    let rows = x.count / max(n, 1)
    let s = SendablePointer(src.pointer(Float.self)), d = SendablePointer(out.pointer(Float.self))
    let pw = w.map { SendablePointer($0.pointer(Float.self)) }, pb = b.map { SendablePointer($0.pointer(Float.self)) }
    withExtendedLifetime((src, w, b)) {
        parallelFor(rows, minChunk: max(1, (1 << 15) / max(n, 1))) { range in
            for r in range {
                let p = s.p + r * n, o = d.p + r * n
                let (m, v) = spanMeanVariance(p, n)
                let rstd = Float(1 / (v + eps).squareRoot())
                // (x - m) * rstd = x * rstd + (-m * rstd)
                affineSpan(p, o, n, rstd, Float(-m * Double(rstd)))
                if pw != nil || pb != nil { applyElementwiseAffine(o, n, pw?.p, pb?.p) }
            }
        }
    }
    return out
}

/// o[i] = o[i] * w[i] + b[i] where either pointer may be nil (meaning 1 / 0).
@inline(__always) private func applyElementwiseAffine(_ o: UnsafeMutablePointer<Float>, _ n: Int,
                                                      _ w: UnsafeMutablePointer<Float>?, _ b: UnsafeMutablePointer<Float>?) {
    var i = 0
    while i + 16 <= n {
        let v = loadF16(o + i)
        let vw = w.map { loadF16($0 + i) } ?? F16(repeating: 1), vb = b.map { loadF16($0 + i) } ?? F16()
        storeF16(vmadd(v, vw, vb), o + i); i += 16
    }
    while i < n { o[i] = o[i] * (w?[i] ?? 1) + (b?[i] ?? 0); i += 1 }
}

/// Group normalization of x [N, C, ...]: channels split into `numGroups` groups of C / numGroups, each
/// (sample, group) normalized over its channels and spatial positions; weight and bias are per channel [C].
/// Differentiable in x, weight and bias.
public func groupNorm(_ x: Tensor, numGroups: Int, weight: Tensor? = nil, bias: Tensor? = nil,
                      eps: Double = 1e-5) throws -> Tensor {
    let y = try groupNormForward(x, numGroups: numGroups, weight: weight, bias: bias, eps: eps)
    let (xd, wd) = (x.detach(), weight?.detach())
    let inputs = [x] + [weight, bias].compactMap { $0 }
    return recordGrad("groupNorm", y, inputs: inputs) { g in
        // Per-channel scale folded into the output gradient, then the layer-norm rule over each (sample, group).
        let channelShape = [1, xd.shape[1]] + [Int](repeating: 1, count: xd.rank - 2)
        let gs = try wd.map { try mul(g, try $0.reshape(channelShape)) } ?? g
        let grouped = [xd.shape[0], numGroups, -1]
        let (gxr, xhatr) = try normalizedBackward(try gs.reshape(grouped), try xd.reshape(grouped), axes: [2], eps: eps, scale: nil)
        let xhat = try xhatr.reshape(xd.shape)
        let others = [0] + Array(2..<xd.rank)
        var grads: [Tensor?] = [try gxr.reshape(xd.shape)]
        if weight != nil { grads.append(try sum(try mul(g, xhat), axes: others)) }
        if bias != nil { grads.append(try sum(g, axes: others)) }
        return grads
    }
}

private func groupNormForward(_ x: Tensor, numGroups: Int, weight: Tensor?, bias: Tensor?, eps: Double) throws -> Tensor {
    try x.requireDType(.float32, "groupNorm")
    try checkEps(eps, "groupNorm")
    guard x.rank >= 2 else { throw VisionError.shapeMismatch("groupNorm: input must have at least 2 dimensions (N, C, ...), got \(x.shape)") }
    let c = x.shape[1]
    guard numGroups >= 1, c % numGroups == 0 else {
        throw VisionError.invalidArgument("groupNorm: num_groups \(numGroups) must be >= 1 and divide the \(c) channels")
    }
    let w = try floatParam(weight, count: c, "groupNorm", "weight", default: 1)
    let b = try floatParam(bias, count: c, "groupNorm", "bias", default: 0)
    let src = try x.contiguous()
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    if x.count == 0 { return out }
    let spatial = x.shape[2...].reduce(1, *), perGroup = c / numGroups, groupSize = perGroup * spatial
    let s = SendablePointer(src.pointer(Float.self)), d = SendablePointer(out.pointer(Float.self))
    withExtendedLifetime(src) {
        parallelFor(x.shape[0] * numGroups, minChunk: max(1, (1 << 15) / max(groupSize, 1))) { range in
            for g in range {
                let p = s.p + g * groupSize
                let (m, v) = spanMeanVariance(p, groupSize)
                let rstd = 1 / (v + eps).squareRoot()
                for ch in 0..<perGroup {
                    let k = (g % numGroups) * perGroup + ch
                    let a = Double(w[k]) * rstd
                    affineSpan(p + ch * spatial, d.p + g * groupSize + ch * spatial, spatial, Float(a), Float(Double(b[k]) - m * a))
                }
            }
        }
    }
    return out
}

// MARK: references (Double, by definition)

/// Normalizes groups of elements given by `groupOf(flatIndex)` with per-element scale/shift, in Double.
private func normalizeReference(_ x: Tensor, groups: Int, groupOf: (Int) -> Int, mean givenMean: [Double]? = nil,
                                variance givenVar: [Double]? = nil, eps: Double,
                                affine: (Int) -> (Double, Double)) throws -> Tensor {
    let offsets = x.elementOffsets(), base = x.pointer(Float.self)
    let values = offsets.map { Double(base[$0]) }
    var sums = [Double](repeating: 0, count: groups), counts = [Double](repeating: 0, count: groups)
    for (i, v) in values.enumerated() { sums[groupOf(i)] += v; counts[groupOf(i)] += 1 }
    let means = givenMean ?? zip(sums, counts).map { $0 / $1 }
    var sq = [Double](repeating: 0, count: groups)
    for (i, v) in values.enumerated() { let g = groupOf(i); sq[g] += (v - means[g]) * (v - means[g]) }
    let vars = givenVar ?? zip(sq, counts).map { $0 / $1 }
    let out = values.enumerated().map { i, v -> Float in
        let g = groupOf(i), (w, b) = affine(i)
        return Float((v - means[g]) / (vars[g] + eps).squareRoot() * w + b)
    }
    return try Tensor(out, shape: x.shape)
}

/// `batchNorm` by definition (for tests).
public func batchNormReference(_ x: Tensor, runningMean: Tensor, runningVar: Tensor, weight: Tensor? = nil,
                               bias: Tensor? = nil, eps: Double = 1e-5) throws -> Tensor {
    _ = try batchNorm(x, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias, eps: eps)  // checks
    let c = x.shape[1], spatial = x.shape[2...].reduce(1, *)
    let m = try runningMean.toArray(Float.self).map(Double.init), v = try runningVar.toArray(Float.self).map(Double.init)
    let w = try weight?.toArray(Float.self), b = try bias?.toArray(Float.self)
    return try normalizeReference(x, groups: c, groupOf: { ($0 / spatial) % c }, mean: m, variance: v, eps: eps) { i in
        let k = (i / spatial) % c
        return (Double(w?[k] ?? 1), Double(b?[k] ?? 0))
    }
}

/// `layerNorm` by definition (for tests).
public func layerNormReference(_ x: Tensor, normalizedShape: [Int], weight: Tensor? = nil, bias: Tensor? = nil,
                               eps: Double = 1e-5) throws -> Tensor {
    _ = try layerNorm(x, normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps)  // argument checks
    let n = normalizedShape.reduce(1, *)
    let w = try weight?.toArray(Float.self), b = try bias?.toArray(Float.self)
    return try normalizeReference(x, groups: x.count / max(n, 1), groupOf: { $0 / n }, eps: eps) { i in
        (Double(w?[i % n] ?? 1), Double(b?[i % n] ?? 0))
    }
}

/// `groupNorm` by definition (for tests).
public func groupNormReference(_ x: Tensor, numGroups: Int, weight: Tensor? = nil, bias: Tensor? = nil,
                               eps: Double = 1e-5) throws -> Tensor {
    _ = try groupNorm(x, numGroups: numGroups, weight: weight, bias: bias, eps: eps)  // argument checks
    let c = x.shape[1], spatial = x.shape[2...].reduce(1, *), groupSize = c / numGroups * spatial
    let w = try weight?.toArray(Float.self), b = try bias?.toArray(Float.self)
    return try normalizeReference(x, groups: x.shape[0] * numGroups, groupOf: { $0 / groupSize }, eps: eps) { i in
        let k = (i / spatial) % c
        return (Double(w?[k] ?? 1), Double(b?[k] ?? 0))
    }
}

// MARK: backward

/// For normalization over `axes` with x̂ = (x - mean) / sqrt(var + eps) (biased variance) and y = x̂ * scale:
/// dL/dx = rstd * (ĝ - mean(ĝ) - x̂ * mean(ĝ x̂)) with ĝ = dL/dy * scale. Returns dL/dx and x̂.
func normalizedBackward(_ g: Tensor, _ x: Tensor, axes: [Int], eps: Double, scale: Tensor?) throws -> (Tensor, Tensor) {
    let mu = try mean(x, axes: axes, keepDim: true)
    let rstd = try unary(.sqrt, try div(try Tensor.ones([]), try add(try variance(x, axes: axes, correction: 0, keepDim: true),
                                                                     try Tensor.full([], value: eps))))
    let xhat = try mul(try sub(x, mu), rstd)
    let gh = try scale.map { try mul(g, $0) } ?? g
    let inner = try sub(try sub(gh, try mean(gh, axes: axes, keepDim: true)),
                        try mul(xhat, try mean(try mul(gh, xhat), axes: axes, keepDim: true)))
    return (try mul(rstd, inner), xhat)
}

/// Sums over `axes`, or returns `t` when there is nothing to sum over (an empty axis list means "all" to `sum`).
private func sumOrSelf(_ t: Tensor, axes: [Int]) throws -> Tensor { axes.isEmpty ? t : try sum(t, axes: axes) }

/// Gradients of inference batch norm y = (x - m) * w / sqrt(v + eps) + b with respect to x, m, v, w and b.
private func batchNormBackward(_ g: Tensor, _ x: Tensor, _ m: Tensor, _ v: Tensor, _ w: Tensor?, biasShape: [Int]?,
                               eps: Double) throws -> [Tensor?] {
    let c = x.shape[1]
    let channel = [1, c] + [Int](repeating: 1, count: x.rank - 2)
    let others = [0] + Array(2..<x.rank)
    let rstd = try unary(.sqrt, try div(try Tensor.ones([]), try add(try v.reshape([c]), try Tensor.full([], value: eps))))
    let scale = try w.map { try mul(try $0.reshape([c]), rstd) } ?? rstd
    let centered = try sub(x, try m.reshape(channel))
    let gx = try mul(g, try scale.reshape(channel))
    let gSum = try sum(g, axes: others)
    let gCentered = try sum(try mul(g, centered), axes: others)
    let gm = try unary(.neg, try mul(gSum, scale))
    // d/dv of (x - m) * w * (v + eps)^(-1/2) = -(x - m) * w * (v + eps)^(-3/2) / 2
    let gv = try mul(try mul(gCentered, try w?.reshape([c]) ?? Tensor.ones([c])),
                     try mul(try binary(.pow, rstd, try Tensor.full([], value: 3)), try Tensor.full([], value: -0.5)))
    var grads: [Tensor?] = [gx, try gm.reshape(m.shape), try gv.reshape(v.shape)]
    if let w { grads.append(try mul(gCentered, rstd).reshape(w.shape)) }
    if let biasShape { grads.append(try gSum.reshape(biasShape)) }
    return grads
}
