import VisionCore

/// Targets of a mixing method: class indices (int32/int64 [N]) turned into (smoothed) one-hot rows, or soft
/// targets (float32 [N, K], e.g. ReLabel's pooled label maps) taken as they are. Rows are stored [N * K].
struct SoftTargets {
    let n: Int
    let k: Int
    var rows: [Float]

    /// - labels: int32/int64 [N] class indices in 0..<numClasses, or float32 [N, numClasses] soft targets.
    /// - smoothing: ε in [0, 1). Indices get timm's `one_hot` values off = ε/K and on = 1 − ε + ε/K (computed in
    ///   double, stored as float); soft targets get ReLabel's `smooth_target`: t·(1 − ε) + ε/K in float.
    init(_ labels: Tensor, batch: Int, numClasses: Int, smoothing: Double, _ op: String) throws {
        guard numClasses >= 1, numClasses <= 1 << 24 else {
            throw VisionError.invalidArgument("\(op): numClasses must be in 1...\(1 << 24), got \(numClasses)")
        }
        guard smoothing.isFinite, smoothing >= 0, smoothing < 1 else {
            throw VisionError.invalidArgument("\(op): label smoothing must be in [0, 1), got \(smoothing)")
        }
        n = batch
        k = numClasses
        switch labels.dtype {
        case .int32, .int64:
            guard labels.shape == [batch] else {
                throw VisionError.shapeMismatch("\(op): class-index labels must have shape [\(batch)], got \(labels.shape)")
            }
            let idx = try labels.to(.int64).toArray(Int64.self)
            let off = smoothing / Double(numClasses), on = 1 - smoothing + off
            rows = [Float](repeating: Float(off), count: batch * numClasses)
            for (i, c) in idx.enumerated() {
                guard c >= 0, c < Int64(numClasses) else {
                    throw VisionError.invalidArgument("\(op): label \(c) of sample \(i) is outside 0..<\(numClasses)")
                }
                rows[i * numClasses + Int(c)] = Float(on)
            }
        case .float32:
            guard labels.shape == [batch, numClasses] else {
                throw VisionError.shapeMismatch("\(op): soft targets must have shape [\(batch), \(numClasses)], got \(labels.shape)")
            }
            rows = try labels.toArray(Float.self)
            if smoothing > 0 {
                let keep = Float(1 - smoothing), add = Float(smoothing / Double(numClasses))
                for i in rows.indices { rows[i] = rows[i] * keep + add }
            }
        default:
            throw VisionError.dtypeMismatch("\(op): labels must be int32/int64 class indices or float32 soft targets, got \(labels.dtype)")
        }
    }

    /// Row i of the result is wa[i]·rows[i] + wb[i]·rows[partner[i]] (as `y1 * lam + y2 * (1 - lam)` in float).
    func mixed(partners: [Int], weightOwn: [Float], weightPartner: [Float]) throws -> Tensor {
        var out = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            let a = weightOwn[i], b = weightPartner[i], j = partners[i]
            for c in 0..<k { out[i * k + c] = rows[i * k + c] * a + rows[j * k + c] * b }
        }
        return try Tensor(out, shape: [n, k])
    }

    /// The (smoothed) targets unmixed.
    func tensor() throws -> Tensor { try Tensor(rows, shape: [n, k]) }
}
