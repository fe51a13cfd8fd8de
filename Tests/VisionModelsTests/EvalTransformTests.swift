import Testing
import VisionCore
@testable import VisionModels

/// evalTransform against timm's `create_transform(**resolve_data_config(...))` (tools/fixtures/eval_transform.py):
/// crop_pct 0.875 / 0.9 / 0.95, bilinear and bicubic, landscape, portrait, up- and downscaling, a non-square input
/// size (ResizeKeepRatio) and the full 224 transform of chelsea.png with pit_ti_224's config. Tolerance 1e-6.
@Suite struct EvalTransformTests {
    let f: SafetensorsFile
    init() throws { f = try Safetensors.load(path: "\(Repo.root)/Tests/VisionCoreTests/Fixtures/eval_transform.safetensors") }

    func int(_ key: String) throws -> Int { Int(try f.tensor(key).item()) }

    func config(_ prefix: String) throws -> PretrainedConfig {
        PretrainedConfig(inputSize: try f.tensor("\(prefix).input_size").toArray(Int64.self).map(Int.init),
                         mean: try f.tensor("\(prefix).mean").toArray(Float.self),
                         std: try f.tensor("\(prefix).std").toArray(Float.self),
                         cropPct: Double(try int("\(prefix).crop_pct_milli")) / 1000,
                         interpolation: try int("\(prefix).interp") == 0 ? .bilinear : .bicubic,
                         classifier: "fc")
    }

    var cases: [String] {
        var seen: [String] = []
        for n in f.names where n.hasPrefix("t") {
            let c = String(n.split(separator: ".")[0])
            if !seen.contains(c) { seen.append(c) }
        }
        return seen
    }

    @Test func matchesTimm() throws {
        #expect(cases.count >= 8)
        for c in cases {
            let cfg = try config(c)
            let source = try int("\(c).source")
            let image = source == 0 ? try f.tensor("\(c).image")
                : try loadImage(path: Repo.image(source == 1 ? "chelsea" : "astronaut"), channels: 3)
            let got = try evalTransform(image, config: cfg)
            let expected = try f.tensor("\(c).output")
            #expect(got.shape == [1] + expected.shape, "\(c)")
            let a = try got.toArray(Float.self), b = try expected.toArray(Float.self)
            if let (i, x, y) = worstMismatch(a, b, rtol: 0, atol: 1e-6) {
                Issue.record("\(c) (\(cfg.interpolation), crop \(cfg.cropPct), \(image.shape) -> \(cfg.inputSize)): element \(i) is \(x), timm \(y)")
            }
        }
    }

    /// Every built-in model that timm also has carries timm's data config (input size, crop, interpolation, mean,
    /// std), so that the eval transform is the one its weights were measured with.
    @Test func registryConfigsMatchTimm() throws {
        for name in ClassifierRegistry.names where f.names.contains("cfg.\(name).input_size") {
            let timm = try config("cfg.\(name)"), ours = try ClassifierRegistry.lookup(name).config
            #expect(ours.inputSize == timm.inputSize, "\(name)")
            #expect(ours.cropPct == timm.cropPct, "\(name)")
            #expect(ours.interpolation == timm.interpolation, "\(name)")
            #expect(ours.mean == timm.mean && ours.std == timm.std, "\(name)")
        }
    }

    @Test func fromPathEqualsFromTensor() throws {
        let cfg = try config("t7")
        let a = try evalTransform(path: Repo.image("chelsea"), config: cfg)
        let b = try evalTransform(try loadImage(path: Repo.image("chelsea"), channels: 3), config: cfg)
        #expect(try a.toArray(Float.self) == b.toArray(Float.self))
    }

    /// The resize sizes of torchvision's Resize(int) and the crop offsets with Python's round-half-to-even.
    @Test func resizeSizesAndCropOffsets() throws {
        let cfg = PretrainedConfig(cropPct: 0.875, classifier: "fc")
        #expect(try evalResizeSize(height: 300, width: 451, config: cfg) == (256, 384))
        #expect(try evalResizeSize(height: 451, width: 300, config: cfg) == (384, 256))
        #expect(try evalResizeSize(height: 10, width: 10, config: cfg) == (256, 256))
        let pit = PretrainedConfig(cropPct: 0.9, classifier: "head")
        #expect(try evalResizeSize(height: 100, width: 200, config: pit) == (248, 496))
        // 5 x 6 image, crop 2 x 3: offsets round(1.5) = 2 and round(1.5) = 2 (ties to even), as torchvision.
        var pixels = [UInt8](); for i in 0..<(5 * 6) { pixels.append(UInt8(i)) }
        let img = try Tensor(pixels, shape: [5, 6, 1])
        let crop = try centerCropHWC(img, height: 2, width: 3)
        #expect(try crop.toArray(UInt8.self) == [14, 15, 16, 20, 21, 22])
        // 4 x 4 image, crop 1 x 1: round(1.5) = 2.
        let small = try Tensor((0..<16).map { UInt8($0) }, shape: [4, 4, 1])
        #expect(try centerCropHWC(small, height: 1, width: 1).toArray(UInt8.self) == [10])
        // crop larger than the image: zero padding (left/top (c - w) // 2) as torchvision's center_crop.
        let padded = try centerCropHWC(try Tensor([UInt8(7), 8], shape: [1, 2, 1]), height: 3, width: 5)
        #expect(try padded.toArray(UInt8.self) == [0, 0, 0, 0, 0, 0, 7, 8, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func badInput() throws {
        let cfg = PretrainedConfig(classifier: "fc")
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [20, 20, 3]), config: cfg) }           // float
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [20, 20, 4], dtype: .uint8), config: cfg) }  // channels
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [20, 20], dtype: .uint8), config: cfg) }     // grey for RGB
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [0, 20, 3], dtype: .uint8), config: cfg) }
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [2, 20, 20, 3], dtype: .uint8), config: cfg) }
        var bad = cfg; bad.cropPct = 0
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [20, 20, 3], dtype: .uint8), config: bad) }
        bad = cfg; bad.cropPct = .nan
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [20, 20, 3], dtype: .uint8), config: bad) }
        bad = cfg; bad.std = [0, 1, 1]
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [20, 20, 3], dtype: .uint8), config: bad) }
        bad = cfg; bad.inputSize = [3, 0, 224]
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [20, 20, 3], dtype: .uint8), config: bad) }
        // a 1 x 30000 strip would become 256 x 7.7 million pixels
        #expect(throws: VisionError.self) { try evalTransform(try Tensor(zeros: [1, 30000, 3], dtype: .uint8), config: cfg) }
        #expect(throws: VisionError.self) { try evalTransform(path: "/nonexistent.png", config: cfg) }
        #expect(throws: VisionError.self) { try evalTransform(path: "\(Repo.root)/data/images/README.md", config: cfg) }
    }
}
