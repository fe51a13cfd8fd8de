import Synchronization
import VisionCore
#if canImport(Glibc)
import Glibc
#endif

// Loading EXTD's PyTorch state dict into inference layers. The keys are read by their exact PyTorch names
// (`base.3.conv.6.weight`, `upfeat.0.2.running_var`, ...), so that the later move to VisionNN modules with
// state-dict names is a rename of the structs below, not a new mapping. BatchNorm is folded into the preceding
// convolution here: inference never sees a BatchNorm layer.

/// The state dict being read: every key the model asks for is checked for presence and shape, and the problems
/// are collected so that one error lists all of them (loading EXTD-48 weights into EXTD-32 names dozens of
/// mis-shaped keys at once, which is what a user needs to see).
struct StateDictReader {
    private var tensors: [String: Tensor] = [:]
    private var used: Set<String> = []
    private(set) var missing: [String] = []
    private(set) var misShaped: [String] = []
    /// Learnable parameters read so far (BatchNorm running statistics and counters excluded).
    private(set) var learnableCount = 0

    init(_ file: SafetensorsFile) {
        for e in file.entries { tensors[e.name] = e.tensor }
    }

    /// The float32 tensor `key` of shape `shape`; a zero placeholder (and a recorded problem) when it is absent or
    /// mis-shaped, so that reading continues and the final error names every bad key.
    mutating func take(_ key: String, _ shape: [Int], learnable: Bool = true) throws -> Tensor {
        guard let t = tensors[key] else {
            missing.append("\(key) \(shape)")
            return try Tensor.zeros(shape)
        }
        used.insert(key)
        guard t.shape == shape, t.dtype == .float32 else {
            misShaped.append("\(key): \(t.dtype) \(t.shape), expected float32 \(shape)")
            return try Tensor.zeros(shape)
        }
        if learnable { learnableCount += t.count }
        return t
    }

    /// Marks BatchNorm's `num_batches_tracked` counter (int64, unused at inference) as expected.
    mutating func skip(_ key: String) {
        if tensors[key] != nil { used.insert(key) } else { missing.append("\(key) []") }
    }

    var unexpected: [String] { tensors.keys.filter { !used.contains($0) }.sorted() }

    /// Throws one error that lists the missing, mis-shaped and unexpected keys (at most 8 of each, then a count).
    func finish(model: String, source: String) throws {
        let extra = unexpected
        guard !missing.isEmpty || !misShaped.isEmpty || !extra.isEmpty else { return }
        func list(_ name: String, _ keys: [String]) -> String? {
            guard !keys.isEmpty else { return nil }
            let shown = keys.prefix(8).joined(separator: "; ")
            return "\(keys.count) \(name) (\(shown)\(keys.count > 8 ? "; ..." : ""))"
        }
        let parts = [list("missing keys", missing), list("mis-shaped keys", misShaped), list("unexpected keys", extra)]
        throw VisionError.format("\(model): the weights in \(source) do not fit this model (another EXTD variant?): " +
                                 parts.compactMap { $0 }.joined(separator: "; "))
    }
}

/// What follows a convolution, applied in place on its output.
enum Activation: Sendable {
    case none, relu
    /// PReLU with one shared slope (EXTD's `nn.PReLU()` has a single parameter).
    case prelu(Float)
}

/// A convolution with BatchNorm folded in (weight' = weight * s, bias' = (bias - mean) * s + beta with
/// s = gamma / sqrt(var + eps)), followed by an activation.
struct FoldedConv: Sendable {
    var weight: Tensor
    /// The folded bias, added in the conv's epilogue (or seeding the depthwise kernel's accumulators).
    var shift: [Float]?
    var stride: Int
    var padding: Int
    var groups: Int
    var activation: Activation
    /// Stride-1 3x3 depthwise convs read the unpadded planes and fuse the activation (EXTDDepthwise.swift).
    var depthwise: Depthwise3x3? = nil

    init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int, groups: Int, activation: Activation) throws {
        self.weight = weight; self.stride = stride; self.padding = padding; self.groups = groups
        self.activation = activation
        shift = try bias?.toArray(Float.self)
        if groups > 1, groups == weight.shape[0], weight.shape[1] == 1, stride == 1, padding == 1,
           weight.shape[2] == 3, weight.shape[3] == 3 {
            depthwise = try Depthwise3x3(weight: weight, bias: bias, activation: activation)
        }
    }

    /// conv(x), then bias, activation and `residual` (added after the activation), fused into the conv's output
    /// tiles (`conv2dFused`).
    func callAsFunction(_ x: Tensor, residual: Tensor? = nil) throws -> Tensor {
        if let depthwise, residual == nil { return try depthwise(x) }
        let epilogue = ConvEpilogue(shift: shift, residual: residual, activation: activation.op,
                                    activationParameter: activation.slope, residualAfterActivation: true)
        return try conv2dFused(x, weight: weight, stride: (stride, stride), padding: (padding, padding), groups: groups,
                               epilogue: epilogue)
    }
}

extension Activation {
    /// The VisionCore activation (PReLU with one slope is LeakyReLU with that slope).
    var op: UnaryOp? {
        switch self {
        case .none: nil
        case .relu: .relu
        case .prelu: .leakyRelu
        }
    }
    /// PReLU's slope.
    var slope: Float { if case .prelu(let a) = self { a } else { 0.01 } }
}

extension StateDictReader {
    /// Reads conv `convKey` (OIHW weight [out, in/groups, k, k], optional bias) and the BatchNorm `bnKey` after it
    /// (nil: none), and returns the folded layer. PyTorch's BatchNorm2d eps (1e-5) is the one EXTD trains with.
    mutating func conv(_ convKey: String, out: Int, inPerGroup: Int, kernel: Int, stride: Int = 1, groups: Int = 1,
                       hasBias: Bool, bnKey: String?, activation: Activation) throws -> FoldedConv {
        let w = try take("\(convKey).weight", [out, inPerGroup, kernel, kernel])
        let b = hasBias ? try take("\(convKey).bias", [out]) : nil
        guard let bnKey else {
            return try FoldedConv(weight: w, bias: b, stride: stride, padding: kernel / 2, groups: groups, activation: activation)
        }
        let gamma = try take("\(bnKey).weight", [out]).toArray(Float.self)
        let beta = try take("\(bnKey).bias", [out]).toArray(Float.self)
        let mean = try take("\(bnKey).running_mean", [out], learnable: false).toArray(Float.self)
        let variance = try take("\(bnKey).running_var", [out], learnable: false).toArray(Float.self)
        skip("\(bnKey).num_batches_tracked")
        let bias0 = try b?.toArray(Float.self) ?? [Float](repeating: 0, count: out)
        var weights = try w.toArray(Float.self)
        let per = weights.count / max(out, 1)
        var folded = [Float](repeating: 0, count: out)
        for o in 0..<out {
            // In Double: the fold should not add rounding of its own on top of the float32 weights.
            let s = Double(gamma[o]) / (Double(variance[o]) + 1e-5).squareRoot()
            for i in 0..<per { weights[o * per + i] = Float(Double(weights[o * per + i]) * s) }
            folded[o] = Float((Double(bias0[o]) - Double(mean[o])) * s + Double(beta[o]))
        }
        return try FoldedConv(weight: try Tensor(weights, shape: w.shape), bias: try Tensor(folded, shape: [out]),
                          stride: stride, padding: kernel / 2, groups: groups, activation: activation)
    }

    /// A PReLU slope: `nn.PReLU()` stores one value as a [1] tensor.
    mutating func prelu(_ key: String) throws -> Activation {
        let t = try take("\(key).weight", [1])
        return .prelu(try t.toArray(Float.self).first ?? 0)
    }
}

/// Runs `body(item)` for items 0..<n on up to `threads` threads that claim items from a shared counter, so a
/// thread the OS delays (the machine is shared) does not hold the others up at the join.
func forEachItem(_ n: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
    forEachItem(n, threads: threads) { item, _ in body(item) }
}

/// forEachItem that also tells `body` which of the threads (0..<threads) runs the item, for per-thread scratch.
func forEachItem(_ n: Int, threads: Int, _ body: @Sendable (_ item: Int, _ thread: Int) -> Void) {
    if n <= 0 { return }
    if threads <= 1 || n == 1 {
        for i in 0..<n { body(i, 0) }
        return
    }
    let counter = ItemCounter()
    Threading.runOnThreads(min(threads, n)) { thread in
        while true {
            let i = counter.next.add(1, ordering: .relaxed).oldValue
            if i >= n { break }
            body(i, thread)
        }
    }
}

private final class ItemCounter: Sendable {
    let next = Atomic<Int>(0)
}

/// A raw pointer that may cross into the concurrent chunks (each chunk touches a disjoint range, or only reads).
struct MutablePointerBox<Element>: @unchecked Sendable {
    let value: UnsafeMutablePointer<Element>
    init(_ p: UnsafeMutablePointer<Element>) { value = p }
}
