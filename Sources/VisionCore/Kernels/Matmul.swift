import CBLAS

/// Matrix products on OpenBLAS sgemm. Operands whose last two dimensions are row-major or transposed views are
/// passed to BLAS without a copy; other layouts are made contiguous first.
public func matmul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try a.requireDType(.float32, "matmul"); try b.requireDType(.float32, "matmul")
    guard a.rank >= 1, b.rank >= 1 else { throw VisionError.shapeMismatch("matmul: scalars are not matrices (shapes \(a.shape), \(b.shape))") }
    // Vectors become matrices as in torch.matmul, and the added dimension is removed at the end.
    let a2 = a.rank == 1 ? try a.unsqueeze(axis: 0) : a
    let b2 = b.rank == 1 ? try b.unsqueeze(axis: 1) : b
    let m = a2.shape[a2.rank - 2], k = a2.shape[a2.rank - 1], n = b2.shape[b2.rank - 1]
    guard b2.shape[b2.rank - 2] == k else {
        throw VisionError.shapeMismatch("matmul: shapes \(a.shape) and \(b.shape) cannot be multiplied (\(k) vs \(b2.shape[b2.rank - 2]))")
    }
    let batch = try broadcastShapes(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2)), "matmul")
    let ea = try a2.expand(batch + [m, k]), eb = try b2.expand(batch + [k, n])
    var out = try Tensor.uninitialized(batch + [m, n], dtype: .float32)
    let count = batch.reduce(1, *)
    let oa = BatchOffsets(batch: batch), ob = BatchOffsets(batch: batch)
    let ma = try blasOperand(ea), mb = try blasOperand(eb)
    let pa = SendablePointer(ma.tensor.pointer(Float.self)), pb = SendablePointer(mb.tensor.pointer(Float.self))
    let po = SendablePointer(out.pointer(Float.self))
    func product(_ i: Int) {
        sgemm(ma.transposed, mb.transposed, m, n, k, 1, pa.p + oa.map(ma, i), ma.ld, pb.p + ob.map(mb, i), mb.ld, 0,
              po.p + i * m * n, n)
    }
    // OpenBLAS runs on one thread (see Threading): a batch of products spreads over the pool, a large product is
    // cut into blocks of rows or columns (the larger of m and n), and a small one stays on the calling thread.
    let macs = m.multipliedReportingOverflow(by: n).partialValue.multipliedReportingOverflow(by: k).partialValue
    let threads = Threading.threadCount
    withExtendedLifetime((ma, mb)) {
        if count >= threads && macs < 1 << 24 || macs < 1 << 20 {
            forEachWorkItem(count, scratch: 0, minItemsPerThread: macs < 1 << 16 ? 8 : 1) { i, _ in product(i) }
            return
        }
        let rowsSplit = m >= n, extent = rowsSplit ? m : n
        let parts = min(extent, 2 * threads), size = (extent + parts - 1) / parts
        forEachWorkItem(count * parts, scratch: 0) { item, _ in
            let i = item / parts, start = (item % parts) * size, len = min(size, extent - start)
            guard len > 0 else { return }
            let a = pa.p + oa.map(ma, i), b = pb.p + ob.map(mb, i), c = po.p + i * m * n
            if rowsSplit {
                sgemm(ma.transposed, mb.transposed, len, n, k, 1, a + (ma.transposed ? start : start * ma.ld), ma.ld,
                      b, mb.ld, 0, c + start * n, n)
            } else {
                sgemm(ma.transposed, mb.transposed, m, len, k, 1, a, ma.ld, b + (mb.transposed ? start * mb.ld : start),
                      mb.ld, 0, c + start, n)
            }
        }
    }
    // Gradients flow through the matrix forms (a2, b2) and are summed back over broadcast batch dimensions.
    let (a2d, b2d) = (a2.detach(), b2.detach())
    let (aShape, bShape, outShape2) = (a.shape, b.shape, out.shape)
    out = recordGrad("matmul", out, inputs: [a, b]) { g in
        let g2 = try g.reshape(outShape2)
        let ga = try sumToShape(try matmul(g2, try b2d.transpose(-1, -2)), a2d.shape).reshape(aShape)
        let gb = try sumToShape(try matmul(try a2d.transpose(-1, -2), g2), b2d.shape).reshape(bShape)
        return [ga, gb]
    }
    if a.rank == 1 { out = try out.squeeze(axis: -2) }
    if b.rank == 1 { out = try out.squeeze(axis: -1) }
    return out
}

/// `x @ weight.T + bias` with weight [out, in] (torch.nn.functional.linear).
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    try weight.requireRank(2, "linear", "weight")
    guard x.rank >= 1, x.shape.last == weight.shape[1] else {
        throw VisionError.shapeMismatch("linear: input \(x.shape) does not end in weight's in_features \(weight.shape[1])")
    }
    let flat = try x.reshape([-1, weight.shape[1]])
    var y = try matmul(flat, try weight.transpose(0, 1))
    if let bias {
        guard bias.shape == [weight.shape[0]] else {
            throw VisionError.shapeMismatch("linear: bias \(bias.shape) must be [\(weight.shape[0])]")
        }
        y = try add(y, bias)
    }
    return try y.reshape(Array(x.shape.dropLast()) + [weight.shape[0]])
}

/// Row-major sgemm C = alpha * op(A) op(B) + beta * C.
@inline(__always)
func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
           _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
           _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    if m == 0 || n == 0 { return }
    _ = Threading.blasSingleThreaded
    if k == 0 {
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    if m == 1 {
        // A row vector times a matrix (a linear layer at batch 1): sgemv reads the matrix in place, where sgemm
        // would first pack all of it. C is zeroed first for beta = 0 so that garbage (NaN) in it cannot leak.
        if beta == 0 { c.update(repeating: 0, count: n) }
        let incx = blasint(transA ? lda : 1)
        if transB {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(n), blasint(k), alpha, b, blasint(ldb), a, incx, beta, c, 1)
        } else {
            cblas_sgemv(CblasRowMajor, CblasTrans, blasint(k), blasint(n), alpha, b, blasint(ldb), a, incx, beta, c, 1)
        }
        return
    }
    if n == 1 {
        // A matrix times a column (a 1x1 conv on a 1x1 map, as in squeeze-excitation): sgemv again.
        if beta == 0 { for i in 0..<m { c[i * ldc] = 0 } }
        let incx = blasint(transB ? 1 : ldb)
        if transA {
            cblas_sgemv(CblasRowMajor, CblasTrans, blasint(k), blasint(m), alpha, a, blasint(lda), b, incx, beta, c, blasint(ldc))
        } else {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(m), blasint(k), alpha, a, blasint(lda), b, incx, beta, c, blasint(ldc))
        }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// A matrix operand for BLAS: the tensor to read, whether its last two dims are transposed, and the leading dim.
struct BlasOperand {
    let tensor: Tensor
    let transposed: Bool
    let ld: Int
}

private func blasOperand(_ t: Tensor) throws -> BlasOperand {
    let r = t.rank, rows = t.shape[r - 2], cols = t.shape[r - 1]
    let sr = t.strides[r - 2], sc = t.strides[r - 1]
    if (sc == 1 || cols == 1) && sr >= max(cols, 1) { return BlasOperand(tensor: t, transposed: false, ld: max(sr, cols, 1)) }
    if (sr == 1 || rows == 1) && sc >= max(rows, 1) { return BlasOperand(tensor: t, transposed: true, ld: max(sc, rows, 1)) }
    let c = try t.copyContiguous()
    return BlasOperand(tensor: c, transposed: false, ld: max(cols, 1))
}

/// Element offsets of each matrix of a batch of (possibly broadcast) matrices.
private struct BatchOffsets {
    let batch: [Int]
    func map(_ op: BlasOperand, _ i: Int) -> Int {
        // A copied operand is contiguous: its batch strides are recomputed from its own shape.
        let s = op.tensor.strides.dropLast(2)
        var r = i, o = 0
        for d in stride(from: batch.count - 1, through: 0, by: -1) {
            let idx = r % batch[d]; r /= batch[d]
            o += idx * s[s.startIndex + d]
        }
        return o
    }
}


/// Matrix product by the definition, in Double (for tests). Both operands must be at least 2-D of equal batch shape.
public func matmulReference(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    let batch = try broadcastShapes(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), "matmul")
    let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
    let ea = try a.expand(batch + [m, k]).contiguous(), eb = try b.expand(batch + [k, n]).contiguous()
    let out = try Tensor.uninitialized(batch + [m, n], dtype: .float32)
    let pa = ea.pointer(Float.self), pb = eb.pointer(Float.self), po = out.pointer(Float.self)
    for bi in 0..<batch.reduce(1, *) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(pa[bi * m * k + i * k + p]) * Double(pb[bi * k * n + p * n + j]) }
                po[bi * m * n + i * n + j] = Float(s)
            }
        }
    }
    return out
}
