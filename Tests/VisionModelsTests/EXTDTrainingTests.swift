import Testing
import VisionCore
import VisionOptim
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

/// The trainable EXTD network: the official keys and weights, the inference network's outputs in eval mode, the
/// official train-mode gradients, and a training step that lowers the loss.
@Suite struct EXTDNetTests {
    func officialNet() throws -> EXTDNet {
        let net = try EXTDNet(variant: .extd32)
        try net.load(path: Repo.weights(.extd32))
        return net
    }

    func fixture() throws -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for e in try Safetensors.load(path: EXTDTrainingTests.fixture).entries { d[e.name] = e.tensor }
        return d
    }

    func targets(_ d: [String: Tensor], priors: Tensor) throws -> (Tensor, Tensor) {
        var locs: [Tensor] = [], confs: [Tensor] = []
        for b in 0..<2 {
            let truths = try #require(d["truths.\(b)"])
            let (l, c) = try S3FDMatcher().match(truths: truths, labels: [Int](repeating: 1, count: truths.shape[0]), priors: priors)
            locs.append(try l.unsqueeze(axis: 0)); confs.append(try c.unsqueeze(axis: 0))
        }
        return (try concat(locs, axis: 0), try concat(confs, axis: 0))
    }

    @Test func keysAndParameterCountsAreTheOfficialOnes() throws {
        for v in EXTDVariant.allCases {
            let net = try EXTDNet(variant: v)
            let file = try Safetensors.load(path: Repo.weights(v))
            #expect(Set(net.stateDict().map(\.0)) == Set(file.entries.map(\.name)), "\(v.name) keys")
            #expect(net.parameterCount() == v.expectedParameterCount, "\(v.name) parameters")
        }
    }

    @Test func evalModeEqualsTheInferenceNetwork() throws {
        let net = try officialNet().eval()
        let x = try #require(try fixture()["net.input"])
        let out = try Autograd.noGrad { try net.forwardDetection(x) }
        let reference = try net.inferenceModel().forward(x)
        try expectMatch(out.loc, reference.loc, rtol: 1e-3, atol: 1e-3)
        try expectMatch(out.conf, reference.conf, rtol: 1e-3, atol: 1e-3)
    }

    @Test func trainModeGradientsEqualTheOfficialOnes() throws {
        let d = try fixture()
        let net = try officialNet().train()
        let x = try #require(d["net.input"])
        let out = try net.forwardDetection(x)
        let priors = try S3FDAnchors.priors(inputHeight: x.shape[2], inputWidth: x.shape[3], featureSizes: out.featureSizes)
        let (locT, confT) = try targets(d, priors: priors)
        let (ll, lc) = try MultiBoxLoss()(loc: out.loc, conf: out.conf, locTargets: locT, confTargets: confT)
        #expect(abs(try ll.item() - Double(try #require(d["net.loss_l"]).toArray(Float.self)[0])) < 1e-3 * max(1, try ll.item()))
        #expect(abs(try lc.item() - Double(try #require(d["net.loss_c"]).toArray(Float.self)[0])) < 1e-3 * max(1, try lc.item()))
        try add(ll, lc).backward()
        let params = Dictionary(uniqueKeysWithValues: net.namedParameters().map { ($0.0, $0.1) })
        #expect(d.keys.filter { $0.hasPrefix("net.grad.") }.count == 9)
        for (name, expected) in d where name.hasPrefix("net.grad.") {
            let key = String(name.dropFirst("net.grad.".count))
            let grad = try #require(params[key]?.grad, "no gradient for \(key)")
            let err = try relativeL2(grad, expected)
            #expect(err < 1e-3, "gradient of \(key): relative L2 error \(err)")
        }
        let bnMean = try #require(net.stateDict().first { $0.0 == "base.3.conv.1.running_mean" }?.1)
        try expectMatch(bnMean, try #require(d["net.running_mean.base.3.conv.1"]), rtol: 1e-4, atol: 1e-4)
    }

    @Test func sgdStepsLowerTheLoss() throws {
        let d = try fixture()
        let net = try officialNet().train()
        let x = try #require(d["net.input"])
        let optimizer = try SGD(parameters: net.trainableParameters(), lr: 1e-3, momentum: 0.9, weightDecay: 5e-4)
        var losses: [Double] = []
        for _ in 0..<4 {
            optimizer.zeroGrad()
            let out = try net.forwardDetection(x)
            let priors = try S3FDAnchors.priors(inputHeight: x.shape[2], inputWidth: x.shape[3], featureSizes: out.featureSizes)
            let (locT, confT) = try targets(d, priors: priors)
            let (ll, lc) = try MultiBoxLoss()(loc: out.loc, conf: out.conf, locTargets: locT, confTargets: confT)
            let loss = try add(ll, lc)
            losses.append(try loss.item())
            try loss.backward()
            try optimizer.step()
        }
        #expect(losses.last! < losses.first!, "losses \(losses)")
    }
}
