import Testing
import VisionCore
import VisionNN
@testable import VisionModels

/// The timm oracle (tools/fixtures/classifiers_pit.py): two reduced PiT configs built with timm's own
/// PoolingVisionTransformer ("plain", "distilled"), their weights, inputs, outputs and gradients, and the full-size
/// models' parameter / entry counts, keys and pretrained cfgs in the metadata.
private enum PiTFixture {
    static let path = "\(Repo.root)/Tests/VisionCoreTests/Fixtures/classifiers_pit.safetensors"
    static let loaded = Result { try Safetensors.load(path: path) }
    static var file: SafetensorsFile { get throws { try loaded.get() } }

    static func tensor(_ name: String) throws -> Tensor { try file.tensor(name) }

    static func metadata(_ key: String) throws -> JSONValue {
        guard let text = try file.metadata.first(where: { $0.0 == key })?.1 else {
            throw VisionError.format("classifiers_pit fixture: no metadata '\(key)'")
        }
        return try JSONValue.parse(text)
    }

    /// The reduced config `name` exactly as the script built it.
    static func arch(_ name: String) throws -> (PiTConfig, classes: Int) {
        guard let c = try metadata("configs")[name] else { throw VisionError.format("no config \(name)") }
        func int(_ k: String) -> Int { Int(c[k]?.numberValue ?? -1) }
        func ints(_ k: String) -> [Int] { (c[k]?.arrayValue ?? []).map { Int($0.numberValue ?? -1) } }
        let distilled: Bool = { if case .bool(let b)? = c["distilled"] { return b }; return false }()
        return (PiTConfig(imgSize: int("img_size"), patchSize: int("patch_size"), stride: int("stride"),
                          baseDims: ints("base_dims"), heads: ints("heads"), depth: ints("depth"), distilled: distilled),
                int("num_classes"))
    }

    /// timm's weights of reduced config `name` (prefix removed), optionally without the classifier.
    static func weights(_ name: String, dropHead: Bool = false) throws -> [(String, Tensor)] {
        let prefix = "\(name).w."
        return try file.entries.filter { $0.name.hasPrefix(prefix) }
            .map { (String($0.name.dropFirst(prefix.count)), $0.tensor) }
            .filter { !dropHead || !$0.0.hasPrefix("head") }
    }

    /// Reduced model `name` with timm's weights.
    static func model(_ name: String, numClasses: Int? = nil) throws -> PiT {
        let (arch, classes) = try arch(name)
        let m = try PiT(name: "pit_reduced_\(name)", arch: arch, options: ClassifierOptions(numClasses: numClasses ?? classes, seed: 7))
        try m.loadStateDict(try weights(name, dropHead: numClasses == 0))
        return m
    }
}

private func expectClose(_ got: Tensor, _ want: Tensor, _ what: String, tol: Double = 1e-4,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(got.shape == want.shape, "\(what): shape \(got.shape), timm \(want.shape)", sourceLocation: sourceLocation)
    guard got.shape == want.shape else { return }
    let e = try relativeL2(got, want)
    #expect(e < tol, "\(what): relative L2 error \(e)", sourceLocation: sourceLocation)
}

@Suite(.serialized) struct PiTParityTests {
    static let configs = ["plain", "distilled"]

    @Test(arguments: configs) func evalOutputsMatchTimm(_ name: String) throws {
        let m = try PiTFixture.model(name).eval()
        let x = try PiTFixture.tensor("\(name).input")
        try Autograd.noGrad {
            try expectClose(try m(x), try PiTFixture.tensor("\(name).logits"), "\(name) logits")
            let f = try m.forwardFeatures(x)
            try expectClose(f, try PiTFixture.tensor("\(name).features"), "\(name) forward_features")
            try expectClose(try m.forwardHead(f, preLogits: true), try PiTFixture.tensor("\(name).prelogits"), "\(name) pre_logits")
            let stages = try m.forwardStages(x, keepMaps: true).stages
            #expect(stages.count == 3)
            for (i, (map, cls)) in stages.enumerated() {
                try expectClose(map, try PiTFixture.tensor("\(name).stage\(i).map"), "\(name) transformers.\(i) map")
                try expectClose(cls, try PiTFixture.tensor("\(name).stage\(i).cls"), "\(name) transformers.\(i) cls tokens")
            }
        }
    }

    /// Eval outputs with gradients recorded (the differentiable path) equal the no-grad outputs' oracle too.
    @Test(arguments: configs) func evalWithGradientsMatchesTimm(_ name: String) throws {
        let m = try PiTFixture.model(name).eval()
        let x = try PiTFixture.tensor("\(name).input").requiringGrad()
        let y = try m(x)
        #expect(y.requiresGrad)
        try expectClose(y, try PiTFixture.tensor("\(name).logits"), "\(name) logits (recording)")
    }

    /// Training mode (drop rates 0): timm's train-mode logits (the head average, also for the distilled model),
    /// then the gradients of sum(logits * r) with respect to the input and a selection of weights.
    @Test(arguments: configs) func trainGradientsMatchTimm(_ name: String) throws {
        let m = try PiTFixture.model(name).train()
        let x = try PiTFixture.tensor("\(name).input").requiringGrad()
        let logits = try m(x)
        try expectClose(logits, try PiTFixture.tensor("\(name).train.logits"), "\(name) train logits")
        try sum(try mul(logits, try PiTFixture.tensor("\(name).train.r"))).backward()
        let params = Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.0, $0.1) })
        let prefix = "\(name).grad."
        let names = try PiTFixture.file.names.filter { $0.hasPrefix(prefix) }
        #expect(names.count >= 18)
        for full in names {
            let key = String(full.dropFirst(prefix.count))
            let want = try PiTFixture.tensor(full)
            let got = key == "input" ? x.grad : params[key]?.grad
            guard let got else { Issue.record("\(name): no gradient for \(key)"); continue }
            try expectClose(got, want, "\(name) grad \(key)")
        }
    }

    /// numClasses 0 removes the classifier: forward returns timm's pre-logits (the token-average for distilled).
    @Test(arguments: configs) func noClassifierReturnsPreLogits(_ name: String) throws {
        let m = try PiTFixture.model(name, numClasses: 0).eval()
        #expect(m.head == nil && m.headDist == nil && m.numClasses == 0)
        #expect(!m.stateDict().contains { $0.0.hasPrefix("head") })
        let y = try Autograd.noGrad { try m(try PiTFixture.tensor("\(name).input")) }
        try expectClose(y, try PiTFixture.tensor("\(name).prelogits"), "\(name) pre-logits")
    }

    /// Full-size models: the eval inference path (token buffer, fused kernels) equals the autograd module path.
    @Test(arguments: ["pit_ti_distilled_224", "pit_s_224"]) func inferencePathMatchesModulePath(_ name: String) throws {
        let m = try #require(try ClassifierRegistry.create(name, options: ClassifierOptions(seed: 11)) as? PiT).eval()
        var rng = RandomGenerator(seed: 5)
        let x = try Tensor.normal([2, 3, 224, 224], rng: &rng)
        #expect(!m.usesInferencePath(x))  // parameters require gradients and recording is on
        let reference = try m.forwardStages(x, keepMaps: false).features
        // Stages of at least 256 rows per thread run row-chunked through OpenBLAS, shorter ones on token columns
        // (the conv GEMM): stage 2 (394 rows) is row-chunked on one thread and on columns on two or three.
        for threads in [1, 2, 3] {
            try Threading.withThreadCount(threads) {
                try Autograd.noGrad {
                    #expect(m.usesInferencePath(x))
                    try expectClose(try m.forwardFeatures(x), reference, "\(name) inference-path features (\(threads) threads)", tol: 1e-5)
                }
            }
        }
        #expect(!m.train().usesInferencePath(x))
    }

    @Test func distillationHeadsAverageToLogits() throws {
        let m = try PiTFixture.model("distilled").eval()
        let x = try PiTFixture.tensor("distilled.input")
        let (a, b) = try m.forwardDistillation(x)
        try expectClose(try mul(try add(a, b), try Tensor.full([], value: 0.5)), try PiTFixture.tensor("distilled.logits"), "head average")
        #expect(try relativeL2(a, b) > 1e-2)  // the two heads really differ
        #expect(throws: VisionError.self) { try PiTFixture.model("plain").forwardDistillation(x) }
    }
}

@Suite(.serialized) struct PiTStructureTests {
    static let names = ["pit_ti_224", "pit_xs_224", "pit_s_224", "pit_b_224",
                        "pit_ti_distilled_224", "pit_xs_distilled_224", "pit_s_distilled_224", "pit_b_distilled_224"]

    /// Full-size models: parameter counts, state-dict entry counts and pretrained cfgs equal timm's.
    @Test(arguments: names) func fullSizeCountsMatchTimm(_ name: String) throws {
        guard let want = try PiTFixture.metadata("full")[name] else { Issue.record("no timm data for \(name)"); return }
        let m = try ClassifierRegistry.create(name)
        #expect(m.name == name && m is PiT)
        #expect(m.parameterCount() == Int(want["params"]?.numberValue ?? -1))
        #expect(m.stateDict().count == Int(want["entries"]?.numberValue ?? -1))
        let cfg = try #require(want["cfg"])
        let entry = try ClassifierRegistry.entry(name)
        for c in [m.config, entry.config] {
            #expect(c.inputSize == (cfg["input_size"]?.arrayValue ?? []).map { Int($0.numberValue ?? -1) })
            #expect(c.mean == (cfg["mean"]?.arrayValue ?? []).map { Float($0.numberValue ?? -1) })
            #expect(c.std == (cfg["std"]?.arrayValue ?? []).map { Float($0.numberValue ?? -1) })
            #expect(c.cropPct == cfg["crop_pct"]?.numberValue)
            #expect(c.interpolation.rawValue == cfg["interpolation"]?.stringValue)
            #expect(c.numClasses == Int(cfg["num_classes"]?.numberValue ?? -1))
            #expect(cfg["fixed_input_size"] == .bool(c.fixedInputSize))
            #expect(c.classifier == "head")
        }
    }

    /// pit_ti_224 and its distilled variant: every key, in timm's order, with timm's shape.
    @Test(arguments: ["pit_ti_224", "pit_ti_distilled_224"]) func keysAndShapesMatchTimm(_ name: String) throws {
        let want = (try PiTFixture.metadata("full")[name]?["keys"]?.arrayValue ?? []).map { e -> (String, [Int]) in
            let a = e.arrayValue ?? []
            return (a.first?.stringValue ?? "", (a.last?.arrayValue ?? []).map { Int($0.numberValue ?? -1) })
        }
        let got = try ClassifierRegistry.create(name).stateDict().map { ($0.0, $0.1.shape) }
        #expect(want.count == (name == "pit_ti_224" ? 160 : 162))
        #expect(got.map(\.0) == want.map(\.0))
        #expect(got.map(\.1) == want.map(\.1))
    }

    @Test func dropPathScheduleMatchesTimm() throws {
        let want = (try PiTFixture.metadata("full")["pit_ti_224"]?["drop_path_0.1"]?.arrayValue ?? [])
            .map { ($0.arrayValue ?? []).map { Float($0.numberValue ?? -1) } }
        let m = try #require(try ClassifierRegistry.create("pit_ti_224", options: ClassifierOptions(dropPathRate: 0.1)) as? PiT)
        let got = m.stages.map { $0.blocks.map(\.dropPath1.p) }
        #expect(got.count == want.count)
        for (g, w) in zip(got, want) {
            #expect(g.count == w.count)
            for (a, b) in zip(g, w) { #expect(abs(a - b) < 1e-6, "\(got) vs timm \(want)") }
        }
        #expect(m.stages.allSatisfy { $0.blocks.allSatisfy { $0.dropPath1.p == $0.dropPath2.p } })
    }

    @Test func optionsAndInit() throws {
        let m = try #require(try ClassifierRegistry.create("pit_ti_distilled_224", options: ClassifierOptions(numClasses: 7, inChans: 1, seed: 3)) as? PiT)
        #expect(m.patchEmbed.weight.value.shape == [64, 1, 16, 16])
        #expect(m.head?.weight.value.shape == [7, 256] && m.headDist?.weight.value.shape == [7, 256])
        #expect(m.config.inputSize == [1, 224, 224] && m.config.numClasses == 7 && m.numFeatures == 256)
        #expect(m.isTraining)
        // pos_embed / cls_token: trunc_normal(std 0.02) in [-2, 2]; LayerNorm weight 1, bias 0.
        let pe = try m.posEmbed.value.toArray(Float.self)
        let mean = pe.reduce(0, +) / Float(pe.count)
        let std = (pe.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(pe.count)).squareRoot()
        #expect(abs(mean) < 2e-3 && abs(std - 0.02) < 2e-3)
        #expect(try m.norm.weight!.value.toArray(Float.self).allSatisfy { $0 == 1 })
        #expect(try m.norm.bias!.value.toArray(Float.self).allSatisfy { $0 == 0 })
        // Same seed, same weights; another seed, other weights.
        let again = try #require(try ClassifierRegistry.create("pit_ti_distilled_224", options: ClassifierOptions(numClasses: 7, inChans: 1, seed: 3)) as? PiT)
        let other = try #require(try ClassifierRegistry.create("pit_ti_distilled_224", options: ClassifierOptions(numClasses: 7, inChans: 1, seed: 4)) as? PiT)
        #expect(try again.clsToken.value.toArray(Float.self) == m.clsToken.value.toArray(Float.self))
        #expect(try other.clsToken.value.toArray(Float.self) != m.clsToken.value.toArray(Float.self))
    }

    /// Dropout / drop path in training mode change the output (and still backpropagate); eval mode is exact.
    @Test func stochasticTrainingMode() throws {
        let (arch, _) = try PiTFixture.arch("plain")
        let m = try PiT(name: "reduced", arch: arch, options: ClassifierOptions(numClasses: 10, dropRate: 0.5, dropPathRate: 0.5))
        try m.loadStateDict(try PiTFixture.weights("plain"))
        let x = try PiTFixture.tensor("plain.input").requiringGrad()
        let y = try m.train()(x)
        try sum(y).backward()
        #expect(x.grad != nil)
        #expect(try relativeL2(y, try PiTFixture.tensor("plain.logits")) > 1e-3)
        let e = try Autograd.noGrad { try m.eval()(x) }
        try expectClose(e, try PiTFixture.tensor("plain.logits"), "eval logits with drop rates set")
    }
}

@Suite struct PiTErrorTests {
    /// pit_ti_224 accepts only inputs whose 16/8 patch grid is 27x27: sides 224...231, 3 channels.
    @Test func wrongInputsThrowClearErrors() throws {
        let m = try ClassifierRegistry.create("pit_ti_224").eval()
        for shape in [[1, 3, 232, 224], [1, 3, 224, 216], [1, 3, 223, 223], [1, 1, 224, 224], [3, 224, 224], [1, 3, 8, 8]] {
            let x = try Tensor(zeros: shape)
            do {
                _ = try m(x)
                Issue.record("input \(shape) was accepted")
            } catch let e as VisionError {
                guard case .shapeMismatch = e else { Issue.record("\(shape): \(e)"); continue }
                #expect(e.message.contains("[B, 3, 224, 224]") && e.message.contains("pit_ti_224") && e.message.contains("\(shape)"), "\(e.message)")
            }
        }
        #expect(throws: VisionError.self) { try m(try Tensor(zeros: [1, 3, 224, 224], dtype: .int32)) }
        #expect(throws: VisionError.self) { try m.forwardHead(try Tensor(zeros: [1, 2, 256])) }
        #expect(throws: VisionError.self) { try m.forwardHead(try Tensor(zeros: [1, 1, 128])) }
    }

    /// A side in the accepted range that is not imgSize (timm accepts it too: same grid).
    @Test func sameGridSizeIsAccepted() throws {
        let m = try PiTFixture.model("plain").eval()
        let (arch, _) = try PiTFixture.arch("plain")
        let y = try Autograd.noGrad { try m(try Tensor(zeros: [1, 3, arch.imgSize + arch.stride - 1, arch.imgSize])) }
        #expect(y.shape == [1, 10])
        #expect(throws: VisionError.self) { try m(try Tensor(zeros: [1, 3, arch.imgSize + arch.stride, arch.imgSize])) }
        // An empty batch: an empty result or an error, by both paths, never a crash.
        let empty = try Tensor(zeros: [0, 3, arch.imgSize, arch.imgSize])
        if let y = try? Autograd.noGrad({ try m(empty) }) { #expect(y.shape == [0, 10]) }
        if let y = try? m(empty.requiringGrad()) { #expect(y.shape == [0, 10]) }
    }

    @Test func weightsOfAnotherModelAreRejected() throws {
        // The plain model's weights into the same trunk with a distillation token: two keys missing, one mis-shaped.
        let (arch, _) = try PiTFixture.arch("plain")
        let m = try PiT(name: "reduced", arch: arch.distilled(true), options: ClassifierOptions(numClasses: 10))
        let before = try m.clsToken.value.toArray(Float.self)
        do {
            try m.loadStateDict(try PiTFixture.weights("plain"))
            Issue.record("plain weights loaded into the distilled model")
        } catch let e as VisionError {
            #expect(e.message == "load_state_dict for PiT: missing keys: head_dist.weight, head_dist.bias; shape mismatches: cls_token: checkpoint [1, 1, 16], model [1, 2, 16]", "\(e.message)")
        }
        #expect(try m.clsToken.value.toArray(Float.self) == before)
        let ti = try ClassifierRegistry.create("pit_ti_224"), xs = try ClassifierRegistry.create("pit_xs_224")
        #expect(throws: VisionError.self) { try xs.loadStateDict(ti.stateDict()) }
        let b = try ClassifierRegistry.create("pit_b_distilled_224")
        #expect(throws: VisionError.self) { try b.loadStateDict(ti.stateDict()) }
    }

    @Test func invalidConfigsAndOptionsThrow() throws {
        var bad = PiTConfig.ti
        bad.heads = [2, 3, 8]  // stage 1 width 96 is not a multiple of 64
        #expect(throws: VisionError.self) { try PiT(name: "bad", arch: bad) }
        bad = PiTConfig.ti; bad.depth = [2, 6]
        #expect(throws: VisionError.self) { try PiT(name: "bad", arch: bad) }
        #expect(throws: VisionError.self) { try ClassifierRegistry.create("pit_ti_224", options: ClassifierOptions(numClasses: -1)) }
        #expect(throws: VisionError.self) { try ClassifierRegistry.create("pit_ti_224", options: ClassifierOptions(dropPathRate: 1)) }
    }
}
