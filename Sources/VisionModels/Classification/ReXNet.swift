import VisionCore
import VisionNN

// ReXNet (arXiv 2007.00992) with timm's layout: `stem` (3x3 s2 conv, BN, SiLU), 16 LinearBottlenecks
// `features.0..15` whose widths grow linearly with the block index, the penultimate 1x1 ConvNormAct
// `features.16`, global average pool, dropout 0.2, `head.fc`.

/// The architecture of a ReXNet (timm's `RexNet` constructor arguments) and the channel schedule it implies.
/// The registered models differ only in `widthMult`; reduced configurations (width < 1, depth < 1) run the same
/// code paths.
public struct ReXNetConfig: Sendable, Equatable {
    public var widthMult: Double
    public var depthMult: Double
    /// Width of block 0 before the multiplier; the widths then grow by finalChannels / blocks per block.
    public var initialChannels: Int
    public var finalChannels: Int
    /// Squeeze-excitation reduction (blocks of stages 3-6), 1/12.
    public var seRatio: Double
    /// Every width is rounded to a multiple of this (1 for rexnet_*, 8 for timm's rexnetr_*).
    public var channelDivisor: Int

    public init(widthMult: Double = 1, depthMult: Double = 1, initialChannels: Int = 16, finalChannels: Int = 180,
                seRatio: Double = 1.0 / 12.0, channelDivisor: Int = 1) {
        (self.widthMult, self.depthMult, self.initialChannels, self.finalChannels) = (widthMult, depthMult, initialChannels, finalChannels)
        (self.seRatio, self.channelDivisor) = (seRatio, channelDivisor)
    }

    /// One LinearBottleneck as the schedule builds it.
    public struct Block: Sendable, Equatable {
        public var inChannels: Int
        /// Width of the depthwise conv: inChannels * 6, or inChannels for the unexpanded block 0.
        public var expandedChannels: Int
        public var outChannels: Int
        public var stride: Int
        /// Width inside the squeeze-excitation, 0 when the block has none.
        public var seChannels: Int
        /// Partial residual: the input is added to the output's first inChannels channels.
        public var hasShortcut: Bool
        public var isExpanded: Bool
    }

    func validate() throws {
        guard widthMult.isFinite, widthMult > 0, widthMult <= 64, depthMult.isFinite, depthMult > 0, depthMult <= 64,
              initialChannels >= 1, finalChannels >= 0, finalChannels <= 1 << 16, initialChannels <= 1 << 16,
              seRatio.isFinite, seRatio >= 0, seRatio <= 1, channelDivisor >= 1, channelDivisor <= 1 << 10 else {
            throw VisionError.invalidArgument("ReXNet: invalid architecture \(self)")
        }
    }

    /// timm's make_divisible: nearest multiple of `divisor` (halves up), at least `divisor`, and never more
    /// than 10% below v.
    static func makeDivisible(_ v: Double, _ divisor: Int) -> Int {
        let d = max(divisor, 1)
        var n = max(d, clampedInt(v + Double(d) / 2) / d * d)
        if Double(n) < 0.9 * v { n += d }
        return n
    }

    /// Int(v) truncating as Python's int(), clamped so that an unvalidated config (NaN, huge multipliers) gives
    /// absurd widths that `validate` or the allocator reject instead of a trap.
    static func clampedInt(_ v: Double) -> Int { v.isNaN ? 0 : Int(min(max(v, 0), 1e12)) }

    /// Python's round(): ties to even (38.5 -> 38, 128.5 -> 128), which the released weights' widths depend on.
    static func roundHalfEven(_ v: Double) -> Double { v.rounded(.toNearestOrEven) }

    /// Width of the stem conv: 32 * widthMult (32 when widthMult < 1).
    public var stemChannels: Int {
        let base = widthMult < 1 ? 32 / widthMult : 32
        return Self.makeDivisible(Self.roundHalfEven(base * widthMult), channelDivisor)
    }

    /// Width of the penultimate 1x1 conv `features.<blocks>` (the classifier's input): 1280 * widthMult.
    public var penultimateChannels: Int { Self.makeDivisible(1280 * widthMult, channelDivisor) }

    /// Blocks per stage, `ceil([1, 2, 2, 3, 3, 5] * depthMult)`.
    public var stageDepths: [Int] { [1, 2, 2, 3, 3, 5].map { Self.clampedInt((Double($0) * min(depthMult, 1e3)).rounded(.up)) } }

    /// The blocks in order (timm's `_block_cfg` + `LinearBottleneck`): out_i = round(base * w) with base starting
    /// at initialChannels (divided by w when w < 1) and growing by finalChannels / blocks; stride 2 at the first
    /// block of stages 2, 3, 4 and 6; expansion 6 except stage 1; SE from stage 3 on.
    public var blocks: [Block] {
        let depths = stageDepths
        let total = depths.reduce(0, +)
        let strides = [1, 2, 2, 2, 1, 2]
        var base = widthMult < 1 ? Double(initialChannels) / widthMult : Double(initialChannels)
        var inC = stemChannels
        var out: [Block] = []
        for (stage, depth) in depths.enumerated() {
            for i in 0..<depth {
                let outC = Self.makeDivisible(Self.roundHalfEven(base * widthMult), channelDivisor)
                base += Double(finalChannels) / Double(total)
                let stride = i == 0 ? strides[stage] : 1
                let expanded = stage > 0
                let dw = expanded ? Self.makeDivisible(Double(inC) * 6, channelDivisor) : inC
                let se = stage >= 2 && seRatio > 0
                    ? Self.makeDivisible(Double(Self.clampedInt(Double(dw) * seRatio)), channelDivisor) : 0
                out.append(Block(inChannels: inC, expandedChannels: dw, outChannels: outC, stride: stride, seChannels: se,
                                 hasShortcut: stride == 1 && inC <= outC, isExpanded: expanded))
                inC = outC
            }
        }
        return out
    }
}

/// timm's LinearBottleneck: [`conv_exp` 1x1 + BN + SiLU], `conv_dw` depthwise 3x3 + BN, [`se` with BN],
/// ReLU6, `conv_pwl` 1x1 + BN, and the partial residual y[:, :in] += x.
final class ReXNetBlock: Module {
    let spec: ReXNetConfig.Block
    let convExp: ConvNormAct?
    let convDw: ConvNormAct
    let se: SqueezeExcite?
    let convPwl: ConvNormAct
    let dropPath: DropPath?

    init(_ spec: ReXNetConfig.Block, dropPath rate: Float, rng: inout RandomGenerator) throws {
        self.spec = spec
        let dw = spec.expandedChannels
        convExp = spec.isExpanded ? try ConvNormAct(spec.inChannels, dw, kernelSize: 1, activation: .silu, rng: &rng) : nil
        convDw = try ConvNormAct(dw, dw, kernelSize: 3, stride: spec.stride, groups: dw, activation: nil, rng: &rng)
        se = spec.seChannels > 0
            ? try SqueezeExcite(channels: dw, reducedChannels: spec.seChannels, activation: .relu, batchNorm: true, rng: &rng)
            : nil
        convPwl = try ConvNormAct(dw, spec.outChannels, kernelSize: 1, activation: nil, rng: &rng)
        dropPath = rate > 0 ? try DropPath(p: rate, seed: rng.next()) : nil
        super.init()
        if let convExp { register("conv_exp", convExp) }
        register("conv_dw", convDw)
        if let se { register("se", se) }
        register("conv_pwl", convPwl)
        if let dropPath { register("drop_path", dropPath) }
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        var y = x
        // Inference (eval, nothing recording gradients) fuses act_dw into the depthwise conv, or into the SE gating,
        // and runs an expansion and the depthwise conv together, band by band (`expandDepthwiseConv`).
        let inference = !isTraining && !(Autograd.isRecording && (x.requiresGrad || convDw.conv.weight.requiresGrad))
        let expansionFrozen = !Autograd.isRecording
            || [convExp, convDw].allSatisfy { $0?.namedParameters().allSatisfy { !$0.1.value.requiresGrad } ?? true }
        if inference && expansionFrozen, let convExp {
            let dw = convDw.conv
            y = try expandDepthwiseConv(x, expandWeight: convExp.conv.weight.value,
                                        expand: try inferenceEpilogue(conv: convExp.conv, bn: convExp.bn, activation: .silu),
                                        depthwiseWeight: dw.weight.value, stride: dw.stride.0, padding: dw.padding.0,
                                        depthwise: try inferenceEpilogue(conv: dw, bn: convDw.bn, activation: se == nil ? .relu6 : nil))
        } else {
            if let convExp { y = try convExp(y) }
            if inference && se == nil { y = try convNormAct(y, conv: convDw.conv, bn: convDw.bn, activation: .relu6) }
            if !inference || se != nil { y = try convDw(y) }
        }
        if let se {
            // act_dw comes after the SE gate, as in timm.
            if inference {
                // Pooling, both 1x1 convs, the gate and the scaling in one call spread over the threads.
                let reduce = try se.bn.map { try inferenceEpilogue(conv: se.fc1, bn: $0, activation: se.act.op) }
                    ?? ConvEpilogue(shift: try se.fc1.bias.map { try $0.value.toArray(Float.self) }, activation: se.act.op)
                let expand = ConvEpilogue(shift: try se.fc2.bias.map { try $0.value.toArray(Float.self) }, activation: .sigmoid)
                y = try squeezeExcitation(y, reduceWeight: se.fc1.weight.value, reduce: reduce,
                                          expandWeight: se.fc2.weight.value, expand: expand, activation: .relu6)
            } else {
                // timm's SEModule with BN; fc1 -> bn -> ReLU goes through convNormAct like every conv-BN pair.
                let pooled = try mean(y, axes: [2, 3], keepDim: true)
                let s = try se.bn.map { try convNormAct(pooled, conv: se.fc1, bn: $0, activation: se.act.op) } ?? se.act(try se.fc1(pooled))
                y = try relu6(try mul(y, try sigmoid(try se.fc2(s))))
            }
        } else if !inference {
            y = try relu6(y)
        }
        guard spec.hasShortcut else { return try convPwl(y) }
        // The input joins the first inChannels output channels (channels inChannels..<out pass through
        // unchanged): added in place in inference, and in training zero-padded to the output width, which makes
        // it an ordinary (differentiable) residual add.
        let extra = spec.outChannels - spec.inChannels
        if inference && extra > 0 { return try addingLeadingChannels(try convPwl(y), x) }
        let shortcut = extra > 0 ? try pad(x, pads: [0, 0, 0, 0, 0, extra]) : x
        if let dropPath, isTraining {
            // timm drops the whole block output (pass-through channels included) before the shortcut joins.
            return try add(try dropPath(try convPwl(y)), shortcut)
        }
        return try convPwl.forward(y, residual: shortcut)
    }
}

/// timm's ClassifierHead: global average pool (no weights), `drop`, `fc`.
final class ReXNetHead: Module {
    let drop: Dropout
    let fc: Linear?

    init(features: Int, numClasses: Int, dropRate: Float, rng: inout RandomGenerator) throws {
        drop = try Dropout(p: dropRate, seed: rng.next())
        fc = numClasses > 0 ? try Linear(features, numClasses, rng: &rng) : nil
        super.init()
        register("drop", drop)
        if let fc { register("fc", fc) }
    }
}

/// ReXNet-1.0/1.3/1.5/2.0 (timm `RexNet`).
///
/// Initialization follows timm's `efficientnet_init_weights`: convs N(0, sqrt(2 / fan_out)) with
/// fan_out = k*k*out/groups and zero bias, BatchNorm weight 1 / bias 0, `head.fc` U(+-1/sqrt(numClasses)) with
/// zero bias. Same distributions as timm, not the same numbers (the generators differ).
public final class ReXNet: ImageClassifier {
    public let architecture: ReXNetConfig
    public let inChans: Int
    let stem: ConvNormAct
    let blocks: [ReXNetBlock]
    let penultimate: ConvNormAct
    let head: ReXNetHead

    /// Builds a ReXNet of `architecture`; `options.dropRate` nil means timm's default dropout 0.2 before `head.fc`.
    public init(name: String, architecture: ReXNetConfig, config: PretrainedConfig,
                options: ClassifierOptions = ClassifierOptions()) throws {
        try architecture.validate()
        let dropRate = options.dropRate ?? 0.2
        guard options.numClasses >= 0, options.inChans >= 1, options.dropPathRate >= 0, options.dropPathRate < 1,
              dropRate >= 0, dropRate < 1 else {
            throw VisionError.invalidArgument("\(name): invalid options \(options)")
        }
        self.architecture = architecture
        inChans = options.inChans
        var rng = RandomGenerator(seed: options.seed)
        stem = try ConvNormAct(options.inChans, architecture.stemChannels, kernelSize: 3, stride: 2, activation: .silu, rng: &rng)
        let specs = architecture.blocks
        // timm's stochastic depth: rate * index / (blocks - 1); only blocks with a shortcut apply it.
        blocks = try specs.enumerated().map { (i, spec) in
            try ReXNetBlock(spec, dropPath: options.dropPathRate * Float(i) / Float(max(specs.count - 1, 1)), rng: &rng)
        }
        let features = architecture.penultimateChannels
        penultimate = try ConvNormAct(specs.last?.outChannels ?? architecture.stemChannels, features, kernelSize: 1,
                                      activation: .silu, rng: &rng)
        head = try ReXNetHead(features: features, numClasses: options.numClasses, dropRate: dropRate, rng: &rng)
        super.init(name: name, config: config, numClasses: options.numClasses, numFeatures: features)
        register("stem", stem)
        register("features", Sequential(blocks + [penultimate]))
        register("head", head)
        try initializeWeights(rng: &rng)
    }

    private func initializeWeights(rng: inout RandomGenerator) throws {
        for (_, m) in namedModules() {
            if let conv = m as? Conv2d {
                let s = conv.weight.value.shape
                let fanOut = s[0] * s[2] * s[3] / conv.groups
                try Init.fillNormal(conv.weight, std: Float((2 / Double(max(fanOut, 1))).squareRoot()), rng: &rng)
                if let b = conv.bias { try Init.fill(b, 0) }
            } else if let fc = m as? Linear {
                let s = fc.weight.value.shape
                let range = Float(1 / Double(max(s[0], 1)).squareRoot())
                try Init.fillUniform(fc.weight, low: -range, high: range, rng: &rng)
                if let b = fc.bias { try Init.fill(b, 0) }
            }
        }
    }

    /// The penultimate map [B, numFeatures, H/32, W/32] (ceil at every stride-2 step). Errors: the input is not
    /// a float32 [B, inChans, H, W] tensor; a batch of 1 in training mode (the SE batch norm sees one value per
    /// channel).
    public override func forwardFeatures(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == inChans, x.dtype == .float32 else {
            throw VisionError.shapeMismatch("\(name): input must be float32 [B, \(inChans), H, W], got \(x.dtype) \(x.shape)")
        }
        var y = try stem(x)
        for block in blocks { y = try block(y) }
        return try penultimate(y)
    }

    public override func forwardHead(_ features: Tensor, preLogits: Bool = false) throws -> Tensor {
        guard features.rank == 4, features.shape[1] == numFeatures else {
            throw VisionError.shapeMismatch("\(name): forwardHead expects features [B, \(numFeatures), h, w], got \(features.shape)")
        }
        let pooled = try head.drop(try mean(features, axes: [2, 3]))
        guard !preLogits, let fc = head.fc else { return pooled }
        return try fc(pooled)
    }

    public override func forwardDenseLogits(_ x: Tensor) throws -> Tensor {
        try denseLogits(try forwardFeatures(x), classifier: head.fc, model: name)
    }

    /// The registered architectures (timm's rexnet_100/130/150/200).
    public static let architectures: [(name: String, architecture: ReXNetConfig)] = [
        ("rexnet_100", ReXNetConfig(widthMult: 1.0)),
        ("rexnet_130", ReXNetConfig(widthMult: 1.3)),
        ("rexnet_150", ReXNetConfig(widthMult: 1.5)),
        ("rexnet_200", ReXNetConfig(widthMult: 2.0)),
    ]

    /// timm's pretrained cfg of the `nav_in1k` weights: 224 input, crop 0.875, bicubic, ImageNet mean/std.
    public static let pretrainedConfig = PretrainedConfig(cropPct: 0.875, interpolation: .bicubic, classifier: "head.fc")

    public static let entries: [ClassifierEntry] = architectures.map { (name, arch) in
        ClassifierEntry(name: name, config: pretrainedConfig) { options in
            try ReXNet(name: name, architecture: arch, config: pretrainedConfig, options: options)
        }
    }
}
