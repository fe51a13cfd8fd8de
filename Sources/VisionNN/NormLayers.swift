import VisionCore

/// Batch normalization over channels (dimension 1) of [N, C, ...] inputs (torch.nn.BatchNorm2d and 1d alike).
/// Keys: `weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked` (int64).
///
/// Training mode normalizes with the batch's statistics (biased variance), differentiably, and updates the running
/// statistics with `momentum` (running = (1 - momentum) * running + momentum * batch, the variance taken
/// unbiased), or with a cumulative average when `momentum` is nil — as PyTorch. Eval mode uses the running
/// statistics through the fused inference kernel.
public final class BatchNorm2d: Module {
    public let weight: Parameter?, bias: Parameter?
    public let runningMean: Buffer, runningVar: Buffer, numBatchesTracked: Buffer
    public let eps: Double
    public let momentum: Double?

    public init(_ channels: Int, eps: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true) throws {
        guard channels >= 1 else { throw VisionError.invalidArgument("BatchNorm2d: channels must be positive, got \(channels)") }
        weight = affine ? try Parameter(try Tensor.ones([channels])) : nil
        bias = affine ? try Parameter(try Tensor.zeros([channels])) : nil
        runningMean = try Buffer(try Tensor.zeros([channels]))
        runningVar = try Buffer(try Tensor.ones([channels]))
        numBatchesTracked = try Buffer(try Tensor.zeros([], dtype: .int64))
        (self.eps, self.momentum) = (eps, momentum)
        super.init()
        if let weight, let bias { register("weight", weight); register("bias", bias) }
        register("running_mean", runningMean); register("running_var", runningVar)
        register("num_batches_tracked", numBatchesTracked)
    }

    public override func forward(_ x: Tensor) throws -> Tensor { try forward(x, residual: nil, relu: false) }

    /// relu(BatchNorm(x) + residual) (each part optional): in training mode one fused op (`batchNormTraining`),
    /// which saves a ResNet block two passes over its output forward; in eval mode the ops one after another.
    public func forward(_ x: Tensor, residual: Tensor?, relu: Bool) throws -> Tensor {
        guard isTraining else {
            var y = try batchNorm(x, runningMean: runningMean.value, runningVar: runningVar.value,
                                  weight: weight?.value, bias: bias?.value, eps: eps)
            if let residual { y = try add(y, residual) }
            return relu ? try VisionCore.relu(y) : y
        }
        guard x.rank >= 2, x.shape[1] == runningMean.value.count else {
            throw VisionError.shapeMismatch("BatchNorm2d: input \(x.shape) does not have \(runningMean.value.count) channels in dimension 1")
        }
        let n = x.count / max(x.shape[1], 1)
        guard n > 1 else { throw VisionError.invalidArgument("BatchNorm2d: training needs more than one value per channel, got input \(x.shape)") }
        let (y, mu, v) = try batchNormTraining(x, weight: weight?.value, bias: bias?.value, eps: eps, residual: residual,
                                               relu: relu)
        try Autograd.noGrad {
            let tracked = try numBatchesTracked.value.item() + 1
            numBatchesTracked.value = try Tensor.full([], value: tracked, dtype: .int64)
            let factor = momentum ?? 1 / tracked
            let unbiased = try mul(v, try Tensor.full([], value: Double(n) / Double(n - 1)))
            let keep = try Tensor.full([], value: 1 - factor), take = try Tensor.full([], value: factor)
            runningMean.value = try add(try mul(runningMean.value, keep), try mul(mu, take))
            runningVar.value = try add(try mul(runningVar.value, keep), try mul(unbiased, take))
        }
        return y
    }
}

/// Layer normalization over the trailing `normalizedShape` (torch.nn.LayerNorm; keys `weight`, `bias`).
public final class LayerNorm: Module {
    public let normalizedShape: [Int]
    public let weight: Parameter?, bias: Parameter?
    public let eps: Double

    public init(_ normalizedShape: [Int], eps: Double = 1e-5, elementwiseAffine: Bool = true) throws {
        guard !normalizedShape.isEmpty, normalizedShape.allSatisfy({ $0 >= 1 }) else {
            throw VisionError.invalidArgument("LayerNorm: invalid normalized_shape \(normalizedShape)")
        }
        self.normalizedShape = normalizedShape
        weight = elementwiseAffine ? try Parameter(try Tensor.ones(normalizedShape)) : nil
        bias = elementwiseAffine ? try Parameter(try Tensor.zeros(normalizedShape)) : nil
        self.eps = eps
        super.init()
        if let weight, let bias { register("weight", weight); register("bias", bias) }
    }

    public convenience init(_ features: Int, eps: Double = 1e-5) throws { try self.init([features], eps: eps) }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try layerNorm(x, normalizedShape: normalizedShape, weight: weight?.value, bias: bias?.value, eps: eps)
    }
}

/// Group normalization (torch.nn.GroupNorm; keys `weight`, `bias`, one per channel).
public final class GroupNorm: Module {
    public let numGroups: Int
    public let weight: Parameter?, bias: Parameter?
    public let eps: Double

    public init(numGroups: Int, channels: Int, eps: Double = 1e-5, affine: Bool = true) throws {
        guard numGroups >= 1, channels >= 1, channels % numGroups == 0 else {
            throw VisionError.invalidArgument("GroupNorm: \(numGroups) groups must divide \(channels) channels")
        }
        self.numGroups = numGroups
        weight = affine ? try Parameter(try Tensor.ones([channels])) : nil
        bias = affine ? try Parameter(try Tensor.zeros([channels])) : nil
        self.eps = eps
        super.init()
        if let weight, let bias { register("weight", weight); register("bias", bias) }
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try groupNorm(x, numGroups: numGroups, weight: weight?.value, bias: bias?.value, eps: eps)
    }
}
