#if canImport(Glibc)
import Glibc
#endif

/// How `pad` fills the new border (PyTorch's F.pad modes).
public enum Padding: Sendable, Equatable {
    /// A constant value (converted to the tensor's dtype; integers saturate).
    case constant(Double)
    /// Mirror without repeating the edge: [a b c] padded by 2 on the left gives [c b a b c].
    case reflect
    /// Repeat the edge element.
    case replicate
}

/// Pad modes for the C ABI (`vc_pad`); the constant value is passed separately.
/// C constants: VC_
public enum PadMode: Int32, Sendable, CaseIterable {
    case padConstant = 0, padReflect, padReplicate
}

/// Copies one element of `size` bytes.
@inline(__always) private func copyElement(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ size: Int) {
    switch size {
    case 1: dst.storeBytes(of: src.load(as: UInt8.self), as: UInt8.self)
    case 4: dst.storeBytes(of: src.loadUnaligned(as: UInt32.self), as: UInt32.self)
    default: dst.storeBytes(of: src.loadUnaligned(as: UInt64.self), as: UInt64.self)
    }
}

/// The bytes of `value` converted to `dtype` (one element).
private func scalarBytes(_ value: Double, _ dtype: DType) -> UInt64 {
    switch dtype {
    case .float32: return UInt64(Float(value).bitPattern)
    case .int32: return UInt64(UInt32(bitPattern: Int32(fromDouble: value)))
    case .int64: return UInt64(bitPattern: Int64(fromDouble: value))
    case .uint8: return UInt64(UInt8(fromDouble: value))
    }
}

/// Pads (or, with negative amounts, crops) the trailing dimensions. `pads` is in torch order: the last dimension
/// first, (left, right, top, bottom, front, back, ...), at most two per dimension. Reflect needs each pad below
/// the dimension's size; replicate needs a non-empty dimension. Every dtype. The output must not be empty along
/// a dimension that is padded with reflect or replicate. Differentiable for float32 (see `padBackward`).
public func pad(_ x: Tensor, pads: [Int], mode: Padding = .constant(0)) throws -> Tensor {
    guard pads.count % 2 == 0, pads.count / 2 <= x.rank else {
        throw VisionError.invalidArgument("pad: \(pads.count) pad values for a tensor of shape \(x.shape); need an even number, at most \(2 * x.rank)")
    }
    let rank = x.rank
    var outShape = x.shape
    // Per dimension: the source index of each output index, or -1 for the constant fill.
    var maps = [[Int]?](repeating: nil, count: rank)
    for k in 0..<(pads.count / 2) {
        let d = rank - 1 - k, before = pads[2 * k], after = pads[2 * k + 1], n = x.shape[d]
        guard before > -Limits.maxBytes, before < Limits.maxBytes, after > -Limits.maxBytes, after < Limits.maxBytes else {  // abs(Int.min) would trap
            throw VisionError.invalidArgument("pad: pad amounts \(pads) are too large")
        }
        let size = n + before + after
        guard size >= 0 else {
            throw VisionError.invalidArgument("pad: pads (\(before), \(after)) leave dimension \(d) of size \(n) with negative size \(size)")
        }
        switch mode {
        case .reflect:
            guard before < n, after < n, n > 0 else {
                throw VisionError.invalidArgument("pad: reflect pads (\(before), \(after)) must be below the size \(n) of dimension \(d)")
            }
        case .replicate:
            guard n > 0 || size == 0 else {
                throw VisionError.invalidArgument("pad: replicate cannot pad the empty dimension \(d)")
            }
        case .constant: break
        }
        outShape[d] = size
        maps[d] = (0..<size).map { o in
            let i = o - before
            switch mode {
            case .constant: return i >= 0 && i < n ? i : -1
            case .replicate: return Swift.min(Swift.max(i, 0), n - 1)
            case .reflect:
                if n == 1 { return 0 }
                // Reflect about the edges (period 2n - 2) so that any in-range pad maps inside.
                let period = 2 * n - 2
                var j = i % period
                if j < 0 { j += period }
                return j < n ? j : period - j
            }
        }
    }
    _ = try Tensor.checkedCount(outShape)
    let inputShape = x.shape
    let out = recordGrad("pad", try Tensor.uninitialized(outShape, dtype: x.dtype), inputs: [x]) { [maps] g in
        [try padBackward(g, inputShape: inputShape, pads: pads, mode: mode, maps: maps)]
    }
    if out.count == 0 { return out }
    let size = x.dtype.size
    var fill = scalarBytes({ if case .constant(let v) = mode { return v } else { return 0 } }(), x.dtype)
    let xc = try x.contiguous()
    let src = UnsafeRawPointer(xc.storage.base + xc.offset * size)
    var dst = out.storage.base
    let last = rank - 1
    if rank == 0 { copyElement(dst, src, size); return out }
    let lastMap = maps[last] ?? Array(0..<x.shape[last])
    let outW = outShape[last], inW = x.shape[last]
    // Output columns lo..<hi copy source columns (lo - before)... in order: one memcpy per row.
    let before = pads.count >= 2 ? pads[0] : 0
    let lo = Swift.min(Swift.max(0, before), outW), hi = Swift.max(lo, Swift.min(outW, before + inW))
    let rows = out.count / outW
    var index = [Int](repeating: 0, count: last)
    withUnsafeBytes(of: &fill) { fillPtr in
        guard let fillBytes = fillPtr.baseAddress else { return }
        for _ in 0..<rows {
            // Source offset of this output row; inBorder when a leading index falls in the constant border.
            var rowOffset = 0, inBorder = false
            for d in 0..<last {
                let s = maps[d].map { $0[index[d]] } ?? index[d]
                if s < 0 { inBorder = true; break }
                rowOffset += s * xc.strides[d]
            }
            if inBorder {
                for _ in 0..<outW { copyElement(dst, fillBytes, size); dst += size }
            } else {
                let row = src + rowOffset * size
                for j in 0..<lo { copyElement(dst + j * size, lastMap[j] >= 0 ? row + lastMap[j] * size : fillBytes, size) }
                if hi > lo { memcpy(dst + lo * size, row + (lo - before) * size, (hi - lo) * size) }
                for j in hi..<outW { copyElement(dst + j * size, lastMap[j] >= 0 ? row + lastMap[j] * size : fillBytes, size) }
                dst += outW * size
            }
            var d = last - 1
            while d >= 0 { index[d] += 1; if index[d] < outShape[d] { break }; index[d] = 0; d -= 1 }
        }
    }
    return out
}

// MARK: - PadBackward

/// The gradient of `pad` with respect to its input: every output element's gradient goes to the source element
/// it copied (`maps`, the forward's per-dimension source indices, -1 for the constant fill). For a constant pad
/// that is a crop of the gradient, i.e. the opposite pad; for reflect and replicate several output elements copy
/// one source element, so their gradients are added there (as PyTorch's reflection/replication pad backward).
func padBackward(_ g: Tensor, inputShape: [Int], pads: [Int], mode: Padding, maps: [[Int]?]) throws -> Tensor {
    if case .constant = mode {
        // Negated pads crop what the forward added and restore (as zeros) what a negative pad cropped.
        return try Autograd.noGrad { try pad(g, pads: pads.map { -$0 }, mode: .constant(0)) }
    }
    let gx = try Tensor(zeros: inputShape, dtype: .float32)
    let rank = inputShape.count, padded = pads.count / 2
    if gx.count == 0 || g.count == 0 { return gx }
    if padded == 0 { return try g.contiguous().reshape(inputShape) }
    // Dimensions before the padded ones are copied one to one: each of their index combinations ("outer") owns
    // a disjoint block of the gradient, so blocks run in parallel. Inside a block, rows along the last
    // dimension are scattered through the last dimension's map.
    let first = rank - padded
    let outShape = g.shape
    let outer = inputShape[..<first].reduce(1, *)
    let inBlock = inputShape[first...].reduce(1, *), outBlock = outShape[first...].reduce(1, *)
    let inW = inputShape[rank - 1], outW = outShape[rank - 1]
    let rowsPerBlock = outBlock / max(outW, 1)
    let inStrides = Tensor.contiguousStrides(inputShape)
    // Flat table of the source index of every output index of the padded dimensions except the last one
    // (reflect and replicate never map to -1), then the last dimension's map.
    var table = [Int](), tableStart = [Int]()
    for d in first..<(rank - 1) {
        tableStart.append(table.count)
        table += maps[d] ?? Array(0..<inputShape[d])
    }
    let lastMap = maps[rank - 1] ?? Array(0..<inW)
    let gc = try g.contiguous()
    let pg = SendablePointer(gc.pointer(Float.self)), px = SendablePointer(gx.pointer(Float.self))
    withExtendedLifetime(gc) {
        table.withUnsafeBufferPointer { tb in
            lastMap.withUnsafeBufferPointer { lm in
                parallelFor(outer, minChunk: max(1, 32768 / max(outBlock, 1))) { blocks in
                    var index = [Int](repeating: 0, count: Swift.max(padded - 1, 0))
                    for o in blocks {
                        let src = pg.p + o &* outBlock, dst = px.p + o &* inBlock
                        for i in 0..<index.count { index[i] = 0 }
                        for r in 0..<rowsPerBlock {
                            var rowOffset = 0
                            for i in 0..<index.count {
                                rowOffset &+= tb[tableStart[i] &+ index[i]] &* inStrides[first &+ i]
                            }
                            let grow = src + r &* outW, xrow = dst + rowOffset
                            for j in 0..<outW { xrow[lm[j]] += grow[j] }
                            var i = index.count - 1
                            while i >= 0 { index[i] &+= 1; if index[i] < outShape[first &+ i] { break }; index[i] = 0; i -= 1 }
                        }
                    }
                }
            }
        }
    }
    return gx
}

/// Joins tensors of one dtype along `axis`; all shapes must agree except along `axis` (torch.cat). Empty tensors
/// take part like any other (torch's legacy rule of skipping 1-D empty tensors is not followed).
public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
    guard let first = tensors.first else { throw VisionError.invalidArgument("concat: needs at least one tensor") }
    guard first.rank >= 1 else { throw VisionError.invalidArgument("concat: zero-dimensional tensors cannot be concatenated") }
    let a = try Tensor.normalizeAxis(axis, rank: first.rank, "concat")
    var total = 0
    for (i, t) in tensors.enumerated() {
        guard t.dtype == first.dtype else {
            throw VisionError.dtypeMismatch("concat: tensor \(i) is \(t.dtype) but tensor 0 is \(first.dtype)")
        }
        guard t.rank == first.rank, (0..<t.rank).allSatisfy({ $0 == a || t.shape[$0] == first.shape[$0] }) else {
            throw VisionError.shapeMismatch("concat: tensor \(i) has shape \(t.shape), which does not match \(first.shape) outside axis \(a)")
        }
        total += t.shape[a]
    }
    var outShape = first.shape
    outShape[a] = total
    let out = try Tensor.uninitialized(outShape, dtype: first.dtype)
    if out.count == 0 { return out }
    let size = first.dtype.size
    let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
    let outRow = total * inner * size
    var column = 0
    for t in tensors {
        let c = try t.contiguous()
        let chunk = c.shape[a] * inner * size
        if chunk > 0 {
            let s = c.storage.base + c.offset * size
            for o in 0..<outer { memcpy(out.storage.base + o * outRow + column, s + o * chunk, chunk) }
        }
        column += chunk
    }
    // Each input's gradient is its slice of the output's gradient along the axis.
    let sizes = tensors.map { $0.shape[a] }
    return recordGrad("concat", out, inputs: tensors) { g in
        var start = 0
        return try sizes.map { n in
            defer { start += n }
            return try g.slice(axis: a, start: start, end: start + n).contiguous()
        }
    }
}

/// Stacks tensors of one shape and dtype along a new dimension `axis` (in -(rank+1)...rank; torch.stack).
public func stack(_ tensors: [Tensor], axis: Int) throws -> Tensor {
    guard let first = tensors.first else { throw VisionError.invalidArgument("stack: needs at least one tensor") }
    let a = try Tensor.normalizeAxis(axis, rank: first.rank + 1, "stack")
    for (i, t) in tensors.enumerated() where t.shape != first.shape {
        throw VisionError.shapeMismatch("stack: tensor \(i) has shape \(t.shape) but tensor 0 has \(first.shape)")
    }
    return try concat(try tensors.map { try $0.unsqueeze(axis: a) }, axis: a)
}

/// Splits along `axis` into pieces of the given sizes, which must be non-negative and sum to the dimension
/// (torch.split with a list). The pieces are views sharing x's storage. Differentiable: each piece records its
/// own node, whose backward places the piece's gradient in its slot of a zero tensor of x's shape; the engine
/// adds the pieces' contributions (pieces that do not reach the loss contribute nothing).
public func split(_ x: Tensor, sizes: [Int], axis: Int) throws -> [Tensor] {
    let a = try Tensor.normalizeAxis(axis, rank: x.rank, "split")
    guard x.rank >= 1 else { throw VisionError.invalidArgument("split: cannot split a zero-dimensional tensor") }
    guard sizes.allSatisfy({ $0 >= 0 && $0 <= x.shape[a] }), sizes.reduce(0, +) == x.shape[a] else {
        throw VisionError.invalidArgument("split: sizes \(sizes) must be non-negative and sum to \(x.shape[a]) (dimension \(a) of \(x.shape))")
    }
    var start = 0
    let inputShape = x.shape
    return try sizes.map { s in
        defer { start += s }
        let (lo, hi) = (start, start + s)
        let piece = try Autograd.noGrad { try x.slice(axis: a, start: lo, end: hi) }
        return recordGrad("split", piece, inputs: [x]) { g in
            [try scatterIntoZeros(g, shape: inputShape) { try $0.slice(axis: a, start: lo, end: hi) }]
        }
    }
}

/// Splits along `axis` into pieces of `chunkSize` (the last one smaller if the size does not divide; torch.split
/// with an int). A dimension of size 0 gives one empty piece.
public func split(_ x: Tensor, chunkSize: Int, axis: Int) throws -> [Tensor] {
    let a = try Tensor.normalizeAxis(axis, rank: x.rank, "split")
    guard chunkSize > 0 else { throw VisionError.invalidArgument("split: chunk size must be positive, got \(chunkSize)") }
    guard x.rank >= 1 else { throw VisionError.invalidArgument("split: cannot split a zero-dimensional tensor") }
    let n = x.shape[a]
    if n == 0 { return [x] }
    let sizes = stride(from: 0, to: n, by: chunkSize).map { Swift.min(chunkSize, n - $0) }
    return try split(x, sizes: sizes, axis: a)
}

/// `pad` by definition through multi-indices (for tests): each output element looks up its source index.
public func padReference(_ x: Tensor, pads: [Int], mode: Padding = .constant(0)) throws -> Tensor {
    _ = try pad(x, pads: pads, mode: mode)  // the same argument checks (the loops below assume valid pads)
    let rank = x.rank
    var outShape = x.shape, before = [Int](repeating: 0, count: rank)
    for k in 0..<(pads.count / 2) {
        let d = rank - 1 - k
        before[d] = pads[2 * k]; outShape[d] += pads[2 * k] + pads[2 * k + 1]
    }
    let xf = try x.to(.float32).toArray(Float.self)
    let xs = Tensor.contiguousStrides(x.shape)
    let count = outShape.reduce(1, *)
    var values = [Float](repeating: 0, count: count)
    for flat in 0..<count {
        var r = flat, src = 0, inside = true
        for d in stride(from: rank - 1, through: 0, by: -1) {
            let o = r % outShape[d]; r /= outShape[d]
            var i = o - before[d]
            let n = x.shape[d]
            switch mode {
            case .constant: if i < 0 || i >= n { inside = false }
            case .replicate: i = Swift.min(Swift.max(i, 0), n - 1)
            case .reflect:
                while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
            }
            src += i * xs[d]
        }
        if inside { values[flat] = xf[src] } else if case .constant(let v) = mode { values[flat] = Float(v) }
    }
    return try Tensor(values, shape: outShape).to(x.dtype)
}
