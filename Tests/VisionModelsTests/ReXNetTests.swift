import Testing
import VisionCore
import VisionNN
@testable import VisionModels

/// ReXNet against timm (fixture tools/fixtures/classifiers_cnn.py): a reduced RexNet (width 0.25, depth 0.5:
/// ten blocks with every kind of block, SE with BN, partial residuals and round-half-to-even widths) for the
/// numbers, the full-size models for their schedule, parameter and entry counts.
@Suite struct ReXNetTests {
    static let reducedArchitecture = ReXNetConfig(widthMult: 0.25, depthMult: 0.5)

    static func reduced(_ options: ClassifierOptions = ClassifierOptions(numClasses: 10, dropRate: 0)) throws -> ReXNet {
        try ReXNet(name: "rexnet", architecture: reducedArchitecture, config: ReXNet.pretrainedConfig, options: options)
    }

    @Test func parityWithTimm() throws {
        try checkClassifierParity(try Self.reduced(), case: "rexnet")
    }

    /// The schedule of section 2.2 for every width (timm's blocks, in -> dw -> out, stride, SE width, shortcut).
    @Test(arguments: ReXNet.architectures.map { ($0.name, $0.architecture) } + [("rexnet", reducedArchitecture)])
    func channelScheduleEqualsTimm(_ name: String, _ architecture: ReXNetConfig) throws {
        let rows = try CNNFixture.tensor("rexnet_schedule.\(name)").toArray(Int64.self).map(Int.init)
        let want = stride(from: 0, to: rows.count, by: 6).map { Array(rows[$0..<$0 + 6]) }
        let got = architecture.blocks.map {
            [$0.inChannels, $0.expandedChannels, $0.outChannels, $0.stride, $0.seChannels, $0.hasShortcut ? 1 : 0]
        }
        #expect(got == want)
        let stemPen = try CNNFixture.tensor("rexnet_stem_pen.\(name)").toArray(Int64.self).map(Int.init)
        #expect([architecture.stemChannels, architecture.penultimateChannels] == stemPen)
    }

    /// The ties that round half to even (half up would give 39, 129, ... and break weight loading).
    @Test func roundingTiesGoToEven() {
        let outs = { (w: Double) in ReXNetConfig(widthMult: w).blocks.map(\.outChannels) }
        #expect(outs(1.0)[2] == 38 && outs(1.0)[10] == 128)
        #expect(outs(1.5)[12] == 226)
        #expect([1, 5, 9, 13].map { outs(2.0)[$0] } == [54, 144, 234, 324])
        #expect(ReXNetConfig.roundHalfEven(2.5) == 2 && ReXNetConfig.roundHalfEven(3.5) == 4)
    }

    @Test(arguments: ReXNet.architectures.map(\.name)) func fullSizeCountsEqualTimm(_ name: String) throws {
        let model = try ClassifierRegistry.create(name)
        let want = try CNNFixture.counts(name)
        #expect(model.parameterCount() == Int(want[0]))
        #expect(model.stateDict().count == Int(want[1]))
    }

    @Test func rexnet100MatchesTheIssuesNumbers() throws {
        let model = try ClassifierRegistry.create("rexnet_100")
        #expect(model.parameterCount() == 4_796_873)
        #expect(model.stateDict().count == 413)
        let shapes = Dictionary(uniqueKeysWithValues: model.stateDict().map { ($0.0, $0.1.shape) })
        #expect(shapes["stem.conv.weight"] == [32, 3, 3, 3])
        #expect(shapes["features.0.conv_exp.conv.weight"] == nil && shapes["features.2.se.fc1.weight"] == nil)
        #expect(shapes["features.3.se.fc1.weight"] == [19, 228, 1, 1] && shapes["features.3.se.bn.running_var"] == [19])
        #expect(shapes["features.15.conv_pwl.conv.weight"] == [185, 1044, 1, 1])
        #expect(shapes["features.16.conv.weight"] == [1280, 185, 1, 1])
        #expect(shapes["head.fc.weight"] == [1000, 1280] && shapes["head.fc.bias"] == [1000])
    }

    @Test func registryEntriesCarryTimmsDefaultConfig() throws {
        #expect(ClassifierRegistry.names.filter { $0.hasPrefix("rexnet") } == ["rexnet_100", "rexnet_130", "rexnet_150", "rexnet_200"])
        for (name, _) in ReXNet.architectures {
            let e = try ClassifierRegistry.entry(name)
            #expect(e.config.inputSize == [3, 224, 224] && e.config.cropPct == 0.875 && e.config.interpolation == .bicubic)
            #expect(e.config.mean == PretrainedConfig.imagenetMean && e.config.std == PretrainedConfig.imagenetStd)
            #expect(e.config.classifier == "head.fc" && e.config.numClasses == 1000)
        }
    }

    @Test func dropoutDefaultsToTimmsAndIsActiveOnlyInTraining() throws {
        let model = try ClassifierRegistry.create("rexnet_100", options: ClassifierOptions(numClasses: 7, seed: 1))
        let rexnet = try #require(model as? ReXNet)
        #expect(rexnet.head.drop.p == 0.2)
        // Pre-logits in train mode: dropout zeroes about 20% and scales the rest by 1 / 0.8.
        var rng = RandomGenerator(seed: 2)
        let f = try Tensor.uniform([2, 1280, 2, 2], low: 1, high: 2, rng: &rng)
        let pooled = try mean(f, axes: [2, 3]).toArray(Float.self)
        let dropped = try model.forwardHead(f, preLogits: true).toArray(Float.self)
        let zeros = dropped.filter { $0 == 0 }.count
        #expect(zeros > 300 && zeros < 724)
        for (d, p) in zip(dropped, pooled) where d != 0 { #expect(abs(d - p / 0.8) < 1e-5) }
        model.eval()
        #expect(try model.forwardHead(f, preLogits: true).toArray(Float.self) == pooled)
    }

    @Test func dropPathScheduleAndTrainMode() throws {
        let model = try Self.reduced(ClassifierOptions(numClasses: 10, dropRate: 0, dropPathRate: 0.2, seed: 4))
        try checkDropPath(model, block: ReXNetBlock.self, case: "rexnet")
    }

    @Test func numClassesZeroGivesPreLogits() throws {
        let model = try Self.reduced(ClassifierOptions(numClasses: 0))
        #expect(model.stateDict().allSatisfy { !$0.0.hasPrefix("head.") })
        try model.loadStateDict(try CNNFixture.weights("rexnet").filter { !$0.0.hasPrefix("head.") })
        model.eval()
        try expectClose(try model(try CNNFixture.tensor("rexnet.input")), "rexnet.pre_logits")
        #expect(throws: VisionError.self) { try model.forwardDenseLogits(try CNNFixture.tensor("rexnet.input")) }
    }

    @Test func initFollowsTimm() throws {
        let a = try Self.reduced(ClassifierOptions(numClasses: 10, inChans: 2, seed: 9))
        let b = try Self.reduced(ClassifierOptions(numClasses: 10, inChans: 2, seed: 9))
        #expect(a.stem.conv.weight.value.shape == [32, 2, 3, 3])
        for ((n, p), (_, q)) in zip(a.namedParameters(), b.namedParameters()) {
            #expect(try p.value.toArray(Float.self) == q.value.toArray(Float.self), "\(n) differs between equal seeds")
        }
        // Depthwise conv: fan_out = 9 * out / groups = 9, std sqrt(2 / 9).
        let dw = try a.blocks[9].convDw.conv.weight.value.toArray(Float.self)
        let std = (dw.map { $0 * $0 }.reduce(0, +) / Float(dw.count)).squareRoot()
        #expect(abs(std - (2 / 9 as Float).squareRoot()) < 0.03)
        let seBias = try #require(a.blocks[9].se?.fc1.bias)
        #expect(try seBias.value.toArray(Float.self).allSatisfy { $0 == 0 })
        var rng = RandomGenerator(seed: 3)
        #expect(try a.eval()(try Tensor.normal([1, 2, 48, 40], rng: &rng)).shape == [1, 10])
    }

    @Test func badInputAndWrongWeightsGiveClearErrors() throws {
        let model = try Self.reduced()
        #expect {
            try model(try Tensor.zeros([1, 1, 32, 32]))
        } throws: { e in
            (e as? VisionError).map { $0.message.contains("[B, 3, H, W]") && $0.message.contains("[1, 1, 32, 32]") } ?? false
        }
        #expect(throws: VisionError.self) { try model.forwardHead(try Tensor.zeros([2, 10, 1, 1])) }
        // A ResNet's weights: the ReXNet keys are listed as missing, the ResNet ones as unexpected.
        #expect {
            try model.loadStateDict(try CNNFixture.weights("resnet_basic"))
        } throws: { e in
            guard let m = (e as? VisionError)?.message else { return false }
            return m.contains("missing keys") && m.contains("stem.conv.weight") && m.contains("features.4.se.fc1.weight")
                && m.contains("unexpected keys") && m.contains("layer1.0.conv1.weight")
        }
        // The full rexnet_100 cannot take the reduced weights: mis-shaped keys are listed with both shapes.
        #expect {
            try ClassifierRegistry.create("rexnet_100", options: ClassifierOptions(numClasses: 10))
                .loadStateDict(try CNNFixture.weights("rexnet"), strict: false)
        } throws: { e in
            (e as? VisionError)?.message.contains("features.1.conv_pwl.conv.weight: checkpoint [20, 96, 1, 1], model [27, 96, 1, 1]") == true
        }
        #expect(throws: VisionError.self) {
            try ReXNet(name: "bad", architecture: ReXNetConfig(widthMult: .nan), config: ReXNet.pretrainedConfig)
        }
        // The schedule of an unvalidated config is still computed without trapping.
        #expect(ReXNetConfig(widthMult: .nan, depthMult: .infinity, seRatio: .nan).blocks.count > 0)
        #expect(ReXNetConfig(widthMult: 1e300).stemChannels > 0)
        #expect(throws: VisionError.self) { try ClassifierRegistry.create("rexnet_100", options: ClassifierOptions(dropRate: 1)) }
    }
}
