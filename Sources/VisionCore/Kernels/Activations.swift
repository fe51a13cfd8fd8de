import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// Element-wise float functions for vc_unary. `parameter` is the slope of LEAKY_RELU, ignored by the others.
/// C constants: VC_
public enum UnaryOp: Int32, Sendable, CaseIterable {
    case relu = 0, relu6, leakyRelu, silu, geluErf, geluTanh, sigmoid, tanh, hardSwish, hardSigmoid
    case exp, log, sqrt, neg, abs

    /// The reference definition, in Double through libm.
    func scalar(_ x: Float, _ parameter: Float) -> Float {
        let d = Double(x)
        switch self {
        case .relu: return x.isNaN ? x : max(x, 0)
        case .relu6: return x.isNaN ? x : min(max(x, 0), 6)
        case .leakyRelu: return x >= 0 || x.isNaN ? x : x * parameter
        case .silu: return Float(d / (1 + Glibc.exp(-d)))
        case .geluErf: return Float(0.5 * d * (1 + Glibc.erf(d / 2.0.squareRoot())))
        case .geluTanh: return Float(0.5 * d * (1 + Glibc.tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d))))
        case .sigmoid: return Float(1 / (1 + Glibc.exp(-d)))
        case .tanh: return Float(Glibc.tanh(d))
        case .hardSwish: return x.isNaN ? x : Float(d * min(max(d + 3, 0), 6) / 6)
        case .hardSigmoid: return x.isNaN ? x : Float(min(max(d + 3, 0), 6) / 6)
        case .exp: return Float(Glibc.exp(d))
        case .log: return Float(Glibc.log(d))
        case .sqrt: return Float(d.squareRoot())
        case .neg: return -x
        case .abs: return Swift.abs(x)
        }
    }
}

/// Applies `op` to every element of a float tensor (fast SIMD kernel, multi-threaded on large inputs).
public func unary(_ op: UnaryOp, _ x: Tensor, parameter: Float = 0.01) throws -> Tensor {
    try x.requireDType(.float32, "\(op)")
    let src = try x.contiguous()
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    let s = SendablePointer(src.pointer(Float.self)), d = SendablePointer(out.pointer(Float.self))
    withExtendedLifetime(src) {
        parallelFor(out.count, minChunk: 1 << 16) { r in unaryKernel(op, parameter, s.p + r.lowerBound, d.p + r.lowerBound, r.count) }
    }
    return recordGrad("\(op)", out, inputs: [x]) { g in
        [try unaryGradient(op, g, src.detach(), out.detach(), parameter: parameter)]
    }
}

/// dL/dx = g * op'(x) (with y = op(x)) in one vectorized pass (CKernels), multi-threaded on large inputs;
/// PyTorch's conventions at the kinks (relu'(0) = 0, abs'(0) = 0, hardswish and hardsigmoid one-sided at +-3).
func unaryGradient(_ op: UnaryOp, _ g: Tensor, _ x: Tensor, _ y: Tensor, parameter: Float) throws -> Tensor {
    let gc = try g.contiguous(), xc = try x.contiguous(), yc = try y.contiguous()
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    let pg = SendablePointer(gc.pointer(Float.self)), px = SendablePointer(xc.pointer(Float.self))
    let py = SendablePointer(yc.pointer(Float.self)), pd = SendablePointer(out.pointer(Float.self))
    withExtendedLifetime((gc, xc, yc)) {
        parallelFor(out.count, minChunk: 1 << 16) { r in
            let o = r.lowerBound
            _ = vck_activation_grad(op.rawValue, pg.p + o, px.p + o, py.p + o, pd.p + o, r.count, parameter)
        }
    }
    return out
}

/// Applies `op` element by element through the scalar reference definition (for tests).
public func unaryReference(_ op: UnaryOp, _ x: Tensor, parameter: Float = 0.01) throws -> Tensor {
    try x.requireDType(.float32, "\(op)")
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    let s = x.pointer(Float.self), d = out.pointer(Float.self)
    var i = 0
    forEachOffset(shape: x.shape, strides: x.strides) { o in d[i] = op.scalar(s[o], parameter); i += 1 }
    return out
}

@inline(__always)
func unaryKernel(_ op: UnaryOp, _ parameter: Float, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    switch op {
    // Transcendental activations run in C (CKernels), which vectorizes them for the CPU at hand.
    case .silu, .geluErf, .geluTanh, .sigmoid, .tanh, .exp: _ = vck_activation(op.rawValue, src, dst, n)
    case .relu: unaryLoop(src, dst, n) { x in keepNaN(x.replacing(with: 0, where: x .< 0), x) }
    case .relu6: unaryLoop(src, dst, n) { x in vclamp(x, 0, 6) }
    case .leakyRelu: unaryLoop(src, dst, n) { x in x.replacing(with: x * parameter, where: x .< 0) }
    case .hardSwish: unaryLoop(src, dst, n) { x in x * vclamp(x + 3, 0, 6) * (1.0 / 6) }
    case .hardSigmoid: unaryLoop(src, dst, n) { x in vclamp(x + 3, 0, 6) * (1.0 / 6) }
    case .sqrt: unaryLoop(src, dst, n) { x in x.squareRoot() }
    case .neg: unaryLoop(src, dst, n) { x in -x }
    case .abs: unaryLoop(src, dst, n) { x in x.replacing(with: -x, where: x .< 0) }
    case .log: for i in 0..<n { dst[i] = Glibc.logf(src[i]) }
    }
}

/// The SIMD loop; the tail is padded into one vector so that the scalar and vector paths cannot disagree.
@inline(__always)
func unaryLoop(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ f: (F16) -> F16) {
    let raw = UnsafeRawPointer(src), out = UnsafeMutableRawPointer(dst)
    var i = 0
    while i + 16 <= n {
        out.storeBytes(of: f(raw.loadUnaligned(fromByteOffset: i * 4, as: F16.self)), toByteOffset: i * 4, as: F16.self)
        i += 16
    }
    if i < n {
        var v = F16()
        for j in 0..<(n - i) { v[j] = src[i + j] }
        let r = f(v)
        for j in 0..<(n - i) { dst[i + j] = r[j] }
    }
}

// MARK: named activations (torch.nn.functional names)

public func relu(_ x: Tensor) throws -> Tensor { try unary(.relu, x) }
public func relu6(_ x: Tensor) throws -> Tensor { try unary(.relu6, x) }
public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) throws -> Tensor { try unary(.leakyRelu, x, parameter: negativeSlope) }
public func silu(_ x: Tensor) throws -> Tensor { try unary(.silu, x) }
/// GELU; `approximate` is "none" (erf) or "tanh", as in PyTorch.
public func gelu(_ x: Tensor, approximate: String = "none") throws -> Tensor {
    switch approximate {
    case "none": return try unary(.geluErf, x)
    case "tanh": return try unary(.geluTanh, x)
    default: throw VisionError.invalidArgument("gelu: approximate must be 'none' or 'tanh', got '\(approximate)'")
    }
}
public func sigmoid(_ x: Tensor) throws -> Tensor { try unary(.sigmoid, x) }
public func tanh(_ x: Tensor) throws -> Tensor { try unary(.tanh, x) }
public func hardSwish(_ x: Tensor) throws -> Tensor { try unary(.hardSwish, x) }
public func hardSigmoid(_ x: Tensor) throws -> Tensor { try unary(.hardSigmoid, x) }

/// PReLU: `x` if x >= 0 else `weight[c] * x`, with one weight per channel (dimension 1) or a single shared one.
public func prelu(_ x: Tensor, weight: Tensor) throws -> Tensor {
    try x.requireDType(.float32, "prelu"); try weight.requireDType(.float32, "prelu")
    let channels = x.rank >= 2 ? x.shape[1] : 1
    guard weight.count == 1 || weight.count == channels else {
        throw VisionError.shapeMismatch("prelu: weight has \(weight.count) elements; expected 1 or \(channels) (channels of input \(x.shape))")
    }
    let w = try weight.contiguous().reshape(weight.count == 1 ? [] : [channels] + [Int](repeating: 1, count: max(x.rank - 2, 0)))
    let negative = try binary(.mul, x, w)
    let zero = try Tensor.zeros([], dtype: .float32)
    return try whereSelect(try compare(.ge, x, zero), x, negative)
}
