#if canImport(Glibc)
import Glibc
#endif
import Testing
import VisionCore
@testable import VisionOptim

/// In-place semantics, state dicts, parameter groups and bad input.
@Suite struct OptimizerBehaviourTests {
    static func parameter(_ shape: [Int], seed: UInt64) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try Tensor.normal(shape, std: 0.5, rng: &rng).requiringGrad()
    }

    /// A gradient that depends on the step and the parameter (so state matters for the result).
    static func setGradients(_ ps: [Tensor], step t: Int) throws {
        for (k, p) in ps.enumerated() {
            let v: [Float] = try p.toArray(Float.self).enumerated().map { i, x in
                sinf(x * Float(k + 2) + Float(t) * 0.7 + Float(i) * 0.1)
            }
            try p.setGrad(try Tensor(v, shape: p.shape))
        }
    }

    /// The header example: a loss built from the parameters, backward, step; updates reach every copy.
    @Test func headerExampleUpdatesTheModelsParameter() throws {
        let w = try Tensor.ones([5, 7]).requiringGrad()
        let b = try Tensor.zeros([5]).requiringGrad()
        let modelsCopy = w
        let opt = try AdamW(parameters: [("fc.weight", w), ("fc.bias", b)], lr: 1e-3, weightDecay: 0.05)
        for _ in 0..<10 {
            opt.zeroGrad()
            let loss = try sum(mul(w, w))
            try loss.backward()
            try opt.step()
        }
        let values = try modelsCopy.toArray(Float.self)
        #expect(values.allSatisfy { $0 < 1 && $0 > 0.98 })
        #expect(try w.toArray(Float.self) == values)
        #expect(b.grad == nil)  // never had a gradient: skipped
        #expect(opt.state(of: "fc.bias") == nil)
        #expect(opt.state(of: "fc.weight")?.step == 10)
    }

    /// N steps straight equal N/2 steps, state dict saved to a file, a fresh optimizer (and parameters) loaded,
    /// N/2 steps — bit for bit, for every optimizer.
    @Test func stateDictResumesBitExactly() throws {
        let makers: [(String, ([NamedParameter]) throws -> (step: () throws -> Void, save: () throws -> OptimizerState, load: (OptimizerState) throws -> Void))] = [
            ("sgd", { ps in let o = try SGD(groups: [ParameterGroup(ps, .init(lr: 0.05, momentum: 0.9, weightDecay: 1e-3, nesterov: true))]); return (o.step, o.stateDict, o.load) }),
            ("adam", { ps in let o = try Adam(groups: [ParameterGroup(ps, .init(lr: 1e-2, amsgrad: true))]); return (o.step, o.stateDict, o.load) }),
            ("adamw", { ps in let o = try AdamW(groups: ParameterGroups.weightDecayGroups(ps, options: .init(lr: 1e-2, weightDecay: 0.1))); return (o.step, o.stateDict, o.load) }),
            ("adamp", { ps in let o = try AdamP(groups: [ParameterGroup(ps, .init(lr: 1e-2, weightDecay: 1e-2, nesterov: true))]); return (o.step, o.stateDict, o.load) }),
            ("sgdp", { ps in let o = try SGDP(groups: [ParameterGroup(ps, .init(lr: 0.1, momentum: 0.9, weightDecay: 1e-3))]); return (o.step, o.stateDict, o.load) }),
        ]
        let path = "/tmp/visionoptim-state-\(UInt32.random(in: 0...UInt32.max)).safetensors"
        for (name, make) in makers {
            func fresh() throws -> [Tensor] { try [[8, 4, 3, 3], [5, 7], [5]].enumerated().map { try Self.parameter($0.element, seed: UInt64($0.offset + 1)) } }
            func named(_ ts: [Tensor]) -> [NamedParameter] { zip(["conv.weight", "fc.weight", "fc.bias"], ts).map { NamedParameter($0, $1) } }
            let straight = try fresh()
            let a = try make(named(straight))
            for t in 0..<8 { try Self.setGradients(straight, step: t); try a.step() }

            let first = try fresh()
            let b = try make(named(first))
            for t in 0..<4 { try Self.setGradients(first, step: t); try b.step() }
            try b.save().save(path: path)
            // "New process": new parameter tensors holding the saved values, a new optimizer.
            let second = try first.map { try $0.detach().copyContiguous().requiringGrad() }
            let c = try make(named(second))
            try c.load(try OptimizerState.load(path: path))
            for t in 4..<8 { try Self.setGradients(second, step: t); try c.step() }
            for (x, y) in zip(straight, second) {
                #expect(try x.toArray(Float.self) == y.toArray(Float.self), "\(name)")
            }
        }
    }

    @Test func stateDictFormat() throws {
        let w = try Self.parameter([4, 3], seed: 1), b = try Self.parameter([4], seed: 2)
        let opt = try AdamP(parameters: [("w", w), ("b", b)], lr: 0.01, weightDecay: 1e-2)
        try Self.setGradients([w], step: 0)
        try opt.step()
        let s = try opt.stateDict()
        #expect(s.tensors.map(\.0) == ["state.w.exp_avg", "state.w.exp_avg_sq"])
        #expect(s.json["optimizer"]?.stringValue == "AdamP")
        #expect(s.json["param_groups"]?.arrayValue?.first?["wd_ratio"]?.numberValue == 0.1)
        #expect(s.json["state"]?.arrayValue?.first?["step"]?.numberValue == 1)
    }

    @Test func rejectsForeignOrMismatchedState() throws {
        let w = try Self.parameter([4, 3], seed: 1)
        let adam = try Adam(parameters: [("w", w)], lr: 0.01)
        try Self.setGradients([w], step: 0)
        try adam.step()
        let saved = try adam.stateDict()

        let w2 = try Self.parameter([4, 3], seed: 1)
        expectError("Adam optimizer, not SGD") { try SGD(parameters: [("w", w2)], lr: 0.1).load(saved) }
        expectError("param_groups[0].params", "'w'", "'other'") { try Adam(parameters: [("other", w2)]).load(saved) }
        let wrongShape = try Self.parameter([3, 4], seed: 1)
        expectError("state.w.exp_avg", "[4, 3]", "[3, 4]") { try Adam(parameters: [("w", wrongShape)]).load(saved) }

        var extra = saved
        extra.tensors.append(("state.w.unused", try Tensor.zeros([4, 3])))
        expectError("unexpected tensor 'state.w.unused'") { try Adam(parameters: [("w", w2)]).load(extra) }
        var missing = saved
        missing.tensors.removeLast()
        expectError("missing tensor 'state.w.exp_avg_sq'") { try Adam(parameters: [("w", w2)]).load(missing) }

        // A rejected state leaves the optimizer as it was.
        let target = try Adam(parameters: [("w", w2)], lr: 0.5)
        try? target.load(missing)
        #expect(target.learningRates == [0.5] && target.state(of: "w") == nil)
        try target.load(saved)
        #expect(target.learningRates == [0.01] && target.state(of: "w")?.step == 1)
    }

    @Test func badArguments() throws {
        let w = try Self.parameter([4, 3], seed: 1)
        let frozen = try Tensor.zeros([3])
        expectError("'frozen'", "does not require gradients") { _ = try Adam(parameters: [("w", w), ("frozen", frozen)]) }
        expectError("invalid learning rate: -0.1") { _ = try SGD(parameters: [("w", w)], lr: -0.1) }
        expectError("invalid learning rate") { _ = try AdamP(parameters: [("w", w)], lr: .nan) }
        expectError("beta parameter at index 1: 1.0") { _ = try Adam(parameters: [("w", w)], betas: (0.9, 1.0)) }
        expectError("beta parameter at index 0: -0.1") { _ = try AdamP(parameters: [("w", w)], betas: (-0.1, 0.999)) }
        expectError("Nesterov") { _ = try SGD(parameters: [("w", w)], lr: 0.1, nesterov: true) }
        expectError("momentum 1") { _ = try SGDP(parameters: [("w", w)], lr: 0.1, momentum: 1, weightDecay: 1e-4) }
        expectError("empty parameter list") { _ = try Adam(groups: []) }
        expectError("appears twice") { _ = try Adam(parameters: [("w", w), ("w", try Self.parameter([2], seed: 3))]) }
        expectError("same tensor") { _ = try Adam(parameters: [("w", w), ("alias", w)]) }
        let computed = try mul(w, w)
        expectError("not a leaf") { _ = try Adam(parameters: [("x", computed)]) }
        let opt = try SGD(parameters: [("w", w)], lr: 0.1)
        expectError("invalid learning rate") { try opt.setLearningRate(-1, group: 0) }
        expectError("no parameter group 3") { try opt.setLearningRate(0.1, group: 3) }
        expectError("shape [3, 4]") { try w.setGrad(try Tensor.zeros([3, 4])) }
        expectError("stepSize") { _ = try StepLR(opt, stepSize: 0) }
        expectError("warmup") { _ = try WarmupCosineLR(opt, warmup: 10, total: 10) }
        expectError("maxNorm") { try GradientClipping.clipGradNorm([w], maxNorm: -1) }
        expectError("normType") { try GradientClipping.clipGradNorm([w], maxNorm: 1, normType: 0) }
    }

    /// Parameters without a gradient are skipped: no state, no weight decay, unchanged values.
    @Test func missingGradientsAreSkipped() throws {
        let w = try Self.parameter([4, 3], seed: 1), b = try Self.parameter([4], seed: 2)
        let before = try b.toArray(Float.self)
        let opt = try SGDP(parameters: [("w", w), ("b", b)], lr: 0.1, momentum: 0.9, weightDecay: 0.1)
        try Self.setGradients([w], step: 0)
        try opt.step()
        #expect(try b.toArray(Float.self) == before)
        #expect(opt.state(of: "b") == nil && opt.state(of: "w")?.step == 1)
    }

    @Test func weightDecaySplit() throws {
        let ps = [NamedParameter("conv.weight", try Self.parameter([2, 2, 1, 1], seed: 1)),
                  NamedParameter("bn.weight", try Self.parameter([2], seed: 2)),
                  NamedParameter("fc.bias", try Self.parameter([2], seed: 3)),
                  NamedParameter("pos_embed", try Self.parameter([1, 2, 2], seed: 4))]
        let (decay, noDecay) = ParameterGroups.splitByWeightDecay(ps, skip: ["pos_embed"])
        #expect(decay.map(\.name) == ["conv.weight"])
        #expect(noDecay.map(\.name) == ["bn.weight", "fc.bias", "pos_embed"])
        let groups = ParameterGroups.weightDecayGroups(ps, options: SGD.Options(lr: 0.1, weightDecay: 1e-4))
        #expect(groups.map(\.options.weightDecay) == [0, 1e-4])
    }

    @Test func inPlaceUpdateRefusesStridedViews() throws {
        let t = try Tensor.zeros([3, 4]).transpose(0, 1)
        expectError("not contiguous") { try t.updateInPlace { _ in } }
        let i = try Tensor.zeros([3], dtype: .int32)
        #expect(throws: VisionError.self) { try i.updateInPlace { _ in } }
    }

    @Test func clipGradValueAndEmptyCases() throws {
        let w = try Self.parameter([5], seed: 1)
        try w.setGrad(try Tensor([-3, -0.5, 0, 0.25, 9] as [Float], shape: [5]))
        try GradientClipping.clipGradValue([w], clipValue: 1)
        #expect(try w.grad!.toArray(Float.self) == [-1, -0.5, 0, 0.25, 1])
        let none = try Self.parameter([2], seed: 2)
        #expect(try GradientClipping.clipGradNorm([none], maxNorm: 1) == 0)
        try w.setGrad(try Tensor([Float.nan, 1, 0, 0, 0], shape: [5]))
        expectError("non-finite") { try GradientClipping.clipGradNorm([w], maxNorm: 1, errorIfNonfinite: true) }
        #expect(try w.grad!.toArray(Float.self)[1] == 1)  // unchanged after the error
    }

    /// Stepping per iteration with an epoch-based schedule.
    @Test func schedulersPerIteration() throws {
        let w = try Self.parameter([2], seed: 1)
        let opt = try SGD(parameters: [("w", w)], lr: 1.0)
        let s = try StepLR(opt, stepSize: 2, gamma: 0.1, stepsPerEpoch: 4)
        var lrs: [Double] = [opt.learningRates[0]]
        for _ in 0..<12 { try s.step(); lrs.append(opt.learningRates[0]) }
        #expect(lrs.map { ($0 * 1000).rounded() } == [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 100, 100, 100, 100, 100])
        let opt2 = try SGD(parameters: [("w", w)], lr: 1.0)
        let c = try WarmupCosineLR(opt2, warmup: 1, total: 3, warmupStartFactor: 0.5, stepsPerEpoch: 2)
        try c.step()   // half an epoch into the warmup
        #expect(abs(opt2.learningRates[0] - 0.75) < 1e-12)
        let saved = c.stateJSON
        let c2 = try WarmupCosineLR(try SGD(parameters: [("w", w)], lr: 1.0), warmup: 1, total: 3, warmupStartFactor: 0.5, stepsPerEpoch: 2)
        try c2.load(saved)
        #expect(c2.lastLRs == opt2.learningRates)
    }
}

/// Large parameters are updated in chunks over threads; the result must not depend on the thread count.
@Suite struct OptimizerThreadingTests {
    @Test func chunkedUpdatesAreIndependentOfThreadCount() throws {
        var results: [[Float]] = []
        for threads in [1, 2] {
            try Threading.withThreadCount(threads) {
                let w = try OptimizerBehaviourTests.parameter([300_001], seed: 9)
                let u = try OptimizerBehaviourTests.parameter([300_001], seed: 10)
                let adam = try AdamW(parameters: [("w", w)], lr: 1e-2, weightDecay: 0.1)
                let sgd = try SGD(parameters: [("u", u)], lr: 0.1, momentum: 0.9, weightDecay: 1e-4, nesterov: true)
                for t in 0..<3 {
                    try OptimizerBehaviourTests.setGradients([w, u], step: t)
                    try adam.step()
                    try sgd.step()
                }
                results.append(try w.toArray(Float.self) + u.toArray(Float.self))
            }
        }
        #expect(results[0] == results[1])
    }
}

/// SGDP's two momentum-buffer conventions (reference section 6.3): the package projects the buffer itself, timm
/// a copy. With Nesterov they coincide; without it they part on scale-invariant weights.
@Suite struct SGDPVariantTests {
    static func run(nesterov: Bool, projectBuffer: Bool) throws -> [Float] {
        var rng = RandomGenerator(seed: 5)
        let w = try Tensor.normal([4, 3, 3, 3], std: 0.5, rng: &rng).requiringGrad()
        let opt = try SGDP(groups: [ParameterGroup([NamedParameter("w", w)],
                                                   .init(lr: 0.1, momentum: 0.9, weightDecay: 1e-4, nesterov: nesterov,
                                                         projectMomentumBuffer: projectBuffer))])
        for t in 0..<5 {
            // A gradient orthogonal to each output channel of w: what batch norm after the conv produces.
            let p = try w.toArray(Float.self)
            var g = try Tensor.normal([4, 27], std: 1, rng: &rng).toArray(Float.self)
            for r in 0..<4 {
                var dot: Float = 0, pp: Float = 0
                for i in r * 27..<(r + 1) * 27 { dot += g[i] * p[i]; pp += p[i] * p[i] }
                for i in r * 27..<(r + 1) * 27 { g[i] -= dot / pp * p[i] }
            }
            try w.setGrad(try Tensor(g, shape: w.shape))
            try opt.step()
        }
        return try w.toArray(Float.self)
    }

    @Test func nesterovAgreesAndPlainMomentumDiffers() throws {
        #expect(try Self.run(nesterov: true, projectBuffer: true) == Self.run(nesterov: true, projectBuffer: false))
        let package = try Self.run(nesterov: false, projectBuffer: true)
        let timm = try Self.run(nesterov: false, projectBuffer: false)
        let gap = zip(package, timm).map { abs($0 - $1) }.max() ?? 0
        #expect(gap > 1e-3, "the two SGDP variants should differ on a scale-invariant weight, gap \(gap)")
    }
}

/// `Threading.withThreadCount` sets the thread count for its body's task only, and refuses counts out of range.
@Suite struct ScopedThreadCountTests {
    @Test func scopedCountHoldsInsideItsBodyOnly() throws {
        let outside = Threading.threadCount
        let (inside, nested) = try Threading.withThreadCount(outside + 3) {
            (Threading.threadCount, try Threading.withThreadCount(1) { Threading.threadCount })
        }
        #expect(inside == outside + 3 && nested == 1 && Threading.threadCount == outside)
        #expect(throws: VisionError.self) { try Threading.withThreadCount(0) {} }
        #expect(throws: VisionError.self) { try Threading.withThreadCount(257) {} }
    }
}
