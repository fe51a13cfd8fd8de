/// Every failure VisionCore reports. Each case carries a message that names the operation and the offending
/// values; the C layer maps the case to a `vc_status` code and the message to `vc_last_error_message()`.
public enum VisionError: Error, Equatable, CustomStringConvertible {
    /// An argument has a bad value: a negative size, an out-of-range axis, a NULL pointer.
    case invalidArgument(String)
    /// Tensor shapes do not fit together.
    case shapeMismatch(String)
    /// A tensor has a dtype the operation does not accept.
    case dtypeMismatch(String)
    /// A file could not be opened, read or written.
    case io(String)
    /// A file or buffer is malformed: bad header, out-of-bounds offsets, undecodable image.
    case format(String)
    /// An allocation failed or a requested size exceeds the library's limits.
    case outOfMemory(String)
    /// The operation is valid but not implemented for these arguments.
    case unsupported(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .shapeMismatch(let m), .dtypeMismatch(let m), .io(let m), .format(let m),
             .outOfMemory(let m), .unsupported(let m):
            return m
        }
    }

    public var description: String { message }
}

/// Limits that keep absurd requests from reaching the allocator.
public enum Limits {
    /// Largest number of dimensions a tensor may have.
    public static let maxRank = 16
    /// Largest single allocation, in bytes (64 GiB): beyond it a request is an error, not an attempt.
    public static let maxBytes = 1 << 36
}
