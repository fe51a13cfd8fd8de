/// In-place writes through shared storage: the parameter-update primitive.
///
/// `Tensor` is a value with copy-on-write storage, and `withUnsafeMutableBufferPointer` honours that by copying a
/// shared storage before writing. An optimizer must do the opposite: a parameter is held by the model, by the
/// user and by the optimizer (all copies of one value sharing storage and `GradState`), and an update has to be
/// seen by all of them, as PyTorch's `p.data.add_(...)` is. These functions therefore write through the
/// existing storage without copying. They are meant for optimizers and similar owners of parameters; they record
/// nothing for autograd and must not be used on tensors whose old values a pending backward still needs.
///
/// Example (plain SGD by hand):
/// ```swift
/// var w = try Tensor.zeros([3]).requiringGrad()
/// // ... loss.backward() ...
/// if let g = w.grad {
///     let gv = try g.toArray(Float.self)
///     try w.updateInPlace { p in for i in 0..<p.count { p[i] -= 0.1 * gv[i] } }
/// }
/// ```
extension Tensor {
    /// Gives `body` mutable access to the elements of this float32 tensor in its existing storage, so every
    /// tensor value sharing the storage (the model's parameter, the user's copy) sees the writes.
    ///
    /// Throws `dtypeMismatch` unless the tensor is float32 and `invalidArgument` unless it is contiguous (a
    /// strided view would need scattered writes; parameters are always contiguous). Empty tensors pass an empty
    /// buffer. Nothing is recorded for autograd, whatever the recording mode.
    public func updateInPlace<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) throws -> R {
        try requireDType(.float32, "updateInPlace")
        guard isContiguous else {
            throw VisionError.invalidArgument("updateInPlace: the tensor of shape \(shape) with strides \(strides) is not contiguous; in-place updates need a contiguous float32 tensor")
        }
        return try withExtendedLifetime(storage) {
            try body(UnsafeMutableBufferPointer(start: pointer(Float.self), count: count))
        }
    }

    /// Replaces the accumulated gradient of a tensor that requires gradients (nil clears it, as `zeroGrad`).
    ///
    /// Gradient clipping uses this instead of scaling the gradient in place, because autograd may hand the same
    /// gradient storage to several leaves (the two inputs of an add share the output's gradient); scaling it in
    /// place would scale the others too. Throws when the tensor does not require gradients, when the shape
    /// differs from the tensor's, or when `grad` is not float32.
    public func setGrad(_ grad: Tensor?) throws {
        guard let state = gradState else {
            throw VisionError.invalidArgument("setGrad: the tensor of shape \(shape) does not require gradients")
        }
        if let grad {
            guard grad.shape == shape else {
                throw VisionError.shapeMismatch("setGrad: gradient of shape \(grad.shape) for a tensor of shape \(shape)")
            }
            try grad.requireDType(.float32, "setGrad")
            state.grad = grad.detach()
        } else {
            state.grad = nil
        }
    }

    /// Whether two tensor values are the same parameter: they share the autograd state that `requiringGrad()`
    /// created (copies of one value do; two separately created tensors never do).
    public func isSameParameter(as other: Tensor) -> Bool {
        guard let a = gradState, let b = other.gradState else { return false }
        return a === b
    }
}

extension Threading {
    /// Runs `body` over contiguous chunks of `0..<count` on the library's threads (at most `threadCount`, and
    /// only as many as leave each at least `minChunk` iterations), for element-wise loops outside VisionCore such
    /// as optimizer updates. Chunks are disjoint, so writes to distinct elements need no synchronisation;
    /// results must not depend on the chunking.
    public static func forEachChunk(_ count: Int, minChunk: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
        parallelFor(count, minChunk: minChunk, body)
    }
}
