/// Tensor constructors that fill values.
extension Tensor {
    /// A tensor of zeros.
    public static func zeros(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try Tensor(zeros: shape, dtype: dtype)
    }

    /// A tensor of ones.
    public static func ones(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try full(shape, value: 1, dtype: dtype)
    }

    /// A tensor with every element equal to `value` (converted to `dtype`; integers saturate, NaN becomes 0).
    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32) throws -> Tensor {
        let t = try Tensor.uninitialized(shape, dtype: dtype)
        let n = t.count
        switch dtype {
        case .float32: t.pointer(Float.self).update(repeating: Float(value), count: n)
        case .int32: t.pointer(Int32.self).update(repeating: Int32(fromDouble: value), count: n)
        case .int64: t.pointer(Int64.self).update(repeating: Int64(fromDouble: value), count: n)
        case .uint8: t.pointer(UInt8.self).update(repeating: UInt8(fromDouble: value), count: n)
        }
        return t
    }

    /// `start, start+step, ...` below `end` (as torch.arange); the count is ceil((end-start)/step).
    public static func arange(start: Double = 0, end: Double, step: Double = 1, dtype: DType = .float32) throws -> Tensor {
        guard step != 0, step.isFinite, start.isFinite, end.isFinite else {
            throw VisionError.invalidArgument("arange: start, end and step must be finite and step non-zero")
        }
        let n = max(0, ((end - start) / step).rounded(.up))
        guard n <= Double(Limits.maxBytes) else { throw VisionError.outOfMemory("arange: \(n) elements is too many") }
        let t = try Tensor.uninitialized([Int(n)], dtype: dtype)
        for i in 0..<Int(n) {
            let v = start + Double(i) * step
            switch dtype {
            case .float32: t.pointer(Float.self)[i] = Float(v)
            case .int32: t.pointer(Int32.self)[i] = Int32(fromDouble: v)
            case .int64: t.pointer(Int64.self)[i] = Int64(fromDouble: v)
            case .uint8: t.pointer(UInt8.self)[i] = UInt8(fromDouble: v)
            }
        }
        return t
    }

    /// Uniform samples in [low, high) drawn from `rng`.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                               rng: inout RandomGenerator) throws -> Tensor {
        let t = try Tensor.uninitialized(shape, dtype: .float32)
        let p = t.pointer(Float.self)
        for i in 0..<t.count { p[i] = low + (high - low) * rng.nextFloat() }
        return t
    }

    /// Normal samples with the given mean and standard deviation drawn from `rng`.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                              rng: inout RandomGenerator) throws -> Tensor {
        let t = try Tensor.uninitialized(shape, dtype: .float32)
        let p = t.pointer(Float.self)
        for i in 0..<t.count { p[i] = mean + std * rng.nextNormal() }
        return t
    }

    /// A copy converted to another dtype (float to integer truncates toward zero and saturates; NaN becomes 0).
    public func to(_ target: DType) throws -> Tensor {
        if target == dtype { return recordGrad("to", try copyContiguous(), inputs: [self]) { g in [g] } }
        let src = try contiguous()
        let out = try Tensor.uninitialized(shape, dtype: target)
        func convert<S: TensorElement>(_: S.Type) {
            let s = src.pointer(S.self)
            let n = count
            switch target {
            case .float32: let d = out.pointer(Float.self); for i in 0..<n { d[i] = Float(fromDouble: s[i].asDouble) }
            case .int32: let d = out.pointer(Int32.self); for i in 0..<n { d[i] = Int32(fromDouble: s[i].asDouble) }
            case .int64: let d = out.pointer(Int64.self); for i in 0..<n { d[i] = Int64(fromDouble: s[i].asDouble) }
            case .uint8: let d = out.pointer(UInt8.self); for i in 0..<n { d[i] = UInt8(fromDouble: s[i].asDouble) }
            }
        }
        convert(dtype.elementType)
        return out
    }
}
