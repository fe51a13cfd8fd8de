/// Element types of a `Tensor`. Raw values are the C ABI's dtype codes; append only.
/// C constants: VC_
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case float32 = 0
    case int32 = 1
    case int64 = 2
    case uint8 = 3

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float32, .int32: return 4
        case .int64: return 8
        case .uint8: return 1
        }
    }

    public var description: String {
        switch self {
        case .float32: return "float32"
        case .int32: return "int32"
        case .int64: return "int64"
        case .uint8: return "uint8"
        }
    }
}

/// A Swift scalar type that a tensor can hold. Integer arithmetic on tensors wraps around (as PyTorch's does)
/// instead of trapping, so these helpers exist beside `Numeric`'s trapping operators.
public protocol TensorElement: Comparable, Sendable {
    static var dtype: DType { get }
    static var zero: Self { get }
    static var one: Self { get }
    init(fromDouble value: Double)
    var asDouble: Double { get }
    static func wrappingAdd(_ a: Self, _ b: Self) -> Self
    static func wrappingSub(_ a: Self, _ b: Self) -> Self
    static func wrappingMul(_ a: Self, _ b: Self) -> Self
}

extension Float: TensorElement {
    public static var dtype: DType { .float32 }
    public static var one: Float { 1 }
    public init(fromDouble value: Double) { self = Float(value) }
    public var asDouble: Double { Double(self) }
    public static func wrappingAdd(_ a: Float, _ b: Float) -> Float { a + b }
    public static func wrappingSub(_ a: Float, _ b: Float) -> Float { a - b }
    public static func wrappingMul(_ a: Float, _ b: Float) -> Float { a * b }
}

/// Integer conversion from Double saturates and maps NaN to 0 rather than trapping.
@inline(__always) func saturatingInteger<T: FixedWidthInteger>(_ v: Double) -> T {
    if v.isNaN { return 0 }
    if v <= Double(T.min) { return T.min }
    if v >= Double(T.max) { return T.max }
    return T(v.rounded(.towardZero))
}

extension Int32: TensorElement {
    public static var dtype: DType { .int32 }
    public static var one: Int32 { 1 }
    public init(fromDouble value: Double) { self = saturatingInteger(value) }
    public var asDouble: Double { Double(self) }
    public static func wrappingAdd(_ a: Int32, _ b: Int32) -> Int32 { a &+ b }
    public static func wrappingSub(_ a: Int32, _ b: Int32) -> Int32 { a &- b }
    public static func wrappingMul(_ a: Int32, _ b: Int32) -> Int32 { a &* b }
}

extension Int64: TensorElement {
    public static var dtype: DType { .int64 }
    public static var one: Int64 { 1 }
    public init(fromDouble value: Double) { self = saturatingInteger(value) }
    public var asDouble: Double { Double(self) }
    public static func wrappingAdd(_ a: Int64, _ b: Int64) -> Int64 { a &+ b }
    public static func wrappingSub(_ a: Int64, _ b: Int64) -> Int64 { a &- b }
    public static func wrappingMul(_ a: Int64, _ b: Int64) -> Int64 { a &* b }
}

extension UInt8: TensorElement {
    public static var dtype: DType { .uint8 }
    public static var one: UInt8 { 1 }
    public init(fromDouble value: Double) { self = saturatingInteger(value) }
    public var asDouble: Double { Double(self) }
    public static func wrappingAdd(_ a: UInt8, _ b: UInt8) -> UInt8 { a &+ b }
    public static func wrappingSub(_ a: UInt8, _ b: UInt8) -> UInt8 { a &- b }
    public static func wrappingMul(_ a: UInt8, _ b: UInt8) -> UInt8 { a &* b }
}

extension DType {
    /// The Swift element type, so that generic kernels dispatch in one line: `run(x.dtype.elementType)` calls
    /// `func run<T: TensorElement>(_: T.Type)` with the existential opened (SE-0352).
    public var elementType: any TensorElement.Type {
        switch self {
        case .float32: return Float.self
        case .int32: return Int32.self
        case .int64: return Int64.self
        case .uint8: return UInt8.self
        }
    }
}
