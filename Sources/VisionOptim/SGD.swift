import VisionCore

/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and (coupled, L2) weight decay,
/// exactly as `torch.optim.SGD`:
/// ```
/// d = g + wd·p                                   (if wd ≠ 0)
/// buf = d on the first step, else μ·buf + (1−dampening)·d   (if μ ≠ 0)
/// d = d + μ·buf if nesterov, else buf            (if μ ≠ 0)
/// p = p − lr·d
/// ```
/// The first step stores the gradient itself as the momentum buffer (no dampening), unlike SGDP whose buffer
/// starts at zero. Parameters without a gradient are skipped.
///
/// ```swift
/// let opt = try SGD(parameters: [("fc.weight", w)], lr: 0.1, momentum: 0.9, weightDecay: 1e-4, nesterov: true)
/// try opt.step()
/// ```
public final class SGD: Optimizer<SGD.Options> {
    public struct Options: OptimizerOptions {
        public var lr: Double
        public var momentum: Double
        public var dampening: Double
        public var weightDecay: Double
        public var nesterov: Bool

        public init(lr: Double, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
                    nesterov: Bool = false) {
            self.lr = lr
            self.momentum = momentum
            self.dampening = dampening
            self.weightDecay = weightDecay
            self.nesterov = nesterov
        }

        /// torch's checks: lr, momentum and weight decay non-negative; Nesterov needs momentum > 0 and zero
        /// dampening.
        public func validate(_ optimizer: String) throws {
            try checkLR(lr, optimizer)
            try checkNonNegative(momentum, "momentum", optimizer)
            try checkNonNegative(weightDecay, "weight_decay", optimizer)
            guard dampening.isFinite else { throw VisionError.invalidArgument("\(optimizer): invalid dampening value: \(dampening)") }
            if nesterov && (momentum <= 0 || dampening != 0) {
                throw VisionError.invalidArgument("\(optimizer): Nesterov momentum requires a momentum and zero dampening")
            }
        }

        public var json: [(String, JSONValue)] {
            [("lr", .number(lr)), ("momentum", .number(momentum)), ("dampening", .number(dampening)),
             ("weight_decay", .number(weightDecay)), ("nesterov", .bool(nesterov))]
        }

        public init(json: JSONValue, context: String) throws {
            self.init(lr: try json.number("lr", context), momentum: try json.number("momentum", context),
                      dampening: try json.number("dampening", context),
                      weightDecay: try json.number("weight_decay", context), nesterov: try json.flag("nesterov", context))
        }
    }

    public init(groups: [ParameterGroup<Options>]) throws {
        try super.init(kind: "SGD", groups: groups)
    }

    /// One group of named parameters.
    public convenience init(parameters: [(String, Tensor)], lr: Double, momentum: Double = 0, dampening: Double = 0,
                            weightDecay: Double = 0, nesterov: Bool = false) throws {
        try self.init(groups: [ParameterGroup(parameters.map { NamedParameter($0.0, $0.1) },
                                              Options(lr: lr, momentum: momentum, dampening: dampening,
                                                      weightDecay: weightDecay, nesterov: nesterov))])
    }

    public override func update(_ parameter: Tensor, grad: UnsafeBufferPointer<Float>, state: ParameterState,
                                options o: Options) throws {
        let n = grad.count
        let lr = Float(o.lr), wd = Float(o.weightDecay), mu = Float(o.momentum), damp = Float(1 - o.dampening)
        let hasWD = o.weightDecay != 0, hasMomentum = o.momentum != 0
        let first = state.buffers["momentum_buffer"] == nil
        let buffer = hasMomentum ? try state.buffer("momentum_buffer", shape: parameter.shape) : nil
        state.step += 1
        try parameter.updateInPlace { p in
            let pp = SharedPointer(p.baseAddress!), g = grad.baseAddress!
            guard let buffer else {
                Threading.forEachChunk(n) { r in
                    let pp = pp.p
                    for i in r {
                        let d = hasWD ? fmadd(pp[i], wd, g[i]) : g[i]
                        pp[i] = fmadd(d, -lr, pp[i])
                    }
                }
                return
            }
            try buffer.updateInPlace { b in
                let bp = SharedPointer(b.baseAddress!)
                Threading.forEachChunk(n) { r in
                    let pp = pp.p, bp = bp.p
                    for i in r {
                        var d = hasWD ? fmadd(pp[i], wd, g[i]) : g[i]
                        // torch: buf.mul_(momentum).add_(d, alpha=1-dampening): the product is rounded first.
                        let buf = first ? d : fmadd(d, damp, bp[i] * mu)
                        bp[i] = buf
                        d = o.nesterov ? fmadd(buf, mu, d) : buf
                        pp[i] = fmadd(d, -lr, pp[i])
                    }
                }
            }
        }
    }
}

/// `a·b + c`, fused where the build targets FMA hardware (PyTorch's vectorized CPU kernels fuse these, so the
/// results agree to the last bit more often), plain multiply-add otherwise (a libm call per element would be slow).
@inline(__always)
func fmadd(_ a: Float, _ b: Float, _ c: Float) -> Float {
    #if VC_FMA
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

/// A pointer that may be captured by the chunks of `Threading.forEachChunk` (raw pointers are not `Sendable`);
/// each chunk writes only its own elements.
struct SharedPointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}
