import Testing
import VisionCore
import VisionNN
@testable import VisionModels

/// The CNN classifier fixture (tools/fixtures/classifiers_cnn.py, from timm 1.0.31): reduced configurations of
/// timm's ResNet and RexNet classes with randomized weights, their outputs and train-mode gradients, plus facts
/// about the full-size models.
enum CNNFixture {
    static let path = "\(Repo.root)/Tests/VisionCoreTests/Fixtures/classifiers_cnn.safetensors"
    static let file: SafetensorsFile? = try? Safetensors.load(path: path)

    static func load() throws -> SafetensorsFile {
        guard let file else { return try Safetensors.load(path: path) }  // throws the loading error
        return file
    }

    static func tensor(_ name: String) throws -> Tensor { try load().tensor(name) }

    /// The state dict of case `name` (keys without the `name.w.` prefix).
    static func weights(_ name: String) throws -> [(String, Tensor)] {
        let prefix = "\(name).w."
        return try load().entries.filter { $0.name.hasPrefix(prefix) }.map { (String($0.name.dropFirst(prefix.count)), $0.tensor) }
    }

    /// (parameters, state-dict entries) of the full-size timm model `name`.
    static func counts(_ name: String) throws -> [Int64] { try tensor("count.\(name)").toArray(Int64.self) }
}

/// Records an issue unless `got` is within `tol` relative L2 of the fixture tensor `key`.
func expectClose(_ got: Tensor, _ key: String, tol: Double = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let want = try CNNFixture.tensor(key)
    let err = try relativeL2(got, want)
    #expect(got.shape == want.shape, "\(key): shape \(got.shape), timm \(want.shape)", sourceLocation: sourceLocation)
    #expect(err <= tol, "\(key): relative L2 error \(err) > \(tol)", sourceLocation: sourceLocation)
}

/// Loads case `name`'s weights, checks eval-mode outputs against timm, then one train-mode step: logits with
/// batch statistics, gradients of the input and of `model`'s parameters, updated running statistics.
func checkClassifierParity(_ model: ImageClassifier, case name: String, gradTol: Double = 1e-4) throws {
    try model.loadStateDict(try CNNFixture.weights(name))
    let x = try CNNFixture.tensor("\(name).input")
    model.eval()
    let features = try model.forwardFeatures(x)
    try expectClose(features, "\(name).features")
    try expectClose(try model.forwardHead(features, preLogits: true), "\(name).pre_logits")
    try expectClose(try model(x), "\(name).logits")
    try expectClose(try model.forwardDenseLogits(x), "\(name).dense_logits")
    // Without gradient recording convNormAct takes the fused inference path (BatchNorm in the conv epilogue).
    try Autograd.noGrad {
        try expectClose(try model.forwardFeatures(x), "\(name).features")
        try expectClose(try model(x), "\(name).logits")
    }

    model.train()
    let xg = try x.requiringGrad()
    let logits = try model(xg)
    try expectClose(logits, "\(name).train.logits")
    try sum(try mul(logits, try CNNFixture.tensor("\(name).train.weight"))).backward()
    try expectClose(try #require(xg.grad), "\(name).train.grad.input", tol: gradTol)
    let params = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1) })
    let gradPrefix = "\(name).train.grad."
    let gradKeys = try CNNFixture.load().names.filter { $0.hasPrefix(gradPrefix) && $0 != "\(gradPrefix)input" }
    #expect(gradKeys.count >= 6)
    for key in gradKeys {
        let p = try #require(params[String(key.dropFirst(gradPrefix.count))], "no parameter for \(key)")
        try expectClose(try #require(p.grad, "\(key): no gradient"), key, tol: gradTol)
    }
    let state = Dictionary(uniqueKeysWithValues: model.stateDict())
    let statePrefix = "\(name).train.state."
    let stateKeys = try CNNFixture.load().names.filter { $0.hasPrefix(statePrefix) }
    #expect(stateKeys.count == state.keys.filter { $0.hasSuffix("running_mean") }.count * 3)
    for key in stateKeys {
        let got = try #require(state[String(key.dropFirst(statePrefix.count))], "no buffer for \(key)")
        if got.dtype == .int64 {
            #expect(try got.toArray(Int64.self) == CNNFixture.tensor(key).toArray(Int64.self), "\(key)")
        } else {
            try expectClose(got, key)
        }
    }
}

/// The per-block stochastic-depth rates of a model, in block order (0 where a block has no DropPath).
func dropPathRates<Block: Module>(_ model: Module, block: Block.Type) -> [Float] {
    model.namedModules().compactMap { $0.1 as? Block }.map { b in
        b.namedModules().compactMap { $0.1 as? DropPath }.first?.p ?? 0
    }
}

/// Case `name`'s drop-path rates per block equal timm's; eval mode ignores stochastic depth (logits equal timm's)
/// and train mode drops whole samples' branches and still backpropagates.
func checkDropPath<Block: Module>(_ model: ImageClassifier, block: Block.Type, case name: String) throws {
    let want = try CNNFixture.tensor("\(name).drop_path").toArray(Float.self)
    let got = dropPathRates(model, block: block)
    #expect(got.count == want.count)
    for (g, w) in zip(got, want) { #expect(abs(g - w) < 1e-6, "drop path rates \(got), timm \(want)") }
    try model.loadStateDict(try CNNFixture.weights(name))
    let x = try CNNFixture.tensor("\(name).input")
    model.eval()
    try expectClose(try model(x), "\(name).logits")
    model.train()
    let xg = try x.requiringGrad()
    try sum(try model(xg)).backward()
    let g = try #require(xg.grad).toArray(Float.self)
    #expect(g.allSatisfy(\.isFinite) && g.contains { $0 != 0 })
}

@Suite struct ResNetTests {
    static let basic = ResNetConfig(block: .basic, layers: [2, 1, 1, 1], channels: [8, 16, 32, 64])
    static let bottleneck = ResNetConfig(block: .bottleneck, layers: [2, 1, 1, 1], channels: [8, 16, 16, 32])

    static func reduced(_ name: String, options: ClassifierOptions = ClassifierOptions(numClasses: 10)) throws -> ResNet {
        try ResNet(name: name, architecture: name == "resnet_basic" ? basic : bottleneck, config: ResNet.pretrainedConfig,
                   options: options)
    }

    @Test(arguments: ["resnet_basic", "resnet_bottleneck"]) func parityWithTimm(_ name: String) throws {
        try checkClassifierParity(try Self.reduced(name), case: name)
    }

    @Test(arguments: ResNet.architectures.map(\.name)) func fullSizeCountsEqualTimm(_ name: String) throws {
        let model = try ClassifierRegistry.create(name)
        let want = try CNNFixture.counts(name)
        #expect(model.parameterCount() == Int(want[0]))
        #expect(model.stateDict().count == Int(want[1]))
        #expect(model.numFeatures == (name == "resnet18" || name == "resnet34" ? 512 : 2048))
    }

    @Test func resnet50MatchesTheIssuesNumbers() throws {
        let model = try ClassifierRegistry.create("resnet50")
        #expect(model.parameterCount() == 25_557_032)
        #expect(model.stateDict().count == 320)
        let keys = model.stateDict().map(\.0)
        #expect(keys.prefix(3) == ["conv1.weight", "bn1.weight", "bn1.bias"])
        #expect(keys.contains("layer1.0.downsample.0.weight") && keys.contains("layer4.2.bn3.num_batches_tracked"))
        #expect(keys.suffix(2) == ["fc.weight", "fc.bias"])
    }

    /// Blocks handed their input (`forward(owning:)`, as the stages pass it on) write their output over the identity
    /// shortcut in inference (no gradients recorded): two bottleneck blocks in a Sequential return the input's own
    /// memory, with the bits of the plain `forward`, which leaves its input as it was and takes new memory.
    @Test func blocksHandedTheirInputWriteOverIt() throws {
        var rng = RandomGenerator(seed: 5)
        let blocks = Sequential([
            try ResNetBlock(kind: .bottleneck, inChannels: 32, planes: 8, stride: 1, dropPath: 0, rng: &rng),
            try ResNetBlock(kind: .bottleneck, inChannels: 32, planes: 8, stride: 1, dropPath: 0, rng: &rng)])
        blocks.eval()
        let x = try randomTensorModels([1, 32, 10, 10], seed: 6), before = try x.toArray(Float.self)
        let plain = try Autograd.noGrad { try blocks(x) }
        #expect(try x.toArray(Float.self) == before)
        #expect(plain.pointer(Float.self) != x.pointer(Float.self))
        let (y, memory) = try Autograd.noGrad { () throws -> (Tensor, UnsafeMutablePointer<Float>) in
            let owned = try x.copyContiguous(), memory = owned.pointer(Float.self)
            return (try blocks.forward(owning: consume owned), memory)
        }
        #expect(y.pointer(Float.self) == memory)
        #expect(try y.toArray(Float.self) == plain.toArray(Float.self))
    }

    @Test func registryEntriesCarryTimmsDefaultConfig() throws {
        for name in ["resnet18", "resnet34", "resnet50", "resnet101"] {
            let e = try ClassifierRegistry.entry(name)
            #expect(e.config.inputSize == [3, 224, 224] && e.config.cropPct == 0.95 && e.config.interpolation == .bicubic)
            #expect(e.config.mean == PretrainedConfig.imagenetMean && e.config.std == PretrainedConfig.imagenetStd)
            #expect(e.config.classifier == "fc" && e.config.numClasses == 1000 && !e.config.fixedInputSize)
        }
    }

    @Test(arguments: ["resnet_basic", "resnet_bottleneck"]) func dropPathScheduleAndTrainMode(_ name: String) throws {
        let model = try Self.reduced(name, options: ClassifierOptions(numClasses: 10, dropPathRate: 0.2, seed: 3))
        try checkDropPath(model, block: ResNetBlock.self, case: name)
    }

    @Test func numClassesZeroGivesPreLogits() throws {
        let model = try Self.reduced("resnet_basic", options: ClassifierOptions(numClasses: 0))
        #expect(model.stateDict().allSatisfy { !$0.0.hasPrefix("fc.") })
        try model.loadStateDict(try CNNFixture.weights("resnet_basic").filter { !$0.0.hasPrefix("fc.") })
        model.eval()
        try expectClose(try model(try CNNFixture.tensor("resnet_basic.input")), "resnet_basic.pre_logits")
        #expect(throws: VisionError.self) { try model.forwardDenseLogits(try CNNFixture.tensor("resnet_basic.input")) }
    }

    @Test func inChansAndSeedAreHonoured() throws {
        let a = try Self.reduced("resnet_basic", options: ClassifierOptions(numClasses: 10, inChans: 1, seed: 5))
        let b = try Self.reduced("resnet_basic", options: ClassifierOptions(numClasses: 10, inChans: 1, seed: 5))
        let c = try Self.reduced("resnet_basic", options: ClassifierOptions(numClasses: 10, inChans: 1, seed: 6))
        #expect(a.conv1.weight.value.shape == [64, 1, 7, 7])
        let wa = try a.conv1.weight.value.toArray(Float.self)
        #expect(wa == (try b.conv1.weight.value.toArray(Float.self)))
        #expect(wa != (try c.conv1.weight.value.toArray(Float.self)))
        // kaiming normal, fan_out = 64 * 49: std sqrt(2 / 3136) ~ 0.0253.
        let std = (wa.map { $0 * $0 }.reduce(0, +) / Float(wa.count)).squareRoot()
        #expect(abs(std - (2 / 3136 as Float).squareRoot()) < 0.004)
        // timm's zero_init_last: the residual branches start as zero, so each block begins as its shortcut.
        let block = try #require(a.stages[0].layers[1] as? ResNetBlock)
        let lastBN = try #require(block.convs.last?.1.weight)
        #expect(try lastBN.value.toArray(Float.self).allSatisfy { $0 == 0 })
        var rng = RandomGenerator(seed: 11)
        let out = try a.eval()(try Tensor.normal([2, 1, 40, 36], rng: &rng))
        #expect(out.shape == [2, 10])
    }

    @Test func badInputAndWrongWeightsGiveClearErrors() throws {
        let model = try Self.reduced("resnet_basic")
        #expect {
            try model(try Tensor.zeros([1, 4, 32, 32]))
        } throws: { e in
            (e as? VisionError).map { $0.message.contains("[B, 3, H, W]") && $0.message.contains("[1, 4, 32, 32]") } ?? false
        }
        #expect(throws: VisionError.self) { try model(try Tensor.zeros([3, 32, 32])) }
        #expect(throws: VisionError.self) { try model.forwardHead(try Tensor.zeros([1, 32, 2, 2])) }
        // Weights of the other family member: every missing, unexpected and mis-shaped key is named.
        #expect {
            try model.loadStateDict(try CNNFixture.weights("resnet_bottleneck"))
        } throws: { e in
            guard let m = (e as? VisionError)?.message else { return false }
            return m.contains("unexpected keys: layer1.0.bn3.bias") && m.contains("layer4.0.conv3.weight")
                && m.contains("layer1.0.conv1.weight: checkpoint [8, 64, 1, 1], model [8, 64, 3, 3]")
        }
        #expect(throws: VisionError.self) {
            try ResNet(name: "bad", architecture: ResNetConfig(block: .basic, layers: [2, 2, 2]), config: ResNet.pretrainedConfig)
        }
        #expect(throws: VisionError.self) { try ClassifierRegistry.create("resnet50", options: ClassifierOptions(inChans: 0)) }
    }
}
