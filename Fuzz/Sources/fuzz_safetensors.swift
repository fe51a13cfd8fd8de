// bytes -> Safetensors.decode. Oracle: no crash; anything other than a VisionError is a bug; a file that decodes
// re-encodes (same stored dtypes and metadata) to bytes that decode to identical tensors.
import VisionCore

/// Element-wise equality of two tensors of one dtype, NaN equal to NaN (F16/BF16 NaN payloads may be
/// canonicalised by the writer).
func sameTensor(_ a: Tensor, _ b: Tensor) -> Bool {
    guard a.dtype == b.dtype, a.shape == b.shape else { return false }
    switch a.dtype {
    case .float32:
        guard let x = try? a.toArray(Float.self), let y = try? b.toArray(Float.self) else { return false }
        return zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    case .int32: return (try? a.toArray(Int32.self)) == (try? b.toArray(Int32.self))
    case .int64: return (try? a.toArray(Int64.self)) == (try? b.toArray(Int64.self))
    case .uint8: return (try? a.toArray(UInt8.self)) == (try? b.toArray(UInt8.self))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    let buf = UnsafeRawBufferPointer(start: data, count: count)
    let file: SafetensorsFile
    do {
        file = try Safetensors.decode(buf)
    } catch is VisionError {
        return 0
    } catch {
        fuzzFail("decode threw a non-VisionError: \(error)")
    }
    let storeAs = Dictionary(file.entries.map { ($0.name, $0.stored) }, uniquingKeysWith: { a, _ in a })
    let bytes: [UInt8]
    do {
        bytes = try Safetensors.encode(file.entries.map { ($0.name, $0.tensor) }, metadata: file.metadata, storeAs: storeAs)
    } catch {
        fuzzFail("a decoded file does not re-encode: \(error)")
    }
    let again: SafetensorsFile
    do {
        again = try bytes.withUnsafeBytes { try Safetensors.decode($0) }
    } catch {
        fuzzFail("a re-encoded file does not decode: \(error)")
    }
    guard again.names == file.names else { fuzzFail("names \(file.names) became \(again.names)") }
    guard again.metadata.map(\.0) == file.metadata.map(\.0), again.metadata.map(\.1) == file.metadata.map(\.1) else {
        fuzzFail("metadata changed in the round trip")
    }
    for (x, y) in zip(file.entries, again.entries) {
        guard x.stored == y.stored else { fuzzFail("'\(x.name)' stored as \(x.stored) became \(y.stored)") }
        guard sameTensor(x.tensor, y.tensor) else { fuzzFail("'\(x.name)' \(x.tensor.shape) changed in the round trip") }
    }
    return 0
}
