#if canImport(Glibc)
import Glibc
#endif

/// softmax(x)_i = exp(x_i - m) / Σ_j exp(x_j - m) along `axis`, with m the maximum along the axis so that exp never
/// overflows (the result is the same for any m). float32, any axis; the input is viewed as [outer, n, inner]
/// without a copy when contiguous. A row containing NaN gives NaN; a row of all -inf gives NaN (0/0, as torch);
/// +inf gives NaN for that row too (inf - inf). An empty axis gives an empty result.
public func softmax(_ x: Tensor, axis: Int) throws -> Tensor {
    try softmaxCommon(x, axis: axis, log: false)
}

/// log(softmax(x)) computed as x - m - log Σ exp(x - m), which stays finite where softmax underflows to 0.
public func logSoftmax(_ x: Tensor, axis: Int) throws -> Tensor {
    try softmaxCommon(x, axis: axis, log: true)
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

/// One contiguous row: max, then exp(x - max) written to `dst` while summing, then a scale (or log shift).
@inline(__always) private func softmaxRow(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) {
    let m = rowExtreme(src, n, max: true)
    let vm = F16(repeating: m)
    var acc = F16(), i = 0
    var total = 0.0
    while i + 16 <= n {
        let e = vexp(loadF16(src + i) - vm)
        if !log { storeF16(e, dst + i) }
        acc += e; i += 16
        if i % sumBlock == 0 { total += Double(acc.sum()); acc = F16() }
    }
    if i < n {
        let e = vexp(loadPartial(src + i, n - i, fill: -.infinity) - vm)  // padded lanes: exp(-inf) = 0
        if !log { storePartial(e, dst + i, n - i) }
        acc += e
    }
    total += Double(acc.sum())
    if log {
        let shift = F16(repeating: m + Float(Glibc.log(total)))
        i = 0
        while i + 16 <= n { storeF16(loadF16(src + i) - shift, dst + i); i += 16 }
        if i < n { storePartial(loadPartial(src + i, n - i, fill: 0) - shift, dst + i, n - i) }
    } else {
        let scale = F16(repeating: Float(1 / total))
        i = 0
        while i + 16 <= n { storeF16(loadF16(dst + i) * scale, dst + i); i += 16 }
        while i < n { dst[i] *= scale[0]; i += 1 }
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
        let row = src + r * inner, o = dst + r * inner
        var j = 0
        while j + 16 <= inner {
            let e = vexp(loadF16(row + j) - loadF16(mx + j))
            if !log { storeF16(e, o + j) }
            storeF16(loadF16(sm + j) + e, sm + j); j += 16
        }
        if j < inner {
            let k = inner - j
            let e = vexp(loadPartial(row + j, k, fill: 0) - loadPartial(mx + j, k, fill: 0))
            if !log { storePartial(e, o + j, k) }
            storePartial(loadPartial(sm + j, k, fill: 0) + e, sm + j, k)
        }
    }
    // Reuse sm as the per-column factor: 1/sum for softmax, max + log(sum) for log-softmax.
    for j in 0..<inner { sm[j] = log ? mx[j] + Glibc.logf(sm[j]) : 1 / sm[j] }
    for r in 0..<n {
        let row = src + r * inner, o = dst + r * inner
        var j = 0
        while j + 16 <= inner {
            storeF16(log ? loadF16(row + j) - loadF16(sm + j) : loadF16(o + j) * loadF16(sm + j), o + j); j += 16
        }
        while j < inner { o[j] = log ? row[j] - sm[j] : o[j] * sm[j]; j += 1 }
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
