import VisionCore
import VisionNN

/// Convolution, batch norm, optional residual and optional activation as one unit: act(bn(conv(x)) + residual).
///
/// Every conv → BN (→ + shortcut) (→ activation) of the CNN classifiers goes through `convNormAct`, so that
/// the inference path can fuse the three (BatchNorm as a per-channel scale and shift in the convolution's
/// epilogue) in one place without touching the models. In training, BN, the shortcut and a ReLU are one op
/// (`BatchNorm2d.forward(_:residual:relu:)`); other activations follow it.
func convNormAct(_ x: Tensor, conv: Conv2d, bn: BatchNorm2d, activation: UnaryOp?,
                 residual: consuming Tensor? = nil) throws -> Tensor {
    if !bn.isTraining && !(Autograd.isRecording && recordsGradient(x, conv, bn, residual)) {
        // Inference: BatchNorm as the conv's per-channel scale and shift, residual and activation in its epilogue
        // (which writes the output over the residual when the caller handed over its only reference).
        return try conv2dFused(x, weight: conv.weight.value, stride: conv.stride, padding: conv.padding,
                               dilation: conv.dilation, groups: conv.groups,
                               epilogue: try inferenceEpilogue(conv: conv, bn: bn, activation: activation,
                                                               residual: consume residual))
    }
    if activation == nil || activation == .relu {
        // BatchNorm, the shortcut and ReLU as one op in training (one pass over the output).
        return try bn.forward(try conv(x), residual: residual, relu: activation == .relu)
    }
    var y = try bn(try conv(x))
    if let residual { y = try add(y, residual) }
    if let activation { y = try unary(activation, y) }
    return y
}

/// convNormAct, then max_pool2d of its output (a network stem). At inference one pass that writes only the pooled
/// map where the conv's kernels allow (`conv2dFusedMaxPool`), with the same bits.
func convNormActMaxPool(_ x: Tensor, conv: Conv2d, bn: BatchNorm2d, activation: UnaryOp?, poolKernel: (Int, Int),
                        poolStride: (Int, Int), poolPadding: (Int, Int)) throws -> Tensor {
    if !bn.isTraining && !(Autograd.isRecording && recordsGradient(x, conv, bn, nil)) && conv.groups == 1
        && conv.dilation == (1, 1) {
        return try conv2dFusedMaxPool(x, weight: conv.weight.value, stride: conv.stride, padding: conv.padding,
                                      epilogue: try inferenceEpilogue(conv: conv, bn: bn, activation: activation),
                                      poolKernel: poolKernel, poolStride: poolStride, poolPadding: poolPadding)
    }
    return try maxPool2d(try convNormAct(x, conv: conv, bn: bn, activation: activation), kernelSize: poolKernel,
                         stride: poolStride, padding: poolPadding)
}

/// Eval-mode `bn` after `conv` (and its bias) as a conv epilogue, with `activation` after it.
func inferenceEpilogue(conv: Conv2d, bn: BatchNorm2d, activation: UnaryOp?,
                       residual: consuming Tensor? = nil) throws -> ConvEpilogue {
    var epilogue = try ConvEpilogue.batchNorm(mean: bn.runningMean.value, variance: bn.runningVar.value,
                                              weight: bn.weight?.value, bias: bn.bias?.value, eps: bn.eps,
                                              convBias: conv.bias?.value)
    epilogue.activation = activation
    epilogue.residual = consume residual
    return epilogue
}

/// True when some input of the unit would be recorded for backward.
private func recordsGradient(_ x: Tensor, _ conv: Conv2d, _ bn: BatchNorm2d, _ residual: Tensor?) -> Bool {
    x.requiresGrad || residual?.requiresGrad == true || conv.weight.requiresGrad || conv.bias?.requiresGrad == true
        || bn.weight?.requiresGrad == true || bn.bias?.requiresGrad == true
}

/// timm's ConvNormAct layout (keys `conv.weight`, `bn.*`): conv without bias, BatchNorm2d, optional activation.
public final class ConvNormAct: Module {
    public let conv: Conv2d
    public let bn: BatchNorm2d
    public let activation: UnaryOp?

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int? = nil,
                groups: Int = 1, activation: UnaryOp?, rng: inout RandomGenerator) throws {
        let pad = padding ?? (kernelSize - 1) / 2
        conv = try Conv2d(inChannels, outChannels, kernelSize: (kernelSize, kernelSize), stride: (stride, stride),
                          padding: (pad, pad), groups: groups, bias: false, rng: &rng)
        bn = try BatchNorm2d(outChannels)
        self.activation = activation
        super.init()
        register("conv", conv); register("bn", bn)
    }

    public override func forward(_ x: Tensor) throws -> Tensor { try forward(x, residual: nil) }

    /// act(bn(conv(x)) + residual); `residual` must have the output's shape.
    public func forward(_ x: Tensor, residual: Tensor?) throws -> Tensor {
        try convNormAct(x, conv: conv, bn: bn, activation: activation, residual: residual)
    }
}
