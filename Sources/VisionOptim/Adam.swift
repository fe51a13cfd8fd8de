#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// Adam (and, with decoupled weight decay, AdamW) exactly as `torch.optim.Adam` / `torch.optim.AdamW`:
/// ```
/// t = t + 1
/// p = p·(1 − lr·wd)            (AdamW)        g = g + wd·p   (Adam, if wd ≠ 0)
/// m = lerp(m, g, 1−β1)         v = β2·v + (1−β2)·g²
/// v̂ = max(v̂, v) if amsgrad, else v
/// p = p − lr/(1−β1^t) · m / (sqrt(v̂)/sqrt(1−β2^t) + ε)
/// ```
/// Bias corrections are computed in double precision from the step count, as PyTorch does on the CPU. State per
/// parameter: `exp_avg`, `exp_avg_sq` (and `max_exp_avg_sq` with amsgrad), zero-initialised.
///
/// ```swift
/// let opt = try Adam(parameters: [("fc.weight", w), ("fc.bias", b)], lr: 1e-3, betas: (0.9, 0.999))
/// try opt.step()
/// ```
public class Adam: Optimizer<Adam.Options> {
    public struct Options: OptimizerOptions {
        public var lr: Double
        public var betas: (Double, Double)
        public var eps: Double
        public var weightDecay: Double
        public var amsgrad: Bool
        /// AdamW's weight decay (shrinks the parameter by lr·wd) instead of Adam's L2 term added to the gradient.
        public var decoupledWeightDecay: Bool

        public init(lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                    weightDecay: Double = 0, amsgrad: Bool = false, decoupledWeightDecay: Bool = false) {
            self.lr = lr
            self.betas = betas
            self.eps = eps
            self.weightDecay = weightDecay
            self.amsgrad = amsgrad
            self.decoupledWeightDecay = decoupledWeightDecay
        }

        public func validate(_ optimizer: String) throws {
            try checkLR(lr, optimizer)
            try checkNonNegative(eps, "epsilon", optimizer)
            try checkBetas(betas, optimizer)
            try checkNonNegative(weightDecay, "weight_decay", optimizer)
        }

        public var json: [(String, JSONValue)] {
            [("lr", .number(lr)), ("betas", .array([.number(betas.0), .number(betas.1)])), ("eps", .number(eps)),
             ("weight_decay", .number(weightDecay)), ("amsgrad", .bool(amsgrad)),
             ("decoupled_weight_decay", .bool(decoupledWeightDecay))]
        }

        public init(json: JSONValue, context: String) throws {
            self.init(lr: try json.number("lr", context), betas: try json.pair("betas", context),
                      eps: try json.number("eps", context), weightDecay: try json.number("weight_decay", context),
                      amsgrad: try json.flag("amsgrad", context),
                      decoupledWeightDecay: try json.flag("decoupled_weight_decay", context))
        }
    }

    public init(groups: [ParameterGroup<Options>]) throws {
        try super.init(kind: "Adam", groups: groups)
    }

    init(variant kind: String, groups: [ParameterGroup<Options>]) throws {
        try super.init(kind: kind, groups: groups)
    }

    /// One group of named parameters, L2 weight decay (torch.optim.Adam's defaults).
    public convenience init(parameters: [(String, Tensor)], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0, amsgrad: Bool = false) throws {
        try self.init(groups: [ParameterGroup(parameters.map { NamedParameter($0.0, $0.1) },
                                              Options(lr: lr, betas: betas, eps: eps, weightDecay: weightDecay,
                                                      amsgrad: amsgrad))])
    }

    public override func update(_ parameter: Tensor, grad: UnsafeBufferPointer<Float>, state: ParameterState,
                                options o: Options) throws {
        let n = grad.count
        let m = try state.buffer("exp_avg", shape: parameter.shape)
        let v = try state.buffer("exp_avg_sq", shape: parameter.shape)
        let vmax = o.amsgrad ? try state.buffer("max_exp_avg_sq", shape: parameter.shape) : nil
        state.step += 1
        let t = Double(state.step)
        let stepSize = o.lr / (1 - pow(o.betas.0, t))
        let bc2Sqrt = Float((1 - pow(o.betas.1, t)).squareRoot())
        let w1 = Float(1 - o.betas.0), b2 = Float(o.betas.1), w2 = Float(1 - o.betas.1)
        let eps = Float(o.eps), negStep = Float(-stepSize), wd = Float(o.weightDecay)
        let l2 = o.weightDecay != 0 && !o.decoupledWeightDecay
        let shrink: Float? = o.weightDecay != 0 && o.decoupledWeightDecay ? Float(1 - o.lr * o.weightDecay) : nil
        let shrinkFactor = shrink ?? 1   // multiplying by 1 leaves every value (NaN, infinities) unchanged
        // The AMSGrad maximum is written through a pointer taken once, so one loop serves both variants.
        let vmaxPointer = try vmax.map { t in try t.updateInPlace { SharedPointer($0.baseAddress!) } }
        try parameter.updateInPlace { p in
            try m.updateInPlace { mb in
                try v.updateInPlace { vb in
                    let pp = SharedPointer(p.baseAddress!), mp = SharedPointer(mb.baseAddress!)
                    let vp = SharedPointer(vb.baseAddress!), g = grad.baseAddress!
                    // Memory-bound: chunks over the library's threads; the common case (no L2 term, no AMSGrad)
                    // gets a branch-free SIMD loop.
                    Threading.forEachChunk(n) { r in
                        let pp = pp.p, mp = mp.p, vp = vp.p
                        if !l2 && vmaxPointer == nil {
                            // Explicit SIMD16: the auto-vectorizer gives up on this loop (four pointers, sqrt
                            // and division), which left it scalar at half the memory bandwidth.
                            var i = r.lowerBound
                            let sh = V(repeating: shrinkFactor), vw1 = V(repeating: w1), vb2 = V(repeating: b2)
                            let vw2 = V(repeating: w2), vbc = V(repeating: bc2Sqrt), veps = V(repeating: eps)
                            let vstep = V(repeating: negStep)
                            while i + 16 <= r.upperBound {
                                let pi = V.load(pp + i) * sh, gi = V.load(g + i)
                                let m0 = V.load(mp + i), v0 = V.load(vp + i)
                                let mi = vfmadd(vw1, gi - m0, m0)
                                let vi = v0 * vb2 + vw2 * gi * gi
                                mi.store(mp + i)
                                vi.store(vp + i)
                                vfmadd(vstep, mi / (vi.squareRoot() / vbc + veps), pi).store(pp + i)
                                i += 16
                            }
                            for i in i..<r.upperBound {
                                let pi = pp[i] * shrinkFactor, gi = g[i]
                                let mi = fmadd(w1, gi - mp[i], mp[i])
                                let vi = vp[i] * b2 + w2 * gi * gi
                                mp[i] = mi
                                vp[i] = vi
                                pp[i] = fmadd(negStep, mi / (vi.squareRoot() / bc2Sqrt + eps), pi)
                            }
                            return
                        }
                        for i in r {
                            let pi = pp[i] * shrinkFactor
                            let gi = l2 ? fmadd(pi, wd, g[i]) : g[i]
                            // torch's lerp with a small weight: m + w·(g − m). (For β1 < 0.5 torch switches to
                            // g − (g − m)·(1 − w), which differs from this only in the last bit.)
                            let mi = fmadd(w1, gi - mp[i], mp[i])
                            let vi = vp[i] * b2 + w2 * gi * gi
                            mp[i] = mi
                            vp[i] = vi
                            var vhat = vi
                            if let vmaxPointer {
                                vhat = max(vmaxPointer.p[i], vi)
                                vmaxPointer.p[i] = vhat
                            }
                            pp[i] = fmadd(negStep, mi / (vhat.squareRoot() / bc2Sqrt + eps), pi)
                        }
                    }
                }
            }
        }
        withExtendedLifetime(vmax) {}
    }
}

/// AdamW (`torch.optim.AdamW`): Adam with decoupled weight decay, default weight decay 1e-2.
///
/// ```swift
/// let opt = try AdamW(parameters: [("fc.weight", w)], lr: 1e-3, weightDecay: 0.05)
/// try opt.step()
/// ```
public final class AdamW: Adam {
    public override init(groups: [ParameterGroup<Options>]) throws {
        var gs = groups
        for i in gs.indices { gs[i].options.decoupledWeightDecay = true }
        try super.init(variant: "AdamW", groups: gs)
    }

    public convenience init(parameters: [(String, Tensor)], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 1e-2, amsgrad: Bool = false) throws {
        try self.init(groups: [ParameterGroup(parameters.map { NamedParameter($0.0, $0.1) },
                                              Options(lr: lr, betas: betas, eps: eps, weightDecay: weightDecay,
                                                      amsgrad: amsgrad, decoupledWeightDecay: true))])
    }
}

typealias V = SIMD16<Float>

extension SIMD16 where Scalar == Float {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Self {
        UnsafeRawPointer(p).loadUnaligned(as: Self.self)
    }

    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> Self { load(UnsafePointer(p)) }

    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self)
    }
}

/// Lane-wise `a·b + c`, fused as `fmadd`.
@inline(__always)
func vfmadd(_ a: V, _ b: V, _ c: V) -> V {
    #if VC_FMA
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}
