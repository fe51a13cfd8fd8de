#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VisionCore

/// A PNG encoder written independently of stb (stored zlib blocks, explicit CRC-32 and Adler-32, None and Sub
/// row filters), so that decoding is checked against bytes stb did not produce.
enum HandPNG {
    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc32(body))
    }

    static func zlibStored(_ raw: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65535, raw.count - i)
            let final: UInt8 = i + n == raw.count ? 1 : 0
            out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += raw[i..<(i + n)]
            i += n
        } while i < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for x in raw { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        return out + be32((b << 16) | a)
    }

    /// An 8-bit RGB PNG of `pixels` (h * w * 3 bytes); odd rows use the Sub filter.
    static func rgb(width w: Int, height h: Int, pixels: [UInt8], headerWidth: Int? = nil, headerHeight: Int? = nil) -> [UInt8] {
        var raw = [UInt8]()
        for y in 0..<h {
            let row = Array(pixels[(y * w * 3)..<((y + 1) * w * 3)])
            if y % 2 == 0 {
                raw.append(0); raw += row
            } else {
                raw.append(1)
                for i in 0..<row.count { raw.append(row[i] &- (i >= 3 ? row[i - 3] : 0)) }
            }
        }
        let ihdr = be32(UInt32(headerWidth ?? w)) + be32(UInt32(headerHeight ?? h)) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", zlibStored(raw))
            + chunk("IEND", [])
    }

    static func testPixels(width w: Int, height h: Int) -> [UInt8] {
        var p = [UInt8]()
        for y in 0..<h { for x in 0..<w { p += [UInt8(x * 7 % 256), UInt8(y * 5 % 256), UInt8(x * y % 256)] } }
        return p
    }
}

@Suite struct ImageIOTests {
    static let fixture = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).dropLast()
        .joined(separator: "/") + "/Fixtures/chelsea_crop_64x48.png"

    static func tempPath(_ name: String) -> String { "/tmp/visioncore-imageio-\(getpid())-\(name)" }

    static func randomImage(_ h: Int, _ w: Int, _ c: Int, seed: UInt64) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try Tensor((0..<(h * w * c)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, shape: [h, w, c])
    }

    /// Decoding must throw a VisionError or return a well-formed image; anything else (a crash) fails the run.
    static func decodesOrThrows(_ bytes: [UInt8]) -> Bool {
        do {
            let t = try decodeImage(bytes, channels: 3)
            return t.rank == 3 && t.shape[2] == 3 && t.shape[0] > 0 && t.shape[1] > 0 && t.dtype == .uint8
        } catch is VisionError {
            return true
        } catch {
            return false
        }
    }

    @Test func handBuiltPNGDecodesExactly() throws {
        let (w, h) = (40, 30)
        let pixels = HandPNG.testPixels(width: w, height: h)
        let png = HandPNG.rgb(width: w, height: h, pixels: pixels)
        let rgb = try decodeImage(png)
        #expect(rgb.shape == [30, 40, 3])
        #expect(try rgb.toArray(UInt8.self) == pixels)
        let px = try rgb.toArray(UInt8.self)
        #expect(Array(px[(3 * 40 + 5) * 3..<(3 * 40 + 5) * 3 + 3]) == [35, 15, 15])
        let rgba = try decodeImage(png, channels: 4).toArray(UInt8.self)
        for i in 0..<(w * h) {
            #expect(Array(rgba[4 * i..<4 * i + 3]) == Array(pixels[3 * i..<3 * i + 3]) && rgba[4 * i + 3] == 255)
        }
        #expect(try decodeImage(png, channels: 1).shape == [30, 40, 1])
    }

    @Test func fixtureDecodes() throws {
        let img = try loadImage(path: Self.fixture)
        #expect(img.shape == [48, 64, 3])
        let p = try img.toArray(UInt8.self)
        #expect(Array(p[0..<3]) == [148, 103, 64])
        #expect(Array(p[(10 * 64 + 20) * 3..<(10 * 64 + 20) * 3 + 3]) == [162, 127, 95])
        #expect(p.reduce(0) { $0 + Int($1) } == 872_343)
    }

    @Test func pngRoundTripIsExactAndJPEGIsClose() throws {
        for c in 1...4 {
            let img = try Self.randomImage(13, 17, c, seed: UInt64(c))
            let back = try decodeImage(try encodeImage(img, format: .png), channels: c)
            #expect(try back.toArray(UInt8.self) == img.toArray(UInt8.self))
        }
        // A natural image survives JPEG at quality 95 within a few grey levels on average.
        let img = try loadImage(path: Self.fixture)
        let jpeg = try encodeImage(img, format: .jpeg, quality: 95)
        #expect(Array(jpeg.prefix(2)) == [0xFF, 0xD8])
        let back = try decodeImage(jpeg).toArray(UInt8.self), orig = try img.toArray(UInt8.self)
        let diffs = zip(back, orig).map { abs(Int($0) - Int($1)) }
        #expect(Double(diffs.reduce(0, +)) / Double(diffs.count) < 3)
        #expect(diffs.max() ?? 0 < 40)
        #expect(throws: VisionError.self) { try encodeImage(img, format: .jpeg, quality: 0) }
        #expect(throws: VisionError.self) { try encodeImage(try Tensor.zeros([4, 4, 5], dtype: .uint8), format: .png) }
        #expect(throws: VisionError.self) { try encodeImage(try Tensor.zeros([4, 4, 3]), format: .png) }
    }

    @Test func saveAndLoadFiles() throws {
        let img = try Self.randomImage(9, 11, 3, seed: 7)
        let png = Self.tempPath("a.PNG"), jpg = Self.tempPath("b.jpeg")
        defer { unlink(png); unlink(jpg) }
        try saveImage(img, path: png)
        #expect(try loadImage(path: png).toArray(UInt8.self) == img.toArray(UInt8.self))
        try saveImage(img, path: jpg, quality: 90)
        #expect(try loadImage(path: jpg).shape == [9, 11, 3])
        #expect(try loadImage(path: png, channels: 1).shape == [9, 11, 1])
        #expect(throws: VisionError.self) { try saveImage(img, path: Self.tempPath("c.gif")) }
        #expect(throws: VisionError.self) { try saveImage(img, path: "/nonexistent-dir/x.png") }
    }

    @Test func fileErrorsNameThePath() throws {
        let missing = "/nonexistent/visioncore/missing.png"
        do { _ = try loadImage(path: missing); Issue.record("expected an error") }
        catch VisionError.io(let m) { #expect(m.contains(missing)) }
        #expect(throws: VisionError.self) { try loadImage(path: "/tmp") }
        let empty = Self.tempPath("empty.png")
        defer { unlink(empty) }
        try [UInt8]().withUnsafeBytes { try FileIO.writeAtomically(empty, $0) }
        do { _ = try loadImage(path: empty); Issue.record("expected an error") }
        catch VisionError.format(let m) { #expect(m.contains("empty")) }
        #expect(throws: VisionError.self) { try loadImage(path: Self.fixture, channels: 0) }
        #expect(throws: VisionError.self) { try loadImage(path: Self.fixture, channels: 5) }
    }

    @Test func malformedDataIsRefused() throws {
        #expect(throws: VisionError.self) { try decodeImage([UInt8]()) }
        #expect(throws: VisionError.self) { try decodeImage(Array("GIF89a not supported".utf8)) }
        #expect(throws: VisionError.self) { try decodeImage([UInt8](repeating: 0x41, count: 1000)) }
        let pixels = HandPNG.testPixels(width: 4, height: 4)
        // Headers that lie about the size: beyond STBI_MAX_DIMENSIONS, beyond the pixel limit, and zero.
        for (hw, hh) in [(100_000, 100_000), (20_000, 20_000), (0, 4), (4, 0), (Int(UInt32.max), 1)] {
            let png = HandPNG.rgb(width: 4, height: 4, pixels: pixels, headerWidth: hw, headerHeight: hh)
            #expect(throws: VisionError.self, "header \(hw) x \(hh)") { try decodeImage(png) }
        }
        do {
            _ = try decodeImage(HandPNG.rgb(width: 4, height: 4, pixels: pixels, headerWidth: 100_000, headerHeight: 100_000))
        } catch let e as VisionError {
            #expect(e.message.contains("PNG"))
        }
    }

    /// stb_image 2.27 overflows its Huffman tables on a DHT with more than 256 codes and reads uninitialised
    /// tables when a scan uses one that was never defined; both must be refused before stb sees them.
    @Test func jpegWithBadHuffmanTablesIsRefused() throws {
        let jpeg = try encodeImage(try loadImage(path: Self.fixture), format: .jpeg, quality: 80)
        let sos = (0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA } ?? jpeg.count
        let tables = (0..<sos).filter { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC4 }
        #expect(!tables.isEmpty)
        guard let dht = tables.first else { return }
        var oversized = jpeg
        for i in 0..<16 { oversized[dht + 5 + i] = 0xFF }   // 16 x 255 codes in the first table
        do { _ = try decodeImage(oversized); Issue.record("expected an error") }
        catch VisionError.format(let m) { #expect(m.contains("Huffman table")) }
        var undefined = jpeg
        for i in tables { undefined[i + 1] = 0xFE }   // every DHT becomes a comment
        do { _ = try decodeImage(undefined); Issue.record("expected an error") }
        catch VisionError.format(let m) { #expect(m.contains("undefined")) }
        // The untouched stream passes the check and decodes.
        #expect(try decodeImage(jpeg).shape == [48, 64, 3])
    }

    @Test func truncatedDataNeverCrashes() throws {
        let png = try FileIO.read(Self.fixture)
        for n in stride(from: 0, to: png.count, by: 7) { #expect(Self.decodesOrThrows(Array(png.prefix(n))), "PNG length \(n)") }
        #expect(throws: VisionError.self) { try decodeImage(Array(png.prefix(png.count / 2))) }
        let jpeg = try encodeImage(try loadImage(path: Self.fixture), format: .jpeg, quality: 80)
        for n in stride(from: 0, to: jpeg.count, by: 5) { #expect(Self.decodesOrThrows(Array(jpeg.prefix(n))), "JPEG length \(n)") }
    }

    @Test func bitFlipsNeverCrash() throws {
        let img = try loadImage(path: Self.fixture)
        let sources: [(String, [UInt8])] = [("png", try FileIO.read(Self.fixture)),
                                            ("hand png", HandPNG.rgb(width: 16, height: 8, pixels: HandPNG.testPixels(width: 16, height: 8))),
                                            ("jpeg", try encodeImage(img, format: .jpeg, quality: 75))]
        var rng = RandomGenerator(seed: 2024)
        var decoded = 0, refused = 0
        for (name, bytes) in sources {
            for variant in 0..<150 {
                var b = bytes
                // 1 to 4 flipped bits, at least one in the first 200 bytes where the headers live.
                for k in 0..<(1 + Int(rng.next() % 4)) {
                    let pos = k == 0 ? Int(rng.next() % UInt64(min(200, b.count))) : Int(rng.next() % UInt64(b.count))
                    b[pos] ^= UInt8(1 << (rng.next() % 8))
                }
                #expect(Self.decodesOrThrows(b), "\(name) variant \(variant)")
                if (try? decodeImage(b)) != nil { decoded += 1 } else { refused += 1 }
            }
        }
        #expect(refused > 0)
    }

    @Test func imageToTensorNormalises() throws {
        let img = try Tensor([UInt8(0), 255, 51, 102, 204, 255], shape: [1, 2, 3])
        let t = try imageToTensor(img)
        #expect(t.shape == [3, 1, 2])
        for (a, b) in zip(try t.toArray(Float.self), [Float(0), 0.4, 1, 0.8, 0.2, 1]) { #expect(abs(a - b) < 1e-6) }
        let n = try imageToTensor(img, mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.5]).toArray(Float.self)
        let expected: [Float] = [-1, -0.2, 2, 1.2, -0.6, 1]
        for (a, b) in zip(n, expected) { #expect(abs(a - b) < 1e-6) }
        #expect(try imageToTensor(try Tensor.zeros([2, 2], dtype: .uint8)).shape == [1, 2, 2])
        #expect(throws: VisionError.self) { try imageToTensor(img, mean: [0.5, 0.5], std: [1, 1]) }
        #expect(throws: VisionError.self) { try imageToTensor(img, mean: [0, 0, 0], std: [1, 0, 1]) }
        #expect(throws: VisionError.self) { try imageToTensor(try Tensor.zeros([1, 2, 3])) }
    }

    @Test func resizeKeepsRangesAndShapes() throws {
        let img = try loadImage(path: Self.fixture)
        // Same size with the tent filter is the identity.
        #expect(try resizeImage(img, height: 48, width: 64).toArray(UInt8.self) == img.toArray(UInt8.self))
        for filter in ResizeFilter.allCases {
            let small = try resizeImage(img, height: 20, width: 30, filter: filter)
            #expect(small.shape == [20, 30, 3])
            let c = try resizeImage(try Tensor.full([7, 5, 2], value: 77, dtype: .uint8), height: 13, width: 3, filter: filter)
            #expect(try c.toArray(UInt8.self).allSatisfy { $0 == 77 })
        }
        // A sharp step enlarged with cubic filters overshoots inside stb; the float result is clamped to [0, 1].
        var step = [Float](repeating: 0, count: 2 * 8 * 8)
        for i in 0..<step.count where i % 8 >= 4 { step[i] = 1 }
        let x = try Tensor(step, shape: [2, 8, 8])
        for filter in [ResizeFilter.bicubic, .catmullRom, .mitchell] {
            let y = try resizeImage(x, height: 8, width: 31, filter: filter).toArray(Float.self)
            #expect(y.allSatisfy { $0 >= 0 && $0 <= 1 })
            #expect(y.contains { $0 > 0.2 && $0 < 0.8 })
        }
        let t = try imageToTensor(img)
        #expect(try resizeImage(t, height: 48, width: 64).toArray(Float.self) == t.toArray(Float.self))
        #expect(try resizeImage(try t.unsqueeze(axis: 0), height: 10, width: 12).shape == [1, 3, 10, 12])
        #expect(throws: VisionError.self) { try resizeImage(img, height: 0, width: 5) }
        #expect(throws: VisionError.self) { try resizeImage(img, height: 40_000, width: 5) }
        #expect(throws: VisionError.self) { try resizeImage(try Tensor.zeros([3, 3], dtype: .int32), height: 2, width: 2) }
        #expect(throws: VisionError.self) { try resizeImage(try Tensor.zeros([3, 0, 3]), height: 2, width: 2) }
    }
}
