import CBLAS
import CKernels
import Synchronization
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
    /// Every parameter (for the inference path's requires-grad check without building names).
    private(set) var allParameters: [Parameter] = []

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
        allParameters = namedParameters().map(\.1)
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
        if usesInferencePath(x) { return try inferenceFeatures(x) }
        return try forwardStages(x, keepMaps: false).features
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

// MARK: - inference path

// Eval forward without autograd on raw buffers, same arithmetic as the module path above. The tokens stay in
// one [B * N, C] row-major buffer for a whole stage (no concat / split / transpose copies). Work is spread over
// VisionCore's threads here, BLAS itself running single-threaded (OpenBLAS's own threads cost more in wake-ups
// than these small GEMMs gain). Linear layers seed their bias into the output and accumulate the residual in the
// GEMM (beta = 1), GELU runs on the fc1 output in place; attention (CKernels' attention.c) reads q / k / v from
// the qkv buffer, scales the scores by 1/sqrt(d) in registers, and applies the softmax denominator to the
// [rows, d] output rather than to the [rows, N] probabilities.

extension PiT {
    /// Whether `forward` may take the inference path: eval mode and nothing to record for autograd.
    func usesInferencePath(_ x: Tensor) -> Bool {
        if isTraining { return false }
        if !Autograd.isRecording { return true }
        return !x.requiresGrad && !allParameters.contains { $0.requiresGrad }
    }

    /// The final-normed class tokens [B, T, C] by the inference path.
    func inferenceFeatures(_ x: Tensor) throws -> Tensor {
        try checkInput(x)
        Threading.prepareBLAS()
        let b = x.shape[0], t = arch.tokens, widths = arch.widths
        let g = arch.grid
        var (c, h, w) = (widths[0], g, g)
        var n = t + h * w
        var tokens = try Tensor.uninitialized([b * n, c])
        try embedPatches(x, into: tokens.pointer(Float.self))
        for (i, stage) in stages.enumerated() {
            if let pool = stage.pool {
                let (oh, ow) = ((h + 2 * pool.conv.padding.0 - pool.conv.weight.value.shape[2]) / pool.conv.stride.0 + 1,
                                (w + 2 * pool.conv.padding.1 - pool.conv.weight.value.shape[3]) / pool.conv.stride.1 + 1)
                let next = try Tensor.uninitialized([b * (t + oh * ow), widths[i]])
                poolTokens(pool, src: tokens.pointer(Float.self), dst: next.pointer(Float.self), batch: b, tokens: t,
                           inSize: (h, w, c), outSize: (oh, ow, widths[i]))
                (tokens, c, h, w, n) = (next, widths[i], oh, ow, t + oh * ow)
            }
            try runBlocks(stage.blocks, tokens.pointer(Float.self), rows: b * n, batch: b, seqLen: n, dim: c,
                          heads: arch.heads[i])
        }
        let out = try Tensor.uninitialized([b, t, c])
        let src = tokens.pointer(Float.self), dst = out.pointer(Float.self)
        for bi in 0..<b {
            layerNormRows(src + bi * n * c, dst + bi * t * c, rows: t, dim: c, RawNorm(norm))
        }
        return withExtendedLifetime(tokens) { out }
    }

    /// Token rows [cls tokens; patch embedding + pos_embed] of every image, written into `dst` [B * N, C0]: the
    /// conv as one GEMM per row chunk, patches [P, Cin*k*k] x weight^T, onto rows seeded with bias + pos_embed,
    /// so the map never exists in NCHW and needs no transpose.
    private func embedPatches(_ x: Tensor, into dst: UnsafeMutablePointer<Float>) throws {
        let xc = try x.contiguous()
        let b = x.shape[0], cin = x.shape[1], ih = x.shape[2], iw = x.shape[3]
        let t = arch.tokens, g = arch.grid, p = g * g, n = t + p, c = arch.widths[0]
        let k = arch.patchSize, s = arch.stride, kk = cin * k * k
        let conv = RawLinear(weight: patchEmbed.weight.value, bias: patchEmbed.bias?.value)
        let pos = MutablePointerBox(posEmbed.value.pointer(Float.self)), cls = clsToken.value.pointer(Float.self)
        let src = MutablePointerBox(xc.pointer(Float.self)), out = MutablePointerBox(dst)
        for bi in 0..<b { (dst + bi * n * c).update(from: cls, count: t * c) }
        let rowsPer = max(16, min(128, (p + 2 * Threading.threadCount - 1) / (2 * Threading.threadCount)))
        let chunks = (p + rowsPer - 1) / rowsPer
        forEachItem(b * chunks, threads: Threading.threadCount) { item in
            let bi = item / chunks, p0 = (item % chunks) * rowsPer, m = min(rowsPer, p - p0)
            let a = UnsafeMutablePointer<Float>.allocate(capacity: m * kk)
            defer { a.deallocate() }
            let img = src.value + bi * cin * ih * iw
            for r in 0..<m {
                let oy = (p0 + r) / g, ox = (p0 + r) % g
                var d = a + r * kk
                for ci in 0..<cin {
                    for ky in 0..<k {
                        d.update(from: img + (ci * ih + oy * s + ky) * iw + ox * s, count: k)
                        d += k
                    }
                }
            }
            let o = out.value + (bi * n + t + p0) * c
            for r in 0..<m {
                let row = o + r * c, pp = pos.value + p0 + r
                if let bias = conv.bias { for j in 0..<c { row[j] = bias[j] + pp[j * p] } } else { for j in 0..<c { row[j] = pp[j * p] } }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(c), blasint(kk), 1,
                        a, blasint(kk), conv.weight, blasint(kk), 1, o, blasint(c))
        }
        withExtendedLifetime(xc) {}
    }

    /// Pooling: class-token rows through `fc`, map rows through the depthwise-multiplier conv, both read from
    /// and written to token buffers (NHWC rows, so no layout change).
    private func poolTokens(_ pool: PiTPooling, src: UnsafeMutablePointer<Float>, dst: UnsafeMutablePointer<Float>,
                            batch: Int, tokens t: Int, inSize: (Int, Int, Int), outSize: (Int, Int, Int)) {
        let (h, w, c) = inSize, (oh, ow, co) = outSize
        let n = t + h * w, no = t + oh * ow
        let fw = pool.fc.weight.value.pointer(Float.self), fb = pool.fc.bias!.value.pointer(Float.self)
        for bi in 0..<batch {
            let o = dst + bi * no * co
            for r in 0..<t { (o + r * co).update(from: fb, count: co) }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(t), blasint(co), blasint(c), 1,
                        src + bi * n * c, blasint(c), fw, blasint(c), 1, o, blasint(co))
        }
        // Weights [co, 1, kh, kw] regrouped as [kh * kw, co] so the inner loop runs over contiguous channels.
        let kh = pool.conv.weight.value.shape[2], kw = pool.conv.weight.value.shape[3]
        let cw = pool.conv.weight.value.pointer(Float.self), cb = pool.conv.bias!.value.pointer(Float.self)
        var wt = [Float](repeating: 0, count: kh * kw * co)
        for oc in 0..<co { for k in 0..<(kh * kw) { wt[k * co + oc] = cw[oc * kh * kw + k] } }
        let mult = co / c, (sy, sx) = pool.conv.stride, (py, px) = pool.conv.padding
        let s = MutablePointerBox(src), d = MutablePointerBox(dst), bias = MutablePointerBox(cb)
        wt.withUnsafeMutableBufferPointer { wb in
            let wp = MutablePointerBox(wb.baseAddress!)
            forEachItem(batch * oh, threads: Threading.threadCount) { item in
                let bi = item / oh, oy = item % oh
                for ox in 0..<ow {
                    let o = d.value + (bi * no + t + oy * ow + ox) * co
                    o.update(from: bias.value, count: co)
                    for ky in 0..<kh {
                        let iy = oy * sy - py + ky
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<kw {
                            let ix = ox * sx - px + kx
                            if ix < 0 || ix >= w { continue }
                            let i = s.value + (bi * n + t + iy * w + ix) * c, k = wp.value + (ky * kw + kx) * co
                            for ci in 0..<c {
                                let v = i[ci]
                                for j in 0..<mult { o[ci * mult + j] += v * k[ci * mult + j] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// One stage's blocks over the token buffer `x` [rows, dim] (rows = batch * seqLen), in place.
    private func runBlocks(_ blocks: [PiTBlock], _ x: UnsafeMutablePointer<Float>, rows: Int, batch: Int, seqLen: Int,
                           dim: Int, heads: Int) throws {
        guard let b0 = blocks.first else { return }
        let hidden = b0.mlp.fc1.weight.value.shape[0]
        let threads = Threading.threadCount
        let raw = blocks.map(RawBlock.init)
        // Short sequences (few rows per thread) run on token columns, where no GEMM packs its weights.
        if rows < 256 * threads {
            try runBlocksOnColumns(raw, x, rows: rows, batch: batch, seqLen: seqLen, dim: dim, heads: heads,
                                   hidden: hidden)
            return
        }
        let y = try Tensor.uninitialized([rows, dim]), qkv = try Tensor.uninitialized([rows, 3 * dim])
        let a = try Tensor.uninitialized([rows, dim]), hid = try Tensor.uninitialized([rows, hidden])
        let attentionScratch = try AttentionScratch(threads: threads, seqLen: seqLen, headDim: dim / heads)
        let px = MutablePointerBox(x), py = MutablePointerBox(y.pointer(Float.self))
        let pq = MutablePointerBox(qkv.pointer(Float.self)), pa = MutablePointerBox(a.pointer(Float.self))
        let ph = MutablePointerBox(hid.pointer(Float.self))
        // Long sequences: pieces of whole 8-row units (Threading.forEachPiece), each running the whole block chain on
        // its rows through OpenBLAS (its packing of the weights is small next to the rows' arithmetic here).
        func forEachRowPiece(_ body: (_ first: Int, _ count: Int) -> Void) {
            Threading.forEachPiece(of: rows, unit: 8) { range, _ in body(range.lowerBound, range.count) }
        }
        @Sendable func qkvRows(_ blk: RawBlock, _ r0: Int, _ m: Int) {
            layerNormRows(px.value + r0 * dim, py.value + r0 * dim, rows: m, dim: dim, blk.norm1)
            linearRows(blk.qkv, py.value + r0 * dim, pq.value + r0 * 3 * dim, rows: m, cols: 0..<(3 * dim), accumulate: false)
        }
        let first = raw[0]
        forEachRowPiece { r0, m in qkvRows(first, r0, m) }
        for (j, blk) in raw.enumerated() {
            attention(pq.value, pa.value, batch: batch, seqLen: seqLen, dim: dim, heads: heads, columns: nil,
                      scratch: attentionScratch)
            let nextBlock = j + 1 < raw.count ? raw[j + 1] : nil
            forEachRowPiece { r0, m in
                let xr = px.value + r0 * dim
                linearRows(blk.proj, pa.value + r0 * dim, xr, rows: m, cols: 0..<dim, accumulate: true)
                layerNormRows(xr, py.value + r0 * dim, rows: m, dim: dim, blk.norm2)
                let hr = ph.value + r0 * hidden
                linearRows(blk.fc1, py.value + r0 * dim, hr, rows: m, cols: 0..<hidden, accumulate: false)
                vck_activation(Int32(VCK_GELU_ERF), hr, hr, m * hidden)
                linearRows(blk.fc2, hr, xr, rows: m, cols: 0..<dim, accumulate: true)
                if let nextBlock { qkvRows(nextBlock, r0, m) }
            }
        }
        withExtendedLifetime((y, qkv, a, hid, blocks)) {}
    }

    /// Short sequences (at batch 1, every stage after the first): the blocks run on token columns, x^T [dim, ld]
    /// (ld: the rows rounded up to whole register tiles), so that each linear layer is the conv GEMM W x^T. It
    /// reads the weights in place (OpenBLAS packs a copy of them on every call, and here they are most of the
    /// data), applies bias, GELU and the residual in registers, and the threads split its output features.
    /// pit_ti / pit_s batch 1: 10% / 7% faster than these blocks through OpenBLAS.
    private func runBlocksOnColumns(_ raw: [RawBlock], _ x: UnsafeMutablePointer<Float>, rows: Int, batch: Int,
                                    seqLen: Int, dim: Int, heads: Int, hidden: Int) throws {
        let threads = Threading.threadCount, ld = tokenColumns(rows)
        // The GEMMs compute all ld columns; those past the rows start at zero (xt, a) so that they stay finite.
        let xt = try Tensor.zeros([dim, ld]), a = try Tensor.zeros([dim, ld])
        let qkv = try Tensor.uninitialized([3 * dim, ld]), hid = try Tensor.uninitialized([hidden, ld])
        let norms = try Tensor.uninitialized([threads, dim, ld])
        let attentionScratch = try AttentionScratch(threads: threads, seqLen: seqLen, headDim: dim / heads)
        let offsets = (0..<max(dim, hidden)).map { $0 * ld }
        let px = MutablePointerBox(xt.pointer(Float.self)), pq = MutablePointerBox(qkv.pointer(Float.self))
        let pa = MutablePointerBox(a.pointer(Float.self)), ph = MutablePointerBox(hid.pointer(Float.self))
        let pn = MutablePointerBox(norms.pointer(Float.self))
        vck_transpose(x, rows, dim, dim, px.value, ld)
        try offsets.withUnsafeBufferPointer { ob in
            let boff = MutablePointerBox(UnsafeMutablePointer(mutating: ob.baseAddress!))
            var mr = 0, nr = 0
            vck_conv_gemm_tile(&mr, &nr)
            // The linear layers' output features go in pieces of whole register tiles (Threading.forEachPiece): with
            // one equal slice per thread, one thread often waited for the other (pit_s batch 1, 2 threads: 7.1 ms of idle thread
            // time in 44 ms of these layers per forward; three slices per thread of decreasing sizes, claimed in
            // turn, left 3.0; the whole forward 0.83x the time, pit_ti's too).
            let failed = Atomic<Bool>(false)
            @Sendable func linear(_ l: RawLinear, _ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                  _ features: Range<Int>, activation: Int32 = -1, accumulate: Bool = false) {
                var job = vck_conv_gemm(
                    a: l.weight, lda: l.inFeatures, m: l.outFeatures, k: l.inFeatures, aoff: nil, b: input,
                    boff: boff.value, nq: ld, vw: ld, ow: ld, c: output, ldc: ld, scale: nil, shift: l.bias,
                    residual: accumulate ? output : nil, activation: activation, parameter: 0, residual_after: 0,
                    period: 0, oh: 1, image_stride: 0, readable: ld, packed_b: nil, packed_nr: 0)
                if vck_conv_gemm_run(&job, features.lowerBound, features.upperBound, 0, ld) != 0 { failed.store(true, ordering: .relaxed) }
            }
            let normalized = UnsafeMutablePointer<Bool>.allocate(capacity: threads)
            defer { normalized.deallocate() }
            let pd = MutablePointerBox(normalized)
            // Each thread normalizes all columns into its own buffer (cheap) once per layer, rather than waiting
            // for a shared one; `normalized` tells it whether it has.
            @Sendable func normalizedColumns(_ norm: RawNorm, thread: Int) -> UnsafeMutablePointer<Float> {
                let yi = pn.value + thread * dim * ld
                if !pd.value[thread] {
                    layerNormColumns(px.value, yi, columns: ld, dim: dim, norm)
                    pd.value[thread] = true
                }
                return yi
            }
            for blk in raw {
                normalized.initialize(repeating: false, count: threads)
                Threading.forEachPiece(of: 3 * dim, unit: mr) { features, thread in
                    linear(blk.qkv, normalizedColumns(blk.norm1, thread: thread), pq.value, features)
                }
                attention(pq.value, pa.value, batch: batch, seqLen: seqLen, dim: dim, heads: heads, columns: ld,
                          scratch: attentionScratch)
                Threading.forEachPiece(of: dim, unit: mr) { features, _ in
                    linear(blk.proj, pa.value, px.value, features, accumulate: true)
                }
                normalized.initialize(repeating: false, count: threads)
                Threading.forEachPiece(of: hidden, unit: mr) { features, thread in
                    linear(blk.fc1, normalizedColumns(blk.norm2, thread: thread), ph.value, features,
                           activation: Int32(VCK_GELU_ERF))
                }
                Threading.forEachPiece(of: dim, unit: mr) { features, _ in
                    linear(blk.fc2, ph.value, px.value, features, accumulate: true)
                }
            }
            if failed.load(ordering: .relaxed) { throw VisionError.outOfMemory("PiT: no memory for the GEMM's scratch buffers") }
        }
        vck_transpose(px.value, dim, rows, ld, x, dim)
        withExtendedLifetime((xt, qkv, a, hid, norms)) {}
    }

    /// softmax(q k^T / sqrt(d)) v per image and head (vck_attention: each block of queries' scores stays in L1).
    /// On token rows (`columns` nil), q / k / v are read from the qkv rows ([q heads | k heads | v heads] per
    /// token, as timm's reshape(B, N, 3, H, d)) and the heads are written side by side; on token columns
    /// (`columns` = ld), q^T, k^T, v^T are row blocks of qkv^T [3 dim, ld] (image i's tokens at columns
    /// i * n ..< (i + 1) * n) and each head's output is written as columns of out [dim, ld].
    private func attention(_ qkv: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>, batch: Int,
                           seqLen n: Int, dim: Int, heads: Int, columns: Int?, scratch: AttentionScratch) {
        let d = dim / heads, scale = 1 / Float(d).squareRoot()
        // Token stride, feature stride, q-to-k offset, and the output's token and feature strides.
        let (ts, fs, kOffset, ots, ofs) = columns.map { (1, $0, dim * $0, 1, $0) } ?? (3 * dim, 1, dim, dim, 1)
        let pq = MutablePointerBox(qkv), po = MutablePointerBox(out)
        @Sendable func head(_ bi: Int, _ hi: Int) -> (q: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
            columns.map { (pq.value + hi * d * $0 + bi * n, po.value + hi * d * $0 + bi * n) }
                ?? (pq.value + bi * n * 3 * dim + hi * d, po.value + bi * n * dim + hi * d)
        }
        // Query chunks of whole sixteen-query blocks, so that the threads share out short batches.
        let chunk = n >= 256 ? 64 : n >= 64 ? 32 : 16, chunks = (n + chunk - 1) / chunk
        scratch.reset()
        forEachItem(batch * heads * chunks, threads: scratch.threads) { item, thread in
            let h = item / chunks, q0 = (item % chunks) * chunk, m = min(chunk, n - q0)
            let (q, o) = head(h / heads, h % heads), s = scratch.buffer(thread)
            // A thread packs k and v again only when it moves on to another head.
            if scratch.packedHead[thread] != h {
                scratch.keys[thread] = vck_attention_head(k: q + kOffset, v: q + 2 * kOffset, k_rs: ts, k_cs: fs,
                                                          v_rs: ts, v_cs: fs, n: n, d: d, scale: scale)
                vck_attention_pack(scratch.keys + thread, s)
                scratch.packedHead[thread] = h
            }
            vck_attention_queries(scratch.keys + thread, q + q0 * ts, ts, fs, m, s, o + q0 * ots, ots, ofs)
        }
    }
}

/// Per-thread scratch for vck_attention (a block's queries and scores, the packed keys and values), allocated once
/// per stage, with the head each thread last packed and where its keys and values are.
private final class AttentionScratch: @unchecked Sendable {
    let threads: Int, floats: Int
    private let storage: Tensor
    let packedHead: UnsafeMutablePointer<Int>
    let keys: UnsafeMutablePointer<vck_attention_head>

    init(threads: Int, seqLen: Int, headDim: Int) throws {
        self.threads = max(1, threads)
        floats = (vck_attention_scratch(seqLen, headDim) + 15) / 16 * 16
        storage = try Tensor.uninitialized([self.threads * floats])
        packedHead = .allocate(capacity: self.threads)
        keys = .allocate(capacity: self.threads)
        keys.initialize(repeating: vck_attention_head(), count: self.threads)
    }
    deinit {
        packedHead.deallocate()
        keys.deallocate()
    }

    func buffer(_ thread: Int) -> UnsafeMutablePointer<Float> { storage.pointer(Float.self) + thread * floats }
    /// Forgets the packed heads (the next call's qkv holds another block's keys and values).
    func reset() { packedHead.update(repeating: -1, count: threads) }
}

/// A Linear's weights as raw pointers (valid while the module holds its parameters; module tensors are
/// contiguous and loaded in place).
private struct RawLinear: @unchecked Sendable {
    let weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?
    let outFeatures: Int, inFeatures: Int
    init(_ l: Linear) { self.init(weight: l.weight.value, bias: l.bias?.value) }
    /// Any weight [out, ...] as a matrix [out, in] (a conv weight [out, in, kh, kw] included).
    init(weight: Tensor, bias: Tensor?) {
        self.weight = weight.pointer(Float.self); self.bias = bias?.pointer(Float.self)
        (outFeatures, inFeatures) = (weight.shape[0], weight.count / max(weight.shape[0], 1))
    }
}

private struct RawNorm: @unchecked Sendable {
    let weight: UnsafeMutablePointer<Float>?, bias: UnsafeMutablePointer<Float>?
    let eps: Float
    init(_ ln: LayerNorm) {
        weight = ln.weight?.value.pointer(Float.self); bias = ln.bias?.value.pointer(Float.self); eps = Float(ln.eps)
    }
}

private struct RawBlock: Sendable {
    let norm1: RawNorm, qkv: RawLinear, proj: RawLinear, norm2: RawNorm, fc1: RawLinear, fc2: RawLinear
    init(_ b: PiTBlock) {
        (norm1, qkv, proj) = (RawNorm(b.norm1), RawLinear(b.attn.qkv), RawLinear(b.attn.proj))
        (norm2, fc1, fc2) = (RawNorm(b.norm2), RawLinear(b.mlp.fc1), RawLinear(b.mlp.fc2))
    }
}

/// out[rows, cols] (+)= in[rows, in] W[cols]^T + b[cols] (out and in row-major with the layer's full widths):
/// the bias seeds (or is added to) the output and the GEMM accumulates onto it.
private func linearRows(_ l: RawLinear, _ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                        rows: Int, cols: Range<Int>, accumulate: Bool) {
    let o = l.outFeatures, k = l.inFeatures, c0 = cols.lowerBound, nc = cols.count
    guard nc > 0, rows > 0 else { return }
    if let bias = l.bias.map({ $0 + c0 }) {
        for r in 0..<rows {
            let row = output + r * o + c0
            if accumulate { for j in 0..<nc { row[j] += bias[j] } } else { row.update(from: bias, count: nc) }
        }
    }
    let beta: Float = accumulate || l.bias != nil ? 1 : 0
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(rows), blasint(nc), blasint(k), 1,
                input, blasint(k), l.weight + c0 * k, blasint(k), beta, output + c0, blasint(o))
}

/// The row stride of token columns for `rows` tokens: whole 16-float vectors, or whole 8-float halves where that
/// leaves an 8-column last tile (the AVX-512 kernels' narrow tile) rather than a padded 16-column one.
private func tokenColumns(_ rows: Int) -> Int {
    let r8 = (rows + 7) / 8 * 8
    return r8 % 16 == 8 && r8 % 48 != 8 ? r8 + 8 : r8
}

/// LayerNorm down the `columns` columns of src [dim, columns] (each column a token) into dst, with the
/// statistics of all columns accumulated side by side.
private func layerNormColumns(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, columns n: Int,
                              dim: Int, _ ln: RawNorm) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * n) { buf in
        let mean = buf.baseAddress!, inv = mean + n
        mean.initialize(repeating: 0, count: 2 * n)
        for c in 0..<dim { let x = src + c * n; for j in 0..<n { mean[j] += x[j] } }
        let invDim = 1 / Float(dim)
        for j in 0..<n { mean[j] *= invDim }
        for c in 0..<dim { let x = src + c * n; for j in 0..<n { let v = x[j] - mean[j]; inv[j] += v * v } }
        for j in 0..<n { inv[j] = 1 / (inv[j] * invDim + ln.eps).squareRoot() }
        for c in 0..<dim {
            let x = src + c * n, y = dst + c * n
            let w = ln.weight?[c] ?? 1, b = ln.bias?[c] ?? 0
            for j in 0..<n { y[j] = (x[j] - mean[j]) * inv[j] * w + b }
        }
    }
}

/// LayerNorm over the last dim of `rows` rows (two-pass mean / variance in float).
private func layerNormRows(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, rows: Int, dim: Int,
                           _ ln: RawNorm) {
    let w = ln.weight, b = ln.bias
    let eps = ln.eps, invDim = 1 / Float(dim), vec = dim & ~7
    for r in 0..<rows {
        let x = src + r * dim, y = dst + r * dim
        var acc = SIMD8<Float>()
        var j = 0
        while j < vec { acc += load8(x + j); j += 8 }
        var sum = acc.sum()
        while j < dim { sum += x[j]; j += 1 }
        let mean = sum * invDim
        acc = SIMD8<Float>(); j = 0
        while j < vec { let v = load8(x + j) - mean; acc += v * v; j += 8 }
        var sq = acc.sum()
        while j < dim { let v = x[j] - mean; sq += v * v; j += 1 }
        let inv = 1 / (sq * invDim + eps).squareRoot()
        j = 0
        if let w, let b {
            while j < vec { store8((load8(x + j) - mean) * inv * load8(w + j) + load8(b + j), y + j); j += 8 }
            while j < dim { y[j] = (x[j] - mean) * inv * w[j] + b[j]; j += 1 }
        } else {
            while j < dim { y[j] = (x[j] - mean) * inv; j += 1 }
        }
    }
}

@inline(__always) private func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
