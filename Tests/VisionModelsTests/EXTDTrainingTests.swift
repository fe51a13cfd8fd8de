import Testing
import VisionCore
@testable import VisionModels

/// S3FD matching and the multibox loss against the official EXTD code (tools/fixtures/extd_training.py).
@Suite struct EXTDTrainingTests {
    static let fixture = "\(Repo.root)/Tests/VisionCoreTests/Fixtures/extd_training.safetensors"

    func load() throws -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for e in try Safetensors.load(path: Self.fixture).entries { d[e.name] = e.tensor }
        return d
    }

    @Test func matchingEqualsTheOfficialTargets() throws {
        let d = try load()
        let priors = try #require(d["priors"])
        let locT = try #require(d["loc_t"]), confT = try #require(d["conf_t"])
        for b in 0..<2 {
            let truths = try #require(d["truths.\(b)"])
            let (loc, conf) = try S3FDMatcher().match(truths: truths, labels: [Int](repeating: 1, count: truths.shape[0]), priors: priors)
            #expect(try conf.toArray(Int64.self) == confT.select(axis: 0, index: b).contiguous().toArray(Int64.self), "conf targets of image \(b)")
            try expectMatch(loc, try locT.select(axis: 0, index: b), rtol: 1e-5, atol: 1e-5)
        }
    }

    @Test func lossAndGradientsEqualTheOfficialMultiBoxLoss() throws {
        let d = try load()
        let loc = try #require(d["loc"]).requiringGrad(), conf = try #require(d["conf"]).requiringGrad()
        let (ll, lc) = try MultiBoxLoss()(loc: loc, conf: conf, locTargets: try #require(d["loc_t"]), confTargets: try #require(d["conf_t"]))
        #expect(abs(try ll.item() - Double(try #require(d["loss_l"]).toArray(Float.self)[0])) < 1e-4)
        #expect(abs(try lc.item() - Double(try #require(d["loss_c"]).toArray(Float.self)[0])) < 1e-4)
        try add(ll, lc).backward()
        try expectMatch(try #require(loc.grad), try #require(d["grad.loc"]), rtol: 1e-4, atol: 1e-6)
        try expectMatch(try #require(conf.grad), try #require(d["grad.conf"]), rtol: 1e-4, atol: 1e-6)
    }

    @Test func hardNegativesAreThreePerPositive() throws {
        // One positive among 10 priors: 3 negatives, the ones with the largest background loss.
        let conf = try Tensor([0, 0, 0, 5, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 4, 0, 0, 0, 2] as [Float], shape: [1, 10, 2]).requiringGrad()
        let loc = try Tensor.zeros([1, 10, 4]).requiringGrad()
        let targets = try Tensor([0, 0, 0, 0, 0, 0, 0, 0, 1, 0] as [Int64], shape: [1, 10])
        let (_, lc) = try MultiBoxLoss()(loc: loc, conf: conf, locTargets: try Tensor.zeros([1, 10, 4]), confTargets: targets)
        try lc.backward()
        let g = try #require(conf.grad).toArray(Float.self)
        // Priors 1, 4 and 7 (face logits 5, 3, 4) are the hard negatives, plus the positive 8.
        let touched = (0..<10).filter { g[2 * $0] != 0 || g[2 * $0 + 1] != 0 }
        #expect(touched == [1, 4, 7, 8])
    }

    @Test func badTargetsAreErrors() throws {
        let priors = try Tensor([0.5, 0.5, 0.2, 0.2] as [Float], shape: [1, 4])
        #expect(throws: VisionError.self) { try S3FDMatcher().match(truths: try Tensor.zeros([0, 4]), labels: [], priors: priors) }
        #expect(throws: VisionError.self) {
            try S3FDMatcher().match(truths: try Tensor([0.5, 0.5, 0.4, 0.6] as [Float], shape: [1, 4]), labels: [1], priors: priors)
        }
        #expect(throws: VisionError.self) {
            try MultiBoxLoss()(loc: try Tensor.zeros([1, 3, 4]), conf: try Tensor.zeros([1, 3, 2]), locTargets: try Tensor.zeros([1, 3, 4]),
                               confTargets: try Tensor([0, 2, 0] as [Int64], shape: [1, 3]))
        }
    }
}

/// Every element of `a` within atol + rtol * |b| of `b` (same shape).
func expectMatch(_ a: Tensor, _ b: Tensor, rtol: Float, atol: Float, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(a.shape == b.shape, sourceLocation: sourceLocation)
    let worst = worstMismatch(try a.contiguous().toArray(Float.self), try b.contiguous().toArray(Float.self), rtol: rtol, atol: atol)
    #expect(worst == nil, "worst mismatch (index, got, expected): \(String(describing: worst))", sourceLocation: sourceLocation)
}
