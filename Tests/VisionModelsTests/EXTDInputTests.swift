import Testing
import VisionCore
@testable import VisionModels

/// Bad weights and bad images: clear errors, never a crash. Also the pieces around the network (priors, variant
/// names, box drawing) on hand-computed values.
@Suite struct EXTDInputTests {
    @Test func otherVariantsWeightsNameTheBadKeys() throws {
        do {
            _ = try EXTD(variant: .extd32, weightsPath: Repo.weights(.extd48))
            Issue.record("EXTD_48 weights loaded into extd_32")
        } catch let e as VisionError {
            #expect(e.message.contains("extd_32"))
            #expect(e.message.contains("mis-shaped keys"))
            #expect(e.message.contains("base.1.conv.3.weight"))  // [48, 64, 1, 1] where extd_32 wants [32, 64, 1, 1]
            #expect(e.message.contains("missing keys"))          // extd_32 has blocks 6 and 7 and the extra PReLUs
        }
        #expect(throws: VisionError.self) { try EXTD(variant: .extd64, weightsPath: Repo.weights(.extd32)) }
    }

    @Test func unrelatedOrMissingFilesAreErrors() throws {
        #expect(throws: VisionError.self) { try EXTD(variant: .extd32, weightsPath: "\(Repo.root)/no/such.safetensors") }
        #expect(throws: VisionError.self) { try EXTD(variant: .extd32, weightsPath: Repo.image("chelsea")) }
        let empty = SafetensorsFile()
        #expect(throws: VisionError.self) { try EXTD(variant: .extd48, stateDict: empty) }
    }

    @Test func boxesThatDecodeToInfinityAreDropped() throws {
        let priors = try Tensor([0.5, 0.5, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1] as [Float], shape: [2, 4])
        let loc = try Tensor([0, 0, 1000, 1000, 0, 0, 0, 0] as [Float], shape: [2, 4])
        let conf = try Tensor([0, 10, 0, 9] as [Float], shape: [2, 2])
        let det = try extdDetections(loc: loc, conf: conf, priors: priors, scoreThreshold: 0.5)
        #expect(det.shape == [1, 5])
        #expect(try det.toArray(Float.self).allSatisfy { $0.isFinite })
    }

    @Test func badImagesAreErrors() throws {
        let detector = try FaceDetector(variant: .extd32, weightsPath: Repo.weights(.extd32))
        #expect(throws: VisionError.self) { try detector.detect(try Tensor.zeros([0, 10, 3], dtype: .uint8)) }
        #expect(throws: VisionError.self) { try detector.detect(try Tensor.zeros([10, 10, 4], dtype: .uint8)) }
        #expect(throws: VisionError.self) { try detector.detect(try Tensor.zeros([10, 10, 3])) }
        #expect(throws: VisionError.self) { try detector.detect(try Tensor.zeros([8, 8, 3], dtype: .uint8), scale: 0) }
        #expect(throws: VisionError.self) { try detector.detect(try Tensor.zeros([8, 8, 3], dtype: .uint8), scale: .nan) }
        // A network input above the limit is refused before anything large is allocated.
        #expect(throws: VisionError.self) { try detector.detect(try Tensor.zeros([8, 8, 3], dtype: .uint8), scale: 1000) }
        #expect(throws: VisionError.self) { try detector.detect(path: "\(Repo.root)/Package.swift") }
        // Tiny images work: a 1x1 input gives 1x1 maps at every scale.
        let tiny = try detector.detect(try Tensor.zeros([1, 1, 3], dtype: .uint8), scoreThreshold: 0.5, scale: 1)
        #expect(tiny.shape[1] == 5)
    }

    @Test func priorsFollowTheOfficialFormula() throws {
        // 100 x 60 input, stride 4 map 25 x 15: cx = (j + 0.5) / (100 / 4), w = 16 / 100.
        let p = try S3FDAnchors.priors(inputHeight: 60, inputWidth: 100, featureSizes: [(15, 25), (8, 13)])
        #expect(p.shape == [15 * 25 + 8 * 13, 4])
        let v = try p.toArray(Float.self)
        #expect(v[0] == Float(0.5 / 25) && v[1] == Float(0.5 / 15) && v[2] == 0.16 && v[3] == Float(16.0 / 60))
        let second = (15 * 25 + 13 + 12) * 4  // stride 8, row 1, column 12 (centre past the image's edge)
        #expect(v[second] == Float(12.5 / 12.5) && v[second + 1] == Float(1.5 / 7.5))
    }

    @Test func variantNames() {
        #expect(EXTDVariant(name: "extd_32") == .extd32)
        #expect(EXTDVariant(name: "EXTD-48") == .extd48)
        #expect(EXTDVariant(name: "64") == .extd64)
        #expect(EXTDVariant(name: "extd_33") == nil)
        #expect(EXTDVariant(name: "") == nil)
    }

    @Test func drawBoxesClipsAndSkips() throws {
        let img = try Tensor.zeros([10, 12, 3], dtype: .uint8)
        let boxes = try Tensor([2, 3, 6, 8, 0.9, -50, -50, -40, -40, 0.5, .nan, 0, 5, 5, 0.5, 8, 8, 1e30, 1e30, 0.5] as [Float],
                               shape: [4, 5])
        let out = try drawBoxes(img, boxes: boxes, color: [255, 0, 0], thickness: 1).toArray(UInt8.self)
        func px(_ x: Int, _ y: Int) -> UInt8 { out[(y * 12 + x) * 3] }
        #expect(px(2, 3) == 255 && px(6, 8) == 255 && px(4, 3) == 255 && px(2, 5) == 255)
        #expect(px(4, 5) == 0)                // inside the first box
        #expect(px(11, 9) == 255)             // the huge box clipped to the corner
        #expect(px(0, 0) == 0)                // the box outside the image is not drawn on the border
        #expect(throws: VisionError.self) { try drawBoxes(img, boxes: try Tensor.zeros([1, 3])) }
    }
}

/// The fused EXTD conv kernels against VisionCore's reference conv2d followed by the activation and skip, on
/// sizes that hit every border case (width 1, widths below and around the 8-lane step, a single row).
@Suite struct FusedConvTests {
    func random(_ shape: [Int], _ seed: UInt64) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try Tensor.normal(shape, rng: &rng)
    }

    /// conv2dReference, then bias is already in; PReLU with `slope`, then + residual.
    func expected(_ x: Tensor, _ w: Tensor, _ b: Tensor, groups: Int, padding: Int, slope: Float?, residual: Tensor?) throws -> [Float] {
        var y = try conv2dReference(x, weight: w, bias: b, padding: (padding, padding), groups: groups).toArray(Float.self)
        if let slope { y = y.map { $0 >= 0 ? $0 : $0 * slope } }
        if let residual { y = zip(y, try residual.toArray(Float.self)).map { $0 + $1 } }
        return y
    }

    @Test(arguments: [(1, 1), (1, 7), (3, 8), (2, 9), (5, 10), (4, 17), (6, 33)])
    func depthwiseMatchesReference(_ size: (Int, Int)) throws {
        let (h, w) = size, c = 3
        let x = try random([2, c, h, w], 1), wt = try random([c, 1, 3, 3], 2), b = try random([c], 3)
        for act in [Activation.none, .prelu(0.25)] {
            let got = try Depthwise3x3(weight: wt, bias: b, activation: act)(x).toArray(Float.self)
            let slope: Float? = if case .prelu(let a) = act { a } else { nil }
            let want = try expected(x, wt, b, groups: c, padding: 1, slope: slope, residual: nil)
            #expect(worstMismatch(got, want, rtol: 1e-5, atol: 1e-5) == nil, "\(h)x\(w) \(act)")
        }
    }

    @Test(arguments: [(1, 1), (3, 5), (7, 9), (40, 41)])
    func pointwiseMatchesReference(_ size: (Int, Int)) throws {
        let (h, w) = size, k = 5, m = 6
        let x = try random([2, k, h, w], 4), wt = try random([m, k, 1, 1], 5), b = try random([m], 6)
        let skip = try random([2, m, h, w], 7)
        let conv = try FoldedConv(weight: wt, bias: b, stride: 1, padding: 0, groups: 1, activation: .prelu(0.1))
        let got = try conv(x, residual: skip).toArray(Float.self)
        let want = try expected(x, wt, b, groups: 1, padding: 0, slope: 0.1, residual: skip)
        #expect(worstMismatch(got, want, rtol: 1e-5, atol: 1e-5) == nil, "\(h)x\(w)")
        #expect(throws: VisionError.self) { try conv(try random([1, k + 1, h, w], 8)) }
    }
}
