#if canImport(Glibc)
import Glibc
#endif
import VisionCore
import VisionNN

/// SSD's multibox loss as EXTD trains with it (`layers/modules/multibox_loss.py`): smooth-L1 (sum) on the
/// positives' encoded offsets, and softmax cross-entropy (sum) on the positives plus the hardest negatives,
/// 3 per positive per image (at most P - 1), ranked by log-sum-exp(conf) - conf[target] with positives zeroed.
/// Both sums are divided by the number of positives in the batch (the batch size when there are none).
/// Differentiable in `loc` and `conf`; the mining itself is a selection, made without gradients.
public struct MultiBoxLoss: Sendable {
    public var negativesPerPositive: Int

    public init(negativesPerPositive: Int = 3) { self.negativesPerPositive = negativesPerPositive }

    /// `loc` [N, P, 4] and `conf` [N, P, C] network outputs; `locTargets` [N, P, 4] and `confTargets` [N, P]
    /// (int64) from `S3FDMatcher`. Returns (localization loss, confidence loss), scalars.
    public func callAsFunction(loc: Tensor, conf: Tensor, locTargets: Tensor, confTargets: Tensor) throws -> (loc: Tensor, conf: Tensor) {
        guard loc.rank == 3, loc.shape[2] == 4, conf.rank == 3, conf.shape[2] >= 2,
              Array(conf.shape.prefix(2)) == Array(loc.shape.prefix(2)), locTargets.shape == loc.shape,
              confTargets.shape == Array(loc.shape.prefix(2)) else {
            throw VisionError.shapeMismatch("multibox loss: loc \(loc.shape) [N, P, 4], conf \(conf.shape) [N, P, C], loc targets \(locTargets.shape), conf targets \(confTargets.shape) [N, P] do not fit")
        }
        let (n, p, c) = (loc.shape[0], loc.shape[1], conf.shape[2])
        let labels = try confTargets.to(.int64).toArray(Int64.self)
        guard labels.allSatisfy({ $0 >= 0 && $0 < c }) else {
            throw VisionError.invalidArgument("multibox loss: conf targets must be class indices in [0, \(c))")
        }
        // Mining loss per prior, without gradients: logsumexp over classes minus the target's logit.
        let logits = try conf.detach().to(.float32).toArray(Float.self)
        var selected: [Int64] = [], positives: [Int64] = []
        for b in 0..<n {
            var mining = [Float](repeating: 0, count: p)
            var numPos = 0
            for i in 0..<p {
                let row = (b * p + i) * c
                if labels[b * p + i] > 0 { numPos += 1; positives.append(Int64(b * p + i)); continue }
                var m = -Float.infinity
                for k in 0..<c { m = max(m, logits[row + k]) }
                var s: Float = 0
                for k in 0..<c { s += expf(logits[row + k] - m) }
                mining[i] = logf(s) + m - logits[row + Int(labels[b * p + i])]
            }
            let numNeg = min(negativesPerPositive * numPos, p - 1)
            let ranked = (0..<p).sorted { mining[$0] != mining[$1] ? mining[$0] > mining[$1] : $0 < $1 }
            var isNegative = [Bool](repeating: false, count: p)
            for i in ranked.prefix(numNeg) { isNegative[i] = true }
            for i in 0..<p where labels[b * p + i] > 0 || isNegative[i] { selected.append(Int64(b * p + i)) }
        }
        let normalizer = try Tensor.full([], value: Double(positives.isEmpty ? n : positives.count))
        let locLoss: Tensor
        if positives.isEmpty {
            locLoss = try mul(try sum(loc), try Tensor.zeros([]))   // keeps the graph: zero gradient
        } else {
            let index = try Tensor(positives, shape: [positives.count])
            locLoss = try Loss.smoothL1(try indexSelect(try loc.reshape([n * p, 4]), axis: 0, index: index),
                                        target: try indexSelect(try locTargets.reshape([n * p, 4]), axis: 0, index: index),
                                        reduction: .sum)
        }
        let rows = try Tensor(selected, shape: [selected.count])
        let confLoss = selected.isEmpty ? try mul(try sum(conf), try Tensor.zeros([]))
            : try Loss.crossEntropy(try indexSelect(try conf.reshape([n * p, c]), axis: 0, index: rows),
                                    target: try indexSelect(try confTargets.to(.int64).reshape([n * p]), axis: 0, index: rows),
                                    reduction: .sum)
        return (try div(locLoss, normalizer), try div(confLoss, normalizer))
    }
}
