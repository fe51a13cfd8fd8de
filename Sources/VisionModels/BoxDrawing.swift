import VisionCore

/// Draws rectangle outlines on a copy of a uint8 [H, W, C] image (C = 1...4): `boxes` [K, >= 4] float32 rows
/// (x1, y1, x2, y2, ...) in pixels, `color` one value per channel (missing channels get 255), `thickness` pixels
/// drawn inward from each edge. Boxes are clipped to the image; NaN or empty boxes are skipped, so any detector
/// output can be drawn without checks.
public func drawBoxes(_ image: Tensor, boxes: Tensor, color: [UInt8] = [255, 0, 0], thickness: Int = 2) throws -> Tensor {
    guard image.dtype == .uint8, image.rank == 3, (1...4).contains(image.shape[2]) else {
        throw VisionError.invalidArgument("draw_boxes: the image must be uint8 [H, W, C] with C in 1...4, got \(image.dtype) \(image.shape)")
    }
    guard boxes.dtype == .float32, boxes.rank == 2, boxes.shape[1] >= 4 else {
        throw VisionError.invalidArgument("draw_boxes: boxes must be float32 [K, 4 or more] (x1, y1, x2, y2, ...), got \(boxes.dtype) \(boxes.shape)")
    }
    guard (1...64).contains(thickness) else {
        throw VisionError.invalidArgument("draw_boxes: thickness must be in 1...64, got \(thickness)")
    }
    let h = image.shape[0], w = image.shape[1], c = image.shape[2], cols = boxes.shape[1]
    let values = try boxes.toArray(Float.self)
    let paint = (0..<c).map { $0 < color.count ? color[$0] : 255 }
    var out = try image.copyContiguous()
    guard h > 0, w > 0 else { return out }
    try out.withUnsafeMutableBufferPointer(as: UInt8.self) { px in
        /// Fills rows y0...y1, columns x0...x1 (inclusive, already clipped).
        func fill(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) {
            guard x0 <= x1, y0 <= y1 else { return }
            for y in y0...y1 {
                for x in x0...x1 {
                    for ch in 0..<c { px[(y * w + x) * c + ch] = paint[ch] }
                }
            }
        }
        for k in 0..<boxes.shape[0] {
            let r = values[(k * cols)..<(k * cols + 4)].map(Double.init)
            guard r.allSatisfy({ $0.isFinite }) else { continue }
            // Clip in Double before converting: a huge coordinate must not overflow Int.
            func clip(_ v: Double, _ hi: Int) -> Int { Int(min(max(v.rounded(), 0), Double(hi))) }
            let x0 = clip(min(r[0], r[2]), w - 1), x1 = clip(max(r[0], r[2]), w - 1)
            let y0 = clip(min(r[1], r[3]), h - 1), y1 = clip(max(r[1], r[3]), h - 1)
            // Skip boxes entirely outside the image (clipping would draw them on its border).
            if max(r[0], r[2]) < 0 || min(r[0], r[2]) > Double(w - 1) || max(r[1], r[3]) < 0 || min(r[1], r[3]) > Double(h - 1) {
                continue
            }
            let t = thickness - 1
            fill(x0, y0, x1, min(y0 + t, y1))          // top
            fill(x0, max(y1 - t, y0), x1, y1)          // bottom
            fill(x0, y0, min(x0 + t, x1), y1)          // left
            fill(max(x1 - t, x0), y0, x1, y1)          // right
        }
    }
    return out
}
