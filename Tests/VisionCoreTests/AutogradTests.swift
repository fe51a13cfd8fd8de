import Testing
@testable import VisionCore

/// Gradients by finite differences for every differentiable op, the engine's rules (accumulation, no-grad,
/// detach, errors), and PyTorch parity on a small network (tools/fixtures/autograd.py).
@Suite struct AutogradTests {
    /// `gradcheck` with positional arguments, for suites that keep it as a closure value.
    static func check(_ name: String, _ x: Tensor, _ eps: Float, _ tolerance: Float, _ location: SourceLocation,
                      _ f: (Tensor) throws -> Tensor) throws {
        try gradcheck(name, x, eps: eps, tolerance: tolerance, sourceLocation: location, f)
    }

    /// Checks d(sum(f(x) * r))/dx against central differences, r a fixed random weighting.
    static func gradcheck(_ name: String, _ x: Tensor, eps: Float = 1e-2, tolerance: Float = 2e-2,
                          sourceLocation: SourceLocation = #_sourceLocation, _ f: (Tensor) throws -> Tensor) throws {
        let leaf = try x.requiringGrad()
        let y = try f(leaf)
        let r = try randomTensor(y.shape, seed: 99)
        try sum(try mul(y, r)).backward()
        guard let analytic = leaf.grad else { Issue.record("\(name): no gradient", sourceLocation: sourceLocation); return }
        let base = try x.contiguous().toArray(Float.self)
        let rv = try r.toArray(Float.self)
        var worst: Float = 0
        let ga = try analytic.toArray(Float.self)
        try Autograd.noGrad {
            for i in 0..<base.count {
                var plus = base, minus = base
                plus[i] += eps; minus[i] -= eps
                let fp = try f(try Tensor(plus, shape: x.shape)).contiguous().toArray(Float.self)
                let fm = try f(try Tensor(minus, shape: x.shape)).contiguous().toArray(Float.self)
                var d: Double = 0
                for j in 0..<rv.count { d += Double(rv[j]) * Double(fp[j] - fm[j]) }
                let numeric = Float(d / Double(2 * eps))
                worst = max(worst, abs(numeric - ga[i]) / max(1, abs(numeric)))
            }
        }
        #expect(worst < tolerance, "\(name): worst relative gradient error \(worst)", sourceLocation: sourceLocation)
    }

    @Test(arguments: BinaryOp.allCases)
    func binaryOpsWithBroadcasting(op: BinaryOp) throws {
        // Positive operands at least 0.05 apart (more than the finite-difference step) keep div, pow and
        // max/min away from their kinks.
        let a = try Tensor((0..<24).map { 0.5 + 0.1 * Float($0) }, shape: [2, 3, 4])
        let b = try Tensor([Float(0.55), 1.25, 2.05], shape: [3, 1])
        try Self.gradcheck("\(op) lhs", a) { try binary(op, $0, b) }
        try Self.gradcheck("\(op) rhs", b) { try binary(op, a, $0) }
    }

    /// Gradients exactly at the kinks follow PyTorch (values printed by torch 2.15 for x = -3, 0, 3, 6).
    @Test func activationGradientsAtTheKinks() throws {
        let expected: [(UnaryOp, [Float])] = [
            (.relu, [0, 0, 1, 1]), (.relu6, [0, 0, 1, 0]), (.leakyRelu, [0.1, 0.1, 1, 1]),
            (.hardSwish, [0, 0.5, 1, 1]), (.hardSigmoid, [0, 1.0 / 6, 0, 0]), (.abs, [-1, 0, 1, 1]),
        ]
        for (op, values) in expected {
            let x = try Tensor([-3, 0, 3, 6] as [Float], shape: [4]).requiringGrad()
            try sum(try unary(op, x, parameter: 0.1)).backward()
            #expect(try #require(x.grad).toArray(Float.self) == values, "\(op)")
        }
    }

    @Test(arguments: UnaryOp.allCases)
    func unaryOps(op: UnaryOp) throws {
        // Values away from the kinks at 0 and +-3 (and positive where log and sqrt need it).
        var x = try Tensor((0..<12).map { Float($0) * 0.55 - 3.2 }, shape: [3, 4])
        if op == .log || op == .sqrt { x = try add(try unary(.abs, x), try Tensor.full([], value: 0.3)) }
        try Self.gradcheck("\(op)", x, eps: 1e-2) { try unary(op, $0, parameter: 0.1) }
    }

    @Test func matmulLinearAndBatches() throws {
        let a = try randomTensor([2, 1, 3, 4], seed: 3), b = try randomTensor([3, 4, 5], seed: 4)
        try Self.gradcheck("matmul lhs", a) { try matmul($0, b) }
        try Self.gradcheck("matmul rhs", b) { try matmul(a, $0) }
        let v = try randomTensor([4], seed: 5), m = try randomTensor([4, 3], seed: 6)
        try Self.gradcheck("vector @ matrix", v) { try matmul($0, m) }
        try Self.gradcheck("matrix @ vector", m) { try matmul(try $0.transpose(0, 1), v) }
        let w = try randomTensor([6, 4], seed: 7), bias = try randomTensor([6], seed: 8)
        try Self.gradcheck("linear weight", w) { try linear(a, weight: $0, bias: bias) }
        try Self.gradcheck("linear bias", bias) { try linear(a, weight: w, bias: $0) }
    }

    @Test func reductionsAndSoftmax() throws {
        let x = try randomTensor([3, 4, 5], seed: 9)
        try Self.gradcheck("sum", x) { try sum($0, axes: [0, 2], keepDim: true) }
        try Self.gradcheck("mean", x) { try mean($0, axes: [1]) }
        try Self.gradcheck("sum all", x) { try sum($0) }
        try Self.gradcheck("amax", x) { try amax($0, axes: [2]) }
        try Self.gradcheck("amin", x) { try amin($0, axes: [0, 1], keepDim: true) }
        try Self.gradcheck("variance", x) { try variance($0, axes: [1, 2]) }
        try Self.gradcheck("softmax", x) { try softmax($0, axis: 1) }
        try Self.gradcheck("log_softmax", x) { try logSoftmax($0, axis: -1) }
    }

    @Test func viewsAndJoins() throws {
        let x = try randomTensor([2, 3, 4], seed: 10)
        try Self.gradcheck("reshape", x) { try $0.reshape([4, 6]) }
        try Self.gradcheck("permute", x) { try $0.permute([2, 0, 1]).contiguous() }
        try Self.gradcheck("slice", x) { try $0.slice(axis: 2, start: 1, end: 4, step: 2) }
        try Self.gradcheck("select", x) { try $0.select(axis: 1, index: -1) }
        try Self.gradcheck("expand", try randomTensor([3, 1], seed: 11)) { try $0.expand([2, 3, 4]) }
        try Self.gradcheck("squeeze/unsqueeze", try randomTensor([3, 1], seed: 12)) { try $0.squeeze().unsqueeze(axis: 0) }
        let y = try randomTensor([2, 2, 4], seed: 13)
        try Self.gradcheck("concat", x) { try concat([$0, y], axis: 1) }
        try Self.gradcheck("stack", x) { try stack([$0, x], axis: 0) }
        let cond = try compare(.gt, x, try Tensor.zeros([]))
        try Self.gradcheck("where", x) { try whereSelect(cond, $0, try mul($0, $0)) }
        try Self.gradcheck("prelu", x) { try prelu($0, weight: try Tensor([Float(0.1), 0.2, 0.3], shape: [3])) }
    }

    @Test func engineRules() throws {
        let w = try Tensor([Float(1), 2, 3], shape: [3]).requiringGrad()
        try sum(try mul(w, w)).backward()
        try sum(w).backward()                                      // accumulates
        #expect(try w.grad?.toArray(Float.self) == [3, 5, 7])
        w.zeroGrad()
        #expect(w.grad == nil)
        // Copies of a tensor value share its gradient.
        let alias = w
        try sum(alias).backward()
        #expect(try w.grad?.toArray(Float.self) == [1, 1, 1])
        // no-grad and detach record nothing.
        let y = try Autograd.noGrad { try mul(w, w) }
        #expect(!y.requiresGrad)
        #expect(!(try mul(w.detach(), w.detach())).requiresGrad)
        // retainGrad keeps an intermediate's gradient.
        w.zeroGrad()
        let h = try mul(w, try Tensor.full([], value: 2))
        h.retainGrad()
        try sum(h).backward()
        #expect(try h.grad?.toArray(Float.self) == [1, 1, 1])
        #expect(try w.grad?.toArray(Float.self) == [2, 2, 2])
        // Backward of a non-scalar needs a gradient of its shape.
        #expect(throws: VisionError.self) { try h.backward() }
        #expect(throws: VisionError.self) { try h.backward(try Tensor.ones([2])) }
        try h.backward(try Tensor.ones([3]))
        // A tensor that does not depend on any leaf cannot run backward; integer tensors cannot require grad.
        #expect(throws: VisionError.self) { try Tensor.ones([1]).backward() }
        #expect(throws: VisionError.self) { try Tensor.ones([1], dtype: .int64).requiringGrad() }
        // Inside noGrad, tracked inputs give untracked results.
        let img = try randomTensor([1, 1, 4, 4], seed: 14).requiringGrad()
        #expect(try !Autograd.noGrad { try maxPool2d(img, kernelSize: (2, 2)) }.requiresGrad)
    }

    @Test func deepChainsDoNotOverflowTheStack() throws {
        let x = try Tensor([Float(1)], shape: [1]).requiringGrad()
        var y = x
        for _ in 0..<20_000 { y = try add(y, try Tensor.full([], value: 0)) }
        try sum(y).backward()
        #expect(try x.grad?.toArray(Float.self) == [1])
    }

    @Test func smallNetworkMatchesPyTorch() throws {
        let f = try Fixture("autograd")
        let x = try f["mlp.x"].requiringGrad(), w1 = try f["mlp.w1"].requiringGrad(), b1 = try f["mlp.b1"].requiringGrad()
        let w2 = try f["mlp.w2"].requiringGrad(), b2 = try f["mlp.b2"].requiringGrad()
        let h = try gelu(try linear(x, weight: w1, bias: b1))
        let logp = try logSoftmax(try linear(h, weight: w2, bias: b2), axis: 1)
        let loss = try div(try unary(.neg, try sum(try mul(logp, try f["mlp.onehot"]))), try Tensor.full([], value: 4))
        try expectClose(try loss.reshape([1]), try f["mlp.loss"], rtol: 1e-5, atol: 1e-6, "loss")
        try loss.backward()
        for (name, t) in [("x", x), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)] {
            guard let g = t.grad else { Issue.record("no gradient for \(name)"); continue }
            try expectClose(g, try f["mlp.grad_\(name)"], rtol: 1e-4, atol: 1e-6, "grad \(name)")
        }

        let a = try f["expr.a"].requiringGrad(), b = try f["expr.b"].requiringGrad()
        let y = try softmax(try add(try mul(a, b), try amax(a, axes: [2], keepDim: true)), axis: 1)
        let sliced = try y.permute([2, 0, 1]).reshape([4, 6]).slice(axis: 0, start: 1, end: 3)
        let z = try add(try add(try mean(try mul(sliced, sliced)), try sum(try variance(a, axes: [0, 2]))),
                        try amax(try sum(try tanh(a), axes: [0])))
        try expectClose(try z.reshape([1]), try f["expr.z"], rtol: 1e-5, atol: 1e-6, "expression")
        try z.backward()
        try expectClose(try #require(a.grad), try f["expr.grad_a"], rtol: 1e-4, atol: 1e-6, "grad a")
        try expectClose(try #require(b.grad), try f["expr.grad_b"], rtol: 1e-4, atol: 1e-6, "grad b")
    }
}
