import VisionCore

/// How a loss combines its per-element values (torch's `reduction`).
public enum Reduction: String, Sendable {
    case mean, sum, none
}

/// Loss functions with torch.nn.functional's semantics, built from differentiable ops so that `backward()` works
/// through them.
public enum Loss {
    static func reduce(_ l: Tensor, _ r: Reduction, count: Tensor? = nil) throws -> Tensor {
        switch r {
        case .none: return l
        case .sum: return try sum(l)
        case .mean: return try count.map { try div(try sum(l), $0) } ?? mean(l)
        }
    }

    static func scalar(_ v: Double) throws -> Tensor { try Tensor.full([], value: v) }

    /// Regression losses refuse differently shaped targets: PyTorch broadcasts them with a warning that the
    /// result is "likely incorrect".
    static func sameShape(_ a: Tensor, _ b: Tensor, _ name: String) throws {
        guard a.shape == b.shape else {
            throw VisionError.shapeMismatch("\(name): target \(b.shape) must have the input's shape \(a.shape)")
        }
    }

    /// Cross-entropy of logits [N, C, ...] against class indices [N, ...] (int64 or int32). Targets equal to
    /// `ignoreIndex` contribute nothing (and are not counted by the mean). With label smoothing ε the target
    /// distribution is (1 - ε) one-hot + ε / C, as torch.nn.functional.cross_entropy.
    public static func crossEntropy(_ logits: Tensor, target: Tensor, labelSmoothing: Double = 0,
                                    ignoreIndex: Int = -100, reduction: Reduction = .mean) throws -> Tensor {
        guard logits.rank >= 2 else { throw VisionError.shapeMismatch("cross_entropy: logits must be [N, C, ...], got \(logits.shape)") }
        guard target.dtype == .int64 || target.dtype == .int32 else {
            throw VisionError.dtypeMismatch("cross_entropy: class-index targets must be int64 or int32, got \(target.dtype); use crossEntropy(_:softTarget:) for probabilities")
        }
        guard labelSmoothing >= 0, labelSmoothing <= 1 else {
            throw VisionError.invalidArgument("cross_entropy: label_smoothing must be in [0, 1], got \(labelSmoothing)")
        }
        let c = logits.shape[1]
        var expected = logits.shape; expected.remove(at: 1)
        guard target.shape == expected else {
            throw VisionError.shapeMismatch("cross_entropy: target \(target.shape) does not match logits \(logits.shape) without the class dimension")
        }
        let labels = try target.to(.int64)
        for v in try labels.toArray(Int64.self) where v != Int64(ignoreIndex) && (v < 0 || v >= Int64(c)) {
            throw VisionError.invalidArgument("cross_entropy: target \(v) is out of range for \(c) classes")
        }
        let classAxis = [1, c] + [Int](repeating: 1, count: logits.rank - 2)
        let classes = try Tensor.arange(end: Double(c), dtype: .int64).reshape(classAxis)
        let onehot = try compare(.eq, try labels.unsqueeze(axis: 1), classes).to(.float32)
        let valid = try compare(.ne, labels, try Tensor.full([], value: Double(ignoreIndex), dtype: .int64)).to(.float32)
        let logp = try logSoftmax(logits, axis: 1)
        var perItem = try unary(.neg, try sum(try mul(logp, onehot), axes: [1]))
        if labelSmoothing > 0 {
            let uniform = try unary(.neg, try mean(logp, axes: [1]))
            perItem = try add(try mul(perItem, try scalar(1 - labelSmoothing)), try mul(uniform, try scalar(labelSmoothing)))
        }
        perItem = try mul(perItem, valid)
        return try reduce(perItem, reduction, count: try sum(valid))
    }

    /// Cross-entropy against a target distribution (same shape as the logits, classes in dimension 1), as
    /// torch's cross_entropy with probability targets (used by CutMix/Mixup soft labels).
    public static func crossEntropy(_ logits: Tensor, softTarget: Tensor, labelSmoothing: Double = 0,
                                    reduction: Reduction = .mean) throws -> Tensor {
        guard logits.rank >= 2, softTarget.shape == logits.shape else {
            throw VisionError.shapeMismatch("cross_entropy: soft target \(softTarget.shape) must match logits \(logits.shape)")
        }
        var t = softTarget.detach()
        if labelSmoothing > 0 {
            t = try add(try mul(t, try scalar(1 - labelSmoothing)), try scalar(labelSmoothing / Double(logits.shape[1])))
        }
        let perItem = try unary(.neg, try sum(try mul(try logSoftmax(logits, axis: 1), t), axes: [1]))
        return try reduce(perItem, reduction)
    }

    /// Binary cross-entropy on logits, in the stable form max(x, 0) - x t + log(1 + exp(-|x|)); `posWeight`
    /// multiplies the positive term as torch's pos_weight.
    public static func bceWithLogits(_ logits: Tensor, target: Tensor, posWeight: Tensor? = nil,
                                     reduction: Reduction = .mean) throws -> Tensor {
        guard logits.shape == target.shape else {
            throw VisionError.shapeMismatch("binary_cross_entropy_with_logits: target \(target.shape) must match logits \(logits.shape)")
        }
        // softplus(-x) = log(1 + exp(-x)) = max(-x, 0) + log(1 + exp(-|x|))
        let softplusNeg = try add(try relu(try unary(.neg, logits)),
                                  try unary(.log, try add(try scalar(1), try unary(.exp, try unary(.neg, try unary(.abs, logits))))))
        let loss: Tensor
        if let posWeight {
            // (1 - t) x + (1 + (w - 1) t) softplus(-x)
            let factor = try add(try scalar(1), try mul(try sub(posWeight, try scalar(1)), target))
            loss = try add(try mul(try sub(try scalar(1), target), logits), try mul(factor, softplusNeg))
        } else {
            loss = try add(try mul(try sub(try scalar(1), target), logits), softplusNeg)
        }
        return try reduce(loss, reduction)
    }

    /// torchvision.ops.sigmoid_focal_loss: BCE scaled by (1 - p_t)^gamma and, when alpha >= 0, by
    /// alpha t + (1 - alpha)(1 - t).
    public static func sigmoidFocal(_ logits: Tensor, target: Tensor, alpha: Double = 0.25, gamma: Double = 2,
                                    reduction: Reduction = .none) throws -> Tensor {
        let p = try sigmoid(logits)
        let ce = try bceWithLogits(logits, target: target, reduction: .none)
        let one = try scalar(1)
        let pt = try add(try mul(p, target), try mul(try sub(one, p), try sub(one, target)))
        var loss = try mul(ce, try binary(.pow, try sub(one, pt), try scalar(gamma)))
        if alpha >= 0 {
            let at = try add(try mul(try scalar(alpha), target), try mul(try scalar(1 - alpha), try sub(one, target)))
            loss = try mul(at, loss)
        }
        return try reduce(loss, reduction)
    }

    /// Mean absolute error (torch's l1_loss).
    public static func l1(_ input: Tensor, target: Tensor, reduction: Reduction = .mean) throws -> Tensor {
        try sameShape(input, target, "l1_loss")
        return try reduce(try unary(.abs, try sub(input, target)), reduction)
    }

    /// Mean squared error (torch's mse_loss).
    public static func mse(_ input: Tensor, target: Tensor, reduction: Reduction = .mean) throws -> Tensor {
        try sameShape(input, target, "mse_loss")
        let d = try sub(input, target)
        return try reduce(try mul(d, d), reduction)
    }

    /// Smooth L1 (torch's smooth_l1_loss): 0.5 d² / beta where |d| < beta, |d| - 0.5 beta elsewhere; beta = 0 is L1.
    public static func smoothL1(_ input: Tensor, target: Tensor, beta: Double = 1, reduction: Reduction = .mean) throws -> Tensor {
        try sameShape(input, target, "smooth_l1_loss")
        guard beta >= 0 else { throw VisionError.invalidArgument("smooth_l1_loss: beta must be >= 0, got \(beta)") }
        let d = try unary(.abs, try sub(input, target))
        if beta == 0 { return try reduce(d, reduction) }
        let quadratic = try div(try mul(try mul(d, d), try scalar(0.5)), try scalar(beta))
        let linearPart = try sub(d, try scalar(0.5 * beta))
        return try reduce(try whereSelect(try compare(.lt, d, try scalar(beta)), quadratic, linearPart), reduction)
    }

    /// torchvision.ops.generalized_box_iou_loss for matching rows of boxes [N, 4] (x1, y1, x2, y2): 1 - GIoU.
    public static func generalizedBoxIoU(_ boxes1: Tensor, _ boxes2: Tensor, reduction: Reduction = .none,
                                         eps: Double = 1e-7) throws -> Tensor {
        guard boxes1.rank == 2, boxes1.shape.last == 4, boxes1.shape == boxes2.shape else {
            throw VisionError.shapeMismatch("generalized_box_iou_loss: boxes must both be [N, 4], got \(boxes1.shape) and \(boxes2.shape)")
        }
        func col(_ b: Tensor, _ i: Int) throws -> Tensor { try b.select(axis: 1, index: i) }
        let (x1, y1, x2, y2) = (try col(boxes1, 0), try col(boxes1, 1), try col(boxes1, 2), try col(boxes1, 3))
        let (u1, v1, u2, v2) = (try col(boxes2, 0), try col(boxes2, 1), try col(boxes2, 2), try col(boxes2, 3))
        let iw = try relu(try sub(try minimum(x2, u2), try maximum(x1, u1)))
        let ih = try relu(try sub(try minimum(y2, v2), try maximum(y1, v1)))
        let inter = try mul(iw, ih)
        let area1 = try mul(try sub(x2, x1), try sub(y2, y1)), area2 = try mul(try sub(u2, u1), try sub(v2, v1))
        let union = try sub(try add(area1, area2), inter)
        let e = try scalar(eps)
        let iou = try div(inter, try add(union, e))
        let cw = try sub(try maximum(x2, u2), try minimum(x1, u1)), ch = try sub(try maximum(y2, v2), try minimum(y1, v1))
        let hull = try mul(cw, ch)
        let giou = try sub(iou, try div(try sub(hull, union), try add(hull, e)))
        return try reduce(try sub(try scalar(1), giou), reduction)
    }
}
