#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// Result codes of every fallible `vc_` call (0 = success). Append only: values are ABI.
/// C constants: VC_
public enum VCStatus: Int32 {
    case ok = 0
    case invalidArgument = 1
    case shapeMismatch = 2
    case dtypeMismatch = 3
    case ioError = 4
    case formatError = 5
    case outOfMemory = 6
    case unsupported = 7
    case invalidHandle = 8
    case internalError = 9
}

/// Thread-local storage for the last error message (a malloc'ed C string owned by the key).
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

func setLastError(_ message: String) {
    if let old = pthread_getspecific(lastErrorKey) { free(old) }
    pthread_setspecific(lastErrorKey, strdup(message))
}

/// Runs the body of a C entry point: maps thrown errors to a status code and the thread's last-error message.
func capi(_ function: String = #function, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return VCStatus.ok.rawValue
    } catch let e as VisionError {
        let name = function.split(separator: "(").first.map(String.init) ?? function
        setLastError("\(name): \(e.message)")
        switch e {
        case .invalidArgument: return VCStatus.invalidArgument.rawValue
        case .shapeMismatch: return VCStatus.shapeMismatch.rawValue
        case .dtypeMismatch: return VCStatus.dtypeMismatch.rawValue
        case .io: return VCStatus.ioError.rawValue
        case .format: return VCStatus.formatError.rawValue
        case .outOfMemory: return VCStatus.outOfMemory.rawValue
        case .unsupported: return VCStatus.unsupported.rawValue
        }
    } catch let e as HandleError {
        setLastError("\(function.split(separator: "(").first.map(String.init) ?? function): \(e.message)")
        return VCStatus.invalidHandle.rawValue
    } catch {
        setLastError("\(function): \(error)")
        return VCStatus.internalError.rawValue
    }
}

/// The message of the last failed call on this thread, or an empty string. Valid until the next failing call
/// on the same thread.
@c public func vc_last_error_message() -> UnsafePointer<CChar>? {
    if let p = pthread_getspecific(lastErrorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return UnsafePointer(emptyMessage)
}

nonisolated(unsafe) private let emptyMessage: UnsafeMutablePointer<CChar> = strdup("")!

/// The library version as "major.minor.patch".
@c public func vc_version() -> UnsafePointer<CChar>? { UnsafePointer(versionString) }

nonisolated(unsafe) private let versionString: UnsafeMutablePointer<CChar> = strdup("0.1.0")!

/// Sets the number of threads used by VisionCore's kernels (1...256); OpenBLAS always runs on one of them.
@c public func vc_set_num_threads(_ n: Int32) -> Int32 {
    capi { try Threading.setThreadCount(Int(n)) }
}

/// The number of threads VisionCore's kernels use.
@c public func vc_get_num_threads() -> Int32 { Int32(clamping: Threading.threadCount) }
