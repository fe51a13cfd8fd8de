import Testing
import VisionCore
@testable import VisionData

/// Transforms against torchvision 0.29 (tools/fixtures/data_transforms.py): RandomResizedCrop.get_params
/// decisions and ColorJitter/flip with replayed draws must match exactly; the colour functions on float images
/// agree to float32 rounding (1e-6; the contrast mean is summed in double here, in float by torch).
@Suite struct TransformTests {
    let f: Fixture
    init() throws { f = try Fixture("data_transforms") }

    @Test func randomResizedCropParametersMatchTorchvision() throws {
        let params = try f.floats("rrc.params").map(Double.init), calls = try f.int("rrc.calls")
        let expected = try f.ints("rrc.results")
        var draws = try f.draws("rrc")
        var fallbacks = 0
        for c in 0..<(params.count / 6) {
            let p = Array(params[(6 * c)..<(6 * c + 6)])
            for k in 0..<calls {
                let box = RandomResizedCrop.parameters(height: Int(p[0]), width: Int(p[1]), scale: (p[2], p[3]),
                                                       ratio: (p[4], p[5]), draws: &draws)
                let row = (c * calls + k) * 4
                #expect([box.i, box.j, box.h, box.w] == Array(expected[row..<(row + 4)]), "case \(c) call \(k): \(box)")
                #expect(box.imageHeight == Int(p[0]) && box.imageWidth == Int(p[1]))
                if box.h == Int(p[0]) || box.w == Int(p[1]) { fallbacks += 1 }
            }
        }
        #expect(fallbacks >= 2 * calls, "the extreme aspect ratios should take the fallback")
        #expect(draws.mismatches.isEmpty, "\(draws.mismatches.prefix(3))")
        #expect(draws.exhausted)
    }

    @Test func colorFunctionsMatchTorchvision() throws {
        let img = try f["color.image"], factors = try f.floats("color.factors").map(Double.init)
        for (k, factor) in factors.enumerated() {
            try expectClose(try adjustBrightness(img, factor: factor), try f["color.brightness"].select(axis: 0, index: k), "brightness \(factor)")
            try expectClose(try adjustContrast(img, factor: factor), try f["color.contrast"].select(axis: 0, index: k), "contrast \(factor)")
            try expectClose(try adjustSaturation(img, factor: factor), try f["color.saturation"].select(axis: 0, index: k), "saturation \(factor)")
        }
        for (k, hue) in try f.floats("color.hues").enumerated() {
            try expectClose(try adjustHue(img, factor: Double(hue)), try f["color.hue"].select(axis: 0, index: k), "hue \(hue)")
        }
        let grey = try f["color.grey"]
        try expectClose(try adjustBrightness(grey, factor: 1.3), try f["color.grey_brightness"], "grey brightness")
        try expectClose(try adjustContrast(grey, factor: 0.4), try f["color.grey_contrast"], "grey contrast")
        try expectClose(try adjustSaturation(grey, factor: 0.2), grey, rtol: 0, atol: 0, "grey saturation is a no-op")
        try expectClose(try rgbToGrayscale(img), try f["color.grayscale"], "grayscale")
    }

    @Test(arguments: ["jitter4", "jitter3"])
    func colorJitterMatchesTorchvision(_ name: String) throws {
        let jitter = name == "jitter4" ? try ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1)
                                       : try ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4)
        #expect((jitter.hue == nil) == (name == "jitter3"))
        let img = try f["color.image"], expected = try f["\(name).out"]
        var draws = try f.draws(name)
        for r in 0..<expected.shape[0] {
            try expectClose(try jitter.apply(image: img, draws: &draws), try expected.select(axis: 0, index: r), "\(name) call \(r)")
        }
        #expect(draws.mismatches.isEmpty && draws.exhausted, "\(draws.mismatches.prefix(3))")
    }

    @Test func flipCropNormalizeResizeMatchTorchvision() throws {
        let img = try f["color.image"]
        var draws = try f.draws("flip")
        let flip = try RandomHorizontalFlip()
        let flips = try f["flip.out"]
        for r in 0..<flips.shape[0] {
            try expectClose(try flip.apply(image: img, draws: &draws), try flips.select(axis: 0, index: r), rtol: 0, atol: 0, "flip \(r)")
        }
        #expect(draws.mismatches.isEmpty && draws.exhausted)
        for (h, w) in [(3, 4), (4, 3), (8, 9), (2, 8)] {
            try expectClose(try centerCrop(img, height: h, width: w), try f["center.crop_\(h)x\(w)"], rtol: 0, atol: 0, "center crop \(h)x\(w)")
        }
        var none = RandomGenerator(seed: 0)
        let norm = try Normalize(mean: Normalize.imagenet.mean, std: Normalize.imagenet.std)
        try expectClose(try norm.apply(image: img, draws: &none), try f["normalize.out"], "normalize")
        let sizes = try f.ints("resize.sizes")
        for k in 0..<(sizes.count / 5) {
            let s = Array(sizes[(5 * k)..<(5 * k + 5)])
            let (oh, ow) = try Resize(.shorter(s[2])).outputSize(height: s[0], width: s[1])
            #expect([oh, ow] == [s[3], s[4]], "resize \(s)")
        }
    }

    @Test func randomResizedCropAppliesItsBox() throws {
        var rng = RandomGenerator(seed: 4)
        let img = try Tensor.uniform([3, 21, 34], rng: &rng)
        // A crop of the output size is copied, not resampled: the output equals the box of the input.
        let rrc = try RandomResizedCrop(height: 10, width: 10, scale: (0.1, 0.1), ratio: (1, 1))
        var d = RandomGenerator(seed: 9)
        let e = try rrc.apply(Example(input: img, label: 3), draws: &d)
        let box = try #require(e.cropBox)
        #expect(e.input.shape == [3, 10, 10] && e.label == 3)
        #expect(box.h == 8 && box.w == 8 && box.imageHeight == 21 && box.imageWidth == 34)   // round(sqrt(71.4)) = 8
        let same = try RandomResizedCrop(height: 8, width: 8, scale: (0.1, 0.1), ratio: (1, 1))
        var d2 = RandomGenerator(seed: 9)
        let e2 = try same.apply(Example(input: img, label: 3), draws: &d2)
        let expected = try img.slice(axis: 1, start: box.i, end: box.i + 8).slice(axis: 2, start: box.j, end: box.j + 8)
        try expectClose(e2.input, expected, rtol: 0, atol: 0, "identity-size crop")
        // The batch form draws per sample, in order.
        let batch = try stack([img, img], axis: 0)
        var d3 = RandomGenerator(seed: 1)
        let out = try rrc.applyBatch(batch, draws: &d3)
        var d4 = RandomGenerator(seed: 1)
        let first = try rrc.apply(image: img, draws: &d4), second = try rrc.apply(image: img, draws: &d4)
        try expectClose(out, try stack([first, second], axis: 0), rtol: 0, atol: 0, "applyBatch")
    }

    @Test func transformsRejectBadArguments() throws {
        #expect(throws: VisionError.self) { _ = try ColorJitter(hue: 0.6) }
        #expect(throws: VisionError.self) { _ = try ColorJitter(brightness: -1) }
        #expect(throws: VisionError.self) { _ = try RandomResizedCrop(size: 8, scale: (1, 0.5)) }
        #expect(throws: VisionError.self) { _ = try RandomResizedCrop(size: 0) }
        #expect(throws: VisionError.self) { _ = try Normalize(mean: [0.5], std: [0]) }
        #expect(throws: VisionError.self) { _ = try RandomHorizontalFlip(p: 2) }
        #expect(throws: VisionError.self) { _ = try adjustHue(try Tensor.zeros([3, 2, 2]), factor: 0.7) }
        #expect(throws: VisionError.self) { _ = try adjustBrightness(try Tensor.zeros([2, 2, 2]), factor: 1) }
        var rng = RandomGenerator(seed: 0)
        #expect(throws: VisionError.self) { _ = try RandomResizedCrop(size: 4).apply(image: try Tensor.zeros([4, 4]), draws: &rng) }
        #expect(throws: VisionError.self) { _ = try Normalize(mean: [0, 0], std: [1, 1]).apply(image: try Tensor.zeros([3, 2, 2]), draws: &rng) }
        #expect(throws: VisionError.self) { _ = try centerCrop(try Tensor.zeros([1, 2, 2]), height: 0, width: 2) }
        // Absurd parameters through the public static get_params fail their tries and fall back, never trap.
        for (scale, ratio) in [((1e300, 1e301), (0.75, 1.3)), ((0.5, 1.0), (0.0, .infinity)), ((.nan, 1.0), (.nan, 2.0))] {
            let box = RandomResizedCrop.parameters(height: 9, width: 7, scale: scale, ratio: ratio, draws: &rng)
            #expect(box.i >= 0 && box.j >= 0 && box.i + box.h <= 9 && box.j + box.w <= 7, "\(scale) \(ratio): \(box)")
        }
        #expect(try Resize(.shorter(8)).outputSize(height: 0, width: 5) == (0, 5))
        // Draws outside their range are refused with an error, not an out-of-bounds crop.
        struct FarIntegers: RandomDraws {
            mutating func uniform() -> Double { 0.5 }
            mutating func integer(_ low: Int, _ high: Int) -> Int { Int.max }
        }
        var far = FarIntegers()
        #expect(throws: VisionError.self) { _ = try RandomResizedCrop(size: 4).apply(image: try Tensor.zeros([1, 9, 9]), draws: &far) }
        // NaN pixels propagate through the hue rotation instead of trapping.
        let nanImage = try Tensor([Float.nan, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.3], shape: [3, 2, 2])
        #expect(try adjustHue(nanImage, factor: 0.2).toArray(Float.self)[0].isNaN)
    }
}
