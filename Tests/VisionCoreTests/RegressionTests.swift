#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VisionCore

/// Inputs that crashed (or broke an oracle of) a fuzz target in Fuzz/, kept in Fixtures/regressions/ and named
/// `<target>-<what>`: file inputs are fed to their decoder here, which must throw a VisionError or return a valid
/// result; C-ABI and op-parameter programs are replayed by their fuzz target (scripts/fuzz.sh) and reproduced
/// through the Swift API by the tests below.
@Suite struct RegressionTests {
    static let directory = Fixture.directory + "/regressions"

    static func files() -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }

    /// Runs `body`; a VisionError is an accepted outcome, anything else thrown is not.
    func refusedOrValid(_ name: String, _ body: () throws -> Void) {
        do { try body() } catch is VisionError { } catch { Issue.record("\(name): threw \(error), not a VisionError") }
    }

    @Test func everyRegressionFileIsHandled() throws {
        let names = Self.files()
        #expect(names.count >= 7, "regression files missing from \(Self.directory)")
        for name in names {
            let bytes = try FileIO.read("\(Self.directory)/\(name)")
            switch name.prefix { $0 != "-" } {
            case "fuzz_safetensors":
                refusedOrValid(name) {
                    let f = try bytes.withUnsafeBytes { try Safetensors.decode($0) }
                    for e in f.entries { _ = try Tensor.checkedCount(e.tensor.shape) }
                }
            case "fuzz_json":
                refusedOrValid(name) {
                    let v = try bytes.withUnsafeBytes { try JSONValue.parse($0) }
                    #expect(try JSONValue.parse(v.serialized) == v, "\(name): JSON round trip")
                }
            case "fuzz_image":
                // The first byte is the channel count the fuzz target asked for (mod 6), the rest the file.
                refusedOrValid(name) {
                    let t = try decodeImage(Array(bytes.dropFirst()), channels: Int(bytes.first ?? 3) % 6)
                    #expect(t.shape[0] * t.shape[1] <= ImageLimits.maxPixels)
                }
            case "fuzz_capi", "fuzz_op_params":
                #expect(!bytes.isEmpty)   // programs for the fuzz targets (replayed by scripts/fuzz.sh)
            default:
                Issue.record("\(name): no decoder for this prefix (expected fuzz_<target>-...)")
            }
        }
    }

    /// fuzz_json: a literal beyond Double's range became +inf and was written back as null.
    @Test func jsonRefusesOverflowingNumbers() throws {
        #expect(throws: VisionError.self) { try JSONValue.parse("1E+400") }
        #expect(throws: VisionError.self) { try JSONValue.parse("[-1e999]") }
        #expect(try JSONValue.parse("1e-400") == .number(0))   // underflow rounds, as every parser does
        #expect(try JSONValue.parse("1.7976931348623157e308") == .number(.greatestFiniteMagnitude))
    }

    /// fuzz_capi (vc_tensor_slice): a zero-dimensional tensor and steps near Int64.max trapped.
    @Test func sliceOfScalarAndHugeSteps() throws {
        let s = try Tensor([Float(1)], shape: [])
        #expect(throws: VisionError.self) { try s.slice(axis: 0, start: 0, end: 1) }
        let x = try Tensor((0..<12).map(Float.init), shape: [3, 4])
        let a = try x.slice(axis: 1, start: 1, end: Int.max, step: Int.max)
        #expect(a.shape == [3, 1])
        #expect(try a.toArray(Float.self) == [1, 5, 9])
        let b = try x.slice(axis: 0, start: Int.min, end: Int.max, step: Int.max - 1)
        #expect(try b.toArray(Float.self) == [0, 1, 2, 3])
        #expect(try x.slice(axis: 1, start: 0, end: 4, step: 3).toArray(Float.self) == [0, 3, 4, 7, 8, 11])
    }

    /// fuzz_capi / fuzz_op_params: empty shapes with huge dims passed the size check, then overflowed in stride
    /// arithmetic.
    @Test func emptyShapesWithHugeDims() throws {
        #expect(throws: VisionError.self) { try Tensor(zeros: [0, 1 << 62, 1 << 62]) }
        #expect(throws: VisionError.self) { try Tensor.checkedCount([1 << 40, 1 << 40, 0]) }
        #expect(try Tensor.checkedCount([0, 1 << 30]) == 0)
        #expect(try Tensor(zeros: [3, 0, 5]).contiguous().count == 0)
        let x = try Tensor.zeros([0, 2, 3, 3]), w = try Tensor.zeros([2, 2, 1, 1])
        refusedOrValid("conv2d") {
            let y = try conv2d(x, weight: w, stride: (1 << 40, 1), padding: (1 << 40, 1 << 40))
            #expect(y.count == 0)
        }
        refusedOrValid("conv2d") { _ = try conv2d(x, weight: w, padding: (1 << 40, 1 << 40)) }
    }

    /// fuzz_op_params: an empty batch resized to a huge size built index maps of 2^40 entries first.
    @Test func interpolateEmptyBatchToHugeSize() throws {
        let x = try Tensor.zeros([0, 1, 4, 4])
        let y = try interpolate(x, size: (3, 1 << 30))
        #expect(y.shape == [0, 1, 3, 1 << 30])
        let z = try interpolate(x, size: (3, 1 << 30), mode: .bilinear)
        #expect(z.count == 0)
        // The early return still records the op, so gradients reach an (empty) input.
        let xg = try Tensor.zeros([0, 1, 4, 4]).requiringGrad()
        let yg = try interpolate(xg, size: (3, 5), mode: .bilinear)
        #expect(yg.requiresGrad)
        try yg.backward(try Tensor.zeros([0, 1, 3, 5]))
        #expect(xg.grad?.shape == [0, 1, 4, 4])
    }

    /// fuzz_image: a PNG whose IDAT chunk claims more bytes than the file has made stb_image allocate up to
    /// 2 GiB before failing; it is now refused first, and valid PNGs still decode.
    @Test func pngWithLyingIDATLength() throws {
        let png = try encodeImage(try Tensor.zeros([4, 5, 3], dtype: .uint8), format: .png)
        #expect(try decodeImage(png).shape == [4, 5, 3])
        // The chunks after the signature: IHDR (13 bytes), then IDAT; make IDAT claim 2^31 - 1 bytes.
        var bad = png
        let idat = 8 + 12 + 13
        #expect(Array(bad[(idat + 4)..<(idat + 8)]) == Array("IDAT".utf8))
        bad.replaceSubrange(idat..<(idat + 4), with: [0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: VisionError.self) { try decodeImage(bad) }
        #expect(bad.withUnsafeBytes { pngPrecheckFailure($0) } != nil)
    }
}
