import VisionCore

/// SGDP (Heo et al., ICLR 2021), exactly as `adamp.SGDP` of the PyPI package `adamp` 0.3.0 (clovaai/AdamP):
/// ```
/// buf = μ·buf + (1−dampening)·g                  (buf starts at zero: step 1 gives (1−dampening)·g)
/// u = g + μ·buf if nesterov, else buf
/// if p has ≥ 2 dims: (u, r) = projection(p, g, u)  else r = 1
/// if wd > 0: p = p·(1 − lr·wd·r/(1−μ))           (decoupled, scaled by 1/(1−μ), before the step)
/// p = p − lr·u
/// ```
/// The projection is AdamP's (`scaleInvariantProjection`): raw gradient against the weight, channel-wise then
/// layer-wise, threshold `delta / sqrt(row length)`.
///
/// **Where timm's SGDP differs.** In the package, the non-Nesterov branch uses the momentum buffer itself as the
/// update (`d_p = buf`, no copy) and the projection subtracts in place, so *the momentum buffer is projected*
/// and the removed radial part never comes back into later steps. timm's `timm.optim.SGDP` clones the buffer
/// first, leaving it unprojected; the two drift apart on scale-invariant weights when `nesterov` is false
/// (measured: up to 0.041 after 5 steps on a 4×3×3×3 weight, lr 0.1, μ 0.9, wd 1e-4). With `nesterov` true they
/// agree exactly, and timm's factory (`opt='sgdp'`) uses nesterov true, wd_ratio 0.1, delta 0.1. This class
/// follows the package (buffer projected), which is what `projectMomentumBuffer` = true means; set it to false
/// for timm's behaviour.
///
/// Unlike `torch.optim.SGD`, the decay check is `weightDecay > 0`, the buffer starts at zero, and momentum 1 with
/// weight decay is refused (the package divides by 1 − μ).
///
/// ```swift
/// let opt = try SGDP(parameters: [("conv.weight", w)], lr: 0.1, momentum: 0.9, weightDecay: 1e-5, nesterov: true)
/// try opt.step()
/// ```
public final class SGDP: Optimizer<SGDP.Options> {
    public struct Options: OptimizerOptions {
        public var lr: Double
        public var momentum: Double
        public var dampening: Double
        public var weightDecay: Double
        public var nesterov: Bool
        public var eps: Double
        public var delta: Double
        public var wdRatio: Double
        /// The package's in-place projection of the momentum buffer (true) or timm's projected copy (false);
        /// only matters without Nesterov.
        public var projectMomentumBuffer: Bool

        public init(lr: Double, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
                    nesterov: Bool = false, eps: Double = 1e-8, delta: Double = 0.1, wdRatio: Double = 0.1,
                    projectMomentumBuffer: Bool = true) {
            self.lr = lr
            self.momentum = momentum
            self.dampening = dampening
            self.weightDecay = weightDecay
            self.nesterov = nesterov
            self.eps = eps
            self.delta = delta
            self.wdRatio = wdRatio
            self.projectMomentumBuffer = projectMomentumBuffer
        }

        public func validate(_ optimizer: String) throws {
            try checkLR(lr, optimizer)
            try checkNonNegative(momentum, "momentum", optimizer)
            try checkNonNegative(weightDecay, "weight_decay", optimizer)
            try checkNonNegative(eps, "epsilon", optimizer)
            try checkNonNegative(delta, "delta", optimizer)
            try checkNonNegative(wdRatio, "wd_ratio", optimizer)
            guard dampening.isFinite else { throw VisionError.invalidArgument("\(optimizer): invalid dampening value: \(dampening)") }
            if weightDecay > 0 && momentum == 1 {
                throw VisionError.invalidArgument("\(optimizer): momentum 1 with weight decay divides by zero (the decay is scaled by 1/(1-momentum))")
            }
        }

        public var json: [(String, JSONValue)] {
            [("lr", .number(lr)), ("momentum", .number(momentum)), ("dampening", .number(dampening)),
             ("weight_decay", .number(weightDecay)), ("nesterov", .bool(nesterov)), ("eps", .number(eps)),
             ("delta", .number(delta)), ("wd_ratio", .number(wdRatio)),
             ("project_momentum_buffer", .bool(projectMomentumBuffer))]
        }

        public init(json: JSONValue, context: String) throws {
            self.init(lr: try json.number("lr", context), momentum: try json.number("momentum", context),
                      dampening: try json.number("dampening", context),
                      weightDecay: try json.number("weight_decay", context), nesterov: try json.flag("nesterov", context),
                      eps: try json.number("eps", context), delta: try json.number("delta", context),
                      wdRatio: try json.number("wd_ratio", context),
                      projectMomentumBuffer: try json.flag("project_momentum_buffer", context))
        }
    }

    public init(groups: [ParameterGroup<Options>]) throws {
        try super.init(kind: "SGDP", groups: groups)
    }

    /// One group of named parameters with the package's defaults (lr has none).
    public convenience init(parameters: [(String, Tensor)], lr: Double, momentum: Double = 0, dampening: Double = 0,
                            weightDecay: Double = 0, nesterov: Bool = false, eps: Double = 1e-8, delta: Double = 0.1,
                            wdRatio: Double = 0.1) throws {
        try self.init(groups: [ParameterGroup(parameters.map { NamedParameter($0.0, $0.1) },
                                              Options(lr: lr, momentum: momentum, dampening: dampening,
                                                      weightDecay: weightDecay, nesterov: nesterov, eps: eps,
                                                      delta: delta, wdRatio: wdRatio))])
    }

    public override func update(_ parameter: Tensor, grad: UnsafeBufferPointer<Float>, state: ParameterState,
                                options o: Options) throws {
        let n = grad.count
        let buffer = try state.buffer("momentum", shape: parameter.shape)
        state.step += 1
        let mu = Float(o.momentum), damp = Float(1 - o.dampening)
        let aliasBuffer = !o.nesterov && o.projectMomentumBuffer
        try buffer.updateInPlace { b in
            try parameter.updateInPlace { p in
                let g = grad.baseAddress!, bp = b.baseAddress!
                // buf.mul_(μ).add_(g, alpha=1−dampening): the product is rounded, then fused.
                for i in 0..<n { bp[i] = fmadd(g[i], damp, bp[i] * mu) }
                var scratch: [Float] = []
                if !aliasBuffer {
                    scratch = [Float](repeating: 0, count: n)
                    for i in 0..<n { scratch[i] = o.nesterov ? g[i] + mu * bp[i] : bp[i] }
                }
                func apply(_ u: UnsafeMutableBufferPointer<Float>) {
                    var ratio = 1.0
                    if parameter.rank > 1 {
                        ratio = scaleInvariantProjection(weight: UnsafeBufferPointer(p), grad: grad, update: u,
                                                         rows: parameter.shape[0], delta: o.delta,
                                                         wdRatio: o.wdRatio, eps: o.eps)
                    }
                    if o.weightDecay > 0 {
                        let shrink = Float(1 - o.lr * o.weightDecay * ratio / (1 - o.momentum))
                        for i in 0..<n { p[i] *= shrink }
                    }
                    let negLR = Float(-o.lr)
                    let pp = p.baseAddress!, up = u.baseAddress!
                    for i in 0..<n { pp[i] = fmadd(up[i], negLR, pp[i]) }
                }
                if aliasBuffer { apply(b) } else { scratch.withUnsafeMutableBufferPointer { apply($0) } }
            }
        }
    }
}
