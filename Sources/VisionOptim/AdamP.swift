#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// AdamP (Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights",
/// ICLR 2021), exactly as `adamp.AdamP` of the PyPI package `adamp` 0.3.0 (clovaai/AdamP):
/// ```
/// t = t + 1;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
/// denom = sqrt(v)/sqrt(1−β2^t) + ε;   step = lr/(1−β1^t)
/// u = (β1·m + (1−β1)·g)/denom  if nesterov, else m/denom
/// if p has ≥ 2 dims: (u, r) = projection(p, g, u)  else r = 1
/// if wd > 0: p = p·(1 − lr·wd·r)                 (decoupled, uses lr, before the step)
/// p = p − step·u
/// ```
/// The projection (see `scaleInvariantProjection`) tests the raw gradient against the weight, channel-wise then
/// layer-wise; when the weight looks scale-invariant it removes the radial part of `u` and uses `wdRatio` for the
/// weight decay. 1-D parameters (biases, norm affines) are never projected. timm's `AdamP` computes the same
/// numbers; only its factory defaults differ (`wd_ratio` 0.01, `nesterov` true).
///
/// ```swift
/// let w = try Tensor.zeros([8, 4, 3, 3]).requiringGrad()
/// let opt = try AdamP(parameters: [("conv.weight", w)], lr: 1e-3, betas: (0.9, 0.999), weightDecay: 1e-2,
///                     delta: 0.1, wdRatio: 0.1, nesterov: false)
/// try opt.step()
/// opt.zeroGrad()
/// ```
public final class AdamP: Optimizer<AdamP.Options> {
    public struct Options: OptimizerOptions {
        public var lr: Double
        public var betas: (Double, Double)
        public var eps: Double
        public var weightDecay: Double
        /// Threshold of the scale-invariance test: max |cos(g, p)| < delta / sqrt(row length).
        public var delta: Double
        /// Weight-decay multiplier for parameters found scale-invariant.
        public var wdRatio: Double
        public var nesterov: Bool

        public init(lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                    weightDecay: Double = 0, delta: Double = 0.1, wdRatio: Double = 0.1, nesterov: Bool = false) {
            self.lr = lr
            self.betas = betas
            self.eps = eps
            self.weightDecay = weightDecay
            self.delta = delta
            self.wdRatio = wdRatio
            self.nesterov = nesterov
        }

        /// The package itself checks nothing; these reject values for which its formulas break down (negative
        /// rates, betas outside [0, 1) that divide by zero in the bias correction, NaN).
        public func validate(_ optimizer: String) throws {
            try checkLR(lr, optimizer)
            try checkBetas(betas, optimizer)
            try checkNonNegative(eps, "epsilon", optimizer)
            try checkNonNegative(weightDecay, "weight_decay", optimizer)
            try checkNonNegative(delta, "delta", optimizer)
            try checkNonNegative(wdRatio, "wd_ratio", optimizer)
        }

        public var json: [(String, JSONValue)] {
            [("lr", .number(lr)), ("betas", .array([.number(betas.0), .number(betas.1)])), ("eps", .number(eps)),
             ("weight_decay", .number(weightDecay)), ("delta", .number(delta)), ("wd_ratio", .number(wdRatio)),
             ("nesterov", .bool(nesterov))]
        }

        public init(json: JSONValue, context: String) throws {
            self.init(lr: try json.number("lr", context), betas: try json.pair("betas", context),
                      eps: try json.number("eps", context), weightDecay: try json.number("weight_decay", context),
                      delta: try json.number("delta", context), wdRatio: try json.number("wd_ratio", context),
                      nesterov: try json.flag("nesterov", context))
        }
    }

    public init(groups: [ParameterGroup<Options>]) throws {
        try super.init(kind: "AdamP", groups: groups)
    }

    /// One group of named parameters with the package's defaults.
    public convenience init(parameters: [(String, Tensor)], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0, delta: Double = 0.1, wdRatio: Double = 0.1,
                            nesterov: Bool = false) throws {
        try self.init(groups: [ParameterGroup(parameters.map { NamedParameter($0.0, $0.1) },
                                              Options(lr: lr, betas: betas, eps: eps, weightDecay: weightDecay,
                                                      delta: delta, wdRatio: wdRatio, nesterov: nesterov))])
    }

    public override func update(_ parameter: Tensor, grad: UnsafeBufferPointer<Float>, state: ParameterState,
                                options o: Options) throws {
        let n = grad.count
        let m = try state.buffer("exp_avg", shape: parameter.shape)
        let v = try state.buffer("exp_avg_sq", shape: parameter.shape)
        state.step += 1
        let t = Double(state.step)
        let stepSize = o.lr / (1 - pow(o.betas.0, t))
        let bc2Sqrt = Float((1 - pow(o.betas.1, t)).squareRoot())
        let b1 = Float(o.betas.0), w1 = Float(1 - o.betas.0), b2 = Float(o.betas.1), w2 = Float(1 - o.betas.1)
        let eps = Float(o.eps)
        // Every element is written by the moments pass below.
        var perturb = [Float](unsafeUninitializedCapacity: n) { _, count in count = n }
        try m.updateInPlace { mb in
            try v.updateInPlace { vb in
                perturb.withUnsafeMutableBufferPointer { u in
                    let g = grad.baseAddress!, mps = SharedPointer(mb.baseAddress!), vps = SharedPointer(vb.baseAddress!)
                    let ups = SharedPointer(u.baseAddress!)
                    // Memory-bound: chunks over the library's threads. Explicit SIMD16 (the same operations per
                    // lane as the scalar tail): the auto-vectorizer leaves loops with sqrt and division over
                    // several pointers scalar.
                    Threading.forEachChunk(n) { r in
                        let mp = mps.p, vp = vps.p, up = ups.p
                        var start = r.lowerBound
                        let vb1 = V(repeating: b1), vw1 = V(repeating: w1), vb2 = V(repeating: b2)
                        let vw2 = V(repeating: w2), vbc = V(repeating: bc2Sqrt), veps = V(repeating: eps)
                        while start + 16 <= r.upperBound {
                            let gi = V.load(g + start)
                            let mi = vfmadd(gi, vw1, V.load(mp + start) * vb1)
                            let vi = V.load(vp + start) * vb2 + vw2 * gi * gi
                            mi.store(mp + start)
                            vi.store(vp + start)
                            let denom = vi.squareRoot() / vbc + veps
                            ((o.nesterov ? vb1 * mi + vw1 * gi : mi) / denom).store(up + start)
                            start += 16
                        }
                        for i in start..<r.upperBound {
                            // exp_avg.mul_(β1).add_(g, alpha=1−β1): the product is rounded, then fused.
                            let mi = fmadd(g[i], w1, mp[i] * b1)
                            let vi = vp[i] * b2 + w2 * g[i] * g[i]
                            mp[i] = mi
                            vp[i] = vi
                            let denom = vi.squareRoot() / bc2Sqrt + eps
                            up[i] = (o.nesterov ? b1 * mi + w1 * g[i] : mi) / denom
                        }
                    }
                }
            }
        }
        try parameter.updateInPlace { p in
            let pv = UnsafeBufferPointer(p)
            var ratio = 1.0
            if parameter.rank > 1 {
                ratio = perturb.withUnsafeMutableBufferPointer { u in
                    scaleInvariantProjection(weight: pv, grad: grad, update: u, rows: parameter.shape[0],
                                             delta: o.delta, wdRatio: o.wdRatio, eps: o.eps)
                }
            }
            // p·shrink (rounded), then p + u·(−step) fused; multiplying by 1 leaves every value unchanged.
            let shrink = o.weightDecay > 0 ? Float(1 - o.lr * o.weightDecay * ratio) : 1
            let negStep = Float(-stepSize)
            perturb.withUnsafeBufferPointer { u in
                let pps = SharedPointer(p.baseAddress!), ups = SharedPointer(UnsafeMutablePointer(mutating: u.baseAddress!))
                Threading.forEachChunk(n) { r in
                    let pp = pps.p, up = ups.p
                    var i = r.lowerBound
                    let vs = V(repeating: shrink), vstep = V(repeating: negStep)
                    while i + 16 <= r.upperBound {
                        vfmadd(V.load(up + i), vstep, V.load(pp + i) * vs).store(pp + i)
                        i += 16
                    }
                    for i in i..<r.upperBound { pp[i] = fmadd(up[i], negStep, pp[i] * shrink) }
                }
            }
        }
    }
}

/// The projection shared by AdamP and SGDP (adamp 0.3.0's `_projection`), applied to `update` in place.
///
/// For the channel view (`rows` rows of `count/rows` elements: one per output channel) and then the layer view
/// (one row of all elements): if max over rows of |cos(grad_r, weight_r)| is below `delta / sqrt(row length)`,
/// the weight is taken as scale-invariant: each row of `update` loses its component along the unit weight row
/// (`p̂ = p/(‖p‖+eps)`, `u -= p̂·(p̂·u)`) and `wdRatio` is returned; the layer view is tried only when the channel
/// view fails. Returns 1 when neither passes. Cosine similarity follows `F.cosine_similarity` (each norm clamped
/// to `eps`); dot products and norms accumulate in double. Empty tensors are left alone.
func scaleInvariantProjection(weight p: UnsafeBufferPointer<Float>, grad g: UnsafeBufferPointer<Float>,
                              update u: UnsafeMutableBufferPointer<Float>, rows: Int,
                              delta: Double, wdRatio: Double, eps: Double) -> Double {
    let n = p.count
    guard n > 0, rows > 0, n % rows == 0, let pb = p.baseAddress, let gb = g.baseAddress, let ub = u.baseAddress else {
        return 1
    }
    let ps = SharedPointer(UnsafeMutablePointer(mutating: pb)), gs = SharedPointer(UnsafeMutablePointer(mutating: gb))
    let us = SharedPointer(ub)
    for (count, length) in [(rows, n / rows), (1, n)] {
        // Rows are independent: a row's result does not depend on how rows are spread over threads.
        let rowsPerChunk = max(1, 65_536 / length)
        // Per row: |cos(grad, weight)| and Σ weight², which the projection reuses for the weight's norm.
        var cosines = [Float](repeating: 0, count: count), squares = [Double](repeating: 0, count: count)
        cosines.withUnsafeMutableBufferPointer { cb in
            squares.withUnsafeMutableBufferPointer { sb in
                let cs = SharedPointer(cb.baseAddress!), ss = SharedPointer(sb.baseAddress!)
                Threading.forEachChunk(count, minChunk: rowsPerChunk) { range in
                    for r in range {
                        let (dot, gg, pp) = blockedDotsAndNorms(gs.p + r * length, ps.p + r * length, length)
                        cs.p[r] = Float(abs(dot / (max(gg.squareRoot(), eps) * max(pp.squareRoot(), eps))))
                        ss.p[r] = pp
                    }
                }
            }
        }
        var maxCos: Float = 0
        for c in cosines {
            // NaN gradients make the test fail (as `max() < threshold` is false for NaN in PyTorch).
            if c.isNaN { maxCos = .nan; break }
            maxCos = max(maxCos, c)
        }
        // PyTorch compares the float32 cosine with the threshold rounded to float32.
        guard maxCos < Float(delta / Double(length).squareRoot()) else { continue }
        squares.withUnsafeBufferPointer { sb in
            let ss = SharedPointer(UnsafeMutablePointer(mutating: sb.baseAddress!))
            Threading.forEachChunk(count, minChunk: rowsPerChunk) { range in
                for r in range {
                    let pr = ps.p + r * length, ur = us.p + r * length
                    let norm = Float(ss.p[r].squareRoot()) + Float(eps)
                    let radial = Float(unitDot(pr, norm, ur, length))
                    for i in 0..<length { ur[i] -= (pr[i] / norm) * radial }
                }
            }
        }
        return wdRatio
    }
    return 1
}

/// `dotsAndNorms` over fixed blocks of 64K floats summed in block order, the blocks spread over the threads: the
/// same result for any thread count.
private func blockedDotsAndNorms(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> (Double, Double, Double) {
    let block = 1 << 16, blocks = (n + block - 1) / block
    if blocks <= 1 { return dotsAndNorms(a, b, n) }
    var partial = [(Double, Double, Double)](repeating: (0, 0, 0), count: blocks)
    let sa = SharedPointer(UnsafeMutablePointer(mutating: a)), sb = SharedPointer(UnsafeMutablePointer(mutating: b))
    partial.withUnsafeMutableBufferPointer { pb in
        let out = SharedPointer(pb.baseAddress!)
        Threading.forEachChunk(blocks, minChunk: 1) { range in
            for k in range { out.p[k] = dotsAndNorms(sa.p + k * block, sb.p + k * block, min(block, n - k * block)) }
        }
    }
    return partial.reduce((0, 0, 0)) { ($0.0 + $1.0, $0.1 + $1.1, $0.2 + $1.2) }
}

/// (Σ a·b, Σ a², Σ b²) over n floats, accumulated in double in 8 lanes (a dependent chain of double adds per
/// element would cost a float add's latency several times over).
private func dotsAndNorms(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> (Double, Double, Double) {
    var dot = SIMD8<Double>(), aa = SIMD8<Double>(), bb = SIMD8<Double>()
    var i = 0
    while i + 8 <= n {
        let x = SIMD8<Double>(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self))
        let y = SIMD8<Double>(UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self))
        dot += x * y
        aa += x * x
        bb += y * y
        i += 8
    }
    var (d, s, t) = (dot.sum(), aa.sum(), bb.sum())
    while i < n {
        let x = Double(a[i]), y = Double(b[i])
        d += x * y
        s += x * x
        t += y * y
        i += 1
    }
    return (d, s, t)
}

/// Σ (p[i] / norm) · u[i] over n floats, each product rounded to float as in the scalar definition, summed in
/// double in 8 lanes.
private func unitDot(_ p: UnsafePointer<Float>, _ norm: Float, _ u: UnsafePointer<Float>, _ n: Int) -> Double {
    var acc = SIMD8<Double>()
    let vn = SIMD8<Float>(repeating: norm)
    var i = 0
    while i + 8 <= n {
        let x = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        let y = UnsafeRawPointer(u + i).loadUnaligned(as: SIMD8<Float>.self)
        acc += SIMD8<Double>((x / vn) * y)
        i += 8
    }
    var total = acc.sum()
    while i < n { total += Double((p[i] / norm) * u[i]); i += 1 }
    return total
}
