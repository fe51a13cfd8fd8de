#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// Gradient clipping with `torch.nn.utils` semantics. Gradients are replaced by scaled copies (`Tensor.setGrad`)
/// rather than scaled in place, because autograd may let several leaves share one gradient storage.
///
/// ```swift
/// try loss.backward()
/// let norm = try GradientClipping.clipGradNorm([w, b], maxNorm: 1.0)   // total 2-norm before clipping
/// try opt.step()
/// ```
public enum GradientClipping {
    /// `clip_grad_norm_`: the norm of all gradients together (the `normType`-norm of the per-tensor norms;
    /// `.infinity` for the largest magnitude), and every gradient multiplied by min(1, maxNorm / (norm + 1e-6)).
    /// Returns the total norm before clipping, or 0 when no tensor has a gradient. Tensors without a gradient
    /// are skipped.
    ///
    /// - NaN or infinite total norm: with `errorIfNonfinite` throws and changes nothing; otherwise the
    ///   gradients are multiplied by the (NaN or zero) coefficient as PyTorch does.
    /// - Throws for `maxNorm` NaN or negative, or `normType` not positive (or NaN).
    @discardableResult
    public static func clipGradNorm(_ tensors: [Tensor], maxNorm: Double, normType: Double = 2,
                                    errorIfNonfinite: Bool = false) throws -> Double {
        guard maxNorm >= 0 else { throw VisionError.invalidArgument("clip_grad_norm: maxNorm must be non-negative, got \(maxNorm)") }
        guard normType > 0 else {
            throw VisionError.invalidArgument("clip_grad_norm: normType must be positive or infinity, got \(normType)")
        }
        let withGrad = tensors.filter { $0.grad != nil }
        if withGrad.isEmpty { return 0 }
        // Per-tensor norms in double, each rounded to float32 as torch's per-tensor vector_norm results are.
        var perTensor: [Float] = []
        for t in withGrad {
            perTensor.append(try t.grad!.withUnsafeBufferPointer(as: Float.self) { Float(norm($0, normType)) })
        }
        let total = perTensor.withUnsafeBufferPointer { Float(norm($0, normType)) }
        if errorIfNonfinite && !total.isFinite {
            throw VisionError.invalidArgument("clip_grad_norm: the total norm of order \(normType) of the gradients is non-finite (\(total)), so it cannot be clipped")
        }
        let coefficient = min(Float(maxNorm) / (total + Float(1e-6)), 1)
        for t in withGrad {
            let g = t.grad!
            var scaled = try g.copyContiguous()
            try scaled.withUnsafeMutableBufferPointer(as: Float.self) { b in for i in b.indices { b[i] *= coefficient } }
            try t.setGrad(scaled)
        }
        return Double(total)
    }

    /// `clip_grad_norm_` over an optimizer's parameters.
    @discardableResult
    public static func clipGradNorm(_ parameters: [NamedParameter], maxNorm: Double, normType: Double = 2,
                                    errorIfNonfinite: Bool = false) throws -> Double {
        try clipGradNorm(parameters.map(\.tensor), maxNorm: maxNorm, normType: normType, errorIfNonfinite: errorIfNonfinite)
    }

    /// `clip_grad_value_`: clamps every gradient element to [−clipValue, clipValue] (NaN stays NaN). Throws for a
    /// negative or NaN `clipValue`.
    public static func clipGradValue(_ tensors: [Tensor], clipValue: Double) throws {
        guard clipValue >= 0 else {
            throw VisionError.invalidArgument("clip_grad_value: clipValue must be non-negative, got \(clipValue)")
        }
        let hi = Float(clipValue), lo = -hi
        for t in tensors {
            guard let g = t.grad else { continue }
            var c = try g.copyContiguous()
            try c.withUnsafeMutableBufferPointer(as: Float.self) { b in
                for i in b.indices where !b[i].isNaN { b[i] = b[i] < lo ? lo : (b[i] > hi ? hi : b[i]) }
            }
            try t.setGrad(c)
        }
    }

    /// The `p`-norm of the elements (`.infinity`: largest magnitude), accumulated in double.
    static func norm(_ x: UnsafeBufferPointer<Float>, _ p: Double) -> Double {
        if p == .infinity {
            var m: Float = 0
            for v in x {
                if v.isNaN { return .nan }
                m = max(m, abs(v))
            }
            return Double(m)
        }
        var s = 0.0
        if p == 2 {
            for v in x { s += Double(v) * Double(v) }
            return s.squareRoot()
        }
        if p == 1 {
            for v in x { s += Double(abs(v)) }
            return s
        }
        for v in x { s += pow(Double(abs(v)), p) }
        return pow(s, 1 / p)
    }
}
