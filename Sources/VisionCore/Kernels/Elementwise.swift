#if canImport(Glibc)
import Glibc
#endif

/// Broadcasting binary arithmetic. Both operands must have the same dtype (no implicit promotion); integer
/// arithmetic wraps around. `div` and `pow` are defined for float32 only.
/// C constants: VC_
public enum BinaryOp: Int32, Sendable, CaseIterable {
    case add = 0, sub, mul, div, maximum, minimum, pow

    @inline(__always) func apply<T: TensorElement>(_ a: T, _ b: T) -> T {
        switch self {
        case .add: return T.wrappingAdd(a, b)
        case .sub: return T.wrappingSub(a, b)
        case .mul: return T.wrappingMul(a, b)
        case .div: return T(fromDouble: a.asDouble / b.asDouble)
        case .maximum: return a != a ? a : (b != b ? b : Swift.max(a, b))
        case .minimum: return a != a ? a : (b != b ? b : Swift.min(a, b))
        case .pow: return T(fromDouble: Glibc.pow(a.asDouble, b.asDouble))
        }
    }

    @inline(__always) func vector(_ a: F16, _ b: F16) -> F16 {
        switch self {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .maximum: return keepNaN(keepNaN(a.replacing(with: b, where: b .> a), b), a)
        case .minimum: return keepNaN(keepNaN(a.replacing(with: b, where: b .< a), b), a)
        case .pow:
            var r = F16()
            for i in 0..<16 { r[i] = Glibc.powf(a[i], b[i]) }
            return r
        }
    }
}

/// Broadcasting comparisons; the result is a uint8 tensor of 0 and 1 (NaN compares as in IEEE: only `ne` is true).
/// C constants: VC_
public enum CompareOp: Int32, Sendable, CaseIterable {
    case eq = 0, ne, lt, le, gt, ge

    @inline(__always) func apply<T: TensorElement>(_ a: T, _ b: T) -> UInt8 {
        let r: Bool
        switch self {
        case .eq: r = a == b
        case .ne: r = a != b
        case .lt: r = a < b
        case .le: r = a <= b
        case .gt: r = a > b
        case .ge: r = a >= b
        }
        return r ? 1 : 0
    }
}

/// Shapes and strides of two operands broadcast to a common shape, with adjacent dimensions merged where all
/// three layouts allow it, so that the innermost loop is as long as possible.
struct BroadcastPlan {
    var shape: [Int]
    var stridesA: [Int]
    var stridesB: [Int]
    let outShape: [Int]

    init(_ a: Tensor, _ b: Tensor, _ op: @autoclosure () -> String) throws {
        outShape = try broadcastShapes(a.shape, b.shape, op())
        let ea = try a.expand(outShape), eb = try b.expand(outShape)
        var sh = [Int](), sa = [Int](), sb = [Int]()
        for d in 0..<outShape.count where outShape[d] != 1 {
            if let last = sh.indices.last, sa[last] == ea.strides[d] * outShape[d], sb[last] == eb.strides[d] * outShape[d] {
                sh[last] *= outShape[d]; sa[last] = ea.strides[d]; sb[last] = eb.strides[d]
            } else {
                sh.append(outShape[d]); sa.append(ea.strides[d]); sb.append(eb.strides[d])
            }
        }
        if sh.isEmpty { sh = [1]; sa = [0]; sb = [0] }
        shape = sh; stridesA = sa; stridesB = sb
    }

    var count: Int { shape.reduce(1, *) }
    var inner: Int { shape.last! }

    /// Calls body(offsetA, offsetB, outputIndex) for the start of each innermost row, rows in [from, to).
    func forEachRow(_ rows: Range<Int>, _ body: (Int, Int, Int) -> Void) {
        let outer = Array(shape.dropLast())
        let innerLen = inner
        for row in rows {
            var r = row, oa = 0, ob = 0
            for d in stride(from: outer.count - 1, through: 0, by: -1) {
                let i = r % outer[d]; r /= outer[d]
                oa += i * stridesA[d]; ob += i * stridesB[d]
            }
            body(oa, ob, row * innerLen)
        }
    }
}

/// `a op b` with broadcasting.
public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.dtype == b.dtype else {
        throw VisionError.dtypeMismatch("\(op): operands have different dtypes \(a.dtype) and \(b.dtype)")
    }
    if op == .div || op == .pow { try a.requireDType(.float32, "\(op)") }
    let plan = try BroadcastPlan(a, b, "\(op)")
    let out = try Tensor.uninitialized(plan.outShape, dtype: a.dtype)
    switch a.dtype {
    case .float32: binaryFloat(op, a, b, out, plan)
    case .int32: binaryGeneric(op, a, b, out, plan, Int32.self)
    case .int64: binaryGeneric(op, a, b, out, plan, Int64.self)
    case .uint8: binaryGeneric(op, a, b, out, plan, UInt8.self)
    }
    return recordGrad("\(op)", out, inputs: [a, b]) { g in try binaryBackward(op, g, a.detach(), b.detach(), out.detach()) }
}

/// Gradients of `a op b` with respect to a and b, summed back over broadcast dimensions.
private func binaryBackward(_ op: BinaryOp, _ g: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor) throws -> [Tensor?] {
    let ga: Tensor, gb: Tensor
    switch op {
    case .add: ga = g; gb = g
    case .sub: ga = g; gb = try unary(.neg, g)
    case .mul: ga = try mul(g, b); gb = try mul(g, a)
    case .div:
        ga = try div(g, b)
        gb = try unary(.neg, try div(try mul(ga, a), b))
    case .maximum, .minimum:
        // The chosen operand gets the gradient; ties split it evenly, as PyTorch does.
        let aWins = try compare(op == .maximum ? .gt : .lt, a, b).to(.float32)
        let tie = try compare(.eq, a, b).to(.float32)
        let wa = try add(aWins, try mul(tie, try Tensor.full([], value: 0.5)))
        ga = try mul(g, wa)
        gb = try mul(g, try sub(try Tensor.full([], value: 1), wa))
    case .pow:
        // d/da a^b = b a^(b-1); d/db a^b = a^b log a (taken as 0 where a == 0, as PyTorch).
        ga = try mul(g, try mul(b, try binary(.pow, a, try sub(b, try Tensor.full([], value: 1)))))
        let logA = try whereSelect(try compare(.eq, a, try Tensor.zeros([])), try Tensor.zeros([]), try unary(.log, a))
        gb = try mul(g, try mul(out, logA))
    }
    return [try sumToShape(ga, a.shape), try sumToShape(gb, b.shape)]
}

private func binaryFloat(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor, _ plan: BroadcastPlan) {
    let pa = SendablePointer(a.pointer(Float.self)), pb = SendablePointer(b.pointer(Float.self))
    let po = SendablePointer(out.pointer(Float.self))
    let n = plan.inner, rows = plan.count / max(n, 1)
    let sa = plan.stridesA.last!, sb = plan.stridesB.last!
    // Long rows (a flat tensor is one row) are cut into segments of at least 64K elements, so that they too
    // use every thread.
    let segments = rows >= Threading.threadCount ? 1 : max(1, min(n >> 16, Threading.threadCount * 2))
    let segment = (n + segments - 1) / segments
    parallelFor(rows * segments, minChunk: max(1, (1 << 16) / max(segment, 1))) { range in
        for item in range {
            let row = item / segments, c0 = (item % segments) * segment, len = min(segment, n - c0)
            guard len > 0 else { continue }
            plan.forEachRow(row..<(row + 1)) { oa, ob, oo in
                binaryRow(op, pa.p + oa + c0 * sa, sa, pb.p + ob + c0 * sb, sb, po.p + oo + c0, len)
            }
        }
    }
}

@inline(__always)
private func binaryRow(_ op: BinaryOp, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                       _ o: UnsafeMutablePointer<Float>, _ n: Int) {
    switch op {
    case .add: binaryRowLoop(a, sa, b, sb, o, n) { BinaryOp.add.vector($0, $1) }
    case .sub: binaryRowLoop(a, sa, b, sb, o, n) { BinaryOp.sub.vector($0, $1) }
    case .mul: binaryRowLoop(a, sa, b, sb, o, n) { BinaryOp.mul.vector($0, $1) }
    case .div: binaryRowLoop(a, sa, b, sb, o, n) { BinaryOp.div.vector($0, $1) }
    case .maximum: binaryRowLoop(a, sa, b, sb, o, n) { BinaryOp.maximum.vector($0, $1) }
    case .minimum: binaryRowLoop(a, sa, b, sb, o, n) { BinaryOp.minimum.vector($0, $1) }
    case .pow: binaryRowLoop(a, sa, b, sb, o, n) { BinaryOp.pow.vector($0, $1) }
    }
}

/// One innermost row: each operand either advances by one (stride 1) or stays put (stride 0, broadcast).
/// Other strides gather into a vector first.
@inline(__always)
private func binaryRowLoop(_ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                           _ o: UnsafeMutablePointer<Float>, _ n: Int, _ f: (F16, F16) -> F16) {
    @inline(__always) func load(_ p: UnsafePointer<Float>, _ s: Int, _ i: Int, _ len: Int) -> F16 {
        if s == 1 && len == 16 { return UnsafeRawPointer(p + i).loadUnaligned(as: F16.self) }
        if s == 0 { return F16(repeating: p[0]) }
        var v = F16()
        for j in 0..<len { v[j] = p[(i + j) * s] }
        return v
    }
    var i = 0
    if sa == 1 && sb == 1 {
        while i + 16 <= n {
            let r = f(UnsafeRawPointer(a + i).loadUnaligned(as: F16.self), UnsafeRawPointer(b + i).loadUnaligned(as: F16.self))
            UnsafeMutableRawPointer(o + i).storeBytes(of: r, as: F16.self)
            i += 16
        }
    } else if sa == 1 && sb == 0 {
        let vb = F16(repeating: b[0])
        while i + 16 <= n {
            UnsafeMutableRawPointer(o + i).storeBytes(of: f(UnsafeRawPointer(a + i).loadUnaligned(as: F16.self), vb), as: F16.self)
            i += 16
        }
    } else if sa == 0 && sb == 1 {
        let va = F16(repeating: a[0])
        while i + 16 <= n {
            UnsafeMutableRawPointer(o + i).storeBytes(of: f(va, UnsafeRawPointer(b + i).loadUnaligned(as: F16.self)), as: F16.self)
            i += 16
        }
    }
    while i < n {
        let len = min(16, n - i)
        let r = f(load(a, sa, i, len), load(b, sb, i, len))
        for j in 0..<len { o[i + j] = r[j] }
        i += len
    }
}

private func binaryGeneric<T: TensorElement>(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor,
                                             _ plan: BroadcastPlan, _: T.Type) {
    let pa = a.pointer(T.self), pb = b.pointer(T.self), po = out.pointer(T.self)
    let n = plan.inner, sa = plan.stridesA.last!, sb = plan.stridesB.last!
    plan.forEachRow(0..<(plan.count / max(n, 1))) { oa, ob, oo in
        for i in 0..<n { po[oo + i] = op.apply(pa[oa + i * sa], pb[ob + i * sb]) }
    }
}

/// `a op b` with broadcasting, computed one element at a time through multi-indices (for tests).
public func binaryReference(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.dtype == b.dtype else { throw VisionError.dtypeMismatch("\(op): dtypes \(a.dtype) and \(b.dtype) differ") }
    let shape = try broadcastShapes(a.shape, b.shape, "\(op)")
    let ea = try a.expand(shape), eb = try b.expand(shape)
    let oa = ea.elementOffsets(), ob = eb.elementOffsets()
    let out = try Tensor.uninitialized(shape, dtype: a.dtype)
    func run<T: TensorElement>(_: T.Type) {
        let pa = a.pointer(T.self), pb = b.pointer(T.self), po = out.pointer(T.self)
        for i in 0..<oa.count {
            po[i] = op.apply(pa[oa[i]], pb[ob[i]])
        }
    }
    run(a.dtype.elementType)
    return out
}

/// `a op b` with broadcasting, as a uint8 tensor of 0/1.
public func compare(_ op: CompareOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.dtype == b.dtype else {
        throw VisionError.dtypeMismatch("\(op): operands have different dtypes \(a.dtype) and \(b.dtype)")
    }
    let plan = try BroadcastPlan(a, b, "\(op)")
    let out = try Tensor.uninitialized(plan.outShape, dtype: .uint8)
    func run<T: TensorElement>(_: T.Type) {
        let pa = a.pointer(T.self), pb = b.pointer(T.self), po = out.pointer(UInt8.self)
        let n = plan.inner, sa = plan.stridesA.last!, sb = plan.stridesB.last!
        plan.forEachRow(0..<(plan.count / max(n, 1))) { oa, ob, oo in
            for i in 0..<n { po[oo + i] = op.apply(pa[oa + i * sa], pb[ob + i * sb]) }
        }
    }
    run(a.dtype.elementType)
    return out
}

/// Elements of `a` where `condition` is non-zero, else of `b` (all three broadcast together; torch.where).
public func whereSelect(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    try condition.requireDType(.uint8, "where")
    guard a.dtype == b.dtype else { throw VisionError.dtypeMismatch("where: \(a.dtype) and \(b.dtype) differ") }
    let shape = try broadcastShapes(try broadcastShapes(condition.shape, a.shape, "where"), b.shape, "where")
    let c = try condition.expand(shape).contiguous(), x = try a.expand(shape).contiguous(), y = try b.expand(shape).contiguous()
    let out = try Tensor.uninitialized(shape, dtype: a.dtype)
    let pc = c.pointer(UInt8.self), size = a.dtype.size
    let px = x.storage.base + x.offset * size, py = y.storage.base + y.offset * size, po = out.storage.base
    for i in 0..<out.count { (po + i * size).copyMemory(from: (pc[i] != 0 ? px : py) + i * size, byteCount: size) }
    return recordGrad("where", out, inputs: [a, b]) { g in
        let zero = try Tensor.zeros([])
        return [try sumToShape(try whereSelect(c, g, zero), a.shape), try sumToShape(try whereSelect(c, zero, g), b.shape)]
    }
}

// MARK: named arithmetic

public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.add, a, b) }
public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.sub, a, b) }
public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.mul, a, b) }
public func div(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.div, a, b) }
public func maximum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.maximum, a, b) }
public func minimum(_ a: Tensor, _ b: Tensor) throws -> Tensor { try binary(.minimum, a, b) }
