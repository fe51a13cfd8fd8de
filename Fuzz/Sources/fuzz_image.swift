// bytes -> decodeImage (PNG/JPEG/BMP through stb_image and the library's checks), like stb's own
// tests/stbi_read_fuzzer.c. The first byte picks the channel count (0...5: 0 and 5 must be refused).
// Oracle: no crash (ASan watches stb), only VisionErrors, and a decoded image is a uint8 [H, W, C] tensor within
// ImageLimits.
import VisionCore
import CStb

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 1 else { return 0 }
    let channels = Int(data.load(as: UInt8.self) % 6)
    let body = UnsafeRawBufferPointer(start: data + 1, count: count - 1)
    // A header that is valid and within the limits may still ask for up to 1 GiB of pixels; that is allowed, but
    // not what a fuzzer with a 2 GB memory cap should try (stb's fuzzer skips above 80 MB in the same way).
    // Over-limit headers still go through, and must be refused before anything is allocated.
    if count > 1 {
        var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
        if stbi_info_from_memory(body.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(body.count), &w, &h, &c) != 0 {
            let pixels = Int(w) * Int(h)
            if pixels > 1 << 24 && pixels <= ImageLimits.maxPixels && Int(w) <= ImageLimits.maxSide && Int(h) <= ImageLimits.maxSide {
                return 0
            }
        }
    }
    do {
        let t = try decodeImage(body, channels: channels)
        guard (1...4).contains(channels) else { fuzzFail("channels \(channels) was accepted") }
        guard t.dtype == .uint8, t.rank == 3, t.shape[2] == channels else { fuzzFail("decoded \(t.dtype) \(t.shape)") }
        let (h, w) = (t.shape[0], t.shape[1])
        guard h > 0, w > 0, h <= ImageLimits.maxSide, w <= ImageLimits.maxSide, h * w <= ImageLimits.maxPixels else {
            fuzzFail("decoded image \(t.shape) exceeds ImageLimits")
        }
        _ = try? t.toArray(UInt8.self).reduce(0, &+)   // touch every pixel (ASan, uninitialised reads under MSan)
    } catch is VisionError {
        return 0
    } catch {
        fuzzFail("decodeImage threw a non-VisionError: \(error)")
    }
    return 0
}
