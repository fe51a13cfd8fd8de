import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// softmax(x)_i = exp(x_i - m) / Σ_j exp(x_j - m) along `axis`, with m the maximum along the axis so that exp never
/// overflows (the result is the same for any m). float32, any axis; the input is viewed as [outer, n, inner]
/// without a copy when contiguous. A row containing NaN gives NaN; a row of all -inf gives NaN (0/0, as torch);
/// +inf gives NaN for that row too (inf - inf). An empty axis gives an empty result.
public func softmax(_ x: Tensor, axis: Int) throws -> Tensor {
    let y = try softmaxCommon(x, axis: axis, log: false)
    let yd = y.detach()
    return recordGrad("softmax", y, inputs: [x]) { g in
        // dx = y * (g - Σ g y) along the axis
        [try mul(yd, try sub(g, try sum(try mul(g, yd), axes: [axis], keepDim: true)))]
    }
}

/// log(softmax(x)) computed as x - m - log Σ exp(x - m), which stays finite where softmax underflows to 0.
public func logSoftmax(_ x: Tensor, axis: Int) throws -> Tensor {
    let y = try softmaxCommon(x, axis: axis, log: true)
    let yd = y.detach()
    return recordGrad("logSoftmax", y, inputs: [x]) { g in
        // dx = g - softmax(x) * Σ g along the axis
        [try sub(g, try mul(try unary(.exp, yd), try sum(g, axes: [axis], keepDim: true)))]
    }
}

private func softmaxCommon(_ x: Tensor, axis: Int, log: Bool) throws -> Tensor {
    let name = log ? "logSoftmax" : "softmax"
    try x.requireDType(.float32, name)
    let a = try Tensor.normalizeAxis(axis, rank: x.rank, name)
    let src = try x.contiguous()
    let out = try Tensor.uninitialized(x.shape, dtype: .float32)
    if x.count == 0 { return out }
    let n = x.rank == 0 ? 1 : x.shape[a]
    let inner = x.rank == 0 ? 1 : x.shape[(a + 1)...].reduce(1, *)
    let outer = x.count / (n * inner)
    let s = SendablePointer(src.pointer(Float.self)), d = SendablePointer(out.pointer(Float.self))
    withExtendedLifetime(src) {
        parallelFor(outer, minChunk: max(1, (1 << 14) / max(n * inner, 1))) { range in
            if inner == 1 {
                for o in range { softmaxRow(s.p + o * n, d.p + o * n, n, log: log) }
            } else {
                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: 2 * inner)
                defer { tmp.deallocate() }
                for o in range { softmaxColumns(s.p + o * n * inner, d.p + o * n * inner, n, inner, tmp, log: log) }
            }
        }
    }
    return out
}

/// dst = exp(src - shift) over n floats with a per-element shift: the subtraction in Swift SIMD, then CKernels'
/// vectorized exp in place.
@inline(__always) private func expShifted(_ src: UnsafePointer<Float>, _ shift: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n { storeF16(loadF16(src + i) - loadF16(shift + i), dst + i); i += 16 }
    while i < n { dst[i] = src[i] - shift[i]; i += 1 }
    _ = vck_activation(UnaryOp.exp.rawValue, dst, dst, n)
}

/// One contiguous row: max m, then e = exp(x - m) into `dst` with its sum (one C pass per L1-sized span, the
/// spans' sums added in Double), then a scale; for log-softmax the exponentials only feed the sum and the output
/// is x - (m + log Σ).
@inline(__always) private func softmaxRow(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
                                          log: Bool) {
    let m = rowExtreme(src, n, max: true)
    var total = 0.0, i = 0
    while i < n {
        let len = min(sumBlock, n - i)
        total += Double(vck_exp_shift_sum(src + i, dst + i, len, m))
        i += len
    }
    let v = F16(repeating: log ? m + Float(Glibc.log(total)) : Float(1 / total))
    i = 0
    if log {
        while i + 16 <= n { storeF16(loadF16(src + i) - v, dst + i); i += 16 }
        while i < n { dst[i] = src[i] - v[0]; i += 1 }
    } else {
        while i + 16 <= n { storeF16(loadF16(dst + i) * v, dst + i); i += 16 }
        while i < n { dst[i] *= v[0]; i += 1 }
    }
}

/// Softmax down the columns of an [n, inner] matrix, SIMD over `inner`. `tmp` holds 2 * inner floats (max, sum).
@inline(__always) private func softmaxColumns(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
                                              _ inner: Int, _ tmp: UnsafeMutablePointer<Float>, log: Bool) {
    let mx = tmp, sm = tmp + inner
    mx.update(from: src, count: inner)
    for r in 1..<max(n, 1) {
        let row = src + r * inner
        var j = 0
        while j + 16 <= inner { storeF16(nanMax(loadF16(mx + j), loadF16(row + j)), mx + j); j += 16 }
        while j < inner { mx[j] = nanMaxScalar(mx[j], row[j]); j += 1 }
    }
    sm.update(repeating: 0, count: inner)
    for r in 0..<n {
        let o = dst + r * inner
        expShifted(src + r * inner, mx, o, inner)
        var j = 0
        while j + 16 <= inner { storeF16(loadF16(sm + j) + loadF16(o + j), sm + j); j += 16 }
        while j < inner { sm[j] += o[j]; j += 1 }
    }
    // Reuse sm as the per-column factor: 1/sum for softmax, max + log(sum) for log-softmax.
    for j in 0..<inner { sm[j] = log ? mx[j] + Glibc.logf(sm[j]) : 1 / sm[j] }
    for r in 0..<n {
        let row = src + r * inner, o = dst + r * inner
        var j = 0
        if log {
            while j + 16 <= inner { storeF16(loadF16(row + j) - loadF16(sm + j), o + j); j += 16 }
            while j < inner { o[j] = row[j] - sm[j]; j += 1 }
        } else {
            while j + 16 <= inner { storeF16(loadF16(o + j) * loadF16(sm + j), o + j); j += 16 }
            while j < inner { o[j] *= sm[j]; j += 1 }
        }
    }
}

/// softmax / log-softmax by definition in Double through element offsets (for tests).
public func softmaxReference(_ x: Tensor, axis: Int, log: Bool = false) throws -> Tensor {
    try x.requireDType(.float32, "softmax")
    let a = try Tensor.normalizeAxis(axis, rank: x.rank, "softmax")
    if x.rank == 0 { return log ? try Tensor.zeros([]) : try Tensor.ones([]) }
    let order = (0..<x.rank).filter { $0 != a } + [a]
    let p = try x.permute(order)
    let offsets = p.elementOffsets()
    let n = x.shape[a]
    var values = [Float](repeating: 0, count: offsets.count)
    let base = x.pointer(Float.self)
    var start = 0
    while start < offsets.count {
        let row = (0..<n).map { Double(base[offsets[start + $0]]) }
        let m = row.max() ?? 0
        let total = row.reduce(0) { $0 + Glibc.exp($1 - m) }
        for k in 0..<n {
            values[start + k] = Float(log ? row[k] - m - Glibc.log(total) : Glibc.exp(row[k] - m) / total)
        }
        start += n
    }
    // values are in the permuted order: write them back into x's layout.
    let permuted = try Tensor(values, shape: p.shape)
    var inverse = [Int](repeating: 0, count: x.rank)
    for (i, d) in order.enumerated() { inverse[d] = i }
    return try permuted.permute(inverse).contiguous()
}
