import VisionCore

/// A learnable tensor owned by a module. The box gives the parameter an identity: the module, the optimizer and
/// the user all see the same tensor, and loading weights copies into its storage instead of replacing it.
public final class Parameter: @unchecked Sendable {
    public var value: Tensor

    /// Wraps a contiguous copy of `value` (module tensors are always contiguous, so weights load in place).
    public init(_ value: Tensor, requiresGrad: Bool = true) throws {
        let c = try value.detach().contiguous()
        self.value = requiresGrad ? try c.requiringGrad() : c
    }

    /// Wraps `value` itself (no copy, same gradient identity), for tensors owned elsewhere, such as the C API's
    /// handles; `value` must be contiguous so that weights can be loaded into it in place.
    public init(wrapping value: Tensor) throws {
        guard value.isContiguous else { throw VisionError.invalidArgument("Parameter(wrapping:): the tensor must be contiguous") }
        self.value = value
    }

    public var requiresGrad: Bool { value.requiresGrad }
    public var grad: Tensor? { value.grad }
}

/// A tensor a module keeps that is not learned (BatchNorm's running statistics): saved in the state dict,
/// never given to optimizers.
public final class Buffer: @unchecked Sendable {
    public var value: Tensor
    public init(_ value: Tensor) throws { self.value = try value.detach().contiguous() }
}

/// The base of every layer and model (as torch.nn.Module): named parameters, buffers and children whose dotted
/// names are exactly PyTorch's state-dict keys, train/eval mode, freezing, state dicts.
///
///     final class TinyNet: Module {
///         let fc1: Linear, fc2: Linear
///         init() throws {
///             fc1 = try Linear(4, 8, seed: 1); fc2 = try Linear(8, 2, seed: 2)
///             super.init()
///             register("fc1", fc1); register("fc2", fc2)
///         }
///         override func forward(_ x: Tensor) throws -> Tensor { try fc2(try relu(try fc1(x))) }
///     }
///     let net = try TinyNet()
///     net.stateDict().map(\.0)   // ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
open class Module {
    public private(set) var ownParameters: [(String, Parameter)] = []
    public private(set) var ownBuffers: [(String, Buffer)] = []
    public private(set) var children: [(String, Module)] = []
    /// Training mode (dropout active, batch norm uses and updates batch statistics).
    public private(set) var isTraining = true

    public init() {}

    /// The layer's computation; subclasses override it. Models with several inputs add their own methods.
    open func forward(_ x: Tensor) throws -> Tensor {
        throw VisionError.unsupported("\(type(of: self)) does not implement forward(_:)")
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try forward(x) }

    /// `forward` on an input the caller gives up (`consume`), so that a layer holding its only reference may
    /// reuse its memory (ResNet's blocks write their output over the identity shortcut). Same result as
    /// `forward(x)`, which this default calls.
    open func forward(owning x: consuming Tensor) throws -> Tensor { try forward(x) }

    // MARK: registration (names are the PyTorch attribute names)

    public func register(_ name: String, _ p: Parameter) { replace(&ownParameters, name, p) }
    public func register(_ name: String, _ b: Buffer) { replace(&ownBuffers, name, b) }
    public func register(_ name: String, _ m: Module) { replace(&children, name, m) }

    private func replace<T>(_ list: inout [(String, T)], _ name: String, _ value: T) {
        if let i = list.firstIndex(where: { $0.0 == name }) { list[i].1 = value } else { list.append((name, value)) }
    }

    // MARK: traversal

    /// Every module below and including this one, with its dotted prefix ("" for self), in registration order.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out = [(prefix, self)]
        for (name, child) in children { out += child.namedModules(prefix: join(prefix, name)) }
        return out
    }

    /// Every parameter with its dotted name, in PyTorch's order (own parameters, then children's).
    public func namedParameters() -> [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        for (prefix, m) in namedModules() { for (n, p) in m.ownParameters { out.append((join(prefix, n), p)) } }
        return out
    }

    /// Every buffer with its dotted name.
    public func namedBuffers() -> [(String, Buffer)] {
        var out: [(String, Buffer)] = []
        for (prefix, m) in namedModules() { for (n, b) in m.ownBuffers { out.append((join(prefix, n), b)) } }
        return out
    }

    /// The parameters that require gradients (what an optimizer should update).
    public func trainableParameters() -> [(String, Tensor)] {
        namedParameters().filter { $0.1.requiresGrad }.map { ($0.0, $0.1.value) }
    }

    /// Number of parameter elements (all, or only those that require gradients).
    public func parameterCount(trainableOnly: Bool = false) -> Int {
        namedParameters().filter { !trainableOnly || $0.1.requiresGrad }.reduce(0) { $0 + $1.1.value.count }
    }

    // MARK: modes

    /// Training mode for this module and all below it; returns self for chaining.
    @discardableResult public func train(_ on: Bool = true) -> Self {
        for (_, m) in namedModules() { m.isTraining = on }
        return self
    }

    /// Evaluation mode (as `train(false)`).
    @discardableResult public func eval() -> Self { train(false) }

    /// Stops (or restarts) gradients for every parameter below this module.
    public func freeze(_ frozen: Bool = true) throws {
        for (_, p) in namedParameters() { p.value = try p.value.detach().requiringGrad(!frozen) }
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for (_, p) in namedParameters() { p.value.zeroGrad() } }
}

@inline(__always) func join(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

/// Children called "0", "1", ... applied in order (torch.nn.Sequential).
public final class Sequential: Module {
    public let layers: [Module]

    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
        for (i, m) in layers.enumerated() { register(String(i), m) }
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try layers.reduce(x) { try $1($0) }
    }

    /// Each layer takes the previous one's output over (no reference kept here).
    public override func forward(owning x: consuming Tensor) throws -> Tensor {
        var y = consume x
        for layer in layers { y = try layer.forward(owning: consume y) }
        return y
    }
}

/// Children called "0", "1", ... that the owner applies itself (torch.nn.ModuleList).
public final class ModuleList: Module {
    public let modules: [Module]

    public init(_ modules: [Module]) {
        self.modules = modules
        super.init()
        for (i, m) in modules.enumerated() { register(String(i), m) }
    }

    public subscript(i: Int) -> Module { modules[i] }
    public var count: Int { modules.count }
}

/// Returns its input (torch.nn.Identity).
public final class Identity: Module {
    public override init() { super.init() }
    public override func forward(_ x: Tensor) throws -> Tensor { x }
}
