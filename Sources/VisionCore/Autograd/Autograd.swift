#if canImport(Glibc)
import Glibc
#endif

/// Reverse-mode automatic differentiation.
///
/// A tensor that requires gradients carries a `GradState` (a reference shared by every copy of the tensor value,
/// so that `grad` accumulates on the parameter the user holds). A tensor produced by a differentiable op while
/// recording is on also carries the `GradNode` that made it: the inputs' states and a closure mapping the output's
/// gradient to the inputs' gradients. `backward()` walks the nodes in reverse topological order and accumulates
/// gradients into the leaves. Nothing is recorded when no input requires gradients or inside `Autograd.noGrad`,
/// so inference pays one branch per op.
public final class GradState: @unchecked Sendable {
    /// Accumulated gradient of a leaf (or of a non-leaf that called `retainGrad`).
    public internal(set) var grad: Tensor?
    /// The op that produced this tensor; nil for a leaf.
    let node: GradNode?
    var retainsGrad: Bool

    init(node: GradNode?) {
        self.node = node
        retainsGrad = node == nil
    }
}

/// One recorded op: its inputs (nil for those that do not require gradients) and its backward rule, which maps
/// the gradient of the output to one gradient per input (nil where none flows).
final class GradNode {
    let name: String
    let inputs: [GradState?]
    let inputShapes: [[Int]]
    let backward: (Tensor) throws -> [Tensor?]

    init(name: String, inputs: [GradState?], inputShapes: [[Int]], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.inputShapes = inputShapes
        self.backward = backward
    }
}

public enum Autograd {
    /// Per-thread depth of `noGrad` scopes (stored in the key's pointer value).
    private static let noGradKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    private static var noGradDepth: Int {
        get { Int(bitPattern: pthread_getspecific(noGradKey)) }
        set { pthread_setspecific(noGradKey, UnsafeRawPointer(bitPattern: newValue)) }
    }

    /// A per-thread switch set through `setEnabled` (the C and Python APIs' grad mode), beside `noGrad` scopes.
    private static let disabledKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Whether ops record gradient nodes on this thread.
    public static var isRecording: Bool { noGradDepth == 0 && pthread_getspecific(disabledKey) == nil }

    /// Turns recording on or off for this thread until changed again (torch.set_grad_enabled).
    public static func setEnabled(_ on: Bool) {
        pthread_setspecific(disabledKey, on ? nil : UnsafeRawPointer(bitPattern: 1))
    }

    /// Runs `body` without recording (as `torch.no_grad()`); nests, and is per thread.
    public static func noGrad<R>(_ body: () throws -> R) rethrows -> R {
        noGradDepth += 1
        defer { noGradDepth -= 1 }
        return try body()
    }
}

extension Tensor {
    /// Whether gradients flow to this tensor (a leaf that asked for them, or the result of an op on one).
    public var requiresGrad: Bool { gradState != nil }

    /// A leaf that requires (or stops requiring) gradients, sharing this tensor's storage. Only float32 tensors
    /// can require gradients.
    public func requiringGrad(_ on: Bool = true) throws -> Tensor {
        var t = self
        if on {
            guard dtype == .float32 else {
                throw VisionError.dtypeMismatch("requires_grad: only float32 tensors can require gradients, got \(dtype)")
            }
            t.gradState = GradState(node: nil)
        } else {
            t.gradState = nil
        }
        return t
    }

    /// The accumulated gradient (leaves, and non-leaves after `retainGrad()`), or nil before any backward.
    public var grad: Tensor? { gradState?.grad }

    /// Clears the accumulated gradient.
    public func zeroGrad() { gradState?.grad = nil }

    /// Keeps the gradient of this non-leaf tensor in `grad` during backward.
    public func retainGrad() { gradState?.retainsGrad = true }

    /// Whether this tensor was made by a recorded op (as opposed to a leaf or an untracked tensor).
    public var isLeaf: Bool { gradState?.node == nil }

    /// The same data, cut off from the graph: gradients do not flow through the result.
    public func detach() -> Tensor {
        var t = self
        t.gradState = nil
        return t
    }

    /// Computes the gradients of this tensor with respect to every leaf it depends on and adds them to their
    /// `grad`. A scalar (one-element) tensor needs no `gradient`; any other needs one of its shape.
    public func backward(_ gradient: Tensor? = nil) throws {
        guard let root = gradState else {
            throw VisionError.invalidArgument("backward: the tensor does not require gradients (no leaf it depends on requires them)")
        }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape else {
                throw VisionError.shapeMismatch("backward: gradient of shape \(gradient.shape) for a tensor of shape \(shape)")
            }
            try gradient.requireDType(.float32, "backward")
            seed = gradient.detach()
        } else {
            guard count == 1 else {
                throw VisionError.invalidArgument("backward: a gradient is needed for a non-scalar tensor of shape \(shape) (grad can be implicitly created only for scalar outputs)")
            }
            seed = try Tensor.ones(shape)
        }
        try Autograd.noGrad { try Autograd.run(root: root, seed: seed) }
    }
}

extension Autograd {
    /// Reverse topological order from `root`, gradients accumulated per state, leaves updated at the end of
    /// their last contribution.
    static func run(root: GradState, seed: Tensor) throws {
        var order: [GradState] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative DFS post-order (deep graphs must not overflow the stack).
        var stack: [(GradState, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (state, next) = stack.popLast() {
            let inputs = state.node?.inputs ?? []
            if next < inputs.count {
                stack.append((state, next + 1))
                if let child = inputs[next], visited.insert(ObjectIdentifier(child)).inserted {
                    stack.append((child, 0))
                }
            } else {
                order.append(state)
            }
        }
        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
        for state in order.reversed() {
            guard let g = pending.removeValue(forKey: ObjectIdentifier(state)) else { continue }
            if state.retainsGrad {
                state.grad = try state.grad.map { try add($0, g) } ?? g
            }
            guard let node = state.node else { continue }
            let grads = try node.backward(g)
            for (i, input) in node.inputs.enumerated() {
                guard let input, i < grads.count, let gi = grads[i] else { continue }
                guard gi.shape == node.inputShapes[i] else {
                    throw VisionError.shapeMismatch("backward of \(node.name): gradient \(gi.shape) for input \(i) of shape \(node.inputShapes[i])")
                }
                let key = ObjectIdentifier(input)
                pending[key] = try pending[key].map { try add($0, gi) } ?? gi
            }
        }
    }
}

/// Attaches a backward rule to `output` when recording is on and some input requires gradients; otherwise
/// returns `output` unchanged. `backward` receives the output's gradient and returns one gradient per input.
/// `name` (for error messages) is built only when recording: interpolating an op's enum costs about 1 us.
func recordGrad(_ name: @autoclosure () -> String, _ output: Tensor, inputs: [Tensor],
                _ backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
    guard Autograd.isRecording, inputs.contains(where: { $0.gradState != nil }) else { return output }
    var out = output
    out.gradState = GradState(node: GradNode(name: name(), inputs: inputs.map(\.gradState),
                                             inputShapes: inputs.map(\.shape), backward: backward))
    return out
}

/// Sums a broadcast gradient back to `shape` (the inverse of broadcasting `shape` to `g.shape`).
func sumToShape(_ g: Tensor, _ shape: [Int]) throws -> Tensor {
    if g.shape == shape { return g }
    let lead = g.rank - shape.count
    var axes = Array(0..<max(lead, 0))
    for (i, d) in shape.enumerated() where d == 1 && g.shape[lead + i] != 1 { axes.append(lead + i) }
    let s = axes.isEmpty ? g : try sum(g, axes: axes, keepDim: true)
    return try s.reshape(shape)
}
