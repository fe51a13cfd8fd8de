import VisionCore

/// ReLabel's LabelPooling (naver-ai/relabel_imagenet `utils/relabel_functions.py`, `get_labelmaps` and
/// `get_relabel`): the soft target of a random crop is the softmax over all classes of the RoIAlign average of
/// the dense label map over the crop's box.
///
/// Exactly as the reference, per image: the dense map [K, S, S] holds the top-k scores and zeros elsewhere (not
/// −∞: each absent class keeps weight exp(0) in the softmax); the crop's (i, j, h, w) of an H x W image become
/// (i/H, j/W, (i+h)/H, (j+w)/W), computed in double and rounded to float32, then scaled in float32 by the map
/// side S (`label_maps.size(3)`) minus 0.5; `roi_align` with output 1 x 1, spatial_scale 1, adaptive sampling
/// and aligned=false (so the box is at least one cell each way) pools it; softmax over the K classes.
public struct LabelPooling: Sendable {
    /// How the crop box is handed to roi_align, which reads boxes as (x1, y1, x2, y2) with x along the last
    /// axis (columns).
    public enum BoxConvention: Sendable {
        /// The reference's: (i/H, j/W, (i+h)/H, (j+w)/W) as (x1, y1, x2, y2) — rows taken as x, i.e. the crop is
        /// pooled transposed unless the released maps are stored transposed (UNVERIFIED; see
        /// reference/seeds_classification.md 4.3). All four are scaled by the map's last dimension.
        case official
        /// The geometrically correct box: (j/W·S_w, i/H·S_h, (j+w)/W·S_w, (i+h)/H·S_h) − 0.5 as (x1, y1, x2, y2),
        /// with the same −0.5 shift and aligned=false clamp as the reference.
        case geometric
    }

    public let numClasses: Int
    public let convention: BoxConvention

    public init(numClasses: Int = 1000, convention: BoxConvention = .official) throws {
        guard numClasses >= 1 else { throw VisionError.invalidArgument("LabelPooling: numClasses must be >= 1, got \(numClasses)") }
        self.numClasses = numClasses
        self.convention = convention
    }

    /// The roi_align boxes [B, 5] (batch index, x1, y1, x2, y2) for crops on maps of mapHeight x mapWidth.
    public func roiBoxes(_ crops: [CropBox], mapHeight: Int, mapWidth: Int) throws -> Tensor {
        var rows: [Float] = []
        for (b, c) in crops.enumerated() {
            guard c.imageHeight > 0, c.imageWidth > 0, c.h > 0, c.w > 0 else {
                throw VisionError.invalidArgument("LabelPooling: crop \(b) \(c) is empty")
            }
            let (ni, nj, nh, nw) = c.normalized
            // float64 sums, then .float(), then * size in float32 − 0.5 (the reference's order of operations).
            let y1 = Float(ni), x1 = Float(nj), y2 = Float(ni + nh), x2 = Float(nj + nw)
            switch convention {
            case .official:
                let s = Float(mapWidth)
                rows += [Float(b), y1 * s - 0.5, x1 * s - 0.5, y2 * s - 0.5, x2 * s - 0.5]
            case .geometric:
                let sh = Float(mapHeight), sw = Float(mapWidth)
                rows += [Float(b), x1 * sw - 0.5, y1 * sh - 0.5, x2 * sw - 0.5, y2 * sh - 0.5]
            }
        }
        return try Tensor(rows, shape: [crops.count, 5])
    }

    /// Soft targets [B, numClasses] for label maps [B, 2, k, S, S] and the crops the images were cut with.
    /// Errors: a crop count different from B, an empty crop, a malformed label map (see `LabelMaps.validate`).
    public func callAsFunction(labelMaps: Tensor, crops: [CropBox]) throws -> Tensor {
        guard labelMaps.rank == 5, labelMaps.shape[0] == crops.count, !crops.isEmpty else {
            throw VisionError.shapeMismatch("LabelPooling: label maps must be [B, 2, k, S, S] with B = \(crops.count) crops, got \(labelMaps.shape)")
        }
        let dense = try LabelMaps.dense(labelMaps, numClasses: numClasses)
        let boxes = try roiBoxes(crops, mapHeight: dense.shape[2], mapWidth: dense.shape[3])
        let pooled = try roiAlign(dense, boxes: boxes, outputSize: (1, 1), spatialScale: 1, samplingRatio: -1, aligned: false)
        return try softmax(try pooled.reshape([crops.count, numClasses]), axis: 1)
    }

    /// The soft target of one image: a label map [2, k, S, S] and its crop.
    public func callAsFunction(labelMap: Tensor, crop: CropBox) throws -> Tensor {
        try self(labelMaps: try labelMap.unsqueeze(axis: 0), crops: [crop]).reshape([numClasses])
    }
}
