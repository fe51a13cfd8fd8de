// Box utilities for detectors (EXTD, CRAFT, ViDT): pairwise IoU and non-maximum suppression with
// torchvision.ops semantics. Boxes are [x1, y1, x2, y2] rows (x2 >= x1, y2 >= y1 for a well-formed box).

/// Validates a [K, 4] float32 box tensor and returns its elements.
private func boxArray(_ t: Tensor, _ op: String, _ name: String) throws -> [Float] {
    try t.requireDType(.float32, op)
    guard t.rank == 2, t.shape[1] == 4 else {
        throw VisionError.shapeMismatch("\(op): \(name) must have shape [K, 4] (x1, y1, x2, y2), got \(t.shape)")
    }
    return try t.toArray(Float.self)
}

/// Intersection over union of boxes `i` of `a` and `j` of `b` (flat [x1, y1, x2, y2] arrays), with torchvision's
/// formula: areas as (x2 - x1) * (y2 - y1) without clamping, the intersection clamped at 0.
@inline(__always) private func pairIoU(_ a: UnsafePointer<Float>, _ areaA: Float, _ b: UnsafePointer<Float>,
                                       _ areaB: Float) -> Float {
    let w = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    let h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    let inter = w * h
    return inter / (areaA + areaB - inter)
}

@inline(__always) private func boxArea(_ p: UnsafePointer<Float>) -> Float { (p[2] - p[0]) * (p[3] - p[1]) }

/// Pairwise IoU of `a` [N, 4] and `b` [M, 4] (float32, xyxy), as torchvision.ops.box_iou: result [N, M].
///
/// Edge cases follow the formula: two degenerate boxes of zero area give 0 / 0 = NaN; reversed boxes (x2 < x1)
/// have negative area and give IoU values outside [0, 1]; NaN coordinates give NaN. N or M = 0 gives an empty
/// result.
public func boxIoU(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    let pa = try boxArray(a, "box_iou", "boxes1"), pb = try boxArray(b, "box_iou", "boxes2")
    let n = a.shape[0], m = b.shape[0]
    let out = try Tensor.uninitialized([n, m], dtype: .float32)
    var areasB = [Float](repeating: 0, count: m)
    for j in 0..<m {
        let width: Float = pb[4 * j + 2] - pb[4 * j], height: Float = pb[4 * j + 3] - pb[4 * j + 1]
        areasB[j] = width * height
    }
    let po = SendablePointer(out.pointer(Float.self))
    pa.withUnsafeBufferPointer { qa in
        pb.withUnsafeBufferPointer { qb in
            guard let ba = qa.baseAddress, let bb = qb.baseAddress else { return }
            let sa = UncheckedBox(ba), sb = UncheckedBox(bb)
            parallelFor(n, minChunk: max(1, 16384 / max(m, 1))) { rows in
                for i in rows {
                    let boxA = sa.value + 4 * i, areaA = boxArea(boxA)
                    for j in 0..<m { po.p[i * m + j] = pairIoU(boxA, areaA, sb.value + 4 * j, areasB[j]) }
                }
            }
        }
    }
    return out
}

/// The order in which NMS visits boxes: by decreasing score, ties by increasing index (a stable sort), NaN
/// scores first (they compare above every number, as in torch.sort).
private func visitOrder(_ scores: [Float]) -> [Int] {
    Array(scores.indices).sorted { i, j in
        let a = scores[i], b = scores[j]
        if a.isNaN || b.isNaN {
            if a.isNaN != b.isNaN { return a.isNaN }
            return i < j
        }
        return a != b ? a > b : i < j
    }
}

/// Validates boxes [N, 4], scores [N] and (optionally) class ids [N]; returns them as arrays.
private func nmsArguments(_ boxes: Tensor, _ scores: Tensor, _ idxs: Tensor?, _ threshold: Float,
                          _ op: String) throws -> ([Float], [Float], [Int64]?) {
    let b = try boxArray(boxes, op, "boxes")
    try scores.requireDType(.float32, op)
    guard scores.shape == [boxes.shape[0]] else {
        throw VisionError.shapeMismatch("\(op): scores must have shape [\(boxes.shape[0])] to match boxes \(boxes.shape), got \(scores.shape)")
    }
    guard !threshold.isNaN else { throw VisionError.invalidArgument("\(op): iou_threshold is NaN") }
    var classes: [Int64]? = nil
    if let idxs {
        guard idxs.shape == [boxes.shape[0]] else {
            throw VisionError.shapeMismatch("\(op): idxs must have shape [\(boxes.shape[0])] to match boxes \(boxes.shape), got \(idxs.shape)")
        }
        switch idxs.dtype {
        case .int64: classes = try idxs.toArray(Int64.self)
        case .int32: classes = try idxs.toArray(Int32.self).map(Int64.init)
        default: throw VisionError.dtypeMismatch("\(op): idxs must be int64 or int32, got \(idxs.dtype)")
        }
    }
    return (b, try scores.toArray(Float.self), classes)
}

/// Greedy NMS over boxes visited in `visitOrder`: keeps a box unless a kept box of the same class overlaps it
/// with IoU > threshold. Boxes are gathered in visiting order first so the inner loop reads memory linearly.
private func greedyNMS(_ b: [Float], _ scores: [Float], _ classes: [Int64]?, _ threshold: Float) throws -> Tensor {
    let order = visitOrder(scores)
    let n = order.count
    var sorted = [Float](repeating: 0, count: 4 * n), areas = [Float](repeating: 0, count: n)
    var cls = [Int64](repeating: 0, count: n)
    for (r, i) in order.enumerated() {
        for d in 0..<4 { sorted[4 * r + d] = b[4 * i + d] }
        let width: Float = b[4 * i + 2] - b[4 * i], height: Float = b[4 * i + 3] - b[4 * i + 1]
        areas[r] = width * height
        cls[r] = classes?[i] ?? 0
    }
    var suppressed = [Bool](repeating: false, count: n)
    var keep = [Int64]()
    sorted.withUnsafeBufferPointer { sp in
        guard let s = sp.baseAddress else { return }
        for r in 0..<n where !suppressed[r] {
            keep.append(Int64(order[r]))
            let box = s + 4 * r
            for q in (r + 1)..<n where !suppressed[q] && cls[q] == cls[r] {
                // NaN IoU (degenerate or NaN boxes) is not > threshold, so it never suppresses.
                if pairIoU(box, areas[r], s + 4 * q, areas[q]) > threshold { suppressed[q] = true }
            }
        }
    }
    return try Tensor(keep, shape: [keep.count])
}

/// Non-maximum suppression (torchvision.ops.nms): `boxes` [N, 4] xyxy and `scores` [N], both float32. Returns
/// the int64 indices of the kept boxes in decreasing score order. A box is dropped when its IoU with an already
/// kept, higher-ranked box is strictly greater than `iouThreshold`.
///
/// Ties in score keep index order (a stable sort, as torchvision's CPU kernel). NaN scores rank above every
/// number (torch.sort's order), so boxes with NaN scores are visited, and usually kept, first. Boxes with NaN
/// coordinates or zero area never suppress anything and are never suppressed (their IoU is NaN or 0). A NaN
/// threshold is an error; N = 0 gives an empty result.
public func nms(_ boxes: Tensor, scores: Tensor, iouThreshold: Float) throws -> Tensor {
    let (b, s, _) = try nmsArguments(boxes, scores, nil, iouThreshold, "nms")
    return try greedyNMS(b, s, nil, iouThreshold)
}

/// NMS done independently per class (torchvision.ops.batched_nms): boxes whose `idxs` (int64 or int32 [N])
/// differ never suppress each other. The result lists the kept indices of all classes together in decreasing
/// score order (ties by index). Implemented as one greedy pass that only compares boxes of the same class,
/// which gives exactly the per-class results without torchvision's coordinate-offset trick (whose large offsets
/// can round boxes of big images).
public func batchedNms(_ boxes: Tensor, scores: Tensor, idxs: Tensor, iouThreshold: Float) throws -> Tensor {
    let (b, s, c) = try nmsArguments(boxes, scores, idxs, iouThreshold, "batched_nms")
    return try greedyNMS(b, s, c, iouThreshold)
}

/// NMS by the definition (for tests): repeatedly takes the best remaining box (highest score, lowest index, NaN
/// first) and removes every remaining box of the same class whose IoU with it exceeds the threshold. O(N^2) per
/// selection; `idxs` nil means one class.
public func nmsReference(_ boxes: Tensor, scores: Tensor, idxs: Tensor? = nil, iouThreshold: Float) throws -> Tensor {
    let (b, s, c) = try nmsArguments(boxes, scores, idxs, iouThreshold, "nms")
    func iou(_ i: Int, _ j: Int) -> Double {
        let (ax1, ay1, ax2, ay2) = (Double(b[4 * i]), Double(b[4 * i + 1]), Double(b[4 * i + 2]), Double(b[4 * i + 3]))
        let (bx1, by1, bx2, by2) = (Double(b[4 * j]), Double(b[4 * j + 1]), Double(b[4 * j + 2]), Double(b[4 * j + 3]))
        let inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))
        return inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)
    }
    func better(_ i: Int, _ j: Int) -> Bool {
        if s[i].isNaN != s[j].isNaN { return s[i].isNaN }
        if !s[i].isNaN && s[i] != s[j] { return s[i] > s[j] }
        return i < j
    }
    var remaining = Array(s.indices)
    var keep = [Int64]()
    while let best = remaining.min(by: better) {
        keep.append(Int64(best))
        remaining.removeAll { $0 == best || ((c?[$0] ?? 0) == (c?[best] ?? 0) && iou(best, $0) > Double(iouThreshold)) }
    }
    return try Tensor(keep, shape: [keep.count])
}
