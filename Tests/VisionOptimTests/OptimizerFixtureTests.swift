import Testing
import VisionCore
@testable import VisionOptim

/// Trajectories against torch.optim and the adamp 0.3.0 package, scheduler sequences against
/// torch.optim.lr_scheduler, clipping against torch.nn.utils.clip_grad_norm_ (tools/fixtures/optim.py).
///
/// Tolerance: 2e-6 relative (absolute below 1) after 20 steps. Float32 updates that differ from PyTorch's only
/// in rounding (fused or not, summation order of the projection's dot products) stay within a few ulps per step;
/// a wrong formula (dampening on the first step, bias correction, decay order, projection view) is off by 1e-3
/// or more.
@Suite struct OptimizerFixtureTests {
    static let names = ["conv.weight", "fc.weight", "proj.weight", "bias"]
    static let tolerance: Float = 2e-6

    /// The gradient the generator feeds at step `t`: the stored random row, made orthogonal to the parameter
    /// per output channel (conv.weight) or as a whole (proj.weight), in double precision.
    static func gradient(_ name: String, step t: Int, parameter p: Tensor, fixture: OptimFixture) throws -> Tensor {
        let all = try fixture["grads.\(name)"]
        let a = try all.select(axis: 0, index: t).contiguous().toArray(Float.self).map(Double.init)
        let w = try p.toArray(Float.self).map(Double.init)
        var g = a
        let rows = name == "conv.weight" ? p.shape[0] : (name == "proj.weight" ? 1 : 0)
        if rows > 0 {
            let len = a.count / rows
            for r in 0..<rows {
                var dot = 0.0, ww = 0.0
                for i in r * len..<(r + 1) * len { dot += a[i] * w[i]; ww += w[i] * w[i] }
                for i in r * len..<(r + 1) * len { g[i] = a[i] - dot / ww * w[i] }
            }
        }
        return try Tensor(g.map { Float($0) }, shape: p.shape)
    }

    /// An optimizer built from one generator configuration.
    static func makeOptimizer(_ c: JSONValue, _ params: [NamedParameter]) throws -> (step: () throws -> Void, zero: () -> Void) {
        func num(_ k: String, _ d: Double) -> Double { c[k]?.numberValue ?? d }
        func flag(_ k: String) -> Bool { if case .bool(let b)? = c[k] { return b }; return false }
        let lr = num("lr", 1e-3), wd = num("weight_decay", 0)
        let betas = c["betas"]?.arrayValue.map { ($0[0].numberValue!, $0[1].numberValue!) } ?? (0.9, 0.999)
        switch c["optimizer"]?.stringValue {
        case "SGD":
            let o = try SGD(groups: [ParameterGroup(params, .init(lr: lr, momentum: num("momentum", 0),
                                                                   dampening: num("dampening", 0), weightDecay: wd,
                                                                   nesterov: flag("nesterov")))])
            return (o.step, o.zeroGrad)
        case "Adam":
            let o = try Adam(groups: [ParameterGroup(params, .init(lr: lr, betas: betas, weightDecay: wd,
                                                                    amsgrad: flag("amsgrad")))])
            return (o.step, o.zeroGrad)
        case "AdamW":
            let options = Adam.Options(lr: lr, betas: betas, weightDecay: wd, amsgrad: flag("amsgrad"))
            var groups = [ParameterGroup(params, options)]
            if flag("groups") {
                groups = ParameterGroups.weightDecayGroups(params, options: options)
                #expect(groups.count == 2 && groups[0].parameters.map(\.name) == ["bias"])
                groups[0].options.lr = lr / 2
            }
            let o = try AdamW(groups: groups)
            return (o.step, o.zeroGrad)
        case "AdamP":
            let o = try AdamP(groups: [ParameterGroup(params, .init(lr: lr, betas: betas, weightDecay: wd,
                                                                     delta: num("delta", 0.1),
                                                                     wdRatio: num("wd_ratio", 0.1),
                                                                     nesterov: flag("nesterov")))])
            return (o.step, o.zeroGrad)
        case "SGDP":
            let o = try SGDP(groups: [ParameterGroup(params, .init(lr: lr, momentum: num("momentum", 0),
                                                                    dampening: num("dampening", 0), weightDecay: wd,
                                                                    nesterov: flag("nesterov")))])
            return (o.step, o.zeroGrad)
        default:
            throw VisionError.invalidArgument("unknown optimizer in \(c.serialized)")
        }
    }

    @Test func trajectoriesMatchReference() throws {
        let fx = try OptimFixture("optim")
        let configs = try JSONValue.parse(fx.metadata("configs") ?? "[]").arrayValue ?? []
        #expect(configs.count >= 12)
        for c in configs {
            let name = c["name"]!.stringValue!
            let params = try Self.names.map { NamedParameter($0, try fx["init.\($0)"].copyContiguous().requiringGrad()) }
            let opt = try Self.makeOptimizer(c, params)
            let skipBias: Bool = { if case .bool(let b)? = c["skip_bias"] { return b }; return false }()
            for t in 0..<20 {
                opt.zero()
                for p in params where !(p.name == "bias" && skipBias && t % 3 == 2) {
                    try p.tensor.setGrad(try Self.gradient(p.name, step: t, parameter: p.tensor, fixture: fx))
                }
                try opt.step()
                guard [1, 10, 20].contains(t + 1) else { continue }
                for p in params {
                    let expected = try fx["\(name).after\(t + 1).\(p.name)"].toArray(Float.self)
                    let err = maxRelativeError(try p.tensor.toArray(Float.self), expected)
                    #expect(err <= Self.tolerance, "\(name) after \(t + 1) steps, \(p.name): error \(err)")
                }
            }
        }
    }

    /// The projection fires where the fixtures were built to make it fire, so the trajectories above exercise
    /// both views and the no-projection path.
    @Test func projectionPicksTheExpectedView() throws {
        let fx = try OptimFixture("optim")
        for (name, expected) in [("conv.weight", 0.1), ("proj.weight", 0.1), ("fc.weight", 1.0)] {
            let p = try fx["init.\(name)"]
            let g = try Self.gradient(name, step: 0, parameter: p, fixture: fx)
            var u = try g.toArray(Float.self)
            let pv = try p.toArray(Float.self), gv = try g.toArray(Float.self)
            let ratio = pv.withUnsafeBufferPointer { pb in
                gv.withUnsafeBufferPointer { gb in
                    u.withUnsafeMutableBufferPointer { ub in
                        scaleInvariantProjection(weight: pb, grad: gb, update: ub, rows: p.shape[0], delta: 0.1,
                                                 wdRatio: 0.1, eps: 1e-8)
                    }
                }
            }
            #expect(ratio == expected, "\(name)")
        }
    }

    @Test func schedulersMatchTorch() throws {
        let fx = try OptimFixture("optim")
        func check(_ key: String, steps: Int, _ make: (any LearningRateControlled) throws -> LRScheduler) throws {
            let a = try Tensor.zeros([1]).requiringGrad(), b = try Tensor.zeros([1]).requiringGrad()
            let opt = try SGD(groups: [ParameterGroup([NamedParameter("a", a)], .init(lr: 0.1)),
                                       ParameterGroup([NamedParameter("b", b)], .init(lr: 0.02))])
            let s = try make(opt)
            let expected = try fx["sched.\(key)"].toArray(Float.self)
            var got: [Float] = opt.learningRates.map { Float($0) }
            for _ in 0..<steps {
                try s.step()
                got += opt.learningRates.map { Float($0) }
            }
            #expect(got.count == expected.count, "\(key)")
            let err = maxRelativeError(got.map { $0 * 1000 }, expected.map { $0 * 1000 })
            #expect(err <= 1e-5, "\(key): \(got) vs \(expected)")
        }
        try check("step", steps: 20) { try StepLR($0, stepSize: 3, gamma: 0.5) }
        try check("multistep", steps: 20) { try MultiStepLR($0, milestones: [4, 9, 9, 15], gamma: 0.3) }
        try check("warmup_cosine", steps: 30) { try WarmupCosineLR($0, warmup: 5, total: 30, warmupStartFactor: 0.01, minLR: 1e-4) }
        try check("cosine", steps: 12) { try WarmupCosineLR($0, warmup: 0, total: 12, minLR: 0) }
    }

    @Test func clipGradNormMatchesTorch() throws {
        let fx = try OptimFixture("optim")
        for name in ["l2", "l2_loose", "inf", "l1", "l3"] {
            let config = try fx["clip.\(name).config"].toArray(Float.self)
            let ps = try (0..<3).map { i -> Tensor in
                let g = try fx["clip.grad\(i)"]
                let p = try Tensor.zeros(g.shape).requiringGrad()
                try p.setGrad(g)
                return p
            }
            let total = try GradientClipping.clipGradNorm(ps, maxNorm: Double(config[0]), normType: Double(config[1]))
            let expectedTotal = try fx["clip.\(name).total"].item()
            #expect(abs(total - expectedTotal) <= 1e-6 * max(1, abs(expectedTotal)), "\(name): \(total) vs \(expectedTotal)")
            for (i, p) in ps.enumerated() {
                let err = maxRelativeError(try p.grad!.toArray(Float.self), try fx["clip.\(name).out\(i)"].toArray(Float.self))
                #expect(err <= 1e-6, "\(name) grad \(i): \(err)")
            }
        }
    }
}
