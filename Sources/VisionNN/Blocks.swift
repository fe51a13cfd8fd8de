import VisionCore

/// Multi-head self-attention over [B, N, C] tokens with timm's layout (keys `qkv.weight` [3C, C], `qkv.bias`,
/// `proj.weight`, `proj.bias`): softmax(q k^T / sqrt(C / heads)) v per head, heads concatenated, projected.
public final class MultiheadSelfAttention: Module {
    public let qkv: Linear, proj: Linear
    public let attnDrop: Dropout, projDrop: Dropout
    public let heads: Int

    public init(dim: Int, heads: Int, qkvBias: Bool = true, attnDrop: Float = 0, projDrop: Float = 0,
                rng: inout RandomGenerator) throws {
        guard heads >= 1, dim % heads == 0 else {
            throw VisionError.invalidArgument("MultiheadSelfAttention: dim \(dim) must be divisible by heads \(heads)")
        }
        self.heads = heads
        qkv = try Linear(dim, dim * 3, bias: qkvBias, rng: &rng)
        proj = try Linear(dim, dim, rng: &rng)
        self.attnDrop = try Dropout(p: attnDrop, seed: rng.next())
        self.projDrop = try Dropout(p: projDrop, seed: rng.next())
        super.init()
        register("qkv", qkv); register("attn_drop", self.attnDrop); register("proj", proj); register("proj_drop", self.projDrop)
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        guard x.rank == 3 else { throw VisionError.shapeMismatch("MultiheadSelfAttention: input must be [B, N, C], got \(x.shape)") }
        let (b, n, c) = (x.shape[0], x.shape[1], x.shape[2])
        let hd = c / heads
        let t = try qkv(x).reshape([b, n, 3, heads, hd]).permute([2, 0, 3, 1, 4])   // [3, B, H, N, hd]
        let q = try t.select(axis: 0, index: 0), k = try t.select(axis: 0, index: 1), v = try t.select(axis: 0, index: 2)
        let scale = try Tensor.full([], value: 1 / Double(hd).squareRoot())
        let attn = try attnDrop(try softmax(try mul(try matmul(q, try k.transpose(-2, -1)), scale), axis: -1))
        let out = try matmul(attn, v).transpose(1, 2).reshape([b, n, c])
        return try projDrop(try proj(out))
    }
}

/// timm's Mlp: fc1 -> activation -> dropout -> fc2 -> dropout (keys `fc1.*`, `fc2.*`).
public final class Mlp: Module {
    public let fc1: Linear, act: Activation, fc2: Linear, drop: Dropout

    public init(inFeatures: Int, hiddenFeatures: Int, outFeatures: Int? = nil, activation: UnaryOp = .geluErf,
                drop: Float = 0, rng: inout RandomGenerator) throws {
        fc1 = try Linear(inFeatures, hiddenFeatures, rng: &rng)
        act = Activation(activation)
        fc2 = try Linear(hiddenFeatures, outFeatures ?? inFeatures, rng: &rng)
        self.drop = try Dropout(p: drop, seed: rng.next())
        super.init()
        register("fc1", fc1); register("act", act); register("drop1", self.drop); register("fc2", fc2)
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try drop(try fc2(try drop(try act(try fc1(x)))))
    }
}

/// Squeeze-and-excitation (timm's SEModule): global average pool, 1x1 conv down (`fc1`), optional batch norm
/// (`bn`), activation, 1x1 conv up (`fc2`), sigmoid gate multiplied into the input.
public final class SqueezeExcite: Module {
    public let fc1: Conv2d, bn: BatchNorm2d?, act: Activation, fc2: Conv2d

    public init(channels: Int, reducedChannels: Int, activation: UnaryOp = .relu, batchNorm: Bool = false,
                rng: inout RandomGenerator) throws {
        fc1 = try Conv2d(channels, reducedChannels, kernelSize: (1, 1), rng: &rng)
        bn = batchNorm ? try BatchNorm2d(reducedChannels) : nil
        act = Activation(activation)
        fc2 = try Conv2d(reducedChannels, channels, kernelSize: (1, 1), rng: &rng)
        super.init()
        register("fc1", fc1)
        if let bn { register("bn", bn) }
        register("act", act); register("fc2", fc2)
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        var s = try fc1(try mean(x, axes: [2, 3], keepDim: true))
        if let bn { s = try bn(s) }
        let gate = try sigmoid(try fc2(try act(s)))
        return try mul(x, gate)
    }
}
