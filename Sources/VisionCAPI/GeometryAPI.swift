import VisionCore

/// Bilinear grid sampling with zero padding (torch.nn.functional.grid_sample, mode "bilinear", padding "zeros"):
/// x is float32 [N, C, H, W], grid is float32 [N, Ho, Wo, 2] holding (x, y) in [-1, 1]; the result is
/// [N, C, Ho, Wo]. align_corners chooses whether -1 and 1 are the centres (true) or the outer edges (false) of
/// the corner pixels. NaN or infinite grid values give NaN; locations outside the image fade to 0.
@c public func vc_grid_sample(_ x: VCTensor?, _ grid: VCTensor?, _ align_corners: Bool,
                              _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) { try gridSample(try tensorArg(x, "x"), grid: try tensorArg(grid, "grid"), alignCorners: align_corners) }
    }
}

/// RoIAlign (torchvision.ops.roi_align): x is float32 [N, C, H, W], boxes is float32 [K, 5] rows
/// (batch_index, x1, y1, x2, y2) in input coordinates, scaled by spatial_scale; the result is
/// [K, C, pooled_h, pooled_w]. sampling_ratio <= 0 picks ceil(box size / pooled size) samples per bin and axis;
/// aligned shifts boxes by -0.5 pixel (set it for pixel-exact results). A batch index outside 0..N-1 or a
/// non-finite box is an error.
@c public func vc_roi_align(_ x: VCTensor?, _ boxes: VCTensor?, _ pooled_h: Int64, _ pooled_w: Int64,
                            _ spatial_scale: Float, _ sampling_ratio: Int32, _ aligned: Bool,
                            _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard pooled_h > 0, pooled_w > 0, pooled_h <= Int64(Int32.max), pooled_w <= Int64(Int32.max) else {
            throw VisionError.invalidArgument("output size (\(pooled_h), \(pooled_w)) must be positive")
        }
        try output(out) {
            try roiAlign(try tensorArg(x, "x"), boxes: try tensorArg(boxes, "boxes"), outputSize: (Int(pooled_h), Int(pooled_w)),
                         spatialScale: spatial_scale, samplingRatio: Int(sampling_ratio), aligned: aligned)
        }
    }
}

/// Pairwise intersection over union of float32 boxes a [N, 4] and b [M, 4] in (x1, y1, x2, y2) form
/// (torchvision.ops.box_iou): a float32 [N, M] result. Two zero-area boxes give NaN.
@c public func vc_box_iou(_ a: VCTensor?, _ b: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try boxIoU(try tensorArg(a, "a"), try tensorArg(b, "b")) } }
}

/// Non-maximum suppression (torchvision.ops.nms): boxes float32 [N, 4] (x1, y1, x2, y2), scores float32 [N].
/// *out_indices receives the int64 indices of the kept boxes by decreasing score (ties by index, NaN scores
/// first); a box is dropped when its IoU with a kept box is greater than iou_threshold.
@c public func vc_nms(_ boxes: VCTensor?, _ scores: VCTensor?, _ iou_threshold: Float,
                      _ out_indices: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out_indices) {
            try nms(try tensorArg(boxes, "boxes"), scores: try tensorArg(scores, "scores"), iouThreshold: iou_threshold)
        }
    }
}

/// Per-class non-maximum suppression (torchvision.ops.batched_nms): like vc_nms, but boxes whose class ids
/// (idxs: int64 or int32 [N]) differ never suppress each other. Kept indices of all classes come out together
/// by decreasing score.
@c public func vc_batched_nms(_ boxes: VCTensor?, _ scores: VCTensor?, _ idxs: VCTensor?, _ iou_threshold: Float,
                              _ out_indices: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out_indices) {
            try batchedNms(try tensorArg(boxes, "boxes"), scores: try tensorArg(scores, "scores"),
                           idxs: try tensorArg(idxs, "idxs"), iouThreshold: iou_threshold)
        }
    }
}
