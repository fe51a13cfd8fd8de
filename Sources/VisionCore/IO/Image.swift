#if canImport(Glibc)
import Glibc
#endif
import CStb

// Image files <-> tensors, on stb_image (decode), stb_image_write (encode) and stb_image_resize v0.97.
// Images are uint8 tensors of shape [H, W, C] (C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA); networks take float32
// [C, H, W] tensors made by `imageToTensor`. Every input is untrusted: sizes are checked before stb allocates,
// and every stb failure becomes a VisionError carrying stb's reason.

/// Encoded image formats that VisionCore writes.
/// C constants: VC_IMAGE_
public enum ImageFormat: Int32, Sendable, CaseIterable {
    case png = 0
    case jpeg = 1
}

/// Resampling filters of `resizeImage` (stb_image_resize's, with clamped edges).
/// `bilinear` is the triangle (tent) filter: bilinear interpolation when enlarging and, when shrinking, a tent
/// widened to the scale factor, which averages all covered pixels (like PIL's antialiased bilinear, not like
/// torch's interpolate with antialias=False). `bicubic` is stb's default pair: Catmull-Rom when enlarging,
/// Mitchell when shrinking.
/// C constants: VC_RESIZE_
public enum ResizeFilter: Int32, Sendable, CaseIterable {
    case bilinear = 0
    case bicubic = 1
    case box = 2
    case catmullRom = 3
    case mitchell = 4
    case bspline = 5

    var stb: stbir_filter {
        switch self {
        case .bilinear: return STBIR_FILTER_TRIANGLE
        case .bicubic: return STBIR_FILTER_DEFAULT
        case .box: return STBIR_FILTER_BOX
        case .catmullRom: return STBIR_FILTER_CATMULLROM
        case .mitchell: return STBIR_FILTER_MITCHELL
        case .bspline: return STBIR_FILTER_CUBICBSPLINE
        }
    }
}

/// Limits on images, checked before anything is allocated.
public enum ImageLimits {
    /// Largest width or height (stb_image is compiled with STBI_MAX_DIMENSIONS equal to this).
    public static let maxSide = 1 << 15
    /// Largest number of pixels (2^28: 1 GiB as RGBA), refused before decoding so that a lying header cannot
    /// make stb allocate more.
    public static let maxPixels = 1 << 28
    /// Largest image file read into memory.
    public static let maxFileBytes = 1 << 30
}

// MARK: - decoding

/// stb's failure reason, made printable. Some reasons embed bytes of the input (an unknown PNG chunk's type is
/// reported by its four bytes, which are NULs when the data is truncated), so non-printable bytes are dropped
/// and an empty reason is replaced.
private func stbReason() -> String {
    guard let r = stbi_failure_reason() else { return "corrupt or truncated data" }
    let text = String(decoding: UnsafeRawPointer(r).withMemoryRebound(to: UInt8.self, capacity: 1) { p in
        Array(UnsafeBufferPointer(start: p, count: strlen(r))).filter { $0 >= 0x20 && $0 < 0x7F }
    }, as: UTF8.self)
    return text.isEmpty ? "corrupt or truncated data" : text
}

private func checkChannels(_ channels: Int, _ op: String) throws {
    guard (1...4).contains(channels) else {
        throw VisionError.invalidArgument("\(op): channels must be 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA), got \(channels)")
    }
}

/// The container format named by the first bytes, or nil. Only PNG, JPEG and BMP are accepted: stb also guesses
/// at headerless formats (TGA), which would turn random bytes into "images".
private func sniffFormat(_ p: UnsafeRawBufferPointer) -> String? {
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    if p.count >= 8 && zip(p.prefix(8), png).allSatisfy({ $0 == $1 }) { return "PNG" }
    if p.count >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF { return "JPEG" }
    if p.count >= 2 && p[0] == 0x42 && p[1] == 0x4D { return "BMP" }
    return nil
}

/// Decodes a PNG, JPEG or BMP image held in memory into a uint8 [H, W, channels] tensor (channels 1...4; stb
/// converts: grey to RGB by replication, RGB to grey by luma, alpha added as 255 or dropped). 16-bit PNGs are
/// reduced to 8 bits.
///
/// Errors: `.invalidArgument` for channels outside 1...4; `.format` for empty, unrecognised, truncated or corrupt
/// data (with stb's reason, e.g. "outofdata", "bad zlib header"), and for images with a zero or over-limit side;
/// `.outOfMemory` for images above `ImageLimits.maxPixels` pixels.
public func decodeImage(_ data: UnsafeRawBufferPointer, channels: Int = 3) throws -> Tensor {
    try checkChannels(channels, "decode_image")
    guard data.count > 0, let base = data.baseAddress else { throw VisionError.format("decode_image: the data is empty") }
    guard data.count <= ImageLimits.maxFileBytes else {
        throw VisionError.outOfMemory("decode_image: \(data.count) bytes of encoded data exceed the limit of \(ImageLimits.maxFileBytes)")
    }
    guard let kind = sniffFormat(data) else {
        throw VisionError.format("decode_image: unrecognised image data (expected PNG, JPEG or BMP; \(data.count) bytes)")
    }
    if kind == "JPEG", let reason = jpegPrecheckFailure(data) {
        throw VisionError.format("decode_image: corrupt JPEG data: \(reason)")
    }
    if kind == "PNG", let reason = pngPrecheckFailure(data) {
        throw VisionError.format("decode_image: corrupt PNG data: \(reason)")
    }
    let bytes = base.assumingMemoryBound(to: UInt8.self)
    let len = Int32(data.count)
    var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
    // The header alone gives the size, so absurd images are refused before stb allocates their pixels.
    guard stbi_info_from_memory(bytes, len, &w, &h, &c) != 0 else {
        // stbi_info tries every format and leaves only "unknown image type"; a decode attempt stops at the same
        // header check (before allocating pixels) and leaves the specific reason, e.g. "too large".
        if let p = stbi_load_from_memory(bytes, len, &w, &h, &c, Int32(channels)) { stbi_image_free(p) }
        throw VisionError.format("decode_image: invalid \(kind) header: \(stbReason())")
    }
    try checkImageSize(Int(h), Int(w), "decode_image")
    guard let pixels = stbi_load_from_memory(bytes, len, &w, &h, &c, Int32(channels)) else {
        throw VisionError.format("decode_image: cannot decode \(kind) data: \(stbReason())")
    }
    defer { stbi_image_free(pixels) }
    // The full decode re-reads the header; check again rather than trust that both passes agree.
    try checkImageSize(Int(h), Int(w), "decode_image")
    return try Tensor(copying: UnsafeRawPointer(pixels), shape: [Int(h), Int(w), channels], dtype: .uint8)
}

/// Decodes an image held in a byte array (see `decodeImage(_:channels:)` for formats and errors).
public func decodeImage(_ data: [UInt8], channels: Int = 3) throws -> Tensor {
    try data.withUnsafeBytes { try decodeImage($0, channels: channels) }
}

/// Loads a PNG, JPEG or BMP file into a uint8 [H, W, channels] tensor (default RGB). Errors as
/// `decodeImage`, plus `.io` naming the path when the file cannot be opened or read.
public func loadImage(path: String, channels: Int = 3) throws -> Tensor {
    try checkChannels(channels, "load_image")
    let bytes = try FileIO.read(path, maxBytes: ImageLimits.maxFileBytes)
    do {
        return try decodeImage(bytes, channels: channels)
    } catch VisionError.format(let m) {
        throw VisionError.format("\(m) (file '\(path)')")
    }
}

private func checkImageSize(_ h: Int, _ w: Int, _ op: String) throws {
    guard h > 0, w > 0, h <= ImageLimits.maxSide, w <= ImageLimits.maxSide else {
        throw VisionError.format("\(op): image size \(w) x \(h) is empty or exceeds \(ImageLimits.maxSide) pixels per side")
    }
    guard h * w <= ImageLimits.maxPixels else {
        throw VisionError.outOfMemory("\(op): image size \(w) x \(h) exceeds the limit of \(ImageLimits.maxPixels) pixels")
    }
}

// MARK: - JPEG pre-check
//
// A structural check of JPEG streams before they reach stb_image 2.27 (the version Debian ships), whose decoder
// has two memory-safety bugs on malformed input, both found by fuzzing (tools/fuzz_images.py through the
// library, then an ASan/UBSan build of stb_image on the same mutations):
// - a DHT segment whose 16 code-length counts sum to more than 256 overflows the Huffman table arrays (a heap
//   write past `size[257]` and `values[256]`);
// - a scan that uses a Huffman table no DHT segment defined reads the table's uninitialised memory, and the
//   garbage code lengths index far outside the table.
// The check walks the marker segments the way stb reads them (bytes past the end read as 0) and refuses such
// streams; everything else is left to stb. Well-formed JPEGs always define the tables their scans use.

/// The reason a JPEG stream must not be handed to stb_image, or nil when it passes the check.
func jpegPrecheckFailure(_ d: UnsafeRawBufferPointer) -> String? {
    let n = d.count
    @inline(__always) func at(_ i: Int) -> Int { i >= 0 && i < n ? Int(d[i]) : 0 }
    guard n >= 2, at(0) == 0xFF, at(1) == 0xD8 else { return nil }
    var dcDefined = [false, false, false, false], acDefined = [false, false, false, false]
    var progressive = false
    var pos = 2
    while pos < n {
        guard at(pos) == 0xFF else { pos += 1; continue }
        while pos < n && at(pos) == 0xFF { pos += 1 }   // fill bytes
        if pos >= n { break }
        let marker = at(pos)
        pos += 1
        if marker == 0xD9 { break }                                    // EOI
        if marker == 0x00 || marker == 0x01 || (0xD0...0xD7).contains(marker) { continue } // no length
        let length = at(pos) << 8 | at(pos + 1)
        switch marker {
        case 0xC4:  // DHT: one or more tables
            var p = pos + 2, left = length - 2
            while left > 0 {
                let q = at(p), tableClass = q >> 4, id = q & 15
                // stb refuses these itself, before touching any table.
                if tableClass > 1 || id > 3 { return nil }
                var codes = 0
                for i in 1...16 { codes += at(p + i) }
                if codes > 256 { return "Huffman table with \(codes) codes (at most 256)" }
                if tableClass == 0 { dcDefined[id] = true } else { acDefined[id] = true }
                p += 17 + codes
                left -= 17 + codes
            }
        case 0xC2:
            progressive = true
        case 0xDA:  // SOS: check the tables of each component, then skip the entropy-coded data
            let components = at(pos + 2)
            let spectralStart = at(pos + 3 + 2 * components)
            for i in 0..<components {
                let t = at(pos + 4 + 2 * i), dc = t >> 4, ac = t & 15
                if dc > 3 || ac > 3 { return nil }   // stb refuses
                // Baseline scans decode with both tables; progressive DC scans only with the DC table and
                // progressive AC scans only with the AC table.
                if (!progressive || spectralStart == 0) && !dcDefined[dc] { return "scan uses undefined DC Huffman table \(dc)" }
                if (!progressive || spectralStart != 0) && !acDefined[ac] { return "scan uses undefined AC Huffman table \(ac)" }
            }
            pos += length
            // Entropy-coded data ends at the first marker other than a stuffed 0xFF00 or a restart marker.
            while pos + 1 < n && !(at(pos) == 0xFF && at(pos + 1) != 0 && !(0xD0...0xD7).contains(at(pos + 1))) { pos += 1 }
            continue
        default:
            break
        }
        if length < 2 { return nil }   // stb refuses a segment shorter than its own length field
        pos += length
    }
    return nil
}

// MARK: - PNG pre-check
//
// stb_image grows its IDAT buffer to a chunk's declared length (doubling up to 2 GiB) before reading the chunk,
// so a 60-byte PNG whose IDAT claims 2^31 - 1 bytes makes it allocate 2 GiB, only to fail with "outofdata"
// (found by Fuzz/fuzz_image: libFuzzer's malloc limit). Refuse IDAT chunks longer than the data that is left;
// stb would refuse them anyway, after the allocation.

/// The reason a PNG stream must not be handed to stb_image, or nil when it passes the check.
func pngPrecheckFailure(_ d: UnsafeRawBufferPointer) -> String? {
    var pos = 8   // after the signature
    while pos + 8 <= d.count {
        let length = Int(d[pos]) << 24 | Int(d[pos + 1]) << 16 | Int(d[pos + 2]) << 8 | Int(d[pos + 3])
        let type = Array(d[(pos + 4)..<(pos + 8)])
        if type == Array("IEND".utf8) { return nil }
        let left = d.count - pos - 8
        if type == Array("IDAT".utf8) && length > left {
            return "IDAT chunk of \(length) bytes but only \(left) bytes are left"
        }
        pos += 12 + length   // length, type, data, CRC
    }
    return nil
}

// MARK: - encoding

/// Validates a uint8 image tensor ([H, W, C] with C in 1...4, or [H, W] for grey) and returns it contiguous
/// with its (h, w, c).
private func imageArgument(_ image: Tensor, _ op: String) throws -> (Tensor, Int, Int, Int) {
    try image.requireDType(.uint8, op)
    guard image.rank == 3 || image.rank == 2 else {
        throw VisionError.shapeMismatch("\(op): image must be [H, W, C] (or [H, W] for grey), got shape \(image.shape)")
    }
    let h = image.shape[0], w = image.shape[1], c = image.rank == 3 ? image.shape[2] : 1
    guard (1...4).contains(c) else {
        throw VisionError.shapeMismatch("\(op): image must have 1 to 4 channels, got shape \(image.shape)")
    }
    guard h > 0, w > 0 else { throw VisionError.invalidArgument("\(op): image \(image.shape) is empty") }
    guard h <= ImageLimits.maxSide, w <= ImageLimits.maxSide, h * w <= ImageLimits.maxPixels else {
        throw VisionError.invalidArgument("\(op): image \(image.shape) exceeds the limits (\(ImageLimits.maxSide) per side, \(ImageLimits.maxPixels) pixels)")
    }
    return (try image.contiguous(), h, w, c)
}

/// Encodes a uint8 [H, W, C] image (C in 1...4, or [H, W]) as PNG or JPEG (`quality` 1...100, JPEG only;
/// JPEG drops the alpha channel). Returns the file's bytes.
public func encodeImage(_ image: Tensor, format: ImageFormat, quality: Int = 95) throws -> [UInt8] {
    let (img, h, w, c) = try imageArgument(image, "encode_image")
    guard (1...100).contains(quality) else {
        throw VisionError.invalidArgument("encode_image: JPEG quality must be in 1...100, got \(quality)")
    }
    // stb_image_write computes buffer sizes in int: keep (w*c + 1) * h well inside it.
    guard (w * c + 1) * h <= 1 << 30 else {
        throw VisionError.invalidArgument("encode_image: image \(image.shape) is too large to encode")
    }
    var out: UnsafeMutablePointer<UInt8>? = nil
    var length: Int32 = 0
    let px = UnsafePointer(img.pointer(UInt8.self))
    let status = withExtendedLifetime(img) { () -> Int32 in
        switch format {
        case .png: return cstb_write_png_mem(px, Int32(w), Int32(h), Int32(c), &out, &length)
        case .jpeg: return cstb_write_jpg_mem(px, Int32(w), Int32(h), Int32(c), Int32(quality), &out, &length)
        }
    }
    guard status == 0, let data = out, length > 0 else {
        if let out { cstb_free(out) }
        throw VisionError.outOfMemory("encode_image: stb_image_write failed to encode \(image.shape) as \(format)")
    }
    defer { cstb_free(data) }
    return Array(UnsafeBufferPointer(start: data, count: Int(length)))
}

/// The format that a file name's extension names (.png, .jpg, .jpeg, any case), or nil.
public func imageFormat(forPath path: String) -> ImageFormat? {
    guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return nil }
    switch path[path.index(after: dot)...].lowercased() {
    case "png": return .png
    case "jpg", "jpeg": return .jpeg
    default: return nil
    }
}

/// Saves a uint8 [H, W, C] image as PNG or JPEG, chosen by the extension of `path` (.png, .jpg, .jpeg).
/// The file is replaced atomically. Errors: `.invalidArgument` for another extension or a bad quality, `.io`
/// naming the path when it cannot be written.
public func saveImage(_ image: Tensor, path: String, quality: Int = 95) throws {
    guard let format = imageFormat(forPath: path) else {
        throw VisionError.invalidArgument("save_image: cannot tell the format of '\(path)': use a .png, .jpg or .jpeg name")
    }
    let bytes = try encodeImage(image, format: format, quality: quality)
    // Atomic (temporary file + rename): an interrupted save never leaves a truncated image behind.
    try bytes.withUnsafeBytes { try FileIO.writeAtomically(path, $0) }
}

// MARK: - conversion and resizing

/// Converts a uint8 [H, W, C] image (or [H, W]) to a float32 [C, H, W] tensor: x / 255, then (x - mean[c]) /
/// std[c]. `mean` and `std` hold C values, or one value for all channels, or are both empty for no
/// normalisation. Errors: wrong counts, or a std value that is 0, negative or not finite.
public func imageToTensor(_ hwc: Tensor, mean: [Float] = [], std: [Float] = []) throws -> Tensor {
    let (img, h, w, c) = try imageArgument(hwc, "image_to_tensor")
    guard mean.count == std.count, mean.isEmpty || mean.count == c || mean.count == 1 else {
        throw VisionError.invalidArgument("image_to_tensor: mean and std need \(c) values each (or 1, or none) for image \(hwc.shape), got \(mean.count) and \(std.count)")
    }
    guard std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy({ $0.isFinite }) else {
        throw VisionError.invalidArgument("image_to_tensor: std must be positive and finite and mean finite, got mean \(mean), std \(std)")
    }
    let out = try Tensor.uninitialized([c, h, w], dtype: .float32)
    let src = SendablePointer(img.pointer(UInt8.self)), dst = SendablePointer(out.pointer(Float.self))
    let plane = h * w
    // Folding /255 and the normalisation into one multiply-add per element: x * (1 / (255 std)) - mean / std.
    let scale = (0..<c).map { ch in std.isEmpty ? Float(1) / 255 : 1 / (255 * std[std.count == 1 ? 0 : ch]) }
    let shift = (0..<c).map { ch in mean.isEmpty ? Float(0) : -mean[mean.count == 1 ? 0 : ch] / std[std.count == 1 ? 0 : ch] }
    withExtendedLifetime(img) {
        parallelFor(h, minChunk: max(1, 16384 / max(w * c, 1))) { rows in
            for ch in 0..<c {
                let a = scale[ch], b = shift[ch]
                for y in rows {
                    let s = src.p + y * w * c + ch, d = dst.p + ch * plane + y * w
                    for x in 0..<w { d[x] = Float(s[x * c]) * a + b }
                }
            }
        }
    }
    return out
}

/// Resizes an image to `height` x `width`: a uint8 [H, W, C] image (or [H, W]) stays uint8 HWC; a float32
/// [C, H, W] or [N, C, H, W] tensor is resized plane by plane. Edges are clamped (replicated).
///
/// Cubic filters overshoot near sharp edges; uint8 results are clamped to 0...255 by stb, and float results are
/// clamped to the range of their input plane, so resizing never creates values the input did not span (NaN
/// propagates). Sizes must be positive and within `ImageLimits`.
public func resizeImage(_ image: Tensor, height: Int, width: Int, filter: ResizeFilter = .bilinear) throws -> Tensor {
    guard height > 0, width > 0, height <= ImageLimits.maxSide, width <= ImageLimits.maxSide,
          height * width <= ImageLimits.maxPixels else {
        throw VisionError.invalidArgument("resize_image: output size \(height) x \(width) must be positive and within \(ImageLimits.maxSide) per side and \(ImageLimits.maxPixels) pixels")
    }
    switch image.dtype {
    case .uint8: return try resizeUInt8(image, height, width, filter)
    case .float32: return try resizeFloat(image, height, width, filter)
    default:
        throw VisionError.dtypeMismatch("resize_image: expected a uint8 [H, W, C] image or a float32 [C, H, W] tensor, got \(image.dtype)")
    }
}

private func resizeUInt8(_ image: Tensor, _ oh: Int, _ ow: Int, _ filter: ResizeFilter) throws -> Tensor {
    let (img, h, w, c) = try imageArgument(image, "resize_image")
    let out = try Tensor.uninitialized(image.rank == 3 ? [oh, ow, c] : [oh, ow], dtype: .uint8)
    let ok = withExtendedLifetime(img) {
        stbir_resize_uint8_generic(img.pointer(UInt8.self), Int32(w), Int32(h), Int32(w * c),
                                   out.pointer(UInt8.self), Int32(ow), Int32(oh), Int32(ow * c), Int32(c),
                                   -1, 0, STBIR_EDGE_CLAMP, filter.stb, STBIR_COLORSPACE_LINEAR, nil)
    }
    guard ok != 0 else { throw VisionError.outOfMemory("resize_image: stb_image_resize failed for \(image.shape) -> \(oh) x \(ow)") }
    return out
}

private func resizeFloat(_ image: Tensor, _ oh: Int, _ ow: Int, _ filter: ResizeFilter) throws -> Tensor {
    guard image.rank == 3 || image.rank == 4 else {
        throw VisionError.shapeMismatch("resize_image: a float32 tensor must be [C, H, W] or [N, C, H, W], got \(image.shape)")
    }
    let h = image.shape[image.rank - 2], w = image.shape[image.rank - 1]
    guard h > 0, w > 0, h <= ImageLimits.maxSide, w <= ImageLimits.maxSide else {
        throw VisionError.invalidArgument("resize_image: input \(image.shape) has an empty or over-limit spatial size")
    }
    let planes = image.shape.dropLast(2).reduce(1, *)
    let out = try Tensor.uninitialized(Array(image.shape.dropLast(2)) + [oh, ow], dtype: .float32)
    let src = try image.contiguous()
    if out.count == 0 { return out }
    let ps = SendablePointer(src.pointer(Float.self)), po = SendablePointer(out.pointer(Float.self))
    // One flag per plane, so that threads never write the same memory.
    var failures = [Bool](repeating: false, count: planes)
    failures.withUnsafeMutableBufferPointer { flags in
        guard let base = flags.baseAddress else { return }
        let pf = SendablePointer(base)
        withExtendedLifetime(src) {
            parallelFor(planes) { range in
                for p in range {
                    let s = ps.p + p * h * w, d = po.p + p * oh * ow
                    let ok = stbir_resize_float_generic(s, Int32(w), Int32(h), Int32(w * 4), d, Int32(ow), Int32(oh),
                                                        Int32(ow * 4), 1, -1, 0, STBIR_EDGE_CLAMP, filter.stb,
                                                        STBIR_COLORSPACE_LINEAR, nil)
                    if ok == 0 { pf.p[p] = true; continue }
                    var lo = Float.infinity, hi = -Float.infinity
                    for i in 0..<(h * w) where !s[i].isNaN { lo = min(lo, s[i]); hi = max(hi, s[i]) }
                    if lo > hi { continue }
                    for i in 0..<(oh * ow) where !d[i].isNaN { d[i] = min(max(d[i], lo), hi) }
                }
            }
        }
    }
    let failed = failures.contains(true)
    guard !failed else { throw VisionError.outOfMemory("resize_image: stb_image_resize failed for \(image.shape) -> \(oh) x \(ow)") }
    return out
}
