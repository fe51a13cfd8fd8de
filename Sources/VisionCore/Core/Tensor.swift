#if canImport(Glibc)
import Glibc
#endif

/// An N-dimensional array of `Float`, `Int32`, `Int64` or `UInt8`: a view (shape, strides and offset, all in
/// elements) over shared `TensorStorage`. Views share storage; writes through the mutating API copy the storage
/// first when it is shared, so `Tensor` behaves as a value.
public struct Tensor: @unchecked Sendable {
    public private(set) var storage: TensorStorage
    public let dtype: DType
    public private(set) var shape: [Int]
    public private(set) var strides: [Int]
    public private(set) var offset: Int
    /// Autograd bookkeeping: nil for tensors that do not require gradients (see Autograd.swift).
    var gradState: GradState?

    /// Wraps existing storage; the caller guarantees that every addressed element lies inside it.
    init(storage: TensorStorage, dtype: DType, shape: [Int], strides: [Int], offset: Int) {
        self.storage = storage
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.offset = offset
    }

    /// A new zero-filled, contiguous tensor.
    public init(zeros shape: [Int], dtype: DType = .float32) throws {
        let n = try Tensor.checkedCount(shape)
        storage = try TensorStorage(byteCount: n * dtype.size)
        self.dtype = dtype
        self.shape = shape
        strides = Tensor.contiguousStrides(shape)
        offset = 0
    }

    /// A new contiguous tensor whose contents the caller is about to overwrite completely (no zero-fill pass;
    /// public for model code that writes every element itself, e.g. VisionModels' fused convs).
    public static func uninitialized(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        let n = try checkedCount(shape)
        let s = try TensorStorage(byteCount: n * dtype.size, zeroed: false)
        return Tensor(storage: s, dtype: dtype, shape: shape, strides: contiguousStrides(shape), offset: 0)
    }

    /// A contiguous tensor holding a copy of `values` with the given shape.
    public init<T: TensorElement>(_ values: [T], shape: [Int]) throws {
        let n = try Tensor.checkedCount(shape)
        guard n == values.count else {
            throw VisionError.shapeMismatch("tensor: \(values.count) values do not fill shape \(shape) (\(n) elements)")
        }
        try self.init(zeros: shape, dtype: T.dtype)
        values.withUnsafeBytes { src in
            if let b = src.baseAddress, src.count > 0 { memcpy(storage.base, b, src.count) }
        }
    }

    /// A contiguous tensor holding a copy of `count` elements' bytes read from `bytes`.
    public init(copying bytes: UnsafeRawPointer, shape: [Int], dtype: DType) throws {
        try self.init(zeros: shape, dtype: dtype)
        let n = count * dtype.size
        if n > 0 { memcpy(storage.base, bytes, n) }
    }

    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// Number of elements (1 for a scalar of rank 0, 0 when any dimension is 0).
    public var count: Int { shape.reduce(1, *) }
    /// Size in bytes of the elements (not of the storage).
    public var byteCount: Int { count * dtype.size }

    /// True when the elements are laid out row-major without gaps, starting at `offset`.
    public var isContiguous: Bool {
        var expected = 1
        for d in stride(from: rank - 1, through: 0, by: -1) where shape[d] != 1 {
            if strides[d] != expected { return false }
            expected *= shape[d]
        }
        return true
    }

    /// Row-major strides of a contiguous tensor of this shape.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = acc
            acc &*= max(shape[d], 1)
        }
        return strides
    }

    /// Validates a shape (rank, non-negative dims, no overflow, within `Limits`) and returns its element count.
    public static func checkedCount(_ shape: [Int]) throws -> Int {
        guard shape.count <= Limits.maxRank else {
            throw VisionError.invalidArgument("shape \(shape) has \(shape.count) dimensions; the limit is \(Limits.maxRank)")
        }
        // The product of the non-zero dimensions is bounded too, not only the element count: an empty tensor such
        // as [0, 2^62, 2^62] would otherwise pass, and every stride or size computed from its shape overflows.
        var n = 1, empty = false
        for d in shape {
            guard d >= 0 else { throw VisionError.invalidArgument("shape \(shape) has a negative dimension") }
            if d == 0 { empty = true; continue }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            guard !o, m <= Limits.maxBytes else {
                throw VisionError.outOfMemory("shape \(shape) is too large")
            }
            n = m
        }
        return empty ? 0 : n
    }

    // MARK: raw access for kernels

    /// Pointer to the first element of this view (element at `offset`).
    @inline(__always) public func pointer<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        (storage.base + offset * dtype.size).assumingMemoryBound(to: T.self)
    }

    func requireDType(_ expected: DType, _ op: @autoclosure () -> String) throws {
        guard dtype == expected else {
            throw VisionError.dtypeMismatch("\(op()): expected a \(expected) tensor, got \(dtype)")
        }
    }

    func requireRank(_ r: Int, _ op: @autoclosure () -> String, _ name: @autoclosure () -> String = "input") throws {
        guard rank == r else {
            throw VisionError.shapeMismatch("\(op()): \(name()) must have \(r) dimensions, got shape \(shape)")
        }
    }

    /// Reads the contiguous elements of a contiguous tensor of element type `T`.
    public func withUnsafeBufferPointer<T: TensorElement, R>(as type: T.Type,
                                                           _ body: (UnsafeBufferPointer<T>) throws -> R) throws -> R {
        try requireDType(T.dtype, "withUnsafeBufferPointer")
        let c = try contiguous()
        return try withExtendedLifetime(c) { try body(UnsafeBufferPointer(start: c.pointer(T.self), count: c.count)) }
    }

    /// Makes the tensor contiguous with storage of its own (copying if needed) and gives mutable access.
    public mutating func withUnsafeMutableBufferPointer<T: TensorElement, R>(
        as type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws -> R) throws -> R {
        try requireDType(T.dtype, "withUnsafeMutableBufferPointer")
        try makeUniqueContiguous()
        return try body(UnsafeMutableBufferPointer(start: pointer(T.self), count: count))
    }

    /// Ensures this tensor owns contiguous storage that no other tensor shares.
    public mutating func makeUniqueContiguous() throws {
        if isContiguous && isKnownUniquelyReferenced(&storage) { return }
        let c = try copyContiguous()
        self = c
    }

    /// Whether this value holds the only reference to its storage: no other tensor (copy or view) would see a
    /// write to it.
    mutating func ownsStorageAlone() -> Bool { isKnownUniquelyReferenced(&storage) }

    /// The elements as a Swift array, in row-major order.
    public func toArray<T: TensorElement>(_ type: T.Type = T.self) throws -> [T] {
        try withUnsafeBufferPointer(as: T.self) { Array($0) }
    }

    /// The single element of a one-element tensor, converted to Double.
    public func item() throws -> Double {
        guard count == 1 else { throw VisionError.shapeMismatch("item: tensor of shape \(shape) is not one element") }
        switch dtype {
        case .float32: return Double(pointer(Float.self).pointee)
        case .int32: return Double(pointer(Int32.self).pointee)
        case .int64: return Double(pointer(Int64.self).pointee)
        case .uint8: return Double(pointer(UInt8.self).pointee)
        }
    }

    /// This tensor if contiguous, otherwise a contiguous copy.
    public func contiguous() throws -> Tensor {
        if isContiguous { return self }
        return recordGrad("contiguous", try copyContiguous(), inputs: [self]) { g in [g] }
    }

    /// A contiguous copy with storage of its own.
    public func copyContiguous() throws -> Tensor {
        let out = try Tensor.uninitialized(shape, dtype: dtype)
        copyStrided(from: self, to: out)
        return out
    }

    /// The element offset (relative to `offset`) of each element in row-major order, for reference kernels.
    func elementOffsets() -> [Int] {
        var result = [Int]()
        result.reserveCapacity(count)
        forEachOffset(shape: shape, strides: strides) { result.append($0) }
        return result
    }
}

/// Calls `body` with the element offset of every index of `shape` in row-major order.
@inline(__always)
func forEachOffset(shape: [Int], strides: [Int], _ body: (Int) -> Void) {
    let n = shape.reduce(1, *)
    if n == 0 { return }
    let r = shape.count
    if r == 0 { body(0); return }
    var index = [Int](repeating: 0, count: r)
    var off = 0
    let inner = shape[r - 1], innerStride = strides[r - 1]
    var remaining = n
    while remaining > 0 {
        var o = off
        for _ in 0..<inner { body(o); o &+= innerStride }
        remaining -= inner
        var d = r - 2
        while d >= 0 {
            index[d] += 1
            off += strides[d]
            if index[d] < shape[d] { break }
            off -= strides[d] * shape[d]
            index[d] = 0
            d -= 1
        }
    }
}

/// Copies `src` into contiguous `dst` of the same shape and dtype, element by element in row-major order.
func copyStrided(from src: Tensor, to dst: Tensor) {
    let size = src.dtype.size
    if src.isContiguous {
        let n = src.count * size
        if n > 0 { memcpy(dst.storage.base + dst.offset * size, src.storage.base + src.offset * size, n) }
        return
    }
    let s = src.storage.base + src.offset * size
    var d = dst.storage.base + dst.offset * size
    switch size {
    case 1: forEachOffset(shape: src.shape, strides: src.strides) { o in d.storeBytes(of: s.load(fromByteOffset: o, as: UInt8.self), as: UInt8.self); d += 1 }
    case 4: forEachOffset(shape: src.shape, strides: src.strides) { o in d.storeBytes(of: s.load(fromByteOffset: o * 4, as: UInt32.self), as: UInt32.self); d += 4 }
    default: forEachOffset(shape: src.shape, strides: src.strides) { o in d.storeBytes(of: s.load(fromByteOffset: o * 8, as: UInt64.self), as: UInt64.self); d += 8 }
    }
}
