import Testing
import VisionCore
@testable import VisionModels

/// Replays the draws recorded from the official code (tools/fixtures/s3fd_augment.py) and checks that the Swift
/// code asks for the same kind of draw with the same bounds, in the same order.
struct ReplaySource: S3FDRandomSource {
    let kinds: [Int64]
    let args: [Double]   // low, high, u per draw
    var next = 0
    var mismatches: [String] = []

    mutating func take(_ kind: Int64, _ low: Double, _ high: Double) -> Double {
        guard next < kinds.count else { mismatches.append("draw \(next) past the recorded \(kinds.count)"); return 0 }
        let i = next
        next += 1
        let (l, h, u) = (args[3 * i], args[3 * i + 1], args[3 * i + 2])
        let close = { (a: Double, b: Double) in abs(a - b) <= 1e-9 * max(1, abs(b)) }
        if kinds[i] != kind || !close(low, l) || !close(high, h) {
            mismatches.append("draw \(i): got kind \(kind) [\(low), \(high)), recorded kind \(kinds[i]) [\(l), \(h))")
        }
        return u
    }

    mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * take(0, low, high) }
    mutating func randint(_ low: Int, _ high: Int) -> Int {
        let u = take(1, Double(low), Double(high))
        return low + Int((u * Double(high - low)).rounded(.down))
    }
}

@Suite struct S3FDAugmentationTests {
    static let fixture = "\(Repo.root)/Tests/VisionCoreTests/Fixtures/s3fd_augment.safetensors"
    static let data: [String: Tensor] = {
        var d: [String: Tensor] = [:]
        for e in (try? Safetensors.load(path: fixture).entries) ?? [] { d[e.name] = e.tensor }
        return d
    }()

    func tensor(_ key: String) throws -> Tensor { try #require(Self.data[key], "fixture key \(key)") }
    func image(_ key: String) throws -> S3FDImage { try S3FDImage(try tensor(key)) }
    func doubles(_ key: String) throws -> [Double] {
        try tensor(key).toArray(Int64.self).map { Double(bitPattern: UInt64(bitPattern: $0)) }
    }

    /// (number of differing bytes, largest difference).
    func diff(_ a: S3FDImage, _ b: S3FDImage) -> (Int, Int) {
        guard a.width == b.width, a.height == b.height else { return (Int.max, Int.max) }
        var n = 0, worst = 0
        for i in 0..<a.pixels.count {
            let d = abs(Int(a.pixels[i]) - Int(b.pixels[i]))
            if d > 0 { n += 1; worst = max(worst, d) }
        }
        return (n, worst)
    }

    @Test func pilResizeIsBitExactForAllFiveFilters() throws {
        let src = try image("resample_src")
        var checked = 0
        for mode in PILResample.allCases {
            for (w, h) in [(40, 30), (9, 7), (23, 9), (50, 17), (64, 64), (20, 5), (30, 3)] {
                let expected = try image("pil.\(mode.rawValue).\(w)x\(h)")
                let got = try pilResize(src, width: w, height: h, resample: mode)
                #expect(diff(got, expected) == (0, 0), "PIL \(mode) to \(w)x\(h): (differing bytes, max diff) \(diff(got, expected))")
                checked += 1
            }
        }
        #expect(checked == 35)
    }

    @Test func cvResizeMatchesOpenCV() throws {
        let src = try image("resample_src")
        var checked = 0
        for mode in CVInterpolation.allCases {
            for ratio in [1.737, 0.613, 2.0, 0.5, 3.31, 0.291, 1.0 / 3] {
                let key = "\(mode.rawValue).\(Int((ratio * 1000).rounded()))"
                let got = try cvResize(src, ratio: ratio, interpolation: mode)
                // OpenCV's own implementation: bit-exact.
                let exact = diff(got, try image("cv.\(key)"))
                #expect(exact == (0, 0), "cv \(mode) x\(ratio): (differing bytes, max diff) \(exact)")
                // With the IPP back end (opencv-python's default, which the official training used): IPP's
                // INTER_CUBIC rounds differently, by at most 1 level; the other modes are still exact.
                let ipp = diff(got, try image("cvipp.\(key)"))
                #expect(mode == .cubic ? ipp.1 <= 1 : ipp == (0, 0), "cv (IPP) \(mode) x\(ratio): \(ipp)")
                checked += 1
            }
        }
        #expect(checked == 35)
    }

    @Test func photometricOperationsEqualPIL() throws {
        let img = try image("image")
        for f in [0.55, 0.9, 1.07, 1.45] {
            let key = Int((f * 1000).rounded())
            #expect(diff(S3FDAugmentation.enhanceBrightness(img, f), try image("enhance.brightness.\(key)")) == (0, 0), "brightness \(f)")
            #expect(diff(S3FDAugmentation.enhanceContrast(img, f), try image("enhance.contrast.\(key)")) == (0, 0), "contrast \(f)")
            #expect(diff(S3FDAugmentation.enhanceColor(img, f), try image("enhance.color.\(key)")) == (0, 0), "color \(f)")
        }
        for delta in [-17.3, -4.2, 3.9, 16.6] {
            let d = diff(S3FDAugmentation.shiftHue(img, delta), try image("hue.\(Int((delta * 1000).rounded()))"))
            #expect(d == (0, 0), "hue \(delta): \(d)")
        }
    }

    @Test func preprocessReplaysTheOfficialCases() throws {
        var config = S3FDAugmentationConfig()
        config.resizeWidth = 64; config.resizeHeight = 64
        let aug = S3FDAugmentation(config: config)
        let img = try image("image")
        var cases = 0, anchorCases = 0, exactImages = 0
        for c in 0..<40 {
            guard Self.data["case.\(c).info"] != nil else { break }
            cases += 1
            let boxesIn = try doubles("case.\(c).boxes_in")
            let boxes = stride(from: 0, to: boxesIn.count, by: 4).map {
                S3FDBox(x1: boxesIn[$0], y1: boxesIn[$0 + 1], x2: boxesIn[$0 + 2], y2: boxesIn[$0 + 3])
            }
            var replay = ReplaySource(kinds: try tensor("case.\(c).draws.kind").toArray(Int64.self), args: try doubles("case.\(c).draws.args"))
            let sample = try aug.apply(img, boxes: boxes, random: &replay)
            #expect(replay.mismatches.isEmpty, "case \(c): \(replay.mismatches.prefix(3))")
            #expect(replay.next == replay.kinds.count, "case \(c): used \(replay.next) of \(replay.kinds.count) draws")
            let info = try tensor("case.\(c).info").toArray(Int64.self)
            let path: S3FDAugmentationTrace.Path = info[0] == 0 ? .anchorSampling : info[0] == 1 ? .ssdCrop : .ssdNoCrop
            #expect(sample.trace.path == path, "case \(c) path")
            #expect(sample.trace.resample.rawValue == Int(info[2]), "case \(c) PIL filter")
            #expect(sample.trace.cropped?.width == Int(info[3]) && sample.trace.cropped?.height == Int(info[4]), "case \(c) crop size")
            #expect(diff(try #require(sample.trace.distorted), try image("case.\(c).distorted")) == (0, 0), "case \(c) distortion")
            // Boxes: exact up to float rounding.
            let expected = try doubles("case.\(c).out.boxes")
            #expect(sample.boxes.count * 4 == expected.count, "case \(c): \(sample.boxes.count) boxes, expected \(expected.count / 4)")
            for (i, b) in sample.boxes.enumerated() where 4 * i + 3 < expected.count {
                let got = [b.x1, b.y1, b.x2, b.y2]
                for k in 0..<4 { #expect(abs(got[k] - expected[4 * i + k]) <= 1e-5, "case \(c) box \(i) coord \(k): \(got[k]) vs \(expected[4 * i + k])") }
            }
            // Images: bit-exact unless an OpenCV rescale (anchor sampling) rounded a few values differently.
            let (n, worst) = diff(sample.image, try image("case.\(c).out.image"))
            if path == .anchorSampling {
                anchorCases += 1
                // Bit-exact, except that IPP's INTER_CUBIC rounds some values 1 level apart.
                if info[1] == Int64(CVInterpolation.cubic.rawValue) {
                    #expect(worst <= 1, "case \(c) (cv2 cubic): \(n) bytes differ by up to \(worst)")
                } else {
                    #expect((n, worst) == (0, 0), "case \(c) (cv2 \(info[1])): \(n) bytes differ by up to \(worst)")
                }
                #expect(sample.trace.anchorInterpolation?.rawValue == Int(info[1]), "case \(c) cv2 interpolation")
            } else {
                #expect((n, worst) == (0, 0), "case \(c): \(n) bytes differ by up to \(worst)")
            }
            if (n, worst) == (0, 0) { exactImages += 1 }
            // The network input is the image minus the RGB means.
            let x = try sample.input.toArray(Float.self)
            #expect(sample.input.shape == [3, 64, 64])
            #expect(x[0] == Float(sample.image.pixels[0]) - 123 && x[64 * 64] == Float(sample.image.pixels[1]) - 117
                    && x[2 * 64 * 64] == Float(sample.image.pixels[2]) - 104)
        }
        #expect(cases == 26 && anchorCases >= 5 && cases - anchorCases >= 5)
        print("S3FD augmentation fixtures: \(cases) cases, \(anchorCases) with data-anchor-sampling, \(exactImages) bit-exact images")
    }
}

/// Properties of the augmentation under the default random source, and bad input.
@Suite struct S3FDAugmentationPropertyTests {
    static let faces = [S3FDBox(x1: 0.3, y1: 0.2, x2: 0.65, y2: 0.7), S3FDBox(x1: 0.05, y1: 0.6, x2: 0.15, y2: 0.8),
                        S3FDBox(x1: 0.7, y1: 0.05, x2: 0.74, y2: 0.1)]

    func source() throws -> S3FDImage {
        try S3FDImage(try loadImage(path: "\(Repo.root)/Tests/VisionCoreTests/Fixtures/chelsea_crop_64x48.png"))
    }

    func augmentation() -> S3FDAugmentation {
        var config = S3FDAugmentationConfig()
        config.resizeWidth = 64; config.resizeHeight = 64
        return S3FDAugmentation(config: config)
    }

    @Test func boxesStayInsideAndSmallFacesAreDropped() throws {
        let img = try source(), aug = augmentation()
        var paths: Set<String> = [], mirrored = 0, total = 0
        for seed in 0..<60 {
            var rng = S3FDRandom(seed: UInt64(seed))
            let s = try aug.apply(img, boxes: Self.faces, random: &rng)
            paths.insert("\(s.trace.path)")
            if s.trace.mirrored { mirrored += 1 }
            #expect(s.image.width == 64 && s.image.height == 64 && s.input.shape == [3, 64, 64])
            total += s.boxes.count
            for b in s.boxes {
                // Every kept face has its centre in the image; the SSD crops also clip the box to it.
                #expect((0...1).contains((b.x1 + b.x2) / 2) && (0...1).contains((b.y1 + b.y2) / 2), "seed \(seed): \(b)")
                #expect(b.x2 > b.x1 && b.y2 > b.y1, "seed \(seed): \(b)")
                switch s.trace.path {
                case .ssdCrop:
                    #expect(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= 1 && b.y2 <= 1, "seed \(seed): \(b)")
                    // At least min_face_size² at the output resolution.
                    #expect((b.x2 - b.x1) * 64 * (b.y2 - b.y1) * 64 >= 36 - 1e-9, "seed \(seed): \(b)")
                case .anchorSampling:
                    // Over min_face_size² in the crop's pixels (before the final resize).
                    let crop = try #require(s.trace.cropped)
                    #expect((b.x2 - b.x1) * Double(crop.width) * (b.y2 - b.y1) * Double(crop.height) > 36 - 1e-6, "seed \(seed): \(b)")
                case .ssdNoCrop: break
                }
            }
        }
        // Both samplers and both flip outcomes occur over 60 seeds; the tiny third face (2.5 x 2.4 px) never
        // survives a crop, so fewer boxes come out than go in.
        #expect(paths.contains("anchorSampling") && paths.contains("ssdCrop"), "\(paths)")
        #expect(mirrored > 10 && mirrored < 50)
        #expect(total < 60 * Self.faces.count)
    }

    @Test func flipIsAnInvolution() throws {
        for b in Self.faces + [S3FDBox(x1: 0, y1: 0, x2: 1, y2: 1), S3FDBox(x1: -0.2, y1: 0.1, x2: 0.3, y2: 1.2)] {
            let f = b.flippedHorizontally(), back = f.flippedHorizontally()
            #expect(f.x2 - f.x1 == b.x2 - b.x1 || abs((f.x2 - f.x1) - (b.x2 - b.x1)) < 1e-12)
            #expect(abs(back.x1 - b.x1) < 1e-12 && abs(back.x2 - b.x2) < 1e-12 && back.y1 == b.y1 && back.y2 == b.y2)
        }
        let img = try source()
        #expect(img.flippedHorizontally().flippedHorizontally() == img)
        #expect(img.flippedHorizontally() != img)
        #expect(img.flippedHorizontally().pixels[0..<3] == img.pixels[(img.width - 1) * 3..<img.width * 3])
    }

    @Test func sameSeedSameSample() throws {
        let img = try source(), aug = augmentation()
        var a = S3FDRandom(seed: 7), b = S3FDRandom(seed: 7)
        let x = try aug.apply(img, boxes: Self.faces, random: &a), y = try aug.apply(img, boxes: Self.faces, random: &b)
        #expect(x.image == y.image && x.boxes == y.boxes && x.trace == y.trace)
    }

    @Test func badInputIsAnError() throws {
        let img = try source(), aug = augmentation()
        var rng = S3FDRandom(seed: 1)
        #expect(throws: VisionError.self) { try aug.apply(img, boxes: [], random: &rng) }
        #expect(throws: VisionError.self) { try aug.apply(img, boxes: [S3FDBox(x1: 0.5, y1: 0.1, x2: 0.4, y2: 0.3)], random: &rng) }
        #expect(throws: VisionError.self) { try aug.apply(img, boxes: [S3FDBox(x1: .nan, y1: 0.1, x2: 0.4, y2: 0.3)], random: &rng) }
        #expect(throws: VisionError.self) { try S3FDImage(width: 0, height: 5, pixels: []) }
        #expect(throws: VisionError.self) { try S3FDImage(width: 2, height: 2, pixels: [1, 2, 3]) }
        #expect(throws: VisionError.self) { try S3FDImage(try Tensor.zeros([0, 4, 3], dtype: .uint8)) }
        #expect(throws: VisionError.self) { try S3FDImage(try Tensor.zeros([4, 4, 3])) }
        #expect(throws: VisionError.self) { try cvResize(img, ratio: 0, interpolation: .linear) }
        #expect(throws: VisionError.self) { try cvResize(img, ratio: .infinity, interpolation: .cubic) }
        #expect(throws: VisionError.self) { try cvResize(img, ratio: 1e-3, interpolation: .area) }   // rounds to 0 x 0
        #expect(throws: VisionError.self) { try cvResize(img, ratio: 1e4, interpolation: .nearest) } // past the limits
        #expect(throws: VisionError.self) { try pilResize(img, width: 0, height: 10, resample: .bicubic) }
        // A zero-area box is accepted (as the official code) and never kept by a crop, whose size filter drops it.
        let degenerate = [S3FDBox(x1: 0.3, y1: 0.2, x2: 0.65, y2: 0.7), S3FDBox(x1: 0.5, y1: 0.5, x2: 0.5, y2: 0.6)]
        for seed in 0..<20 {
            var r = S3FDRandom(seed: UInt64(seed))
            let s = try aug.apply(img, boxes: degenerate, random: &r)
            if s.trace.path != .ssdNoCrop { #expect(s.boxes.allSatisfy { $0.x2 > $0.x1 }, "seed \(seed)") }
        }
    }
}
