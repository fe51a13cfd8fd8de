#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// Opaque C handle to a tensor (`vc_tensor *`).
public typealias VCTensor = OpaquePointer

struct HandleError: Error { let message: String }

/// The boxed Swift object behind a `vc_tensor *`.
final class TensorBox {
    var tensor: Tensor
    init(_ tensor: Tensor) { self.tensor = tensor }
}

/// Registry of live handles, so that a freed, forged or foreign pointer is reported instead of dereferenced.
private final class HandleRegistry: @unchecked Sendable {
    private var live = Set<UnsafeMutableRawPointer>()
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }
    func insert(_ p: UnsafeMutableRawPointer) { pthread_mutex_lock(&lock); live.insert(p); pthread_mutex_unlock(&lock) }
    func contains(_ p: UnsafeMutableRawPointer) -> Bool {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return live.contains(p)
    }
    func remove(_ p: UnsafeMutableRawPointer) -> Bool {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return live.remove(p) != nil
    }
}

private let registry = HandleRegistry()

func makeHandle(_ t: Tensor) -> VCTensor {
    let raw = Unmanaged.passRetained(TensorBox(t)).toOpaque()
    registry.insert(raw)
    return OpaquePointer(raw)
}

/// The tensor behind a handle; throws for NULL or a pointer that is not a live `vc_tensor`.
func tensorBox(_ h: VCTensor?, _ name: String = "tensor") throws -> TensorBox {
    guard let h else { throw VisionError.invalidArgument("\(name) is NULL") }
    let raw = UnsafeMutableRawPointer(h)
    guard registry.contains(raw) else { throw HandleError(message: "\(name) is not a live vc_tensor (freed or invalid)") }
    return Unmanaged<TensorBox>.fromOpaque(raw).takeUnretainedValue()
}

func tensorArg(_ h: VCTensor?, _ name: String = "tensor") throws -> Tensor { try tensorBox(h, name).tensor }

func optionalTensorArg(_ h: VCTensor?, _ name: String) throws -> Tensor? { h == nil ? nil : try tensorArg(h, name) }

/// Stores a new handle in `*out` (which must not be NULL).
func output(_ out: UnsafeMutablePointer<VCTensor?>?, _ body: () throws -> Tensor) throws {
    guard let out else { throw VisionError.invalidArgument("out is NULL") }
    out.pointee = nil
    out.pointee = makeHandle(try body())
}

func releaseHandle(_ h: VCTensor?) -> Bool {
    guard let h else { return true }
    let raw = UnsafeMutableRawPointer(h)
    guard registry.remove(raw) else { return false }
    Unmanaged<TensorBox>.fromOpaque(raw).release()
    return true
}

/// Reads `n` int64 dims from a C array, refusing NULL, negative counts and ranks above the limit.
func shapeArg(_ p: UnsafePointer<Int64>?, _ n: Int32, _ name: String = "shape") throws -> [Int] {
    guard n >= 0, Int(n) <= Limits.maxRank else {
        throw VisionError.invalidArgument("\(name): ndim \(n) must be in 0...\(Limits.maxRank)")
    }
    if n == 0 { return [] }
    guard let p else { throw VisionError.invalidArgument("\(name) is NULL") }
    return (0..<Int(n)).map { Int(p[$0]) }
}

/// Reads `n` int64 values (e.g. stride/padding pairs) from a C array.
func intsArg(_ p: UnsafePointer<Int64>?, _ n: Int, _ name: String) throws -> [Int] {
    guard let p else { throw VisionError.invalidArgument("\(name) is NULL") }
    return (0..<n).map { Int(p[$0]) }
}

func stringArg(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String {
    guard let p else { throw VisionError.invalidArgument("\(name) is NULL") }
    return String(cString: p)
}

func dtypeArg(_ d: Int32) throws -> DType {
    guard let t = DType(rawValue: d) else { throw VisionError.invalidArgument("unknown dtype code \(d)") }
    return t
}
