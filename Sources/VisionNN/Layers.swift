import VisionCore

/// y = x W^T + b with W [out, in] (torch.nn.Linear; keys `weight`, `bias`).
public final class Linear: Module {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout RandomGenerator) throws {
        guard inFeatures >= 1, outFeatures >= 1 else {
            throw VisionError.invalidArgument("Linear: features must be positive, got \(inFeatures) -> \(outFeatures)")
        }
        weight = try Parameter(try Init.kaimingUniform([outFeatures, inFeatures], rng: &rng))
        self.bias = bias ? try Parameter(try Init.defaultBias(outFeatures, fanIn: inFeatures, rng: &rng)) : nil
        super.init()
        register("weight", weight)
        if let b = self.bias { register("bias", b) }
    }

    public override func forward(_ x: Tensor) throws -> Tensor { try linear(x, weight: weight.value, bias: bias?.value) }
}

/// 2-D convolution layer (torch.nn.Conv2d; keys `weight` [out, in/groups, kh, kw], `bias`).
public final class Conv2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
                rng: inout RandomGenerator) throws {
        guard groups >= 1, inChannels % groups == 0, outChannels % groups == 0, kernelSize.0 >= 1, kernelSize.1 >= 1 else {
            throw VisionError.invalidArgument("Conv2d: channels \(inChannels) -> \(outChannels) must divide into \(groups) groups, kernel \(kernelSize) positive")
        }
        let shape = [outChannels, inChannels / groups, kernelSize.0, kernelSize.1]
        weight = try Parameter(try Init.kaimingUniform(shape, rng: &rng))
        self.bias = bias ? try Parameter(try Init.defaultBias(outChannels, fanIn: Init.fans(shape).fanIn, rng: &rng)) : nil
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
        super.init()
        register("weight", weight)
        if let b = self.bias { register("bias", b) }
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// Transposed convolution layer (torch.nn.ConvTranspose2d; `weight` [in, out/groups, kh, kw], `bias`).
public final class ConvTranspose2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: (Int, Int), padding: (Int, Int), outputPadding: (Int, Int), dilation: (Int, Int), groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), outputPadding: (Int, Int) = (0, 0), groups: Int = 1, bias: Bool = true,
                dilation: (Int, Int) = (1, 1), rng: inout RandomGenerator) throws {
        guard groups >= 1, inChannels % groups == 0, outChannels % groups == 0 else {
            throw VisionError.invalidArgument("ConvTranspose2d: channels \(inChannels) -> \(outChannels) must divide into \(groups) groups")
        }
        let shape = [inChannels, outChannels / groups, kernelSize.0, kernelSize.1]
        weight = try Parameter(try Init.kaimingUniform(shape, rng: &rng))
        // PyTorch computes the bias bound from the weight's fan_in, which for this layout is (out/groups)*kh*kw.
        self.bias = bias ? try Parameter(try Init.defaultBias(outChannels, fanIn: Init.fans(shape).fanIn, rng: &rng)) : nil
        (self.stride, self.padding, self.outputPadding, self.dilation, self.groups) = (stride, padding, outputPadding, dilation, groups)
        super.init()
        register("weight", weight)
        if let b = self.bias { register("bias", b) }
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try convTranspose2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
                            outputPadding: outputPadding, groups: groups, dilation: dilation)
    }
}

/// An element-wise activation as a layer (ReLU, ReLU6, LeakyReLU, SiLU, GELU, Sigmoid, Tanh, Hardswish, ...).
public final class Activation: Module {
    public let op: UnaryOp
    public let parameter: Float

    public init(_ op: UnaryOp, parameter: Float = 0.01) {
        self.op = op
        self.parameter = parameter
        super.init()
    }

    public override func forward(_ x: Tensor) throws -> Tensor { try unary(op, x, parameter: parameter) }
}

/// A module that draws random numbers while training (Dropout, DropPath): checkpoints save its generator so
/// that a resumed run draws the same masks.
public protocol StochasticModule: AnyObject {
    var rng: RandomGenerator { get set }
}

/// A mask of `shape` whose elements are 0 with probability p and 1/(1-p) otherwise (the inverted-dropout scale
/// that keeps the expectation unchanged).
func keepMask(_ shape: [Int], p: Float, rng: inout RandomGenerator) throws -> Tensor {
    let keep = 1 - p
    return try Tensor((0..<shape.reduce(1, *)).map { _ in rng.nextFloat() < keep ? 1 / keep : 0 }, shape: shape)
}

/// Zeroes each element with probability p during training and scales the rest by 1/(1-p) (torch.nn.Dropout);
/// the identity in eval mode. The mask comes from the layer's own seeded generator.
public final class Dropout: Module, StochasticModule {
    public let p: Float
    public var rng: RandomGenerator

    public init(p: Float = 0.5, seed: UInt64 = 0) throws {
        guard p >= 0, p < 1 else { throw VisionError.invalidArgument("Dropout: p must be in [0, 1), got \(p)") }
        self.p = p
        rng = RandomGenerator(seed: seed)
        super.init()
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        guard isTraining, p > 0 else { return x }
        return try mul(x, try keepMask(x.shape, p: p, rng: &rng))
    }
}

/// Stochastic depth (timm's DropPath): drops a whole sample's residual branch with probability p during training
/// and scales kept samples by 1/(1-p).
public final class DropPath: Module, StochasticModule {
    public let p: Float
    public var rng: RandomGenerator

    public init(p: Float = 0, seed: UInt64 = 0) throws {
        guard p >= 0, p < 1 else { throw VisionError.invalidArgument("DropPath: p must be in [0, 1), got \(p)") }
        self.p = p
        rng = RandomGenerator(seed: seed)
        super.init()
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        guard isTraining, p > 0, x.rank >= 1 else { return x }
        // One draw per sample, broadcast over the sample's other dimensions.
        return try mul(x, try keepMask([x.shape[0]] + [Int](repeating: 1, count: x.rank - 1), p: p, rng: &rng))
    }
}

/// Parametric ReLU (torch.nn.PReLU; key `weight`, one slope shared by all channels or one per channel,
/// initialized to 0.25).
public final class PReLU: Module {
    public let weight: Parameter

    public init(numParameters: Int = 1, initial: Float = 0.25) throws {
        guard numParameters >= 1 else { throw VisionError.invalidArgument("PReLU: num_parameters must be positive, got \(numParameters)") }
        weight = try Parameter(try Tensor.full([numParameters], value: Double(initial)))
        super.init()
        register("weight", weight)
    }

    public override func forward(_ x: Tensor) throws -> Tensor { try prelu(x, weight: weight.value) }
}
