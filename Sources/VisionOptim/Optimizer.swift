import VisionCore

/// Optimizers that update parameters in place: SGD, Adam, AdamW, SGDP and AdamP, with parameter groups,
/// per-parameter state and checkpointable state dicts; learning-rate schedulers and gradient clipping.
///
/// ```swift
/// import VisionCore
/// import VisionOptim
///
/// let w = try Tensor.zeros([5, 7]).requiringGrad()
/// let b = try Tensor.zeros([5]).requiringGrad()
/// let opt = try AdamW(parameters: [("fc.weight", w), ("fc.bias", b)], lr: 1e-3, weightDecay: 0.05)
/// for _ in 0..<10 {
///     opt.zeroGrad()
///     let loss = try sum(mul(w, w))   // any scalar built from the parameters
///     try loss.backward()
///     try opt.step()                  // w and b (and every copy of them) change in place
/// }
/// let checkpoint = try opt.stateDict()  // tensors + JSON, see `OptimizerState`
/// ```
///
/// A parameter is a float32, contiguous tensor that requires gradients; the optimizer keeps a copy of the value,
/// which shares storage and gradient with the model's, so reading `.grad` and writing through
/// `Tensor.updateInPlace` reaches the model's parameter. Updates run inside `Autograd.noGrad`.

/// A parameter with its name (the key of its state in state dicts, e.g. `layer1.0.conv1.weight`).
public struct NamedParameter: @unchecked Sendable {
    public let name: String
    public let tensor: Tensor

    public init(_ name: String, _ tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}

/// Parameters that share hyper-parameters (PyTorch's `param_groups` entries).
public struct ParameterGroup<Options: OptimizerOptions>: @unchecked Sendable {
    public var parameters: [NamedParameter]
    public var options: Options

    public init(_ parameters: [NamedParameter], _ options: Options) {
        self.parameters = parameters
        self.options = options
    }
}

/// The hyper-parameters of one optimizer for one group.
public protocol OptimizerOptions: Sendable {
    /// Learning rate; schedulers change it.
    var lr: Double { get set }
    var weightDecay: Double { get set }
    /// Throws `invalidArgument` naming the optimizer and the bad value (negative lr, betas outside [0, 1), ...).
    func validate(_ optimizer: String) throws
    /// The hyper-parameters as JSON members, for state dicts.
    var json: [(String, JSONValue)] { get }
    /// Reads hyper-parameters written by `json`; `context` names the group in error messages.
    init(json: JSONValue, context: String) throws
}

/// Optimizer state of one parameter: the number of updates it received and its buffers (momentum, moments),
/// each contiguous, float32, of the parameter's shape, and owned by the optimizer alone.
public final class ParameterState {
    public internal(set) var step: Int
    public internal(set) var buffers: [String: Tensor]

    init(step: Int = 0, buffers: [String: Tensor] = [:]) {
        self.step = step
        self.buffers = buffers
    }

    /// The buffer `name`, created as zeros of `shape` on first use.
    func buffer(_ name: String, shape: [Int]) throws -> Tensor {
        if let b = buffers[name] { return b }
        let b = try Tensor.zeros(shape)
        buffers[name] = b
        return b
    }
}

/// What schedulers and clipping need from any optimizer.
public protocol LearningRateControlled: AnyObject {
    /// One learning rate per parameter group.
    var learningRates: [Double] { get }
    /// Sets the learning rate of group `group` (throws for a bad index or a negative or non-finite rate).
    func setLearningRate(_ lr: Double, group: Int) throws
}

/// Base of every optimizer: validated groups, lazily created per-parameter state, `step()`, `zeroGrad()` and the
/// state dict. Subclasses implement `update`, which receives one parameter whose gradient exists.
open class Optimizer<Options: OptimizerOptions>: LearningRateControlled {
    /// The name written into state dicts and checked on load ("SGD", "Adam", "AdamW", "SGDP", "AdamP").
    public let kind: String
    public private(set) var groups: [ParameterGroup<Options>]
    /// State per group and parameter; nil until the parameter's first update (as PyTorch, whose state is empty
    /// for parameters that never had a gradient).
    var states: [[ParameterState?]]

    /// Validates the groups: at least one parameter, every parameter a float32, contiguous tensor that requires
    /// gradients, names unique, no parameter in two groups, hyper-parameters valid.
    public init(kind: String, groups: [ParameterGroup<Options>]) throws {
        self.kind = kind
        guard groups.contains(where: { !$0.parameters.isEmpty }) else {
            throw VisionError.invalidArgument("\(kind): the optimizer got an empty parameter list")
        }
        var names = Set<String>()
        var seen: [Tensor] = []
        for (gi, g) in groups.enumerated() {
            do { try g.options.validate(kind) } catch let e as VisionError {
                throw VisionError.invalidArgument("\(e.message) (parameter group \(gi))")
            }
            for p in g.parameters {
                let t = p.tensor
                guard t.requiresGrad else {
                    throw VisionError.invalidArgument("\(kind): parameter '\(p.name)' does not require gradients (a frozen parameter or a tensor without requiringGrad()); leave it out of the optimizer")
                }
                guard t.isLeaf else {
                    throw VisionError.invalidArgument("\(kind): parameter '\(p.name)' is not a leaf tensor (it was computed by an op); optimize the leaf it came from")
                }
                guard t.dtype == .float32, t.isContiguous else {
                    throw VisionError.invalidArgument("\(kind): parameter '\(p.name)' must be a contiguous float32 tensor (shape \(t.shape), \(t.dtype))")
                }
                guard names.insert(p.name).inserted else {
                    throw VisionError.invalidArgument("\(kind): parameter name '\(p.name)' appears twice")
                }
                guard !seen.contains(where: { $0.isSameParameter(as: t) }) else {
                    throw VisionError.invalidArgument("\(kind): parameter '\(p.name)' is the same tensor as another parameter (some parameters appear in more than one group)")
                }
                seen.append(t)
            }
        }
        self.groups = groups
        states = groups.map { [ParameterState?](repeating: nil, count: $0.parameters.count) }
    }

    /// Names for unnamed tensors: "0", "1", ... in order, as PyTorch's integer state keys.
    public static func named(_ tensors: [Tensor]) -> [NamedParameter] {
        tensors.enumerated().map { NamedParameter(String($0.offset), $0.element) }
    }

    /// One update of every parameter that has a gradient; parameters without one (nil `grad`) are skipped and
    /// their state is left untouched, as in PyTorch. Throws when a gradient's shape differs from its parameter's
    /// (nothing after that parameter is updated).
    public func step() throws {
        try Autograd.noGrad {
            for gi in groups.indices {
                let options = groups[gi].options
                for pi in groups[gi].parameters.indices {
                    let p = groups[gi].parameters[pi]
                    guard let grad = p.tensor.grad else { continue }
                    guard grad.shape == p.tensor.shape else {
                        throw VisionError.shapeMismatch("\(kind).step: gradient of shape \(grad.shape) for parameter '\(p.name)' of shape \(p.tensor.shape)")
                    }
                    let state = states[gi][pi] ?? ParameterState()
                    if p.tensor.count == 0 {
                        // Nothing to update; the step still counts, as in PyTorch.
                        state.step += 1
                    } else {
                        try grad.withUnsafeBufferPointer(as: Float.self) { g in
                            try update(p.tensor, grad: g, state: state, options: options)
                        }
                    }
                    states[gi][pi] = state
                }
            }
        }
    }

    /// The update rule: `grad` is the parameter's gradient (contiguous, same element count), `state` is created
    /// empty on the first call and kept afterwards. Subclasses override it.
    open func update(_ parameter: Tensor, grad: UnsafeBufferPointer<Float>, state: ParameterState,
                     options: Options) throws {
        throw VisionError.unsupported("\(kind): update is not implemented")
    }

    /// Clears every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() {
        for g in groups { for p in g.parameters { p.tensor.zeroGrad() } }
    }

    /// All parameters in group order.
    public var parameters: [NamedParameter] { groups.flatMap(\.parameters) }

    /// The state of a parameter by name, or nil before its first update.
    public func state(of name: String) -> ParameterState? {
        for (gi, g) in groups.enumerated() {
            if let pi = g.parameters.firstIndex(where: { $0.name == name }) { return states[gi][pi] }
        }
        return nil
    }

    public var learningRates: [Double] { groups.map(\.options.lr) }

    public func setLearningRate(_ lr: Double, group: Int) throws {
        guard groups.indices.contains(group) else {
            throw VisionError.invalidArgument("\(kind): no parameter group \(group) (there are \(groups.count))")
        }
        guard lr.isFinite, lr >= 0 else {
            throw VisionError.invalidArgument("\(kind): invalid learning rate \(lr) for group \(group)")
        }
        groups[group].options.lr = lr
    }

    /// Replaces the hyper-parameters of group `group` (validated first).
    public func setOptions(_ options: Options, group: Int) throws {
        guard groups.indices.contains(group) else {
            throw VisionError.invalidArgument("\(kind): no parameter group \(group) (there are \(groups.count))")
        }
        try options.validate(kind)
        groups[group].options = options
    }

    /// Restores groups' hyper-parameters and per-parameter state (replacing the current ones) after validating
    /// all of it, so a rejected state changes nothing. See `OptimizerState` for the checks.
    public func load(_ saved: OptimizerState) throws {
        let decoded = try saved.decode(for: self)
        for (gi, o) in decoded.options.enumerated() { groups[gi].options = o }
        states = decoded.states
    }
}

/// Splitting parameters into groups.
public enum ParameterGroups {
    /// timm's `param_groups_weight_decay` rule: no weight decay on 1-D (or 0-D) tensors (biases, norm scales
    /// and shifts), on names ending in ".bias", and on the names in `skip`; the rest decays.
    public static func splitByWeightDecay(_ parameters: [NamedParameter], skip: Set<String> = [])
        -> (decay: [NamedParameter], noDecay: [NamedParameter]) {
        var decay: [NamedParameter] = [], noDecay: [NamedParameter] = []
        for p in parameters {
            if p.tensor.rank <= 1 || p.name.hasSuffix(".bias") || skip.contains(p.name) {
                noDecay.append(p)
            } else {
                decay.append(p)
            }
        }
        return (decay, noDecay)
    }

    /// Two groups with `options`, the first (no-decay parameters) with weight decay 0, as timm orders them;
    /// an empty group is left out.
    public static func weightDecayGroups<O: OptimizerOptions>(_ parameters: [NamedParameter], options: O,
                                                              skip: Set<String> = []) -> [ParameterGroup<O>] {
        let (decay, noDecay) = splitByWeightDecay(parameters, skip: skip)
        var zero = options
        zero.weightDecay = 0
        var groups: [ParameterGroup<O>] = []
        if !noDecay.isEmpty { groups.append(ParameterGroup(noDecay, zero)) }
        if !decay.isEmpty { groups.append(ParameterGroup(decay, options)) }
        return groups
    }
}
