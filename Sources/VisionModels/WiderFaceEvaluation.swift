import VisionCore

/// The WIDER FACE validation protocol of EXTD's `eval_tools/evaluation.py` (a port of the official MATLAB code):
/// per setting (easy, medium, hard), a precision-recall curve over 1000 score thresholds and its VOC average
/// precision. Reproduced step for step, quirks included:
/// - scores are min-max normalized over the whole prediction set, with the running minimum starting at 1 and the
///   maximum at 0 (so scores all above 1 normalize from 1, not from their minimum);
/// - a prediction whose best-overlapping face (IoU >= threshold, "+1" pixel areas) does not count in the setting
///   is dropped from the proposals, and that face's recall flag becomes -1 even if an earlier prediction found it;
/// - per threshold t the curve reads the LAST prediction (in the given order) whose score >= t, so predictions
///   must be sorted by descending score, as the detector writes them (`evaluate` sorts them, stably);
/// - precision is NaN where no proposal reaches a threshold, and NaN propagates through the AP as in NumPy.
public enum WiderFaceEvaluation {
    /// The evaluation's settings, in the order of `Result.averagePrecision`.
    public static let settings = ["easy", "medium", "hard"]

    /// One image's ground truth.
    public struct GroundTruth: Sendable {
        /// Face boxes [x, y, w, h] in pixels.
        public var boxes: [[Double]]
        /// Per setting (easy, medium, hard): the 0-based indices of the faces that count in it.
        public var keep: [[Int]]
        public init(boxes: [[Double]], keep: [[Int]]) { (self.boxes, self.keep) = (boxes, keep) }
    }

    public struct Result: Sendable {
        /// Average precision per setting (easy, medium, hard).
        public var averagePrecision: [Double]
        /// Per setting, the curve as (precision, recall) for thresholds 1 - (t + 1) / thresholdCount.
        public var curves: [[(precision: Double, recall: Double)]]
    }

    /// Evaluates `predictions` (per image, rows [x, y, w, h, score]) against `groundTruth` (same image order).
    public static func evaluate(predictions: [[[Double]]], groundTruth: [GroundTruth], iouThreshold: Double = 0.5,
                                thresholdCount: Int = 1000) throws -> Result {
        guard predictions.count == groundTruth.count else {
            throw VisionError.shapeMismatch("WIDER FACE evaluation: \(predictions.count) prediction lists for \(groundTruth.count) images")
        }
        guard thresholdCount >= 1, iouThreshold > 0, iouThreshold <= 1 else {
            throw VisionError.invalidArgument("WIDER FACE evaluation: threshold count \(thresholdCount) must be positive and IoU \(iouThreshold) in (0, 1]")
        }
        for (i, p) in predictions.enumerated() where p.contains(where: { $0.count != 5 || $0.contains { !$0.isFinite } }) {
            throw VisionError.invalidArgument("WIDER FACE evaluation: image \(i) has a prediction that is not 5 finite numbers [x, y, w, h, score]")
        }
        for (i, g) in groundTruth.enumerated() {
            guard g.boxes.allSatisfy({ $0.count == 4 }), g.keep.count == settings.count,
                  g.keep.allSatisfy({ $0.allSatisfy { $0 >= 0 && $0 < g.boxes.count } }) else {
                throw VisionError.invalidArgument("WIDER FACE evaluation: image \(i) needs boxes [x, y, w, h] and three keep lists of valid face indices")
            }
        }
        let normalized = normalizeScores(predictions.map { rows in
            // Descending score, ties in the given order.
            rows.enumerated().sorted { $0.element[4] != $1.element[4] ? $0.element[4] > $1.element[4] : $0.offset < $1.offset }.map(\.element)
        })
        var aps: [Double] = [], curves: [[(Double, Double)]] = []
        for s in 0..<settings.count {
            var proposals = [Double](repeating: 0, count: thresholdCount), hits = proposals
            var faces = 0
            for (pred, gt) in zip(normalized, groundTruth) {
                faces += gt.keep[s].count
                if gt.boxes.isEmpty || pred.isEmpty { continue }
                var counts = [Bool](repeating: false, count: gt.boxes.count)
                for k in gt.keep[s] { counts[k] = true }
                let (recall, proposal) = imageEval(pred, gt.boxes, counts, iouThreshold)
                for t in 0..<thresholdCount {
                    let threshold = 1 - Double(t + 1) / Double(thresholdCount)
                    guard let r = pred.lastIndex(where: { $0[4] >= threshold }) else { continue }
                    proposals[t] += Double(proposal[...r].filter { $0 }.count)
                    hits[t] += Double(recall[r])
                }
            }
            let curve = (0..<thresholdCount).map { (hits[$0] / proposals[$0], hits[$0] / Double(faces)) }
            curves.append(curve)
            aps.append(vocAP(recall: curve.map(\.1), precision: curve.map(\.0)))
        }
        return Result(averagePrecision: aps, curves: curves.map { $0.map { (precision: $0.0, recall: $0.1) } })
    }

    /// Min-max normalization of every score over the whole set (official `norm_score`, including its initial
    /// minimum of 1 and maximum of 0).
    static func normalizeScores(_ predictions: [[[Double]]]) -> [[[Double]]] {
        var lo = 1.0, hi = 0.0
        for rows in predictions where !rows.isEmpty {
            lo = Swift.min(rows.map { $0[4] }.min()!, lo)
            hi = Swift.max(rows.map { $0[4] }.max()!, hi)
        }
        let diff = hi - lo
        return predictions.map { $0.map { r in [r[0], r[1], r[2], r[3], (r[4] - lo) / diff] } }
    }

    /// Official `image_eval`: per prediction in order, the number of counting faces found so far, and whether the
    /// prediction stays a proposal (false when it matches a face that does not count in the setting).
    static func imageEval(_ pred: [[Double]], _ gt: [[Double]], _ counts: [Bool], _ iouThreshold: Double) -> ([Int], [Bool]) {
        var recall = [Int](repeating: 0, count: gt.count)   // 0 not found, 1 found, -1 matched but not counting
        var proposal = [Bool](repeating: true, count: pred.count)
        var predRecall = [Int](repeating: 0, count: pred.count)
        for (h, p) in pred.enumerated() {
            var best = -1.0, bestIndex = 0
            for (k, g) in gt.enumerated() {
                let o = overlap(p[0], p[1], p[0] + p[2], p[1] + p[3], g[0], g[1], g[0] + g[2], g[1] + g[3])
                if o > best { (best, bestIndex) = (o, k) }   // first maximum, as argmax
            }
            if best >= iouThreshold {
                if !counts[bestIndex] {
                    recall[bestIndex] = -1
                    proposal[h] = false
                } else if recall[bestIndex] == 0 {
                    recall[bestIndex] = 1
                }
            }
            predRecall[h] = recall.filter { $0 == 1 }.count
        }
        return (predRecall, proposal)
    }

    /// IoU with "+1" pixel extents (Fast R-CNN's bbox_overlaps, the arithmetic in its order).
    static func overlap(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double,
                        _ qx1: Double, _ qy1: Double, _ qx2: Double, _ qy2: Double) -> Double {
        let queryArea = (qx2 - qx1 + 1) * (qy2 - qy1 + 1)
        let iw = Swift.min(x2, qx2) - Swift.max(x1, qx1) + 1
        guard iw > 0 else { return 0 }
        let ih = Swift.min(y2, qy2) - Swift.max(y1, qy1) + 1
        guard ih > 0 else { return 0 }
        let union = (x2 - x1 + 1) * (y2 - y1 + 1) + queryArea - iw * ih
        return iw * ih / union
    }

    /// VOC AP with the precision envelope (official `voc_ap`); NaN propagates as with np.maximum.
    static func vocAP(recall: [Double], precision: [Double]) -> Double {
        let mrec = [0] + recall + [1]
        var mpre = [0] + precision + [0]
        for i in stride(from: mpre.count - 1, to: 0, by: -1) {
            let a = mpre[i - 1], b = mpre[i]
            mpre[i - 1] = a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
        }
        var ap = 0.0
        for i in 0..<(mrec.count - 1) where mrec[i + 1] != mrec[i] {
            ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1]
        }
        return ap
    }
}
