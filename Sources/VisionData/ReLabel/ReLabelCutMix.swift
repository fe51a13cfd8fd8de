import VisionCore

/// ReLabel's training targets with CutMix, as its train.py: LabelPooling gives each image's soft target from
/// its label map and crop, then ReLabel's `cutmix_batch` (`CutMix` with soft targets and label smoothing) mixes
/// images and targets. With `cutmix.enabled = false` (the config's last `off_epoch` epochs) the pooled targets
/// are only smoothed. Validation uses the original labels, not this.
public struct ReLabelCutMix: Sendable {
    public let pooling: LabelPooling
    public var cutmix: CutMix

    /// Errors: class counts that differ between the two.
    public init(pooling: LabelPooling, cutmix: CutMix) throws {
        guard pooling.numClasses == cutmix.numClasses else {
            throw VisionError.invalidArgument("ReLabelCutMix: LabelPooling has \(pooling.numClasses) classes, CutMix \(cutmix.numClasses)")
        }
        self.pooling = pooling
        self.cutmix = cutmix
    }

    /// Mixes a loader batch whose examples carry label maps and crop boxes (a `RandomResizedCrop` in the
    /// transform). Errors: a batch without label maps or with an example that has no crop box.
    public func callAsFunction<R: RandomDraws>(_ batch: Batch, draws: inout R) throws -> MixResult {
        guard let maps = batch.labelMaps else {
            throw VisionError.invalidArgument("ReLabelCutMix: the batch has no label maps (the dataset must provide one per example)")
        }
        let crops = try batch.cropBoxes.enumerated().map { k, c in
            guard let c else {
                throw VisionError.invalidArgument("ReLabelCutMix: example \(batch.indices[k]) has no crop box (add RandomResizedCrop to the transform)")
            }
            return c
        }
        let targets = try pooling(labelMaps: maps, crops: crops)
        return try cutmix(batch.inputs, labels: targets, draws: &draws)
    }
}
