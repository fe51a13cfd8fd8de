import VisionCore
import VisionNN

// EXTD as trainable modules, with the official state-dict keys (seeds_detection_video.md 3.8), for training and
// fine-tuning. Inference goes through `EXTD` (BatchNorm folded, fused kernels); `inferenceModel()` converts.

/// One `InvertedResidual_dwc` block as the official Sequential `conv` (keys `conv.0` ... `conv.8`).
final class EXTDBlockModule: Module {
    let layers: Sequential
    let residual: Bool

    init(inChannels: Int, outChannels: Int, expansion t: Int, stride: Int, tailPReLU: Bool, rng: inout RandomGenerator) throws {
        let hidden = inChannels * t
        var l: [Module] = []
        if t > 1 {
            l += [try Conv2d(inChannels, hidden, kernelSize: (1, 1), bias: false, rng: &rng), try BatchNorm2d(hidden), try PReLU()]
        }
        l += [try Conv2d(hidden, hidden, kernelSize: (3, 3), stride: (stride, stride), padding: (1, 1), groups: hidden, rng: &rng),
              try BatchNorm2d(hidden), try PReLU(),
              try Conv2d(hidden, outChannels, kernelSize: (1, 1), bias: false, rng: &rng), try BatchNorm2d(outChannels)]
        if tailPReLU { l.append(try PReLU()) }
        layers = Sequential(l)
        residual = stride == 1 && inChannels == outChannels
        super.init()
        register("conv", layers)
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        let y = try layers(x)
        return residual ? try add(x, y) : y
    }
}

/// The EXTD network as modules: `base` (stem + blocks), `upfeat`, `loc`, `conf`, as the official model.
public final class EXTDNet: Module {
    public let variant: EXTDVariant
    let base: ModuleList
    let upfeat: ModuleList
    let loc: ModuleList
    let conf: ModuleList

    /// A freshly initialized network (PyTorch's default initializers from a seeded generator; the official
    /// training re-initializes the heads with xavier, see `initializeHeadsXavier`).
    public init(variant: EXTDVariant, seed: UInt64 = 0) throws {
        self.variant = variant
        var rng = RandomGenerator(seed: seed)
        let c = variant.channels
        var blocks: [Module] = [Sequential([try Conv2d(3, 64, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1), bias: false, rng: &rng),
                                            try BatchNorm2d(64), try PReLU()])]
        var inC = 64
        for (i, t) in variant.expansions.enumerated() {
            blocks.append(try EXTDBlockModule(inChannels: inC, outChannels: c, expansion: t,
                                              stride: i == variant.expansions.count - 1 ? 2 : 1,
                                              tailPReLU: variant.blocksEndWithPReLU, rng: &rng))
            inC = c
        }
        base = ModuleList(blocks)
        upfeat = ModuleList(try (0..<5).map { _ in
            Sequential([try Conv2d(c, c, kernelSize: (3, 3), padding: (1, 1), groups: c, bias: false, rng: &rng),
                        try Conv2d(c, c, kernelSize: (1, 1), bias: false, rng: &rng), try BatchNorm2d(c), VisionNN.Activation(.relu)])
        })
        loc = ModuleList(try (0..<6).map { _ in try Conv2d(c, 4, kernelSize: (3, 3), padding: (1, 1), rng: &rng) })
        conf = ModuleList(try (0..<6).map { try Conv2d(c, $0 == 0 ? 4 : 2, kernelSize: (3, 3), padding: (1, 1), rng: &rng) })
        super.init()
        register("base", base); register("upfeat", upfeat); register("loc", loc); register("conf", conf)
    }

    /// Heads initialized as the official train.py does (xavier-uniform weights, zero bias).
    public func initializeHeadsXavier(seed: UInt64) throws {
        var rng = RandomGenerator(seed: seed)
        for head in loc.modules + conf.modules {
            guard let conv = head as? Conv2d else { continue }
            let w = conv.weight.value
            let fanIn = w.shape[1] * w.shape[2] * w.shape[3], fanOut = w.shape[0] * w.shape[2] * w.shape[3]
            let bound = (6.0 / Double(fanIn + fanOut)).squareRoot()
            try conv.weight.value.updateInPlace { p in for i in 0..<p.count { p[i] = Float((rng.nextDouble() * 2 - 1) * bound) } }
            try conv.bias?.value.updateInPlace { p in for i in 0..<p.count { p[i] = 0 } }
        }
    }

    /// Raw outputs for the priors of `x`'s size: loc [N, P, 4], conf [N, P, 2] (the first scale's background is
    /// the max of its three background logits), and the six head feature sizes.
    public func forwardDetection(_ x: Tensor) throws -> EXTDOutput {
        guard x.rank == 4, x.shape[1] == 3, x.shape[2] >= 1, x.shape[3] >= 1 else {
            throw VisionError.shapeMismatch("EXTD: input must be [N, 3, H, W], got \(x.shape)")
        }
        let last = base.count - 1
        func trunk(_ x: Tensor, from: Int) throws -> Tensor { try (from...last).reduce(x) { try base[$1]($0) } }
        var scales = [try trunk(x, from: 0)]
        for _ in 0..<5 { scales.append(try trunk(scales[scales.count - 1], from: 2)) }
        // Top-down path from s6 to s1: u = upfeat(bilinear(previous -> size of s)) + s.
        var previous = scales[5], sources = [scales[5]]
        for k in 0..<5 {
            let s = scales[4 - k]
            let up = try interpolate(previous, size: (s.shape[2], s.shape[3]), mode: .bilinear, alignCorners: false)
            previous = try add(try upfeat[k](up), s)
            sources.append(previous)
        }
        sources.reverse()   // [u5, u4, u3, u2, u1, s6]
        var locs: [Tensor] = [], confs: [Tensor] = []
        let n = x.shape[0]
        for (k, s) in sources.enumerated() {
            var c = try conf[k](s)
            if k == 0 {
                // Max-out background: the max of the three background logits, then the face logit.
                let background = try amax(try c.slice(axis: 1, start: 0, end: 3), axes: [1], keepDim: true)
                c = try concat([background, try c.slice(axis: 1, start: 3, end: 4)], axis: 1)
            }
            locs.append(try loc[k](s).permute([0, 2, 3, 1]).reshape([n, -1, 4]))
            confs.append(try c.permute([0, 2, 3, 1]).reshape([n, -1, 2]))
        }
        return EXTDOutput(loc: try concat(locs, axis: 1), conf: try concat(confs, axis: 1),
                          featureSizes: sources.map { ($0.shape[2], $0.shape[3]) })
    }

    /// The inference network with these weights (BatchNorm folded; eval-mode statistics).
    public func inferenceModel() throws -> EXTD {
        let file = SafetensorsFile(entries: stateDict().map { (name: $0.0, tensor: $0.1, stored: SafetensorsDType($0.1.dtype)) })
        return try EXTD(variant: variant, stateDict: file)
    }
}
