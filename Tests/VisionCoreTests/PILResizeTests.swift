import Testing
@testable import VisionCore

/// `resizeImagePIL` against Pillow's Image.resize (tools/fixtures/eval_transform.py): the bytes must be equal,
/// up, down, one axis only, with clipping of bicubic overshoot, for RGB and grey images.
@Suite struct PILResizeTests {
    static let repoRoot: String = {
        var path = Fixture.directory
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) }
        return path
    }()

    @Test func bitExactAgainstPillow() throws {
        let f = try Fixture("eval_transform")
        let cases = f.cases("r")
        #expect(cases.count >= 20)
        for c in cases {
            let input = f.file.names.contains("\(c).source")
                ? try loadImage(path: "\(Self.repoRoot)/data/images/chelsea.png", channels: 3)
                : try f["\(c).input"]
            let expected = try f["\(c).output"]
            let filter: PILResampleFilter = try f.int("\(c).filter") == 0 ? .bilinear : .bicubic
            let got = try resizeImagePIL(input, height: expected.shape[0], width: expected.shape[1], filter: filter)
            #expect(got.shape == expected.shape, "\(c)")
            let a = try got.toArray(UInt8.self), b = try expected.toArray(UInt8.self)
            let differing = zip(a, b).filter { $0 != $1 }.count
            #expect(differing == 0, "\(c) (\(filter), \(input.shape) -> \(expected.shape)): \(differing) bytes differ from PIL")
        }
    }

    @Test func rejectsBadInput() throws {
        let img = try Tensor(zeros: [4, 5, 3], dtype: .uint8)
        #expect(throws: VisionError.self) { try resizeImagePIL(try Tensor(zeros: [4, 5, 3]), height: 2, width: 2, filter: .bilinear) }
        #expect(throws: VisionError.self) { try resizeImagePIL(img, height: 0, width: 2, filter: .bilinear) }
        #expect(throws: VisionError.self) { try resizeImagePIL(img, height: 2, width: -3, filter: .bicubic) }
        #expect(throws: VisionError.self) { try resizeImagePIL(img, height: 1 << 20, width: 2, filter: .bicubic) }
        #expect(throws: VisionError.self) { try resizeImagePIL(try Tensor(zeros: [4, 5, 6], dtype: .uint8), height: 2, width: 2, filter: .bicubic) }
        #expect(throws: VisionError.self) { try resizeImagePIL(try Tensor(zeros: [0, 5, 3], dtype: .uint8), height: 2, width: 2, filter: .bicubic) }
        #expect(throws: VisionError.self) { try resizeImagePIL(try Tensor(zeros: [2, 4, 5, 3], dtype: .uint8), height: 2, width: 2, filter: .bicubic) }
    }

    /// A constant image stays constant (the normalised coefficients sum to 1 in fixed point), and a
    /// non-contiguous view resizes like its contiguous copy.
    @Test func constantImagesAndViews() throws {
        let flat = try Tensor.full([9, 13, 3], value: 200, dtype: .uint8)
        for f in PILResampleFilter.allCases {
            let r = try resizeImagePIL(flat, height: 31, width: 4, filter: f)
            #expect(try r.toArray(UInt8.self).allSatisfy { $0 == 200 })
        }
        var rng = RandomGenerator(seed: 5)
        let noise = try Tensor.uniform([12, 10, 3], low: 0, high: 255, rng: &rng).to(.uint8)
        let view = try noise.permute([1, 0, 2])
        let a = try resizeImagePIL(view, height: 7, width: 15, filter: .bicubic)
        let b = try resizeImagePIL(try view.contiguous(), height: 7, width: 15, filter: .bicubic)
        #expect(try a.toArray(UInt8.self) == b.toArray(UInt8.self))
    }
}
