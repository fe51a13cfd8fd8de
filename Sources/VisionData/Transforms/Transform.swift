import VisionCore

/// A per-example transform driven by explicit random draws (no global RNG). `DataLoader` calls it with a
/// generator derived from (seed, epoch, example index); tests call it with replayed reference draws.
///
/// Inputs are float32 [C, H, W] images. `applyBatch` runs the transform on every sample of an [N, C, H, W]
/// batch in order, each with its own draws from the one `draws` (torchvision, given a batch tensor, would
/// draw once for the whole batch instead).
public protocol Transform: Sendable {
    func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example
}

extension Transform {
    /// Transforms a bare [C, H, W] image.
    public func apply<R: RandomDraws>(image: Tensor, draws: inout R) throws -> Tensor {
        try apply(Example(input: image, label: 0), draws: &draws).input
    }

    /// Transforms each sample of a [N, C, H, W] batch in order and stacks the results (which must share a shape).
    public func applyBatch<R: RandomDraws>(_ images: Tensor, draws: inout R) throws -> Tensor {
        guard images.rank == 4, images.shape[0] > 0 else {
            throw VisionError.shapeMismatch("transform: a batch must be a non-empty [N, C, H, W] tensor, got \(images.shape)")
        }
        let outs = try (0..<images.shape[0]).map { try apply(image: try images.select(axis: 0, index: $0), draws: &draws) }
        return try stack(outs, axis: 0)
    }
}

/// Runs transforms one after the other (torchvision's Compose).
public struct Compose: Transform {
    public let transforms: [any Transform]

    public init(_ transforms: [any Transform]) { self.transforms = transforms }

    public func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example {
        var e = example
        for t in transforms { e = try t.apply(e, draws: &draws) }
        return e
    }
}

/// Validates a float32 [C, H, W] image with a non-empty plane.
func imageShape(_ x: Tensor, _ op: String) throws -> (Int, Int, Int) {
    guard x.dtype == .float32, x.rank == 3, x.shape[1] > 0, x.shape[2] > 0 else {
        throw VisionError.shapeMismatch("\(op): expected a float32 [C, H, W] image with H, W > 0, got \(x.dtype) \(x.shape)")
    }
    return (x.shape[0], x.shape[1], x.shape[2])
}
