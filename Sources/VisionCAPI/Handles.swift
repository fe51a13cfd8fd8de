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

/// Registry of live handles and their kinds, so that a freed, forged or foreign pointer (or a handle of another
/// kind) is reported instead of dereferenced.
private final class HandleRegistry: @unchecked Sendable {
    private var live = [UnsafeMutableRawPointer: ObjectIdentifier]()
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }
    func insert(_ p: UnsafeMutableRawPointer, _ kind: ObjectIdentifier) {
        pthread_mutex_lock(&lock); live[p] = kind; pthread_mutex_unlock(&lock)
    }
    func kind(_ p: UnsafeMutableRawPointer) -> ObjectIdentifier? {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return live[p]
    }
    var count: Int {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return live.count
    }
    func remove(_ p: UnsafeMutableRawPointer, _ kind: ObjectIdentifier) -> Bool {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        guard live[p] == kind else { return false }
        live[p] = nil
        return true
    }
}

private let registry = HandleRegistry()

/// The number of live handles of every kind (the C-API fuzzer checks that a call sequence leaks none).
func liveHandleCount() -> Int { registry.count }

/// Boxes a Swift object into a new registered handle (retained until `releaseObject`).
func registerObject<T: AnyObject>(_ object: T) -> OpaquePointer {
    let raw = Unmanaged.passRetained(object).toOpaque()
    registry.insert(raw, ObjectIdentifier(T.self))
    return OpaquePointer(raw)
}

/// The object behind a handle of kind `T`; throws for NULL, a stale pointer or a handle of another kind.
func object<T: AnyObject>(_ h: OpaquePointer?, _ type: T.Type, _ name: String, _ cName: String) throws -> T {
    guard let h else { throw VisionError.invalidArgument("\(name) is NULL") }
    let raw = UnsafeMutableRawPointer(h)
    guard registry.kind(raw) == ObjectIdentifier(T.self) else {
        throw HandleError(message: "\(name) is not a live \(cName) (freed or invalid)")
    }
    return Unmanaged<T>.fromOpaque(raw).takeUnretainedValue()
}

/// Releases a handle of kind `T`; NULL is a no-op; false for a stale or foreign pointer.
func releaseObject<T: AnyObject>(_ h: OpaquePointer?, _ type: T.Type) -> Bool {
    guard let h else { return true }
    let raw = UnsafeMutableRawPointer(h)
    guard registry.remove(raw, ObjectIdentifier(T.self)) else { return false }
    Unmanaged<T>.fromOpaque(raw).release()
    return true
}

func makeHandle(_ t: Tensor) -> VCTensor { registerObject(TensorBox(t)) }

/// The tensor behind a handle; throws for NULL or a pointer that is not a live `vc_tensor`.
func tensorBox(_ h: VCTensor?, _ name: String = "tensor") throws -> TensorBox {
    try object(h, TensorBox.self, name, "vc_tensor")
}

func tensorArg(_ h: VCTensor?, _ name: String = "tensor") throws -> Tensor { try tensorBox(h, name).tensor }

func optionalTensorArg(_ h: VCTensor?, _ name: String) throws -> Tensor? { h == nil ? nil : try tensorArg(h, name) }

/// Stores a new handle in `*out` (which must not be NULL).
func output(_ out: UnsafeMutablePointer<VCTensor?>?, _ body: () throws -> Tensor) throws {
    guard let out else { throw VisionError.invalidArgument("out is NULL") }
    out.pointee = nil
    out.pointee = makeHandle(try body())
}

func releaseHandle(_ h: VCTensor?) -> Bool { releaseObject(h, TensorBox.self) }

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
