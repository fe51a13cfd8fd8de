import VisionCore
import VisionNN

/// Loss functions for vc_loss (torch.nn.functional semantics).
/// C constants: VC_
public enum LossKind: Int32 {
    case lossCrossEntropy = 0
    case lossMse = 1
    case lossL1 = 2
    case lossSmoothL1 = 3
    case lossBceWithLogits = 4
}

/// How vc_loss reduces per-element losses (torch's `reduction`).
/// C constants: VC_
public enum LossReductionCode: Int32 {
    case reductionNone = 0
    case reductionMean = 1
    case reductionSum = 2
}

/// A differentiable loss of `input` against `target` (a tensor handle; backward through the result reaches
/// `input`). VC_LOSS_CROSS_ENTROPY takes logits [N, C, ...] and class indices (int64/int32, entries equal to
/// `ignore_index` skipped) or probabilities of the logits' shape; `param` is the label smoothing.
/// VC_LOSS_SMOOTH_L1 takes `param` as beta; the other losses ignore `param` and `ignore_index`.
@c public func vc_loss(_ kind: Int32, _ input: VCTensor?, _ target: VCTensor?, _ param: Double, _ ignore_index: Int64,
                       _ reduction: Int32, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let k = LossKind(rawValue: kind) else { throw VisionError.invalidArgument("unknown loss kind \(kind)") }
        guard let r = LossReductionCode(rawValue: reduction) else { throw VisionError.invalidArgument("unknown reduction \(reduction)") }
        let red: Reduction = r == .reductionNone ? .none : r == .reductionMean ? .mean : .sum
        let x = try tensorArg(input, "input"), t = try tensorArg(target, "target")
        try output(out) {
            switch k {
            case .lossCrossEntropy:
                guard ignore_index >= Int64(Int32.min), ignore_index <= Int64(Int32.max) else {
                    throw VisionError.invalidArgument("ignore_index \(ignore_index) is out of range")
                }
                if t.dtype == .float32 {
                    return try Loss.crossEntropy(x, softTarget: t, labelSmoothing: param, reduction: red)
                }
                return try Loss.crossEntropy(x, target: t, labelSmoothing: param, ignoreIndex: Int(ignore_index), reduction: red)
            case .lossMse: return try Loss.mse(x, target: t, reduction: red)
            case .lossL1: return try Loss.l1(x, target: t, reduction: red)
            case .lossSmoothL1: return try Loss.smoothL1(x, target: t, beta: param, reduction: red)
            case .lossBceWithLogits: return try Loss.bceWithLogits(x, target: t, reduction: red)
            }
        }
    }
}
