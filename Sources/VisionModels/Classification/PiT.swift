import VisionCore
import VisionNN

/// The architecture of a Pooling-based Vision Transformer (timm's `PoolingVisionTransformer` arguments).
/// The registry uses the full configs (`ti`, `xs`, `s`, `b`); tests build reduced ones through the same code.
public struct PiTConfig: Sendable, Equatable {
    /// Input height = width; the position embedding is fixed to the patch grid of this size.
    public var imgSize: Int
    /// Patch-embedding conv kernel and stride (overlapping patches: 16 / 8, or 14 / 7 for PiT-B).
    public var patchSize: Int, stride: Int
    /// Per stage: head dimension, number of heads (width = baseDims[i] * heads[i]) and number of blocks.
    public var baseDims: [Int], heads: [Int], depth: [Int]
    public var mlpRatio: Double
    /// Adds the distillation token and `head_dist` (DeiT-style `_distilled` variants).
    public var distilled: Bool

    public init(imgSize: Int = 224, patchSize: Int, stride: Int, baseDims: [Int], heads: [Int], depth: [Int],
                mlpRatio: Double = 4, distilled: Bool = false) {
        (self.imgSize, self.patchSize, self.stride) = (imgSize, patchSize, stride)
        (self.baseDims, self.heads, self.depth, self.mlpRatio, self.distilled) = (baseDims, heads, depth, mlpRatio, distilled)
    }

    public static let ti = PiTConfig(patchSize: 16, stride: 8, baseDims: [32, 32, 32], heads: [2, 4, 8], depth: [2, 6, 4])
    public static let xs = PiTConfig(patchSize: 16, stride: 8, baseDims: [48, 48, 48], heads: [2, 4, 8], depth: [2, 6, 4])
    public static let s = PiTConfig(patchSize: 16, stride: 8, baseDims: [48, 48, 48], heads: [3, 6, 12], depth: [2, 6, 4])
    public static let b = PiTConfig(patchSize: 14, stride: 7, baseDims: [64, 64, 64], heads: [4, 8, 16], depth: [3, 6, 4])

    public func distilled(_ on: Bool) -> PiTConfig { var c = self; c.distilled = on; return c }

    /// Stage widths C_i = baseDims[i] * heads[i].
    public var widths: [Int] { zip(baseDims, heads).map { $0 * $1 } }
    /// Side of the patch grid: floor((imgSize - patch) / stride) + 1.
    public var grid: Int { (imgSize - patchSize) / stride + 1 }
    /// Class tokens: 1, or 2 with the distillation token.
    public var tokens: Int { distilled ? 2 : 1 }

    func validate() throws {
        let n = depth.count
        guard n >= 1, baseDims.count == n, heads.count == n, depth.allSatisfy({ $0 >= 0 }),
              baseDims.allSatisfy({ $0 >= 1 }), heads.allSatisfy({ $0 >= 1 }), patchSize >= 1, stride >= 1,
              imgSize >= patchSize, mlpRatio > 0 else {
            throw VisionError.invalidArgument("PiT: invalid config \(self)")
        }
        // The pooling conv has groups = C_{i-1}, so each stage width must be a multiple of the previous one.
        let w = widths
        for i in 1..<n where w[i] % w[i - 1] != 0 {
            throw VisionError.invalidArgument("PiT: stage \(i) width \(w[i]) is not a multiple of stage \(i - 1) width \(w[i - 1])")
        }
    }
}

/// timm's vision_transformer `Block` (pre-norm): x + attn(norm1(x)), then x + mlp(norm2(x)), with stochastic
/// depth on both branches. Keys `norm1.*`, `attn.qkv.*`, `attn.proj.*`, `norm2.*`, `mlp.fc1.*`, `mlp.fc2.*`.
public final class PiTBlock: Module {
    public let norm1: LayerNorm, attn: MultiheadSelfAttention, norm2: LayerNorm, mlp: Mlp
    public let dropPath1: DropPath, dropPath2: DropPath

    public init(dim: Int, heads: Int, mlpRatio: Double, dropPath: Float, rng: inout RandomGenerator) throws {
        norm1 = try LayerNorm(dim, eps: 1e-6)
        attn = try MultiheadSelfAttention(dim: dim, heads: heads, qkvBias: true, rng: &rng)
        dropPath1 = try DropPath(p: dropPath, seed: rng.next())
        norm2 = try LayerNorm(dim, eps: 1e-6)
        mlp = try Mlp(inFeatures: dim, hiddenFeatures: Int(Double(dim) * mlpRatio), activation: .geluErf, rng: &rng)
        dropPath2 = try DropPath(p: dropPath, seed: rng.next())
        super.init()
        register("norm1", norm1); register("attn", attn); register("drop_path1", dropPath1)
        register("norm2", norm2); register("mlp", mlp); register("drop_path2", dropPath2)
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        let y = try add(x, try dropPath1(try attn(try norm1(x))))
        return try add(y, try dropPath2(try mlp(try norm2(y))))
    }
}

/// PiT's pooling layer (timm `Pooling`): the spatial map through a depthwise 3x3 stride-2 conv with channel
/// multiplier C_out / C_in (`conv`), the class tokens through a Linear (`fc`).
public final class PiTPooling: Module {
    public let conv: Conv2d, fc: Linear

    public init(inFeatures: Int, outFeatures: Int, stride: Int = 2, rng: inout RandomGenerator) throws {
        conv = try Conv2d(inFeatures, outFeatures, kernelSize: (stride + 1, stride + 1), stride: (stride, stride),
                          padding: (stride / 2, stride / 2), groups: inFeatures, rng: &rng)
        fc = try Linear(inFeatures, outFeatures, rng: &rng)
        super.init()
        register("conv", conv); register("fc", fc)
    }
}

/// One PiT stage (timm `Transformer`): optional pooling, then the blocks over [class tokens; flattened map].
public final class PiTStage: Module {
    public let pool: PiTPooling?
    public let blocks: [PiTBlock]

    public init(dim: Int, depth: Int, heads: Int, mlpRatio: Double, pool: PiTPooling?, dropPath: [Float],
                rng: inout RandomGenerator) throws {
        self.pool = pool
        blocks = try (0..<depth).map { try PiTBlock(dim: dim, heads: heads, mlpRatio: mlpRatio, dropPath: dropPath[$0], rng: &rng) }
        super.init()
        if let pool { register("pool", pool) }
        register("blocks", ModuleList(blocks))
    }

    /// (map [B, C, H, W], class tokens [B, T, C]) -> the same after this stage. With `needMap` false the map
    /// is not split back out of the sequence (the last stage's map is discarded by the model).
    func forward(_ x: Tensor, _ cls: Tensor, needMap: Bool = true) throws -> (Tensor, Tensor) {
        var x = x, cls = cls
        if let pool { x = try pool.conv(x); cls = try pool.fc(cls) }
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let t = cls.shape[1]
        var seq = try concat([cls, try x.flatten(start: 2).transpose(1, 2)], axis: 1)
        for blk in blocks { seq = try blk(seq) }
        let outCls = try seq.slice(axis: 1, start: 0, end: t)
        guard needMap else { return (x, outCls) }
        let outMap = try seq.slice(axis: 1, start: t).transpose(1, 2).reshape([b, c, h, w])
        return (outMap, outCls)
    }
}

/// Pooling-based Vision Transformer (Heo et al., "Rethinking Spatial Dimensions of Vision Transformers",
/// ICCV 2021), in timm's layout: state-dict keys, parameter counts and outputs equal timm's
/// `PoolingVisionTransformer` (pit_ti/xs/s/b_224 and the `_distilled_224` variants).
public final class PiT: ImageClassifier {
    public let arch: PiTConfig
    public let inChans: Int
    public let posEmbed: Parameter, clsToken: Parameter
    public let patchEmbed: Conv2d
    public let stages: [PiTStage]
    public let norm: LayerNorm
    public let headDrop: Dropout
    /// nil when numClasses is 0 (timm's Identity head).
    public let head: Linear?, headDist: Linear?
    /// timm's `distilled_training`: in training mode `forwardDistillation` is the intended entry point; `forward`
    /// always returns the average of the two heads, as timm does while this is false (its default).
    public var distilledTraining = false

    public init(name: String, arch: PiTConfig, options: ClassifierOptions = ClassifierOptions()) throws {
        try arch.validate()
        guard options.numClasses >= 0, options.inChans >= 1 else {
            throw VisionError.invalidArgument("\(name): invalid options \(options)")
        }
        self.arch = arch
        inChans = options.inChans
        var rng = RandomGenerator(seed: options.seed)
        let widths = arch.widths, g = arch.grid
        posEmbed = try Parameter(try Init.truncNormal([1, widths[0], g, g], std: 0.02, rng: &rng))
        clsToken = try Parameter(try Init.truncNormal([1, arch.tokens, widths[0]], std: 0.02, rng: &rng))
        patchEmbed = try Conv2d(options.inChans, widths[0], kernelSize: (arch.patchSize, arch.patchSize),
                                stride: (arch.stride, arch.stride), rng: &rng)
        // timm's calculate_drop_path_rates(rate, depth, stagewise=True): one linear ramp 0...rate over all
        // blocks, split by stage.
        let total = arch.depth.reduce(0, +)
        var ramp = (0..<total).map { total > 1 ? options.dropPathRate * Float($0) / Float(total - 1) : 0 }
        var stages: [PiTStage] = []
        for i in arch.depth.indices {
            let pool = i > 0 ? try PiTPooling(inFeatures: widths[i - 1], outFeatures: widths[i], rng: &rng) : nil
            let rates = Array(ramp.prefix(arch.depth[i])); ramp.removeFirst(arch.depth[i])
            stages.append(try PiTStage(dim: widths[i], depth: arch.depth[i], heads: arch.heads[i], mlpRatio: arch.mlpRatio,
                                       pool: pool, dropPath: rates, rng: &rng))
        }
        self.stages = stages
        let c = widths[widths.count - 1]
        norm = try LayerNorm(c, eps: 1e-6)
        headDrop = try Dropout(p: options.dropRate ?? 0, seed: rng.next())
        head = options.numClasses > 0 ? try Linear(c, options.numClasses, rng: &rng) : nil
        headDist = arch.distilled && options.numClasses > 0 ? try Linear(c, options.numClasses, rng: &rng) : nil
        var cfg = PiT.pretrainedConfig
        cfg.inputSize = [options.inChans, arch.imgSize, arch.imgSize]
        cfg.numClasses = options.numClasses
        super.init(name: name, config: cfg, numClasses: options.numClasses, numFeatures: c)
        register("pos_embed", posEmbed); register("cls_token", clsToken)
        let embed = Module()
        embed.register("conv", patchEmbed)
        register("patch_embed", embed)
        register("transformers", ModuleList(stages))
        register("norm", norm)
        register("head_drop", headDrop)
        if let head { register("head", head) }
        if let headDist { register("head_dist", headDist) }
    }

    /// timm's pretrained cfg of every pit_* model: 224 fixed, bicubic, crop 0.9, ImageNet mean / std.
    public static let pretrainedConfig = PretrainedConfig(inputSize: [3, 224, 224], cropPct: 0.9, interpolation: .bicubic,
                                                          numClasses: 1000, fixedInputSize: true, classifier: "head")

    /// The registry entries, timm names and full configs.
    public static let entries: [ClassifierEntry] = [
        ("pit_ti_224", PiTConfig.ti), ("pit_xs_224", .xs), ("pit_s_224", .s), ("pit_b_224", .b),
        ("pit_ti_distilled_224", PiTConfig.ti.distilled(true)), ("pit_xs_distilled_224", .xs.distilled(true)),
        ("pit_s_distilled_224", .s.distilled(true)), ("pit_b_distilled_224", .b.distilled(true)),
    ].map { name, arch in
        ClassifierEntry(name: name, config: pretrainedConfig) { try PiT(name: name, arch: arch, options: $0) }
    }

    /// The input check: the position embedding has a fixed grid, so only sizes giving that patch grid work
    /// (timm has no position-embedding resizing for PiT).
    func checkInput(_ x: Tensor) throws {
        let s = arch.imgSize, g = arch.grid
        func gridOf(_ n: Int) -> Int { n < arch.patchSize ? 0 : (n - arch.patchSize) / arch.stride + 1 }
        guard x.rank == 4, x.shape[1] == inChans, gridOf(x.shape[2]) == g, gridOf(x.shape[3]) == g else {
            let lo = arch.patchSize + (g - 1) * arch.stride, hi = lo + arch.stride - 1
            throw VisionError.shapeMismatch("\(name) expects input [B, \(inChans), \(s), \(s)] (its position embedding has a fixed \(g)x\(g) patch grid; sides \(lo)...\(hi) give it), got \(x.shape)")
        }
        guard x.dtype == .float32 else { throw VisionError.dtypeMismatch("\(name) expects a float32 input, got \(x.dtype)") }
    }

    /// Runs the trunk and returns each stage's (map, class tokens) — timm's `transformers.i` outputs — and the
    /// final-normed class tokens.
    func forwardStages(_ x: Tensor, keepMaps: Bool) throws -> (stages: [(Tensor, Tensor)], features: Tensor) {
        try checkInput(x)
        var map = try add(try patchEmbed(x), posEmbed.value)
        var cls = try clsToken.value.expand([x.shape[0], arch.tokens, arch.widths[0]])
        var outs: [(Tensor, Tensor)] = []
        for (i, stage) in stages.enumerated() {
            (map, cls) = try stage.forward(map, cls, needMap: keepMaps || i < stages.count - 1)
            if keepMaps { outs.append((map, cls)) }
        }
        return (outs, try norm(cls))
    }

    /// The final-normed class tokens [B, T, C_last] (T = 2 with the distillation token), as timm's
    /// forward_features; the spatial tokens are discarded.
    public override func forwardFeatures(_ x: Tensor) throws -> Tensor {
        try forwardStages(x, keepMaps: false).features
    }

    private func checkFeatures(_ f: Tensor) throws {
        guard f.rank == 3, f.shape[1] == arch.tokens, f.shape[2] == numFeatures else {
            throw VisionError.shapeMismatch("\(name).forwardHead: features must be [B, \(arch.tokens), \(numFeatures)], got \(f.shape)")
        }
    }

    /// timm's forward_head: class token 0 through head_drop and head; distilled models average head(token 0)
    /// and head_dist(token 1). With `preLogits` the heads are skipped (distilled: the average of the two tokens).
    public override func forwardHead(_ features: Tensor, preLogits: Bool = false) throws -> Tensor {
        try checkFeatures(features)
        if arch.distilled {
            let (a, b) = try headPair(features, preLogits: preLogits)
            return try mul(try add(a, b), try Tensor.full([], value: 0.5))
        }
        var x = try headDrop(try features.select(axis: 1, index: 0))
        if !preLogits, let head { x = try head(x) }
        return x
    }

    private func headPair(_ features: Tensor, preLogits: Bool) throws -> (Tensor, Tensor) {
        var x = try headDrop(try features.select(axis: 1, index: 0))
        var xd = try headDrop(try features.select(axis: 1, index: 1))
        if !preLogits, let head, let headDist { x = try head(x); xd = try headDist(xd) }
        return (x, xd)
    }

    /// Distilled models: the two heads' outputs (class head, distillation head) separately, as timm returns them
    /// in training with `set_distilled_training(True)`.
    public func forwardDistillation(_ x: Tensor) throws -> (Tensor, Tensor) {
        guard arch.distilled else { throw VisionError.unsupported("\(name) has no distillation token") }
        return try headPair(try forwardFeatures(x), preLogits: numClasses == 0)
    }
}
