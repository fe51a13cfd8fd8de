// Shared by every fuzz target: turns libFuzzer's bytes into structured choices (like LLVM's FuzzedDataProvider),
// and the failure report that makes libFuzzer save the input.
#if canImport(Glibc)
import Glibc
#endif

/// Reads small integers and choices from the fuzz input; once the bytes run out every read returns 0, so any
/// input, however short, is a valid program.
struct FuzzInput {
    let bytes: UnsafeRawBufferPointer
    var i = 0

    init(_ start: UnsafeRawPointer, _ count: Int) { bytes = UnsafeRawBufferPointer(start: start, count: count) }

    var isEmpty: Bool { i >= bytes.count }

    mutating func byte() -> UInt8 {
        guard i < bytes.count else { return 0 }
        defer { i += 1 }
        return bytes[i]
    }

    /// An integer in `range` (both ends included), from one or two bytes.
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        let span = range.upperBound - range.lowerBound + 1
        let raw = span <= 256 ? Int(byte()) : Int(byte()) | Int(byte()) << 8
        return range.lowerBound + raw % span
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    mutating func pick<T>(_ choices: [T]) -> T { choices[int(0...(choices.count - 1))] }

    /// A float from a small table of ordinary and special values, or raw bits.
    mutating func float() -> Float {
        let table: [Float] = [0, 1, -1, 0.5, 2, -3.25, 1e-3, 100, .infinity, -.infinity, .nan, -0.0,
                              .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let k = int(0...15)
        if k < table.count { return table[k] }
        return Float(bitPattern: UInt32(byte()) | UInt32(byte()) << 8 | UInt32(byte()) << 16 | UInt32(byte()) << 24)
    }

    /// The rest of the input.
    mutating func rest() -> UnsafeRawBufferPointer {
        let r = UnsafeRawBufferPointer(rebasing: bytes[min(i, bytes.count)...])
        i = bytes.count
        return r
    }
}

/// Reports a broken oracle and aborts, which makes libFuzzer save the input as a crash.
func fuzzFail(_ message: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fputs("FUZZ ORACLE FAILED (\(file):\(line)): \(message)\n", stderr)
    abort()
}
