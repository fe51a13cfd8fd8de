import CBLAS
import VisionCore

// EXTD (arXiv 1906.06579, clovaai/EXTD_Pytorch): a MobileFaceNet-like backbone whose blocks 2...K are reapplied
// to their own output to make five more scales ("iterative filter reuse"), an FPN-like top-down path, and SSD
// heads with S3FD anchors. Inference only: BatchNorm is folded at load time (EXTDWeights.swift).

/// The three released EXTD variants.
public enum EXTDVariant: Int32, Sendable, CaseIterable {
    case extd32 = 0, extd48, extd64

    /// The name used by the CLI, the C API and Python ("extd_32", ...).
    public var name: String {
        switch self {
        case .extd32: return "extd_32"
        case .extd48: return "extd_48"
        case .extd64: return "extd_64"
        }
    }

    /// Parses "extd_32", "EXTD-32", "extd32" or "32".
    public init?(name: String) {
        var rest = Substring(name.lowercased())
        if rest.hasPrefix("extd") { rest = rest.dropFirst(4) }
        if rest.hasPrefix("_") || rest.hasPrefix("-") { rest = rest.dropFirst() }
        switch rest {
        case "32": self = .extd32
        case "48": self = .extd48
        case "64": self = .extd64
        default: return nil
        }
    }

    /// Feature channels of every scale (the backbone's block width).
    public var channels: Int { self == .extd32 ? 32 : self == .extd48 ? 48 : 64 }

    /// Expansion ratio t of backbone blocks 1...K (`base[1..K]`): the model uses `base[:8]` of the 32-wide
    /// MobileFaceNet (settings [1,2,2,4,4,2,2...]) and `base[:6]` of the 48/64 ones ([1,2,2,4,4...]).
    var expansions: [Int] { self == .extd32 ? [1, 2, 2, 4, 4, 2, 2] : [1, 2, 2, 4, 4] }

    /// Only `mobileFacenet_32_PReLU.py` ends every block with a PReLU after the last BatchNorm.
    var blocksEndWithPReLU: Bool { self == .extd32 }

    /// The file name of the released weights.
    public var weightsFileName: String { "EXTD_\(channels).safetensors" }

    /// Learnable parameters of the released checkpoints (BatchNorm running statistics excluded).
    public var expectedParameterCount: Int { self == .extd32 ? 62_939 : self == .extd48 ? 100_160 : 162_352 }
}

/// One inverted-residual block (`InvertedResidual_dwc`): its convs in order; the skip is added when the block
/// keeps stride 1 and its width.
struct EXTDBlock: Sendable {
    var convs: [FoldedConv]
    var residual: Bool

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var y = x
        for (i, c) in convs.enumerated() {
            // The skip joins in the last conv's epilogue (after its activation, as x + conv(x) in PyTorch).
            y = try c(y, residual: residual && i == convs.count - 1 ? x : nil)
        }
        return y
    }
}

/// Raw network outputs for a batch: `loc` [N, P, 4] offsets and `conf` [N, P, 2] logits (background, face; the
/// first scale's background is already the max over its three background logits), in the order of the priors.
public struct EXTDOutput: Sendable {
    public var loc: Tensor
    public var conf: Tensor
    /// (height, width) of the six head feature maps, from stride 4 to stride 128.
    public var featureSizes: [(Int, Int)]
}

/// An EXTD network with loaded weights. Read-only after loading, so one instance may serve several threads.
public struct EXTD: Sendable {
    public let variant: EXTDVariant
    /// Learnable parameters read from the state dict (BatchNorm running statistics excluded).
    public let parameterCount: Int
    var stem: FoldedConv
    var blocks: [EXTDBlock]
    /// `upfeat.k`: depthwise 3x3 (no bias), then 1x1 with BatchNorm folded; ReLU is fused with the skip add.
    var upsample: [(depthwise: FoldedConv, pointwise: FoldedConv)]
    /// loc.k and conf.k merged into one 3x3 conv per scale (rows 0..<4 loc, the rest conf): one im2col per scale.
    var heads: [FoldedConv]

    /// Loads a safetensors state dict with the official key names. Errors: I/O and format errors of the file;
    /// `.format` listing every missing, mis-shaped or unexpected key when the file holds another model.
    public init(variant: EXTDVariant, weightsPath path: String) throws {
        try self.init(variant: variant, stateDict: try Safetensors.load(path: path), source: path)
    }

    public init(variant: EXTDVariant, stateDict: SafetensorsFile, source: String = "the state dict") throws {
        self.variant = variant
        var r = StateDictReader(stateDict)
        let c = variant.channels
        // Stem: Conv3x3 s2 (3 -> 64, no bias), BN, PReLU; 64 channels in every variant.
        stem = try r.conv("base.0.0", out: 64, inPerGroup: 3, kernel: 3, stride: 2, hasBias: false,
                          bnKey: "base.0.1", activation: try r.prelu("base.0.2"))
        var blocks: [EXTDBlock] = []
        var inC = 64
        let last = variant.expansions.count
        for (i, t) in variant.expansions.enumerated() {
            let k = i + 1, p = "base.\(k).conv"
            let stride = k == last ? 2 : 1
            let hidden = inC * t
            var convs: [FoldedConv] = []
            var next = 0
            if t > 1 {
                convs.append(try r.conv("\(p).0", out: hidden, inPerGroup: inC, kernel: 1, hasBias: false,
                                        bnKey: "\(p).1", activation: try r.prelu("\(p).2")))
                next = 3
            }
            convs.append(try r.conv("\(p).\(next)", out: hidden, inPerGroup: 1, kernel: 3, stride: stride,
                                    groups: hidden, hasBias: true, bnKey: "\(p).\(next + 1)",
                                    activation: try r.prelu("\(p).\(next + 2)")))
            let tail: Activation = variant.blocksEndWithPReLU ? try r.prelu("\(p).\(next + 5)") : .none
            convs.append(try r.conv("\(p).\(next + 3)", out: c, inPerGroup: hidden, kernel: 1, hasBias: false,
                                    bnKey: "\(p).\(next + 4)", activation: tail))
            blocks.append(EXTDBlock(convs: convs, residual: stride == 1 && inC == c))
            inC = c
        }
        self.blocks = blocks
        upsample = try (0..<5).map { k in
            (try r.conv("upfeat.\(k).0", out: c, inPerGroup: 1, kernel: 3, groups: c, hasBias: false, bnKey: nil,
                        activation: .none),
             try r.conv("upfeat.\(k).1", out: c, inPerGroup: c, kernel: 1, hasBias: false, bnKey: "upfeat.\(k).2",
                        activation: .relu))
        }
        heads = try (0..<6).map { k in
            let loc = try r.conv("loc.\(k)", out: 4, inPerGroup: c, kernel: 3, hasBias: true, bnKey: nil, activation: .none)
            // conf.0 has 3 background logits + 1 face logit (max-out background); the others 2.
            let conf = try r.conv("conf.\(k)", out: k == 0 ? 4 : 2, inPerGroup: c, kernel: 3, hasBias: true, bnKey: nil,
                                  activation: .none)
            return try mergeHeads(loc, conf)
        }
        try r.finish(model: variant.name, source: source)
        parameterCount = r.learnableCount
    }

    /// Runs the network on x [N, 3, H, W] (RGB minus the means 123, 117, 104; no scaling). Any H, W >= 1 works:
    /// each stride-2 conv gives ceil(size / 2), as in PyTorch.
    public func forward(_ x: Tensor) throws -> EXTDOutput {
        guard x.rank == 4, x.shape[1] == 3, x.dtype == .float32 else {
            throw VisionError.shapeMismatch("\(variant.name): input must be float32 [N, 3, H, W], got \(x.dtype) \(x.shape)")
        }
        // Every conv here splits its own work over VisionCore's threads. OpenBLAS stays at one thread for the
        // whole pass: its idle workers spin after each threaded call and take the cores the next layer needs.
        // s1 = base[0...K](x); s(k+1) = base[2...K](s(k)): the same weights at every scale.
        var y = try stem(x)
        for b in blocks { y = try b(y) }
        var scales = [y]
        for _ in 1..<6 {
            for b in blocks.dropFirst() { y = try b(y) }
            scales.append(y)
        }
        // Top-down: u = relu(bn(pw(dw(bilinear(u_prev -> size of s))))) + s, from s6 up to s1.
        var sources = [scales[5]]
        var u = scales[5]
        for k in 0..<5 {
            let skip = scales[4 - k]
            let up = try interpolate(u, size: (skip.shape[2], skip.shape[3]), mode: .bilinear, alignCorners: false)
            let v = try upsample[k].pointwise(try upsample[k].depthwise(up), residual: skip)
            sources.append(v)
            u = v
        }
        sources.reverse()  // [u5 (stride 4), u4, u3, u2, u1, s6 (stride 128)]
        return try assembleHeads(sources)
    }

    /// Runs the merged heads and writes their NHWC outputs straight into the concatenated loc / conf tensors
    /// (the permute + cat of the official code, without the intermediate copies).
    private func assembleHeads(_ sources: [Tensor]) throws -> EXTDOutput {
        let n = sources[0].shape[0]
        let sizes = sources.map { ($0.shape[2], $0.shape[3]) }
        let priors = sizes.reduce(0) { $0 + $1.0 * $1.1 }
        var loc = try Tensor.zeros([n, priors, 4])
        var conf = try Tensor.zeros([n, priors, 2])
        var offset = 0
        for (k, src) in sources.enumerated() {
            let out = try heads[k](src).contiguous()
            let (h, w) = sizes[k], hw = h * w, rows = out.shape[1]
            let po = out.pointer(Float.self)
            try loc.withUnsafeMutableBufferPointer(as: Float.self) { pl in
                try conf.withUnsafeMutableBufferPointer(as: Float.self) { pc in
                    withExtendedLifetime(out) {
                        for b in 0..<n {
                            let plane = po + b * rows * hw
                            for p in 0..<hw {
                                let dst = (b * priors + offset + p)
                                for j in 0..<4 { pl[dst * 4 + j] = plane[j * hw + p] }
                                if rows == 8 {
                                    pc[dst * 2] = max(plane[4 * hw + p], plane[5 * hw + p], plane[6 * hw + p])
                                    pc[dst * 2 + 1] = plane[7 * hw + p]
                                } else {
                                    pc[dst * 2] = plane[4 * hw + p]
                                    pc[dst * 2 + 1] = plane[5 * hw + p]
                                }
                            }
                        }
                    }
                }
            }
            offset += hw
        }
        return EXTDOutput(loc: loc, conf: conf, featureSizes: sizes)
    }
}

/// Stacks the loc and conf convs of one scale into one conv (same input, kernel and padding).
private func mergeHeads(_ loc: FoldedConv, _ conf: FoldedConv) throws -> FoldedConv {
    let w = try concat([loc.weight, conf.weight], axis: 0)
    let bias = (loc.shift ?? [Float](repeating: 0, count: loc.weight.shape[0])) +
        (conf.shift ?? [Float](repeating: 0, count: conf.weight.shape[0]))
    return try FoldedConv(weight: w, bias: try Tensor(bias, shape: [bias.count]), stride: 1, padding: 1, groups: 1,
                          activation: .none)
}
