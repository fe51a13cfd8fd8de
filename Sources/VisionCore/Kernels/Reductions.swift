#if canImport(Glibc)
import Glibc
#endif

/// Reductions over any set of axes: sum, mean, amax, amin, variance, argmax/argmin.
///
/// Every reduction views its input as [outer, reduce, inner]: when the reduced axes are adjacent in a contiguous
/// tensor no copy is made; otherwise the kept axes are permuted in front of the reduced ones and the result made
/// contiguous (one copy). `inner == 1` reduces rows (SIMD along the row); `inner > 1` reduces across rows of a
/// matrix with SIMD over the kept inner dimension, so channel-wise reductions of NCHW tensors also stream.
/// Sums accumulate 16 float lanes per block of at most `sumBlock` elements and add the block totals in Double,
/// which keeps the error of a 16M-element sum near float precision of the result instead of growing with n.
/// C constants: VC_
public enum ReduceOp: Int32, Sendable, CaseIterable {
    case reduceSum = 0, reduceMean, reduceMax, reduceMin
}

/// Elements per float block before its partial sum is folded into Double (per lane: 64 additions).
let sumBlock = 1024

/// The [outer, reduce, inner] view of a reduction and the shape of its result.
struct ReductionLayout {
    let source: Tensor
    let outer: Int, reduce: Int, inner: Int
    let outShape: [Int]

    init(_ x: Tensor, axes: [Int], keepDim: Bool, _ op: String) throws {
        let rank = x.rank
        var set = Set<Int>()
        for a in axes {
            let n = try Tensor.normalizeAxis(a, rank: rank, op)
            guard set.insert(n).inserted else {
                throw VisionError.invalidArgument("\(op): axis \(a) appears more than once in \(axes)")
            }
        }
        if axes.isEmpty { set = Set(0..<rank) }
        let reduced = set.filter { $0 < rank }.sorted()
        var out = [Int]()
        for d in 0..<rank {
            if set.contains(d) { if keepDim { out.append(1) } } else { out.append(x.shape[d]) }
        }
        outShape = out
        guard let first = reduced.first, let last = reduced.last else {
            source = try x.contiguous(); outer = x.count; reduce = 1; inner = 1
            return
        }
        var src = x, lo = first, hi = last
        if hi - lo + 1 != reduced.count {
            let kept = (0..<rank).filter { !set.contains($0) }
            src = try x.permute(kept + reduced)
            lo = kept.count; hi = rank - 1
        }
        source = try src.contiguous()
        let s = source.shape
        outer = s[..<lo].reduce(1, *)
        reduce = s[lo...hi].reduce(1, *)
        inner = s[(hi + 1)...].reduce(1, *)
    }
}

// MARK: SIMD helpers shared by the reduction, softmax and normalization kernels

@inline(__always) func loadF16(_ p: UnsafePointer<Float>) -> F16 { UnsafeRawPointer(p).loadUnaligned(as: F16.self) }
@inline(__always) func storeF16(_ v: F16, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self) }

/// The first `n` (< 16) floats at `p`, the other lanes set to `fill`. Through memory rather than lane by lane:
/// dynamic lane insertion compiled to a slow per-lane sequence (measured).
@inline(__always) func loadPartial(_ p: UnsafePointer<Float>, _ n: Int, fill: Float) -> F16 {
    var v = F16(repeating: fill)
    withUnsafeMutableBytes(of: &v) { b in if let d = b.baseAddress { memcpy(d, p, n &* 4) } }
    return v
}

@inline(__always) func storePartial(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    withUnsafeBytes(of: v) { b in if let s = b.baseAddress { memcpy(p, s, n &* 4) } }
}

/// Lanes 0..<k true.
@inline(__always) func lanesBelow(_ k: Int) -> SIMDMask<SIMD16<Int32>> {
    SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< Int32(k)
}

/// `v` with its first 16 - n lanes zeroed, by integer masking: a SIMDMask select compiles to a lane-by-lane
/// loop through the stack on AVX2, and multiplying by 0 would keep NaN.
@inline(__always) func keepingLastLanes(_ v: F16, _ n: Int) -> F16 {
    // (lane - (16 - n)) >> 31 is all ones exactly for the lanes to drop.
    let drop = (SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) &- Int32(16 &- n)) &>> 31
    return unsafeBitCast(unsafeBitCast(v, to: SIMD16<Int32>.self) & ~drop, to: F16.self)
}

/// Lane-wise max/min that let NaN win (and stay), as torch's max/amax do.
@inline(__always) func nanMax(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: (b .> a) .| (b .!= b)) }
@inline(__always) func nanMin(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: (b .< a) .| (b .!= b)) }

@inline(__always) func nanMaxScalar(_ a: Float, _ b: Float) -> Float { (b > a || b.isNaN) && !a.isNaN ? b : a }
@inline(__always) func nanMinScalar(_ a: Float, _ b: Float) -> Float { (b < a || b.isNaN) && !a.isNaN ? b : a }

/// Σ f(x) over a row, f applied lane-wise; blocks of float lanes folded into Double.
@inline(__always) func rowSum(_ p: UnsafePointer<Float>, _ n: Int, _ f: (F16) -> F16) -> Double {
    var total = 0.0, i = 0
    while i < n {
        let end = min(n, i + sumBlock)
        var a0 = F16(), a1 = F16()
        while i + 32 <= end { a0 += f(loadF16(p + i)); a1 += f(loadF16(p + i + 16)); i += 32 }
        while i + 16 <= end { a0 += f(loadF16(p + i)); i += 16 }
        if i < end && end >= 16 {
            // The tail as the last 16 floats of the row, lanes already summed masked off: no partial copy through
            // the stack, whose store-to-load forwarding stalls on every short row (spatial means of 7x7 maps).
            a1 += keepingLastLanes(f(loadF16(p + (end - 16))), end - i)
            i = end
        } else if i < end {
            a1 += f(loadPartial(p + i, end - i, fill: 0)).replacing(with: 0, where: .!lanesBelow(end - i))
            i = end
        }
        total += Double((a0 + a1).sum())
    }
    return total
}

/// (Σ(x - m), Σ(x - m)²) over a row in one pass (the corrected two-pass variance's second pass).
@inline(__always) func rowDeviationSums(_ p: UnsafePointer<Float>, _ n: Int, _ m: Float) -> (Double, Double) {
    let vm = F16(repeating: m)
    var d = 0.0, q = 0.0, i = 0
    while i < n {
        let end = min(n, i + sumBlock)
        var a = F16(), b = F16()
        while i + 16 <= end { let t = loadF16(p + i) - vm; a += t; b = vmadd(t, t, b); i += 16 }
        // Padding lanes hold m, so they contribute exactly 0.
        if i < end { let t = loadPartial(p + i, end - i, fill: m) - vm; a += t; b = vmadd(t, t, b); i = end }
        d += Double(a.sum()); q += Double(b.sum())
    }
    return (d, q)
}

/// Max (or min) of a non-empty row; NaN wins. Two specialised loops rather than a Bool inside one: the
/// optimizer did not unswitch it, and the select per vector cost 4x in throughput (measured).
@inline(__always) func rowExtreme(_ p: UnsafePointer<Float>, _ n: Int, max isMax: Bool) -> Float {
    isMax ? rowFold(p, n, nanMax, nanMaxScalar) : rowFold(p, n, nanMin, nanMinScalar)
}

@inline(__always) private func rowFold(_ p: UnsafePointer<Float>, _ n: Int, _ f: (F16, F16) -> F16,
                                       _ g: (Float, Float) -> Float) -> Float {
    var a0 = F16(repeating: p[0]), a1 = a0
    var i = 0
    while i + 32 <= n { a0 = f(a0, loadF16(p + i)); a1 = f(a1, loadF16(p + i + 16)); i += 32 }
    while i + 16 <= n { a0 = f(a0, loadF16(p + i)); i += 16 }
    if i < n { a1 = f(a1, loadPartial(p + i, n - i, fill: p[0])) }
    let acc = f(a0, a1)
    var r = acc[0]
    for j in 1..<16 { r = g(r, acc[j]) }
    return r
}

/// Column sums of a [rows, n] row-major matrix into `out[0..<n]` (Double), f applied to each element with the
/// column index of the vector's first lane; `scratch` holds n floats.
@inline(__always) func columnSums(_ p: UnsafePointer<Float>, rows: Int, n: Int, scratch: UnsafeMutablePointer<Float>,
                                  out: UnsafeMutablePointer<Double>, _ f: (F16, Int) -> F16) {
    out.update(repeating: 0, count: n)
    let blockRows = max(1, sumBlock / 16)
    var r0 = 0
    while r0 < rows {
        let r1 = min(rows, r0 + blockRows)
        scratch.update(repeating: 0, count: n)
        for r in r0..<r1 {
            let row = p + r * n
            var j = 0
            while j + 16 <= n { storeF16(loadF16(scratch + j) + f(loadF16(row + j), j), scratch + j); j += 16 }
            if j < n { storePartial(loadPartial(scratch + j, n - j, fill: 0) + f(loadPartial(row + j, n - j, fill: 0), j), scratch + j, n - j) }
        }
        for j in 0..<n { out[j] += Double(scratch[j]) }
        r0 = r1
    }
}

// MARK: public reductions

/// Sum over `axes` (empty = all). float32 sums in float32; int32/int64/uint8 sum into an int64 result with
/// wrapping Int64 accumulation (as torch.sum). An empty reduction gives 0. NaN/inf propagate per IEEE.
public func sum(_ x: Tensor, axes: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    try reduce(.reduceSum, x, axes: axes, keepDim: keepDim)
}

/// Mean over `axes` (empty = all), float32 only; the mean of zero elements is NaN (as torch).
public func mean(_ x: Tensor, axes: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    try reduce(.reduceMean, x, axes: axes, keepDim: keepDim)
}

/// Largest value over `axes` (torch.amax; named so to leave Swift's `max` unshadowed). NaN wins. Every dtype;
/// reducing an empty dimension is an error.
public func amax(_ x: Tensor, axes: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    try reduce(.reduceMax, x, axes: axes, keepDim: keepDim)
}

/// Smallest value over `axes` (torch.amin). NaN wins. Every dtype; reducing an empty dimension is an error.
public func amin(_ x: Tensor, axes: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    try reduce(.reduceMin, x, axes: axes, keepDim: keepDim)
}

/// One of the four value reductions over `axes` (empty = all axes). Differentiable: sum and mean spread the
/// gradient evenly; max and min send it to the extreme elements, split evenly between ties (as torch.amax).
public func reduce(_ op: ReduceOp, _ x: Tensor, axes: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    let out = try reduceForward(op, x, axes: axes, keepDim: keepDim)
    guard x.dtype == .float32 else { return out }
    let (xd, od) = (x.detach(), out.detach())
    return recordGrad("\(op)", out, inputs: [x]) { g in
        // The output's gradient with the reduced axes restored as size 1, broadcast back over the input.
        let kept = try g.reshape(reducedShape(x.shape, axes: axes))
        switch op {
        case .reduceSum: return [try kept.expand(x.shape).contiguous()]
        case .reduceMean:
            let n = Double(x.count) / Double(Swift.max(od.count, 1))
            return [try mul(kept, try Tensor.full([], value: 1 / n)).expand(x.shape).contiguous()]
        case .reduceMax, .reduceMin:
            let hit = try compare(.eq, xd, try od.reshape(kept.shape)).to(.float32)
            let ties = try sum(hit, axes: axes, keepDim: true)
            return [try mul(hit, try div(kept, ties))]
        }
    }
}

/// `shape` with the reduced axes (all when `axes` is empty) set to 1.
func reducedShape(_ shape: [Int], axes: [Int]) throws -> [Int] {
    var s = shape
    let all = axes.isEmpty ? Array(0..<shape.count) : try axes.map { try Tensor.normalizeAxis($0, rank: shape.count, "reduce") }
    for a in all where a < s.count { s[a] = 1 }
    return s
}

func reduceForward(_ op: ReduceOp, _ x: Tensor, axes: [Int], keepDim: Bool) throws -> Tensor {
    let name = "\(op)"
    if let staged = try reduceInStages(op, x, axes: axes, keepDim: keepDim) { return staged }
    let layout = try ReductionLayout(x, axes: axes, keepDim: keepDim, name)
    if (op == .reduceMax || op == .reduceMin) && layout.reduce == 0 && layout.outer * layout.inner > 0 {
        throw VisionError.invalidArgument("\(name): cannot reduce an empty dimension of shape \(x.shape) over axes \(axes)")
    }
    if x.dtype != .float32 {
        if op == .reduceMean { throw VisionError.dtypeMismatch("reduceMean: expected a float32 tensor, got \(x.dtype)") }
        return try reduceInteger(op, layout)
    }
    let out = try Tensor.uninitialized(layout.outShape, dtype: .float32)
    let src = SendablePointer(layout.source.pointer(Float.self)), dst = SendablePointer(out.pointer(Float.self))
    let (outer, r, inner) = (layout.outer, layout.reduce, layout.inner)
    withExtendedLifetime(layout.source) {
        if inner == 1 && r >= 1 && r <= 8 {
            // A few values per row (a global pool of 1x1 or 2x2 maps): a plain loop, without rowSum's setup per row.
            parallelFor(outer, minChunk: max(1, (1 << 15) / max(r, 1))) { rows in
                for o in rows {
                    let p = src.p + o &* r
                    var s = 0.0, hi = p[0], lo = p[0]
                    for j in 0..<r {
                        let v = p[j]
                        s += Double(v)
                        if v > hi || v.isNaN { hi = hi.isNaN ? hi : v }
                        if v < lo || v.isNaN { lo = lo.isNaN ? lo : v }
                    }
                    switch op {
                    case .reduceSum: dst.p[o] = Float(s)
                    case .reduceMean: dst.p[o] = Float(s / Double(r))
                    case .reduceMax: dst.p[o] = hi
                    case .reduceMin: dst.p[o] = lo
                    }
                }
            }
        } else if inner == 1 {
            parallelFor(outer, minChunk: max(1, (1 << 15) / max(r, 1))) { rows in
                for o in rows {
                    let p = UnsafePointer(src.p + o * r)
                    switch op {
                    case .reduceSum: dst.p[o] = Float(rowSum(p, r) { $0 })
                    case .reduceMean: dst.p[o] = Float(rowSum(p, r) { $0 } / Double(r))
                    case .reduceMax: dst.p[o] = rowExtreme(p, r, max: true)
                    case .reduceMin: dst.p[o] = rowExtreme(p, r, max: false)
                    }
                }
            }
        } else {
            parallelFor(outer, minChunk: max(1, (1 << 15) / max(r * inner, 1))) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: inner)
                let acc = UnsafeMutablePointer<Double>.allocate(capacity: inner)
                defer { scratch.deallocate(); acc.deallocate() }
                for o in range {
                    let p = UnsafePointer(src.p + o * r * inner), q = dst.p + o * inner
                    switch op {
                    case .reduceSum, .reduceMean:
                        columnSums(p, rows: r, n: inner, scratch: scratch, out: acc) { v, _ in v }
                        let scale = op == .reduceMean ? 1 / Double(r) : 1
                        for j in 0..<inner { q[j] = Float(acc[j] * scale) }
                    case .reduceMax, .reduceMin:
                        columnExtreme(p, rows: r, n: inner, out: q, max: op == .reduceMax)
                    }
                }
            }
        }
    }
    return out
}

/// Reduced axes that are not adjacent (per-channel statistics of NCHW: axes 0, 2, 3) would need a permuted copy;
/// for a contiguous float input, reducing each run of adjacent axes in turn (last run first, keeping dims) reads
/// the input once in place and the later stages touch only the small partial result. nil when not applicable.
private func reduceInStages(_ op: ReduceOp, _ x: Tensor, axes: [Int], keepDim: Bool) throws -> Tensor? {
    guard x.dtype == .float32, x.isContiguous, !axes.isEmpty, x.count > 0 else { return nil }
    let normalized = try axes.map { try Tensor.normalizeAxis($0, rank: x.rank, "\(op)") }
    let sorted = Set(normalized).sorted()
    guard sorted.count == normalized.count else { return nil }  // duplicates: let ReductionLayout report them
    var runs = [[Int]]()
    for a in sorted {
        if let last = runs.last?.last, last == a - 1 { runs[runs.count - 1].append(a) } else { runs.append([a]) }
    }
    guard runs.count > 1 else { return nil }
    let stageOp: ReduceOp = op == .reduceMean ? .reduceSum : op
    var y = x
    for run in runs.reversed() { y = try reduce(stageOp, y, axes: run, keepDim: true) }
    let count = sorted.reduce(1) { $0 * x.shape[$1] }
    if op == .reduceMean { y = try mul(y, try Tensor.full([], value: 1 / Double(count))) }
    return keepDim ? y : try y.reshape((0..<x.rank).filter { !sorted.contains($0) }.map { x.shape[$0] })
}

/// Lane-wise max/min down the columns of a [rows >= 1, n] matrix.
@inline(__always) private func columnExtreme(_ p: UnsafePointer<Float>, rows: Int, n: Int, out: UnsafeMutablePointer<Float>, max isMax: Bool) {
    if isMax { columnFold(p, rows: rows, n: n, out: out, nanMax, nanMaxScalar) } else { columnFold(p, rows: rows, n: n, out: out, nanMin, nanMinScalar) }
}

@inline(__always) private func columnFold(_ p: UnsafePointer<Float>, rows: Int, n: Int, out: UnsafeMutablePointer<Float>,
                                          _ f: (F16, F16) -> F16, _ g: (Float, Float) -> Float) {
    out.update(from: p, count: n)
    for r in 1..<Swift.max(rows, 1) {
        let row = p + r * n
        var j = 0
        while j + 16 <= n { storeF16(f(loadF16(out + j), loadF16(row + j)), out + j); j += 16 }
        while j < n { out[j] = g(out[j], row[j]); j += 1 }
    }
}

private func reduceInteger(_ op: ReduceOp, _ layout: ReductionLayout) throws -> Tensor {
    let (outer, r, inner) = (layout.outer, layout.reduce, layout.inner)
    func run<T: TensorElement & FixedWidthInteger>(_: T.Type) throws -> Tensor {
        let p = layout.source.pointer(T.self)
        if op == .reduceSum {
            let out = try Tensor.uninitialized(layout.outShape, dtype: .int64)
            let q = out.pointer(Int64.self)
            for o in 0..<outer {
                for j in 0..<inner {
                    var s: Int64 = 0
                    for k in 0..<r { s &+= Int64(truncatingIfNeeded: p[(o * r + k) * inner + j]) }
                    q[o * inner + j] = s
                }
            }
            return out
        }
        let out = try Tensor.uninitialized(layout.outShape, dtype: T.dtype)
        let q = out.pointer(T.self)
        for o in 0..<outer {
            for j in 0..<inner {
                var m = p[o * r * inner + j]
                for k in 1..<Swift.max(r, 1) {
                    let v = p[(o * r + k) * inner + j]
                    m = op == .reduceMax ? Swift.max(m, v) : Swift.min(m, v)
                }
                q[o * inner + j] = m
            }
        }
        return out
    }
    switch layout.source.dtype {
    case .int32: return try run(Int32.self)
    case .int64: return try run(Int64.self)
    case .uint8: return try run(UInt8.self)
    case .float32: throw VisionError.unsupported("reduceInteger: float32 goes through the float kernel")
    }
}

/// Variance over `axes` (empty = all): Σ(x - mean)² / max(0, n - correction), float32. `correction` 1 is the
/// unbiased estimate (torch.var's default), 0 the biased one. n - correction <= 0 gives inf or NaN (as torch).
/// Computed by the two-pass algorithm with the compensating term Σ(x - m)²/n removed, in Double.
public func variance(_ x: Tensor, axes: [Int] = [], correction: Int = 1, keepDim: Bool = false) throws -> Tensor {
    let out = try varianceForward(x, axes: axes, correction: correction, keepDim: keepDim)
    let xd = x.detach()
    return recordGrad("variance", out, inputs: [x]) { g in
        // d var / dx = 2 (x - mean) / (n - correction)
        let kept = try g.reshape(reducedShape(x.shape, axes: axes))
        let n = Double(x.count) / Double(Swift.max(out.count, 1))
        let centered = try sub(xd, try mean(xd, axes: axes, keepDim: true))
        let scale = try Tensor.full([], value: 2 / Swift.max(0, n - Double(correction)))
        return [try mul(try mul(centered, scale), kept)]
    }
}

func varianceForward(_ x: Tensor, axes: [Int], correction: Int, keepDim: Bool) throws -> Tensor {
    try x.requireDType(.float32, "variance")
    guard correction >= 0 else { throw VisionError.invalidArgument("variance: correction must be >= 0, got \(correction)") }
    let layout = try ReductionLayout(x, axes: axes, keepDim: keepDim, "variance")
    let out = try Tensor.uninitialized(layout.outShape, dtype: .float32)
    let src = SendablePointer(layout.source.pointer(Float.self)), dst = SendablePointer(out.pointer(Float.self))
    let (outer, r, inner) = (layout.outer, layout.reduce, layout.inner)
    let divisor = Double(Swift.max(0, r - correction)), n = Double(r)
    withExtendedLifetime(layout.source) {
        parallelFor(outer, minChunk: max(1, (1 << 15) / max(r * inner, 1))) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(inner, 16))
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: inner)
            let dev = UnsafeMutablePointer<Double>.allocate(capacity: inner)
            let means = UnsafeMutablePointer<Float>.allocate(capacity: inner + 16)
            defer { scratch.deallocate(); sums.deallocate(); dev.deallocate(); means.deallocate() }
            for o in range {
                let p = UnsafePointer(src.p + o * r * inner)
                if inner == 1 {
                    let m = Float(rowSum(p, r) { $0 } / n)
                    let (dd, ss) = rowDeviationSums(p, r, m)
                    dst.p[o] = Float((ss - dd * dd / n) / divisor)
                } else {
                    columnSums(p, rows: r, n: inner, scratch: scratch, out: sums) { v, _ in v }
                    for j in 0..<inner { means[j] = Float(sums[j] / n) }
                    let mp = UnsafePointer(means)
                    columnSums(p, rows: r, n: inner, scratch: scratch, out: dev) { v, j in v - loadF16(mp + j) }
                    columnSums(p, rows: r, n: inner, scratch: scratch, out: sums) { v, j in let t = v - loadF16(mp + j); return t * t }
                    for j in 0..<inner { dst.p[o * inner + j] = Float((sums[j] - dev[j] * dev[j] / n) / divisor) }
                }
            }
        }
    }
    return out
}

/// Index of the largest value along `axis`, or of the whole tensor flattened when `axis` is nil; an int64 tensor.
/// The first occurrence wins on ties, and NaN counts as larger than everything (as torch.argmax). Empty → error.
public func argmax(_ x: Tensor, axis: Int? = nil, keepDim: Bool = false) throws -> Tensor {
    try argExtreme(x, axis: axis, keepDim: keepDim, largest: true)
}

/// Index of the smallest value (first occurrence; NaN counts as smaller than everything, as torch.argmin).
public func argmin(_ x: Tensor, axis: Int? = nil, keepDim: Bool = false) throws -> Tensor {
    try argExtreme(x, axis: axis, keepDim: keepDim, largest: false)
}

private func argExtreme(_ x: Tensor, axis: Int?, keepDim: Bool, largest: Bool) throws -> Tensor {
    let name = largest ? "argmax" : "argmin"
    let layout: ReductionLayout
    var outShape: [Int]
    if let axis {
        layout = try ReductionLayout(x, axes: [axis], keepDim: keepDim, name)
        outShape = layout.outShape
    } else {
        layout = try ReductionLayout(try x.reshape([-1]), axes: [0], keepDim: false, name)
        outShape = keepDim ? [Int](repeating: 1, count: x.rank) : []
    }
    guard layout.reduce > 0 || layout.outer * layout.inner == 0 else {
        throw VisionError.invalidArgument("\(name): cannot take the index over an empty dimension of shape \(x.shape)")
    }
    if x.rank == 0 { outShape = [] }
    let out = try Tensor.uninitialized(outShape, dtype: .int64)
    let q = out.pointer(Int64.self)
    let (outer, r, inner) = (layout.outer, layout.reduce, layout.inner)
    func run<T: TensorElement>(_: T.Type) {
        let p = layout.source.pointer(T.self)
        for o in 0..<outer {
            for j in 0..<inner {
                let base = p + o * r * inner + j
                var best = base[0], bi = 0
                if best != best { q[o * inner + j] = 0; continue }
                for k in 1..<Swift.max(r, 1) {
                    let v = base[k * inner]
                    if v != v { bi = k; break }
                    if largest ? v > best : v < best { best = v; bi = k }
                }
                q[o * inner + j] = Int64(bi)
            }
        }
    }
    run(x.dtype.elementType)
    return out
}

// MARK: references (Double, element by element through offsets)

/// Groups of reduced elements in the order of the kept output elements, read through `elementOffsets`.
private func referenceGroups(_ x: Tensor, axes: [Int], keepDim: Bool, _ op: String) throws -> (shape: [Int], groups: [[Double]]) {
    let layout = try ReductionLayout(x, axes: axes, keepDim: keepDim, op)
    let rank = x.rank
    var set = Set(try axes.map { try Tensor.normalizeAxis($0, rank: rank, op) })
    if axes.isEmpty { set = Set(0..<rank) }
    let kept = (0..<rank).filter { !set.contains($0) }, reduced = (0..<rank).filter { set.contains($0) }
    let p = try x.permute(kept + reduced)
    let offsets = p.elementOffsets()
    let g = reduced.map { x.shape[$0] }.reduce(1, *)
    let groupsCount = kept.map { x.shape[$0] }.reduce(1, *)
    var groups = [[Double]](repeating: [], count: groupsCount)
    for i in 0..<offsets.count {
        let v: Double
        switch x.dtype {
        case .float32: v = Double(x.pointer(Float.self)[offsets[i]])
        case .int32: v = Double(x.pointer(Int32.self)[offsets[i]])
        case .int64: v = Double(x.pointer(Int64.self)[offsets[i]])
        case .uint8: v = Double(x.pointer(UInt8.self)[offsets[i]])
        }
        groups[i / g].append(v)
    }
    return (layout.outShape, groups)
}

/// `reduce` by definition in Double (float32 result; for tests).
public func reduceReference(_ op: ReduceOp, _ x: Tensor, axes: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    let (shape, groups) = try referenceGroups(x, axes: axes, keepDim: keepDim, "\(op)")
    let values: [Float] = groups.map { g in
        switch op {
        case .reduceSum: return Float(g.reduce(0, +))
        case .reduceMean: return Float(g.reduce(0, +) / Double(g.count))
        case .reduceMax: return g.contains { $0.isNaN } ? .nan : Float(g.max() ?? .nan)
        case .reduceMin: return g.contains { $0.isNaN } ? .nan : Float(g.min() ?? .nan)
        }
    }
    return try Tensor(values, shape: shape)
}

/// `variance` by definition in Double (for tests).
public func varianceReference(_ x: Tensor, axes: [Int] = [], correction: Int = 1, keepDim: Bool = false) throws -> Tensor {
    let (shape, groups) = try referenceGroups(x, axes: axes, keepDim: keepDim, "variance")
    let values: [Float] = groups.map { g in
        let m = g.reduce(0, +) / Double(g.count)
        return Float(g.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(Swift.max(0, g.count - correction)))
    }
    return try Tensor(values, shape: shape)
}

/// `argmax` along one axis by definition (for tests).
public func argmaxReference(_ x: Tensor, axis: Int, keepDim: Bool = false) throws -> Tensor {
    let (shape, groups) = try referenceGroups(x, axes: [axis], keepDim: keepDim, "argmax")
    let values: [Int64] = groups.map { g in
        if let n = g.firstIndex(where: { $0.isNaN }) { return Int64(n) }
        var bi = 0
        for (i, v) in g.enumerated() where v > g[bi] { bi = i }
        return Int64(bi)
    }
    return try Tensor(values, shape: shape)
}
