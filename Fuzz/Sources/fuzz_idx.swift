// bytes -> IDX.decode, directly (first byte even) or through Gzip.decompress (first byte odd). Oracle: no crash;
// anything other than a VisionError is a bug; a decoded uint8, int32 or float32 file (types 08, 0C, 0D)
// re-encodes to exactly the input bytes.
import VisionCore
import VisionData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 1 else { return 0 }
    let all = Array(UnsafeRawBufferPointer(start: data, count: count))
    var bytes = Array(all.dropFirst())
    do {
        // A 16 MiB output limit keeps the fuzzer's memory bounded; the limit itself is part of what is tested.
        if all[0] & 1 == 1 { bytes = try Gzip.decompress(bytes, maxOutputBytes: 1 << 24) }
        let t = try IDX.decode(bytes)
        guard bytes.count > 2, [0x08, 0x0C, 0x0D].contains(bytes[2]) else { return 0 }
        let again = try IDX.encode(t)
        guard again == bytes else { fuzzFail("IDX type \(bytes[2]) shape \(t.shape) does not re-encode to its input") }
    } catch is VisionError {
        return 0
    } catch {
        fuzzFail("threw a non-VisionError: \(error)")
    }
    return 0
}
