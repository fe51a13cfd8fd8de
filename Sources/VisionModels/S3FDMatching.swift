#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// S3FD's anchor matching with scale compensation (EXTD's `layers/bbox_utils.match`), the training targets of
/// the multibox loss. Float32 arithmetic in the reference's order, so that threshold decisions agree.
///
/// 1. Each prior takes its best-overlapping face; each face claims its best prior (overlap set to 2; when two
///    faces claim the same prior the later one wins).
/// 2. Priors whose best overlap is below `thresholds.1` (0.35) are background.
/// 3. Scale compensation: N = (#faces whose best prior reaches 0.35 + #faces whose best prior reaches 0.5) / 2
///    (floor); the priors with overlap in (0.1, 0.35), by descending overlap, give their first N (those above
///    0.1) the face label. The reference sorts with an unstable sort; here ties keep prior order.
public struct S3FDMatcher: Sendable {
    /// (low, background, high) overlap thresholds: 0.1, 0.35, 0.5 for faces.
    public var thresholds: (Float, Float, Float)
    /// Center and size variances of the box encoding.
    public var variances: (Float, Float)

    public init(thresholds: (Float, Float, Float) = (0.1, 0.35, 0.5), variances: (Float, Float) = (0.1, 0.2)) {
        (self.thresholds, self.variances) = (thresholds, variances)
    }

    /// Targets for one image. `truths`: [G, 4] face boxes (x1, y1, x2, y2, normalized to the input), `labels`:
    /// G class indices (1 = face), `priors`: [P, 4] (cx, cy, w, h). Returns loc targets [P, 4] (encoded offsets
    /// of each prior's matched face) and conf targets [P] (int64, 0 = background).
    public func match(truths: Tensor, labels: [Int], priors: Tensor) throws -> (loc: Tensor, conf: Tensor) {
        guard truths.rank == 2, truths.shape[1] == 4, truths.shape[0] >= 1, labels.count == truths.shape[0] else {
            throw VisionError.shapeMismatch("S3FD match: truths must be [G >= 1, 4] with G labels, got \(truths.shape) and \(labels.count) labels")
        }
        guard priors.rank == 2, priors.shape[1] == 4, priors.shape[0] >= 1 else {
            throw VisionError.shapeMismatch("S3FD match: priors must be [P, 4], got \(priors.shape)")
        }
        let t = try truths.to(.float32).toArray(Float.self), p = try priors.to(.float32).toArray(Float.self)
        let validBoxes = stride(from: 0, to: t.count, by: 4).allSatisfy { (i: Int) -> Bool in
            t[i + 2] > t[i] && t[i + 3] > t[i + 1]
        }
        guard t.allSatisfy({ $0.isFinite }), validBoxes else {
            throw VisionError.invalidArgument("S3FD match: every face box needs finite x1 < x2 and y1 < y2")
        }
        let g = labels.count, np = priors.shape[0]
        // Priors in point form, as point_form().
        var pf = [Float](repeating: 0, count: np * 4)
        for i in 0..<np {
            let cx = p[4 * i], cy = p[4 * i + 1], w = p[4 * i + 2], h = p[4 * i + 3]
            pf[4 * i] = cx - w / 2; pf[4 * i + 1] = cy - h / 2; pf[4 * i + 2] = cx + w / 2; pf[4 * i + 3] = cy + h / 2
        }
        @inline(__always) func jaccard(_ a: Int, _ b: Int) -> Float {
            let ax1: Float = t[4 * a], ay1: Float = t[4 * a + 1], ax2: Float = t[4 * a + 2], ay2: Float = t[4 * a + 3]
            let bx1: Float = pf[4 * b], by1: Float = pf[4 * b + 1], bx2: Float = pf[4 * b + 2], by2: Float = pf[4 * b + 3]
            let iw: Float = max(min(ax2, bx2) - max(ax1, bx1), 0)
            let ih: Float = max(min(ay2, by2) - max(ay1, by1), 0)
            let inter = iw * ih
            let areaA = (ax2 - ax1) * (ay2 - ay1), areaB = (bx2 - bx1) * (by2 - by1)
            return inter / (areaA + areaB - inter)
        }
        var bestTruthOverlap = [Float](repeating: -.infinity, count: np), bestTruth = [Int](repeating: 0, count: np)
        var bestPriorOverlap = [Float](repeating: -.infinity, count: g), bestPrior = [Int](repeating: 0, count: g)
        for a in 0..<g {
            for b in 0..<np {
                let o = jaccard(a, b)
                if o > bestPriorOverlap[a] { (bestPriorOverlap[a], bestPrior[a]) = (o, b) }
                if o > bestTruthOverlap[b] { (bestTruthOverlap[b], bestTruth[b]) = (o, a) }
            }
        }
        for a in 0..<g { bestTruthOverlap[bestPrior[a]] = 2 }
        for a in 0..<g { bestTruth[bestPrior[a]] = a }
        let (th1, th2, th3) = thresholds
        var n = (bestPriorOverlap.filter { $0 >= th2 }.count + bestPriorOverlap.filter { $0 >= th3 }.count) / 2
        var conf = (0..<np).map { Int64(bestTruthOverlap[$0] < th2 ? 0 : labels[bestTruth[$0]]) }
        if n > 0 {
            let stage2 = (0..<np).filter { bestTruthOverlap[$0] > th1 && bestTruthOverlap[$0] < th2 }
                .sorted { bestTruthOverlap[$0] != bestTruthOverlap[$1] ? bestTruthOverlap[$0] > bestTruthOverlap[$1] : $0 < $1 }
            n = min(n, stage2.count)
            for i in stage2.prefix(n) { conf[i] += 1 }
        }
        var loc = [Float](repeating: 0, count: np * 4)
        let (v0, v1) = variances
        for i in 0..<np {
            let a = 4 * bestTruth[i]
            let x1: Float = t[a], y1: Float = t[a + 1], x2: Float = t[a + 2], y2: Float = t[a + 3]
            let cx: Float = p[4 * i], cy: Float = p[4 * i + 1], pw: Float = p[4 * i + 2], ph: Float = p[4 * i + 3]
            loc[4 * i] = ((x1 + x2) / 2 - cx) / (v0 * pw)
            loc[4 * i + 1] = ((y1 + y2) / 2 - cy) / (v0 * ph)
            loc[4 * i + 2] = logf((x2 - x1) / pw) / v1
            loc[4 * i + 3] = logf((y2 - y1) / ph) / v1
        }
        return (try Tensor(loc, shape: [np, 4]), try Tensor(conf, shape: [np]))
    }
}
