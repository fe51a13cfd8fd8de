import VisionCore

/// Weight initializers, all drawing from an explicit seeded generator. PyTorch's defaults are reproduced in
/// distribution (not in the exact numbers: the generators differ); load a checkpoint for exact weights.
public enum Init {
    /// fan_in and fan_out of a weight [out, in, k...] as PyTorch computes them.
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        guard shape.count >= 2 else { return (max(shape.first ?? 1, 1), max(shape.first ?? 1, 1)) }
        let receptive = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * receptive, shape[0] * receptive)
    }

    /// U(-bound, bound) with bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (kaiming_uniform_);
    /// a = sqrt(5) is what nn.Linear and nn.Conv2d use by default, giving bound = 1 / sqrt(fan_in).
    public static func kaimingUniform(_ shape: [Int], a: Double = 5.0.squareRoot(), rng: inout RandomGenerator) throws -> Tensor {
        let gain = (2 / (1 + a * a)).squareRoot()
        let bound = Float(gain * (3 / Double(max(fans(shape).fanIn, 1))).squareRoot())
        return try Tensor.uniform(shape, low: -bound, high: bound, rng: &rng)
    }

    /// N(0, std) with std = sqrt(2) / sqrt(fan) (kaiming_normal_ for ReLU; mode "fan_out" as torchvision's ResNet).
    public static func kaimingNormal(_ shape: [Int], fanOut: Bool = true, rng: inout RandomGenerator) throws -> Tensor {
        let f = fans(shape)
        let std = Float((2.0 / Double(max(fanOut ? f.fanOut : f.fanIn, 1))).squareRoot())
        return try Tensor.normal(shape, std: std, rng: &rng)
    }

    /// N(mean, std) truncated to [a, b] by rejection (timm's trunc_normal_, whose bounds are absolute values).
    public static func truncNormal(_ shape: [Int], mean: Float = 0, std: Float = 0.02, a: Float = -2, b: Float = 2,
                                   rng: inout RandomGenerator) throws -> Tensor {
        guard a < b, std > 0 else { throw VisionError.invalidArgument("trunc_normal: need a < b and std > 0") }
        var values = [Float](repeating: 0, count: try Tensor.checkedCount(shape))
        for i in values.indices {
            var v: Float
            var tries = 0
            repeat {
                v = mean + std * rng.nextNormal()
                tries += 1
            } while (v < a || v > b) && tries < 1000
            values[i] = min(max(v, a), b)
        }
        return try Tensor(values, shape: shape)
    }

    /// The default bias of nn.Linear / nn.Conv2d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    public static func defaultBias(_ count: Int, fanIn: Int, rng: inout RandomGenerator) throws -> Tensor {
        let bound = Float(1 / Double(max(fanIn, 1)).squareRoot())
        return try Tensor.uniform([count], low: -bound, high: bound, rng: &rng)
    }

    // In-place redraws for a model's own init scheme (timm's init_weights): they write into the parameter's
    // storage, so re-initializing a large model allocates nothing.

    /// Redraws `p` from N(mean, std).
    public static func fillNormal(_ p: Parameter, mean: Float = 0, std: Float, rng: inout RandomGenerator) throws {
        try p.value.updateInPlace { b in for i in b.indices { b[i] = mean + std * rng.nextNormal() } }
    }

    /// Redraws `p` from U(low, high).
    public static func fillUniform(_ p: Parameter, low: Float, high: Float, rng: inout RandomGenerator) throws {
        try p.value.updateInPlace { b in for i in b.indices { b[i] = low + (high - low) * rng.nextFloat() } }
    }

    /// Sets every element of `p` to `value`.
    public static func fill(_ p: Parameter, _ value: Float) throws {
        try p.value.updateInPlace { b in b.update(repeating: value) }
    }
}
