/// Views: new shapes, strides and offsets over the same storage. None of these copy, except `reshape` of a
/// tensor whose strides cannot express the new shape (as PyTorch's `reshape`).
extension Tensor {
    /// Resolves a possibly negative axis (-1 is the last) against `rank`.
    public static func normalizeAxis(_ axis: Int, rank: Int, _ op: @autoclosure () -> String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < max(rank, 1) else {
            throw VisionError.invalidArgument("\(op()): axis \(axis) is out of range for a tensor of rank \(rank)")
        }
        return a
    }

    /// The same elements with another shape; one dimension may be -1 (inferred). Copies only when needed.
    public func reshape(_ newShape: [Int]) throws -> Tensor {
        let target = try resolveShape(newShape)
        let result: Tensor
        if let v = viewStrides(for: target) {
            result = Tensor(storage: storage, dtype: dtype, shape: target, strides: v, offset: offset)
        } else {
            let c = try copyContiguous()
            result = Tensor(storage: c.storage, dtype: dtype, shape: target, strides: Tensor.contiguousStrides(target), offset: 0)
        }
        let original = shape
        return recordGrad("reshape", result, inputs: [self]) { g in [try g.reshape(original)] }
    }

    /// Like `reshape`, but fails instead of copying (as PyTorch's `view`).
    public func view(_ newShape: [Int]) throws -> Tensor {
        let target = try resolveShape(newShape)
        guard let v = viewStrides(for: target) else {
            throw VisionError.invalidArgument("view: shape \(target) is not compatible with strides \(strides); use reshape")
        }
        let original = shape
        return recordGrad("view", Tensor(storage: storage, dtype: dtype, shape: target, strides: v, offset: offset),
                          inputs: [self]) { g in [try g.reshape(original)] }
    }

    private func resolveShape(_ newShape: [Int]) throws -> [Int] {
        var target = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1 else { throw VisionError.invalidArgument("reshape: only one dimension can be -1 in \(newShape)") }
        guard newShape.allSatisfy({ $0 >= -1 }) else { throw VisionError.invalidArgument("reshape: invalid shape \(newShape)") }
        if let i = inferred.first {
            var known = newShape; known[i] = 1
            let k = try Tensor.checkedCount(known)
            guard k > 0, count % k == 0 else {
                throw VisionError.shapeMismatch("reshape: shape \(newShape) is invalid for \(count) elements")
            }
            target[i] = count / k
        }
        guard try Tensor.checkedCount(target) == count else {
            throw VisionError.shapeMismatch("reshape: shape \(newShape) is invalid for \(count) elements of shape \(shape)")
        }
        return target
    }

    /// Strides that express `target` over the current layout without copying, or nil (PyTorch's computeStride).
    private func viewStrides(for target: [Int]) -> [Int]? {
        if isContiguous { return Tensor.contiguousStrides(target) }
        if count == 0 { return Tensor.contiguousStrides(target) }
        var newStrides = [Int](repeating: 0, count: target.count)
        var viewD = target.count - 1
        var chunkBase = strides.last ?? 1
        var tensorNumel = 1, viewNumel = 1
        for d in stride(from: rank - 1, through: 0, by: -1) {
            tensorNumel *= shape[d]
            if d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensorNumel * chunkBase) {
                while viewD >= 0 && (viewNumel < tensorNumel || target[viewD] == 1) {
                    newStrides[viewD] = viewNumel * chunkBase
                    viewNumel *= target[viewD]
                    viewD -= 1
                }
                if viewNumel != tensorNumel { return nil }
                if d > 0 { chunkBase = strides[d - 1]; tensorNumel = 1; viewNumel = 1 }
            }
        }
        return viewD == -1 ? newStrides : nil
    }

    /// Reorders dimensions: result dimension i is input dimension `order[i]`.
    public func permute(_ order: [Int]) throws -> Tensor {
        guard order.count == rank else {
            throw VisionError.invalidArgument("permute: \(order) does not name each of the \(rank) dimensions")
        }
        let axes = try order.map { try Tensor.normalizeAxis($0, rank: rank, "permute") }
        guard Set(axes).count == rank else { throw VisionError.invalidArgument("permute: repeated dimension in \(order)") }
        let result = Tensor(storage: storage, dtype: dtype, shape: axes.map { shape[$0] }, strides: axes.map { strides[$0] },
                            offset: offset)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return recordGrad("permute", result, inputs: [self]) { g in [try g.permute(inverse)] }
    }

    /// Swaps two dimensions.
    public func transpose(_ a: Int, _ b: Int) throws -> Tensor {
        let x = try Tensor.normalizeAxis(a, rank: rank, "transpose"), y = try Tensor.normalizeAxis(b, rank: rank, "transpose")
        var order = Array(0..<rank)
        order.swapAt(x, y)
        return try permute(order)
    }

    /// Elements `start, start+step, ...` below `end` along `axis` (Python slice semantics, clamped; step > 0).
    public func slice(axis: Int, start: Int = 0, end: Int = Int.max, step: Int = 1) throws -> Tensor {
        let a = try Tensor.normalizeAxis(axis, rank: rank, "slice")
        guard step > 0 else { throw VisionError.invalidArgument("slice: step must be positive, got \(step)") }
        // normalizeAxis accepts axis 0 and -1 of a zero-dimensional tensor, which has no dimension to slice.
        guard rank >= 1 else { throw VisionError.invalidArgument("slice: cannot slice a zero-dimensional tensor") }
        let n = shape[a]
        func clamp(_ i: Int) -> Int { i < 0 ? max(i + n, 0) : min(i, n) }
        let s = clamp(start), e = clamp(end)
        // Written so that no huge step (from C or Python) overflows: e - s <= n, and a view with at most one
        // element along the axis keeps its stride (step * stride could exceed Int even though it is never used).
        let len = e > s ? (e - s - 1) / step + 1 : 0
        var sh = shape, st = strides
        sh[a] = len
        if len > 1 { st[a] = strides[a] * step }
        let result = Tensor(storage: storage, dtype: dtype, shape: sh, strides: st, offset: len > 0 ? offset + s * strides[a] : offset)
        let original = shape
        return recordGrad("slice", result, inputs: [self]) { g in
            [try scatterIntoZeros(g, shape: original) { try $0.slice(axis: a, start: s, end: e, step: step) }]
        }
    }

    /// Element `index` along `axis`, with that dimension removed.
    public func select(axis: Int, index: Int) throws -> Tensor {
        let a = try Tensor.normalizeAxis(axis, rank: rank, "select")
        let i = index < 0 ? index + shape[a] : index
        guard i >= 0, i < shape[a] else {
            throw VisionError.invalidArgument("select: index \(index) is out of range for dimension \(a) of size \(shape[a])")
        }
        var sh = shape, st = strides
        sh.remove(at: a); st.remove(at: a)
        let result = Tensor(storage: storage, dtype: dtype, shape: sh, strides: st, offset: offset + i * strides[a])
        let original = shape
        return recordGrad("select", result, inputs: [self]) { g in
            [try scatterIntoZeros(g, shape: original) { try $0.select(axis: a, index: i) }]
        }
    }

    /// Broadcasts size-1 dimensions (and new leading ones) to `newShape` with zero strides; -1 keeps a size.
    public func expand(_ newShape: [Int]) throws -> Tensor {
        guard newShape.count >= rank else {
            throw VisionError.shapeMismatch("expand: cannot expand shape \(shape) to fewer dimensions \(newShape)")
        }
        _ = try Tensor.checkedCount(newShape.map { max($0, 0) })
        let lead = newShape.count - rank
        var st = [Int](repeating: 0, count: newShape.count)
        var sh = newShape
        for i in 0..<newShape.count {
            if i < lead {
                guard newShape[i] >= 0 else { throw VisionError.invalidArgument("expand: -1 is not allowed for new dimension \(i)") }
                continue
            }
            let d = shape[i - lead]
            if newShape[i] == -1 || newShape[i] == d { sh[i] = d; st[i] = strides[i - lead] }
            else if d == 1 { st[i] = 0 }
            else {
                throw VisionError.shapeMismatch("expand: dimension \(i - lead) of size \(d) cannot be expanded to \(newShape[i]) (target \(newShape))")
            }
        }
        let original = shape
        return recordGrad("expand", Tensor(storage: storage, dtype: dtype, shape: sh, strides: st, offset: offset),
                          inputs: [self]) { g in [try sumToShape(g, original)] }
    }

    /// Removes all size-1 dimensions, or only `axis` when given (a no-op if that size is not 1).
    public func squeeze(axis: Int? = nil) throws -> Tensor {
        var sh = [Int](), st = [Int]()
        let a = try axis.map { try Tensor.normalizeAxis($0, rank: rank, "squeeze") }
        for i in 0..<rank where !(shape[i] == 1 && (a == nil || a == i)) { sh.append(shape[i]); st.append(strides[i]) }
        let original = shape
        return recordGrad("squeeze", Tensor(storage: storage, dtype: dtype, shape: sh, strides: st, offset: offset),
                          inputs: [self]) { g in [try g.reshape(original)] }
    }

    /// Inserts a size-1 dimension at `axis` (in -(rank+1)...rank).
    public func unsqueeze(axis: Int) throws -> Tensor {
        let a = try Tensor.normalizeAxis(axis, rank: rank + 1, "unsqueeze")
        var sh = shape, st = strides
        sh.insert(1, at: a)
        st.insert(a < rank ? strides[a] * shape[a] : 1, at: a)
        let original = shape
        return recordGrad("unsqueeze", Tensor(storage: storage, dtype: dtype, shape: sh, strides: st, offset: offset),
                          inputs: [self]) { g in [try g.reshape(original)] }
    }

    /// Merges dimensions `start...end` into one.
    public func flatten(start: Int = 0, end: Int = -1) throws -> Tensor {
        if rank == 0 { return try reshape([1]) }
        let s = try Tensor.normalizeAxis(start, rank: rank, "flatten"), e = try Tensor.normalizeAxis(end, rank: rank, "flatten")
        guard s <= e else { throw VisionError.invalidArgument("flatten: start \(start) is after end \(end)") }
        let merged = shape[s...e].reduce(1, *)
        return try reshape(Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...]))
    }
}

/// A zero tensor of `shape` with `g` written into the view that `region` selects (the backward of slicing).
func scatterIntoZeros(_ g: Tensor, shape: [Int], region: (Tensor) throws -> Tensor) throws -> Tensor {
    let zeros = try Tensor.zeros(shape, dtype: g.dtype)
    let view = try Autograd.noGrad { try region(zeros) }
    let src = try g.contiguous()
    let s = src.pointer(Float.self), d = view.pointer(Float.self)
    var i = 0
    forEachOffset(shape: view.shape, strides: view.strides) { o in d[o] = s[i]; i += 1 }
    return zeros
}

/// The shape two shapes broadcast to (NumPy / PyTorch rules).
public func broadcastShapes(_ a: [Int], _ b: [Int], _ op: @autoclosure () -> String) throws -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let x = i < r - a.count ? 1 : a[i - (r - a.count)]
        let y = i < r - b.count ? 1 : b[i - (r - b.count)]
        guard x == y || x == 1 || y == 1 else {
            throw VisionError.shapeMismatch("\(op()): shapes \(a) and \(b) cannot be broadcast together (dimension \(i): \(x) vs \(y))")
        }
        out[i] = x == 1 ? y : x
    }
    return out
}
