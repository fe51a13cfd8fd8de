import Testing
import VisionCore
@testable import VisionModels

/// Paths of the repository, found from this file: fixtures (tools/fixtures/extd.py, written by the official
/// clovaai/EXTD_Pytorch code) and the bundled weights and photos under data/.
enum Repo {
    static let root: String = {
        var path = "\(#filePath)"
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) }
        return path
    }()
    static func weights(_ v: EXTDVariant) -> String { "\(root)/data/weights/extd/\(v.weightsFileName)" }
    static let fixture = "\(root)/Tests/VisionCoreTests/Fixtures/extd.safetensors"
    static func image(_ name: String) -> String { "\(root)/data/images/\(name).png" }
}

/// Largest violation of |a - b| <= atol + rtol * |b|, with the index, or nil when all elements pass.
func worstMismatch(_ a: [Float], _ b: [Float], rtol: Float, atol: Float) -> (Int, Float, Float)? {
    var worst: (Int, Float, Float)? = nil
    var excess: Float = 0
    for i in 0..<min(a.count, b.count) {
        let e = abs(a[i] - b[i]) - (atol + rtol * abs(b[i]))
        if !(e <= 0) && (worst == nil || e > excess || e.isNaN) { excess = e; worst = (i, a[i], b[i]) }
    }
    return worst
}

/// EXTD-32/48/64 against the official PyTorch code with the released weights. Tolerances: raw loc / conf 1e-4
/// relative (+1e-4 absolute for values near 0): BatchNorm folding and a different summation order change the
/// float32 rounding; final boxes (normalised) and scores 1e-3.
@Suite(.serialized) struct EXTDParityTests {
    static let models: [EXTDVariant: EXTD] = {
        var m: [EXTDVariant: EXTD] = [:]
        for v in EXTDVariant.allCases { m[v] = try? EXTD(variant: v, weightsPath: Repo.weights(v)) }
        return m
    }()
    let fixture: SafetensorsFile
    init() throws { fixture = try Safetensors.load(path: Repo.fixture) }

    func model(_ v: EXTDVariant) throws -> EXTD {
        guard let m = EXTDParityTests.models[v] else {
            return try EXTD(variant: v, weightsPath: Repo.weights(v))  // throws the loading error
        }
        return m
    }

    @Test(arguments: EXTDVariant.allCases) func parameterCounts(_ v: EXTDVariant) throws {
        #expect(try model(v).parameterCount == v.expectedParameterCount)
    }

    @Test(arguments: EXTDVariant.allCases) func rawOutputsMatchOfficialCode(_ v: EXTDVariant) throws {
        let image = try fixture.tensor("raw.image")  // uint8 [120, 160, 3]: non-square, not a multiple of 128
        let x = try FaceDetector.preprocess(image, height: 120, width: 160)
        let out = try model(v).forward(x)
        #expect(out.featureSizes.map { [$0.0, $0.1] } == [[30, 40], [15, 20], [8, 10], [4, 5], [2, 3], [1, 2]])
        for (name, got) in [("loc", out.loc), ("conf", out.conf)] {
            let want = try fixture.tensor("raw.\(v.name).\(name)")
            #expect(got.shape == [1] + want.shape)
            if let bad = worstMismatch(try got.toArray(Float.self), try want.toArray(Float.self), rtol: 1e-4, atol: 1e-4) {
                Issue.record("\(v.name) \(name): element \(bad.0) is \(bad.1), official \(bad.2)")
            }
        }
    }

    /// Photos at scale 1.0 (the network sees exactly the decoded pixels, as the official run did): every official
    /// detection scoring at least 0.1 is found, in the same order, with the same box and score.
    @Test(arguments: EXTDVariant.allCases) func detectionsMatchOfficialCode(_ v: EXTDVariant) throws {
        let detector = FaceDetector(model: try model(v))
        for name in ["astronaut", "chelsea"] {
            let image = try loadImage(path: Repo.image(name))
            let hw = try fixture.tensor("det.\(name).image_hw").toArray(Int64.self)
            #expect(image.shape == [Int(hw[0]), Int(hw[1]), 3])
            let h = Float(hw[0]), w = Float(hw[1])
            // Official rows: (score, x1, y1, x2, y2) normalised; ours: (x1, y1, x2, y2, score) in pixels.
            let official = try fixture.tensor("det.\(name).\(v.name)").toArray(Float.self)
            // 0.1, moved up past any official score so close to it that rounding would decide membership.
            var threshold: Float = 0.1
            let scores = stride(from: 0, to: official.count, by: 5).map { official[$0] }
            while scores.contains(where: { abs($0 - threshold) < 1e-4 }) { threshold += 1e-3 }
            var want: [Float] = []
            for r in 0..<(official.count / 5) where official[5 * r] >= threshold {
                want += [official[5 * r + 1], official[5 * r + 2], official[5 * r + 3], official[5 * r + 4], official[5 * r]]
            }
            let got = try detector.detect(image, scoreThreshold: threshold, scale: 1).toArray(Float.self)
            #expect(got.count == want.count, "\(v.name) \(name): \(got.count / 5) detections, official \(want.count / 5)")
            guard got.count == want.count else { continue }
            var normalised = got
            for r in 0..<(got.count / 5) {
                normalised[5 * r] /= w; normalised[5 * r + 2] /= w
                normalised[5 * r + 1] /= h; normalised[5 * r + 3] /= h
            }
            if let bad = worstMismatch(normalised, want, rtol: 0, atol: 1e-3) {
                Issue.record("\(v.name) \(name): value \(bad.0) is \(bad.1), official \(bad.2)")
            }
        }
    }

    /// At the demo's default scale (2.79 for the 512x512 portrait) every variant puts its best box on the face
    /// (x 170...265, y 55...170) with score > 0.99. The official code at this scale also gives EXTD-32 a second
    /// box of score 0.62 (lower left), so other boxes are only required to score below 0.7.
    @Test(arguments: EXTDVariant.allCases) func astronautFaceAtDefaultScale(_ v: EXTDVariant) throws {
        let detector = FaceDetector(model: try model(v))
        let boxes = try detector.detect(path: Repo.image("astronaut"), scoreThreshold: 0.5)
        let b = try boxes.toArray(Float.self)
        #expect(boxes.shape[0] >= 1)
        guard b.count >= 5 else { return }
        #expect(b[4] > 0.99 && b[0] > 160 && b[2] < 280 && b[1] > 40 && b[3] < 185, "\(b.prefix(5))")
        #expect(stride(from: 9, to: b.count, by: 5).allSatisfy { b[$0] < 0.7 })
    }
}
