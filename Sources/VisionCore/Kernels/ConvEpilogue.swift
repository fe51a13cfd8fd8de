import CKernels

/// What a fused convolution applies to its output, channel row by channel row, while each tile is still in
/// registers or cache: y = act(scale[c] * conv(x) + shift[c] + residual), or act(scale[c] * conv(x) + shift[c]) +
/// residual with `residualAfterActivation`.
///
/// This is how inference folds BatchNorm into a convolution without rewriting the weights: eval-mode BatchNorm
/// is a per-channel scale and shift (`batchNorm(...)`), computed per call in O(channels), so weights changed by
/// an optimizer or a load are always seen.
public struct ConvEpilogue: Sendable {
    /// Per output channel factor, or nil for 1.
    public var scale: [Float]?
    /// Per output channel term (a conv bias, or BatchNorm's shift), or nil for 0.
    public var shift: [Float]?
    /// Added after scale and shift; must have the output's shape.
    public var residual: Tensor?
    /// Applied last, or nil for none.
    public var activation: UnaryOp?
    /// LeakyReLU's slope.
    public var activationParameter: Float
    /// Adds the residual after the activation (a skip that joins an activated branch) instead of before it.
    public var residualAfterActivation: Bool

    public init(scale: [Float]? = nil, shift: [Float]? = nil, residual: Tensor? = nil, activation: UnaryOp? = nil,
                activationParameter: Float = 0.01, residualAfterActivation: Bool = false) {
        (self.scale, self.shift, self.residual) = (scale, shift, residual)
        (self.activation, self.activationParameter) = (activation, activationParameter)
        self.residualAfterActivation = residualAfterActivation
    }

    /// Eval-mode BatchNorm after a convolution (with optional conv bias): scale = weight / sqrt(var + eps),
    /// shift = bias + (convBias - mean) * scale, in Double as the reference computes it in one expression.
    public static func batchNorm(mean: Tensor, variance: Tensor, weight: Tensor?, bias: Tensor?, eps: Double,
                                 convBias: Tensor? = nil) throws -> ConvEpilogue {
        // Every inference forward folds each BatchNorm again: the checks allocate nothing (arrays of the operands
        // and shapes to compare cost four times the fold itself on 256 channels).
        let c = mean.count
        func checked(_ t: Tensor?, _ name: String) throws -> Tensor? {
            guard let t else { return nil }
            guard t.shape.count == 1, t.shape[0] == c else {
                throw VisionError.shapeMismatch("batch-norm epilogue: \(name) \(t.shape) must be [\(c)]")
            }
            let contiguous = try t.contiguous()
            try contiguous.requireDType(.float32, "batch-norm epilogue")
            return contiguous
        }
        let m = try checked(mean, "mean")!, v = try checked(variance, "variance")!
        let w = try checked(weight, "weight"), b = try checked(bias, "bias"), cb = try checked(convBias, "conv bias")
        var shift = [Float]()
        let scale = [Float](unsafeUninitializedCapacity: c) { sc, scaleCount in
            shift = [Float](unsafeUninitializedCapacity: c) { sh, shiftCount in
                withExtendedLifetime((m, v, w, b, cb)) {
                    vck_fold_batchnorm(m.pointer(Float.self), v.pointer(Float.self), w?.pointer(Float.self),
                                       b?.pointer(Float.self), cb?.pointer(Float.self), eps, c, sc.baseAddress, sh.baseAddress)
                }
                shiftCount = c
            }
            scaleCount = c
        }
        return ConvEpilogue(scale: scale, shift: shift)
    }

    /// Checks the per-channel arrays and the residual against the output shape.
    func validate(outShape: [Int]) throws {
        let c = outShape[1]
        if let scale, scale.count != c { throw VisionError.shapeMismatch("conv epilogue: scale has \(scale.count) values for \(c) channels") }
        if let shift, shift.count != c { throw VisionError.shapeMismatch("conv epilogue: shift has \(shift.count) values for \(c) channels") }
        if let residual {
            try residual.requireDType(.float32, "conv epilogue residual")
            guard residual.shape == outShape else {
                throw VisionError.shapeMismatch("conv epilogue: residual \(residual.shape) must match the output \(outShape)")
            }
        }
    }
}

/// The epilogue as raw pointers for the kernels' work items (the arrays and the residual are kept alive by the
/// caller for the duration of the call).
struct EpiloguePointers: @unchecked Sendable {
    let scale: UnsafePointer<Float>?
    let shift: UnsafePointer<Float>?
    let residual: UnsafePointer<Float>?
    let activation: UnaryOp?
    let parameter: Float
    let residualAfter: Bool

    /// No epilogue: the plain convolution.
    static let none = EpiloguePointers(scale: nil, shift: nil, residual: nil, activation: nil, parameter: 0,
                                       residualAfter: false)

    /// True when rows need a pass after the GEMM.
    var needsRowPass: Bool { scale != nil || residual != nil || activation != nil }

    /// The C kernels' epilogue code of the activation: -1 for none, and for one the C epilogue lacks, which
    /// `finishDeferred` then applies to the whole output.
    var cActivation: Int32 { activation.map { $0.cEpilogueCode } ?? -1 }
    /// True when the activation runs after the kernels (`finishDeferred`).
    var defersActivation: Bool { activation != nil && cActivation < 0 }
    /// The residual for the C kernels: none when it joins after a deferred activation.
    var cResidual: UnsafePointer<Float>? { defersActivation && residualAfter ? nil : residual }

    /// The deferred activation (and the residual that follows it) over the `total` outputs at `out`.
    func finishDeferred(_ out: UnsafeMutablePointer<Float>, _ total: Int) {
        guard defersActivation, let op = activation else { return }
        unaryKernel(op, parameter, out, out, total)
        if residualAfter, let r = residual { addInPlace(out, r, total) }
    }

    /// Finishes `n` outputs of channel `channel` at `o`, which is element `offset` of the output tensor.
    @inline(__always)
    func apply(_ o: UnsafeMutablePointer<Float>, _ n: Int, channel: Int, offset: Int) {
        if let scale {
            let s = scale[channel], t = shift?[channel] ?? 0
            scaleShift(o, n, s, t)
        }
        if let residual, !residualAfter { addInPlace(o, residual + offset, n) }
        if let activation { unaryKernel(activation, parameter, o, o, n) }
        if let residual, residualAfter { addInPlace(o, residual + offset, n) }
    }
}

@inline(__always) private func scaleShift(_ o: UnsafeMutablePointer<Float>, _ n: Int, _ s: Float, _ t: Float) {
    var j = 0
    let vs = SIMD8<Float>(repeating: s), vt = SIMD8<Float>(repeating: t)
    while j + 8 <= n {
        let p = UnsafeMutableRawPointer(o + j)
        p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) * vs + vt, as: SIMD8<Float>.self)
        j += 8
    }
    while j < n { o[j] = o[j] * s + t; j += 1 }
}

/// o[i] += r[i] over n floats.
@inline(__always) func addInPlace(_ o: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>, _ n: Int) {
    var j = 0
    while j + 8 <= n {
        let p = UnsafeMutableRawPointer(o + j)
        p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) + UnsafeRawPointer(r + j).loadUnaligned(as: SIMD8<Float>.self),
                     as: SIMD8<Float>.self)
        j += 8
    }
    while j < n { o[j] += r[j]; j += 1 }
}
