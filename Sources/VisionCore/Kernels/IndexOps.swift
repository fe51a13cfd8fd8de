/// Index-driven selection: gather, indexSelect and topk. Every index read from a tensor is checked before it is
/// used, and a bad one is reported by value and position (never trapped on).

/// Reads an int64 (or int32) index tensor as Int values in row-major order.
private func indexValues(_ index: Tensor, _ op: String) throws -> [Int] {
    switch index.dtype {
    case .int64: return try index.toArray(Int64.self).map { Int(truncatingIfNeeded: $0) }
    case .int32: return try index.toArray(Int32.self).map { Int($0) }
    default: throw VisionError.dtypeMismatch("\(op): index must be an int64 (or int32) tensor, got \(index.dtype)")
    }
}

/// out[i][j][k] = x[i][index[i][j][k]][k] for axis 1, and likewise for any axis (torch.gather): index has x's
/// rank and, on every other axis, a size no larger than x's. Indices must lie in 0..<x.shape[axis] (torch does
/// not wrap negative ones either). Every dtype; differentiable for float32 with respect to x (the gradient is
/// added back at the gathered positions, so an element gathered twice receives both contributions).
public func gather(_ x: Tensor, axis: Int, index: Tensor) throws -> Tensor {
    let a = try Tensor.normalizeAxis(axis, rank: x.rank, "gather")
    guard index.rank == x.rank else {
        throw VisionError.shapeMismatch("gather: index of shape \(index.shape) must have the rank of input \(x.shape)")
    }
    for d in 0..<x.rank where d != a && index.shape[d] > x.shape[d] {
        throw VisionError.shapeMismatch("gather: index shape \(index.shape) exceeds input shape \(x.shape) in dimension \(d)")
    }
    let idx = try indexValues(index, "gather")
    let out = try Tensor.uninitialized(index.shape, dtype: x.dtype)
    if out.count == 0 { return out }
    let size = x.dtype.size, n = x.rank == 0 ? 1 : x.shape[a]
    let src = UnsafeRawPointer(x.storage.base + x.offset * size)
    var multi = [Int](repeating: 0, count: index.rank)
    for (flat, i) in idx.enumerated() {
        guard i >= 0, i < n else {
            throw VisionError.invalidArgument("gather: index \(i) at position \(flat) is out of range for dimension \(a) of size \(n)")
        }
        var off = 0
        for d in 0..<x.rank { off += (d == a ? i : multi[d]) * x.strides[d] }
        (out.storage.base + flat * size).copyMemory(from: src + off * size, byteCount: size)
        var d = index.rank - 1
        while d >= 0 { multi[d] += 1; if multi[d] < index.shape[d] { break }; multi[d] = 0; d -= 1 }
    }
    let inputShape = x.shape, indexShape = index.shape
    return recordGrad("gather", out, inputs: [x]) { g in
        [try scatterAddAlongAxis(g, index: idx, indexShape: indexShape, axis: a, into: inputShape)]
    }
}

// MARK: - GatherBackward

/// A zero tensor of `shape` into which g (of shape `indexShape`) is added at the positions gather read: element
/// (i0, ..., ik, ...) of g goes to (i0, ..., index[...], ...) of the result, k = axis (torch's scatter_add_).
/// Indices were checked by the forward. Sequential: distinct elements of g may land on the same position.
func scatterAddAlongAxis(_ g: Tensor, index: [Int], indexShape: [Int], axis: Int, into shape: [Int]) throws -> Tensor {
    let gx = try Tensor(zeros: shape, dtype: .float32)
    if index.isEmpty || gx.count == 0 { return gx }
    let gc = try g.contiguous()
    let src = gc.pointer(Float.self), dst = gx.pointer(Float.self)
    let strides = Tensor.contiguousStrides(shape)
    let rank = shape.count
    if rank == 0 { dst[0] += src[0]; return gx }
    // Offset of the current multi-index with its `axis` coordinate left out; updated incrementally.
    var multi = [Int](repeating: 0, count: rank)
    var base = 0
    let axisStride = strides[axis]
    withExtendedLifetime(gc) {
        for (flat, i) in index.enumerated() {
            dst[base &+ i &* axisStride] += src[flat]
            var d = rank - 1
            while d >= 0 {
                multi[d] &+= 1
                if d != axis { base &+= strides[d] }
                if multi[d] < indexShape[d] { break }
                if d != axis { base &-= multi[d] &* strides[d] }
                multi[d] = 0
                d -= 1
            }
        }
    }
    return gx
}

/// The slices of x at positions `index` (1-D, int64 or int32) along `axis` (torch.index_select). Indices must
/// lie in 0..<x.shape[axis]. Every dtype; differentiable for float32 with respect to x (index_add of the
/// gradient's slices back at their indices, repeated indices accumulating).
public func indexSelect(_ x: Tensor, axis: Int, index: Tensor) throws -> Tensor {
    let a = try Tensor.normalizeAxis(axis, rank: x.rank, "indexSelect")
    guard index.rank <= 1 else { throw VisionError.shapeMismatch("indexSelect: index must be 1-D, got shape \(index.shape)") }
    guard x.rank >= 1 else { throw VisionError.invalidArgument("indexSelect: input must have at least one dimension") }
    let idx = try indexValues(index, "indexSelect"), n = x.shape[a]
    for (p, i) in idx.enumerated() where i < 0 || i >= n {
        throw VisionError.invalidArgument("indexSelect: index \(i) at position \(p) is out of range for dimension \(a) of size \(n)")
    }
    var outShape = x.shape
    outShape[a] = idx.count
    let inputShape = x.shape
    let out = recordGrad("indexSelect", try Tensor.uninitialized(outShape, dtype: x.dtype), inputs: [x]) { g in
        [try indexAdd(g, index: idx, axis: a, into: inputShape)]
    }
    if out.count == 0 { return out }
    let c = try x.contiguous(), size = x.dtype.size
    let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *) * size
    let s = c.storage.base + c.offset * size
    var dst = out.storage.base
    for o in 0..<outer {
        for i in idx {
            dst.copyMemory(from: s + (o * n + i) * inner, byteCount: inner)
            dst += inner
        }
    }
    return out
}

// MARK: - IndexSelectBackward

/// A zero tensor of `shape` with slice p of g along `axis` added to slice index[p] (torch's index_add_). Each
/// outer index (the dimensions before `axis`) owns a disjoint block of the result, so blocks run in parallel;
/// within a block the slices are added in order, contiguous runs of `inner` elements.
func indexAdd(_ g: Tensor, index: [Int], axis: Int, into shape: [Int]) throws -> Tensor {
    let gx = try Tensor(zeros: shape, dtype: .float32)
    if index.isEmpty || gx.count == 0 { return gx }
    let gc = try g.contiguous()
    let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *), n = shape[axis], k = index.count
    let pg = SendablePointer(gc.pointer(Float.self)), px = SendablePointer(gx.pointer(Float.self))
    withExtendedLifetime(gc) {
        index.withUnsafeBufferPointer { ix in
            parallelFor(outer, minChunk: max(1, 32768 / max(k &* inner, 1))) { blocks in
                for o in blocks {
                    for (p, i) in ix.enumerated() {
                        let s = pg.p + (o &* k &+ p) &* inner, d = px.p + (o &* n &+ i) &* inner
                        for j in 0..<inner { d[j] += s[j] }
                    }
                }
            }
        }
    }
    return gx
}

/// The `k` largest (or smallest) elements along `axis` and their int64 indices (torch.topk). float32 and the
/// integer dtypes. NaN is larger than every number (so it comes first for largest, last for smallest), as torch.
/// Ties keep the lower index first; torch leaves the order of ties unspecified (its CPU kernel may differ), so
/// compare tied indices as sets. Results are always sorted; `sorted: false` is accepted for torch
/// compatibility (torch then gives an unspecified order). k must be in 0...size of the axis.
/// The values are differentiable for float32 (their gradient goes back to the selected elements; the rest of x
/// gets 0); the indices carry no gradient.
public func topk(_ x: Tensor, k: Int, axis: Int = -1, largest: Bool = true, sorted: Bool = true) throws -> (values: Tensor, indices: Tensor) {
    let (values, indices) = try Autograd.noGrad { try topkForward(x, k: k, axis: axis, largest: largest) }
    guard x.requiresGrad, Autograd.isRecording else { return (values, indices) }
    let a = try Tensor.normalizeAxis(axis, rank: x.rank, "topk")
    let idx = try indices.toArray(Int64.self).map { Int($0) }
    let inputShape = x.shape, indexShape = indices.shape
    // The selected indices are distinct within a row, so scatter-add is a plain scatter of g.
    let recorded = recordGrad("topk", values, inputs: [x]) { g in
        [try scatterAddAlongAxis(g, index: idx, indexShape: indexShape, axis: a, into: inputShape)]
    }
    return (recorded, indices)
}

private func topkForward(_ x: Tensor, k: Int, axis: Int, largest: Bool) throws -> (values: Tensor, indices: Tensor) {
    let a = try Tensor.normalizeAxis(axis, rank: x.rank, "topk")
    let n = x.rank == 0 ? 1 : x.shape[a]
    guard k >= 0, k <= n else {
        throw VisionError.invalidArgument("topk: k = \(k) is out of range for dimension \(a) of size \(n) (shape \(x.shape))")
    }
    if x.rank == 0 {
        guard k == 1 else { throw VisionError.unsupported("topk: k = 0 on a zero-dimensional tensor") }
        return (try x.copyContiguous(), try Tensor.zeros([], dtype: .int64))
    }
    // Move the axis last so that each row is contiguous.
    let order = (0..<x.rank).filter { $0 != a } + [a]
    let moved = try x.permute(order).contiguous()
    let rows = moved.count / max(n, 1)
    var outShapeMoved = moved.shape
    outShapeMoved[x.rank - 1] = k
    let values = try Tensor.uninitialized(outShapeMoved, dtype: x.dtype)
    let indices = try Tensor.uninitialized(outShapeMoved, dtype: .int64)
    switch x.dtype {
    case .float32: topkRows(moved.pointer(Float.self), values.pointer(Float.self), indices.pointer(Int64.self), rows, n, k, largest)
    case .int32: topkRows(moved.pointer(Int32.self), values.pointer(Int32.self), indices.pointer(Int64.self), rows, n, k, largest)
    case .int64: topkRows(moved.pointer(Int64.self), values.pointer(Int64.self), indices.pointer(Int64.self), rows, n, k, largest)
    case .uint8: topkRows(moved.pointer(UInt8.self), values.pointer(UInt8.self), indices.pointer(Int64.self), rows, n, k, largest)
    }
    // Move the axis back into place.
    var inverse = [Int](repeating: 0, count: x.rank)
    for (i, d) in order.enumerated() { inverse[d] = i }
    return (try values.permute(inverse).contiguous(), try indices.permute(inverse).contiguous())
}

/// Top-k of each contiguous row of length n. Specialized per element type (a generic nested function was not,
/// and every comparison went through witness tables). "a ranks before b": NaN (v != v) above every number, equal
/// values by lower index.
@inline(__always)
private func topkRows<T: TensorElement>(_ p: UnsafeMutablePointer<T>, _ v: UnsafeMutablePointer<T>, _ ix: UnsafeMutablePointer<Int64>,
                                        _ rows: Int, _ n: Int, _ k: Int, _ largest: Bool) {
    var perm = [Int](repeating: 0, count: n)
    var best = [Int]()
    best.reserveCapacity(k + 1)
    for r in 0..<rows {
        let row = p + r &* n
        @inline(__always) func before(_ i: Int, _ j: Int) -> Bool {
            let u = row[i], w = row[j]
            let un = u != u, wn = w != w
            if un || wn { return un && wn ? i < j : (largest ? un : wn) }
            if u == w { return i < j }
            return largest ? u > w : u < w
        }
        if k < n / 8 {
            // Partial selection: a sorted prefix of the best k so far; most elements fail the first comparison.
            best.removeAll(keepingCapacity: true)
            // `worst` is the value of the last kept element once k are kept: a later element that does not rank
            // strictly ahead of it (ties go to the lower index) is skipped with one comparison.
            var full = false, worst = row[0], worstIsNaN = false
            for i in 0..<n {
                if full {
                    let u = row[i]
                    if worstIsNaN || (u == u && (largest ? u <= worst : u >= worst)) { continue }
                }
                var pos = best.count
                while pos > 0 && before(i, best[pos - 1]) { pos -= 1 }
                best.insert(i, at: pos)
                if best.count > k { best.removeLast() }
                if best.count == k, let last = best.last { full = true; worst = row[last]; worstIsNaN = worst != worst }
            }
            for j in 0..<k { perm[j] = best[j] }
        } else {
            for i in 0..<n { perm[i] = i }
            perm.sort(by: before)
        }
        for j in 0..<k { v[r &* k &+ j] = row[perm[j]]; ix[r &* k &+ j] = Int64(perm[j]) }
    }
}
