import Dispatch
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
    var bias: Tensor?
    var stride: Int
    var padding: Int
    var groups: Int
    var activation: Activation
    /// The bias as floats, added in the epilogue for GEMM-based convs: the conv then runs with beta = 0 and
    /// no bias pre-fill, and the one pass over its output adds the bias, applies the activation and the skip.
    var epilogueBias: [Float]? = nil
    /// 1x1 stride-1 convs run tile by tile with the epilogue fused (FusedConvs.swift).
    var pointwise: PointwiseConv? = nil
    /// Stride-1 3x3 depthwise convs read the unpadded planes and fuse the activation (FusedConvs.swift).
    var depthwise: Depthwise3x3? = nil

    init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int, groups: Int, activation: Activation) throws {
        self.weight = weight; self.stride = stride; self.padding = padding; self.groups = groups
        self.activation = activation
        // Depthwise convs add their bias for free (it seeds the accumulators); GEMM convs do it in the epilogue.
        if groups == 1, let bias {
            epilogueBias = try bias.toArray(Float.self)
            self.bias = nil
        } else {
            self.bias = bias
        }
        if groups == 1, stride == 1, padding == 0, weight.shape[2] == 1, weight.shape[3] == 1 {
            pointwise = try PointwiseConv(weight: weight, bias: epilogueBias, activation: activation)
        }
        if groups > 1, groups == weight.shape[0], weight.shape[1] == 1, stride == 1, padding == 1,
           weight.shape[2] == 3, weight.shape[3] == 3 {
            depthwise = try Depthwise3x3(weight: weight, bias: bias, activation: activation)
        }
    }

    /// conv(x), then bias, activation and `residual` (added after the activation) in one pass.
    func callAsFunction(_ x: Tensor, residual: Tensor? = nil) throws -> Tensor {
        if let pointwise { return try pointwise(x, residual: residual) }
        if let depthwise, residual == nil { return try depthwise(x) }
        var y = try conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding),
                           groups: groups)
        try epilogue(&y, bias: epilogueBias, activation, residual: residual)
        return y
    }
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

// MARK: - in-place epilogues

/// Runs `body` over chunks of `count` elements on VisionCore's threads (one chunk when the work is small): the
/// epilogues are memory-bound passes that a second core speeds up on the large early feature maps.
func forChunks(_ count: Int, _ body: @Sendable (Range<Int>) -> Void) {
    let threads = Threading.threadCount
    let chunks = count >= 1 << 16 ? min(threads, max(count >> 15, 1)) : 1
    if chunks <= 1 { body(0..<count); return }
    let per = (count + chunks - 1) / chunks
    DispatchQueue.concurrentPerform(iterations: chunks) { i in body((i * per)..<min(count, (i + 1) * per)) }
}

/// y = act(y + bias[c]) + residual, in place over NCHW planes (the conv output is a fresh tensor, so no copy
/// is made). Does nothing when there is nothing to do.
func epilogue(_ y: inout Tensor, bias: [Float]?, _ activation: Activation, residual: Tensor?) throws {
    if bias == nil, residual == nil, case .none = activation { return }
    if let residual, residual.shape != y.shape {
        throw VisionError.shapeMismatch("extd: residual shapes differ: \(y.shape) and \(residual.shape)")
    }
    guard y.rank == 4 else { throw VisionError.shapeMismatch("extd: expected an NCHW tensor, got \(y.shape)") }
    let channels = y.shape[1], plane = y.shape[2] * y.shape[3]
    if let bias, bias.count != channels {
        throw VisionError.shapeMismatch("extd: bias of \(bias.count) values for \(channels) channels")
    }
    let res = try residual?.contiguous()
    let slope: Float, clampLow: Bool
    switch activation {
    case .none: slope = 1; clampLow = false
    case .relu: slope = 0; clampLow = true
    case .prelu(let a): slope = a; clampLow = true
    }
    try y.withUnsafeMutableBufferPointer(as: Float.self) { buf in
        guard let base = buf.baseAddress, buf.count > 0 else { return }
        let p = MutablePointerBox(base)
        let q = res.map { MutablePointerBox($0.pointer(Float.self)) }
        let b = bias
        withExtendedLifetime(res) {
            forChunks(buf.count) { r in
                var i = r.lowerBound
                while i < r.upperBound {
                    // One channel plane segment at a time: the bias is constant along it.
                    let c = (i / plane) % channels, end = min(r.upperBound, (i / plane + 1) * plane)
                    let bc = b?[c] ?? 0
                    let o = p.value
                    if let q {
                        let s = q.value
                        if clampLow {
                            for j in i..<end { let v = o[j] + bc; o[j] = (v >= 0 ? v : v * slope) + s[j] }
                        } else {
                            for j in i..<end { o[j] = o[j] + bc + s[j] }
                        }
                    } else if clampLow {
                        for j in i..<end { let v = o[j] + bc; o[j] = v >= 0 ? v : v * slope }
                    } else {
                        for j in i..<end { o[j] += bc }
                    }
                    i = end
                }
            }
        }
    }
}

/// Runs `body(item)` for items 0..<n on up to `threads` threads that claim items from a shared counter, so a
/// thread the OS delays (the machine is shared) does not hold the others up at the join.
func forEachItem(_ n: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
    if n <= 0 { return }
    if threads <= 1 || n == 1 {
        for i in 0..<n { body(i) }
        return
    }
    let counter = ItemCounter()
    DispatchQueue.concurrentPerform(iterations: min(threads, n)) { _ in
        while true {
            let i = counter.next.add(1, ordering: .relaxed).oldValue
            if i >= n { break }
            body(i)
        }
    }
}

private final class ItemCounter: Sendable {
    let next = Atomic<Int>(0)
}

/// A raw pointer that may cross into the concurrent chunks (each chunk touches a disjoint range).
struct MutablePointerBox: @unchecked Sendable {
    let value: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { value = p }
}
