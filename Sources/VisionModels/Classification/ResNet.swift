import VisionCore
import VisionNN

// ResNet v1.5 (stride on the 3x3 conv) with timm's / torchvision's layout: `conv1` 7x7 s2 + `bn1` + ReLU +
// max pool 3x3 s2, stages `layer1..4` of BasicBlocks (resnet18/34) or Bottlenecks (resnet50/101), global average
// pool, `fc`. Key names are identical in timm and torchvision, so both checkpoints load unchanged.

/// The residual block of a ResNet (timm's `BasicBlock` / `Bottleneck`).
public enum ResNetBlockKind: String, Sendable, Equatable {
    /// Two 3x3 convs; output width = planes.
    case basic
    /// 1x1 reduce, 3x3 (carrying the stride), 1x1 expand; output width = 4 * planes.
    case bottleneck

    /// timm's `expansion`: output channels per plane.
    public var expansion: Int { self == .basic ? 1 : 4 }
}

/// The architecture of a ResNet (timm's `ResNet(block, layers, channels=...)` arguments that the registered
/// models use). Reduced configurations (fewer blocks, narrower stages) run the same code paths.
public struct ResNetConfig: Sendable, Equatable {
    public var block: ResNetBlockKind
    /// Blocks per stage (4 stages), e.g. [3, 4, 6, 3] for resnet50.
    public var layers: [Int]
    /// Planes per stage (the 3x3 convs' width).
    public var channels: [Int]
    /// Width of the stem (timm fixes it at 64 for the plain 7x7 stem).
    public static let stemWidth = 64

    public init(block: ResNetBlockKind, layers: [Int], channels: [Int] = [64, 128, 256, 512]) {
        (self.block, self.layers, self.channels) = (block, layers, channels)
    }

    /// Output width of the last stage (the classifier's input).
    public var numFeatures: Int { (channels.last ?? 0) * block.expansion }

    func validate() throws {
        guard layers.count == 4, channels.count == 4, layers.allSatisfy({ (1...1000).contains($0) }),
              channels.allSatisfy({ (1...(1 << 16)).contains($0) }) else {
            throw VisionError.invalidArgument("ResNet: need 4 stages of 1...1000 blocks and 1...65536 planes, got layers \(layers), channels \(channels)")
        }
    }
}

/// One residual block, BasicBlock (`conv1`/`bn1`, `conv2`/`bn2`) or Bottleneck (plus `conv3`/`bn3`), with the
/// optional projection shortcut `downsample.0` (1x1 conv, stride s) / `downsample.1` (BN).
final class ResNetBlock: Module {
    let convs: [(Conv2d, BatchNorm2d)]
    let downsample: (Conv2d, BatchNorm2d)?
    let dropPath: DropPath?

    init(kind: ResNetBlockKind, inChannels: Int, planes: Int, stride: Int, dropPath rate: Float,
         rng: inout RandomGenerator) throws {
        let out = planes * kind.expansion
        // (in, out, kernel, stride) of each conv of the residual branch.
        let shapes: [(Int, Int, Int, Int)] = kind == .basic
            ? [(inChannels, planes, 3, stride), (planes, out, 3, 1)]
            : [(inChannels, planes, 1, 1), (planes, planes, 3, stride), (planes, out, 1, 1)]
        convs = try shapes.map { (i, o, k, s) in
            (try Conv2d(i, o, kernelSize: (k, k), stride: (s, s), padding: (k / 2, k / 2), bias: false, rng: &rng),
             try BatchNorm2d(o))
        }
        if stride != 1 || inChannels != out {
            downsample = (try Conv2d(inChannels, out, kernelSize: (1, 1), stride: (stride, stride), bias: false, rng: &rng),
                          try BatchNorm2d(out))
        } else {
            downsample = nil
        }
        dropPath = rate > 0 ? try DropPath(p: rate, seed: rng.next()) : nil
        super.init()
        for (i, (conv, bn)) in convs.enumerated() { register("conv\(i + 1)", conv); register("bn\(i + 1)", bn) }
        if let (conv, bn) = downsample { register("downsample", Sequential([conv, bn])) }
        if let dropPath { register("drop_path", dropPath) }
    }

    override func forward(_ x: Tensor) throws -> Tensor { try forward(owning: x) }

    /// The block on an input that the caller gives up (`consume`): in inference the last conv then writes its
    /// output over the identity shortcut, which nothing else holds once the first conv has read it.
    override func forward(owning x: consuming Tensor) throws -> Tensor {
        let shortcut = if let (conv, bn) = downsample { try convNormAct(x, conv: conv, bn: bn, activation: nil) } else { copy x }
        var y = consume x
        for (conv, bn) in convs.dropLast() { y = try convNormAct(y, conv: conv, bn: bn, activation: .relu) }
        guard let (conv, bn) = convs.last else { return y }
        if let dropPath, isTraining {
            // Stochastic depth drops the branch before the shortcut joins (timm: drop_path(x) + shortcut).
            return try relu(try add(try dropPath(try convNormAct(y, conv: conv, bn: bn, activation: nil)), shortcut))
        }
        return try convNormAct(y, conv: conv, bn: bn, activation: .relu, residual: consume shortcut)
    }
}

/// ResNet-18/34/50/101 (timm `ResNet` with its default plain stem and 1x1 projection shortcuts).
///
/// Initialization follows timm: convs kaiming-normal (fan_out, ReLU gain), BatchNorm weight 1 / bias 0 except
/// the last BN of every residual branch, which starts at weight 0 (timm's `zero_init_last`), `fc` PyTorch's
/// default Linear init. Same distributions as timm, not the same numbers (the generators differ).
public final class ResNet: ImageClassifier {
    public let architecture: ResNetConfig
    public let inChans: Int
    let conv1: Conv2d, bn1: BatchNorm2d
    let stages: [Sequential]
    let drop: Dropout
    let fc: Linear?

    /// Builds a ResNet of `architecture`; `options.dropRate` nil means no dropout before `fc` (timm's default).
    public init(name: String, architecture: ResNetConfig, config: PretrainedConfig,
                options: ClassifierOptions = ClassifierOptions()) throws {
        try architecture.validate()
        guard options.numClasses >= 0, options.inChans >= 1, options.dropPathRate >= 0, options.dropPathRate < 1 else {
            throw VisionError.invalidArgument("\(name): invalid options \(options)")
        }
        self.architecture = architecture
        inChans = options.inChans
        var rng = RandomGenerator(seed: options.seed)
        let stem = ResNetConfig.stemWidth
        conv1 = try Conv2d(options.inChans, stem, kernelSize: (7, 7), stride: (2, 2), padding: (3, 3), bias: false, rng: &rng)
        bn1 = try BatchNorm2d(stem)
        // timm's stochastic depth: rate * (global block index) / (number of blocks - 1), rising linearly to the last.
        let total = architecture.layers.reduce(0, +)
        var index = 0, inChannels = stem
        var stages: [Sequential] = []
        for (s, (count, planes)) in zip(architecture.layers, architecture.channels).enumerated() {
            var blocks: [Module] = []
            for b in 0..<count {
                let rate = options.dropPathRate * Float(index) / Float(max(total - 1, 1))
                blocks.append(try ResNetBlock(kind: architecture.block, inChannels: inChannels, planes: planes,
                                              stride: s > 0 && b == 0 ? 2 : 1, dropPath: rate, rng: &rng))
                inChannels = planes * architecture.block.expansion
                index += 1
            }
            stages.append(Sequential(blocks))
        }
        self.stages = stages
        drop = try Dropout(p: options.dropRate ?? 0, seed: rng.next())
        fc = options.numClasses > 0 ? try Linear(architecture.numFeatures, options.numClasses, rng: &rng) : nil
        super.init(name: name, config: config, numClasses: options.numClasses, numFeatures: architecture.numFeatures)
        register("conv1", conv1); register("bn1", bn1)
        for (s, stage) in stages.enumerated() { register("layer\(s + 1)", stage) }
        register("drop", drop)
        if let fc { register("fc", fc) }
        try initializeWeights(rng: &rng)
    }

    /// timm's `init_weights(zero_init_last=True)`.
    private func initializeWeights(rng: inout RandomGenerator) throws {
        for (_, m) in namedModules() {
            if let conv = m as? Conv2d {
                try Init.fillNormal(conv.weight, std: Float((2.0 / Double(max(Init.fans(conv.weight.value.shape).fanOut, 1))).squareRoot()), rng: &rng)
            }
            if let block = m as? ResNetBlock, let last = block.convs.last?.1.weight {
                try Init.fill(last, 0)
            }
        }
    }

    /// The stage-4 map [B, numFeatures, H/32, W/32] (ceil at every stride-2 step). Errors: the input is not a
    /// float32 [B, inChans, H, W] tensor.
    public override func forwardFeatures(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == inChans, x.dtype == .float32 else {
            throw VisionError.shapeMismatch("\(name): input must be float32 [B, \(inChans), H, W], got \(x.dtype) \(x.shape)")
        }
        var y = try convNormActMaxPool(x, conv: conv1, bn: bn1, activation: .relu, poolKernel: (3, 3), poolStride: (2, 2),
                                       poolPadding: (1, 1))
        // Each block owns its input (no reference kept here), so that it may write its output over it.
        for stage in stages { y = try stage.forward(owning: consume y) }
        return y
    }

    public override func forwardHead(_ features: Tensor, preLogits: Bool = false) throws -> Tensor {
        try checkFeatures(features)
        let pooled = try drop(try mean(features, axes: [2, 3]))
        guard !preLogits, let fc else { return pooled }
        return try fc(pooled)
    }

    public override func forwardDenseLogits(_ x: Tensor) throws -> Tensor {
        try denseLogits(try forwardFeatures(x), classifier: fc, model: name)
    }

    private func checkFeatures(_ f: Tensor) throws {
        guard f.rank == 4, f.shape[1] == numFeatures else {
            throw VisionError.shapeMismatch("\(name): forwardHead expects features [B, \(numFeatures), h, w], got \(f.shape)")
        }
    }

    /// The registered architectures (timm's resnet18/34/50/101).
    public static let architectures: [(name: String, architecture: ResNetConfig)] = [
        ("resnet18", ResNetConfig(block: .basic, layers: [2, 2, 2, 2])),
        ("resnet34", ResNetConfig(block: .basic, layers: [3, 4, 6, 3])),
        ("resnet50", ResNetConfig(block: .bottleneck, layers: [3, 4, 6, 3])),
        ("resnet101", ResNetConfig(block: .bottleneck, layers: [3, 4, 23, 3])),
    ]

    /// timm's default pretrained cfg of every registered ResNet (the RSB `a1_in1k` / `a1h_in1k` weights):
    /// 224 input, crop 0.95, bicubic, ImageNet mean/std. (timm's `test_input_size` 288 is not modelled.)
    public static let pretrainedConfig = PretrainedConfig(cropPct: 0.95, interpolation: .bicubic, classifier: "fc")

    public static let entries: [ClassifierEntry] = architectures.map { (name, arch) in
        ClassifierEntry(name: name, config: pretrainedConfig) { options in
            try ResNet(name: name, architecture: arch, config: pretrainedConfig, options: options)
        }
    }
}
