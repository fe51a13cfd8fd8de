import Testing
@testable import VisionCore

/// conv2dFused against the composition it replaces: conv2d, per-channel scale and shift, residual, activation.
@Suite struct ConvEpilogueTests {
    /// (input shape, weight shape, stride, padding, groups): 1x1 GEMM, im2col, depthwise (stride 1 and 2), grouped.
    static let geometries: [([Int], [Int], Int, Int, Int)] = [
        ([2, 5, 7, 9], [6, 5, 1, 1], 1, 0, 1),
        ([1, 3, 11, 10], [4, 3, 3, 3], 2, 1, 1),
        ([2, 6, 9, 13], [6, 1, 3, 3], 1, 1, 6),
        ([1, 5, 12, 11], [5, 1, 3, 3], 2, 1, 5),
        ([2, 4, 6, 7], [8, 1, 3, 3], 2, 1, 4),
        ([1, 6, 5, 5], [4, 3, 1, 1], 1, 0, 2),
    ]

    @Test(arguments: 0..<6) func matchesTheComposition(_ index: Int) throws {
        let (xs, ws, s, p, groups) = Self.geometries[index]
        let x = try randomTensor(xs, seed: 1), w = try randomTensor(ws, seed: 2, scale: 0.5)
        let plain = try conv2d(x, weight: w, stride: (s, s), padding: (p, p), groups: groups)
        let c = ws[0]
        let scale = (0..<c).map { Float($0 % 3) * 0.7 - 0.4 }, shift = (0..<c).map { Float($0) * 0.1 - 0.2 }
        let residual = try randomTensor(plain.shape, seed: 3)
        for activation in [nil, UnaryOp.relu, .relu6, .silu] {
            for withResidual in [false, true] {
                let epilogue = ConvEpilogue(scale: scale, shift: shift, residual: withResidual ? residual : nil, activation: activation)
                let fused = try conv2dFused(x, weight: w, stride: (s, s), padding: (p, p), groups: groups, epilogue: epilogue)
                var expected = try add(try mul(plain, try Tensor(scale, shape: [1, c, 1, 1])), try Tensor(shift, shape: [1, c, 1, 1]))
                if withResidual { expected = try add(expected, residual) }
                if let activation { expected = try unary(activation, expected) }
                try expectClose(fused, expected, rtol: 1e-5, atol: 1e-5, "geometry \(index) \(String(describing: activation)) residual \(withResidual)")
                // Shift alone (a conv bias) takes the GEMM's accumulate-onto-the-seed path.
                let biasOnly = try conv2dFused(x, weight: w, stride: (s, s), padding: (p, p), groups: groups,
                                               epilogue: ConvEpilogue(shift: shift))
                try expectClose(biasOnly, try conv2d(x, weight: w, bias: try Tensor(shift, shape: [c]), stride: (s, s),
                                                     padding: (p, p), groups: groups), "bias only \(index)")
            }
        }
    }

    @Test func batchNormEpilogueEqualsEvalBatchNorm() throws {
        let x = try randomTensor([2, 3, 8, 8], seed: 4), w = try randomTensor([5, 3, 3, 3], seed: 5)
        let mean = try randomTensor([5], seed: 6), variance = try add(try unary(.abs, try randomTensor([5], seed: 7)), try Tensor.full([], value: 0.5))
        let gamma = try randomTensor([5], seed: 8), beta = try randomTensor([5], seed: 9), convBias = try randomTensor([5], seed: 10)
        let epilogue = try ConvEpilogue.batchNorm(mean: mean, variance: variance, weight: gamma, bias: beta, eps: 1e-5, convBias: convBias)
        let fused = try conv2dFused(x, weight: w, padding: (1, 1), epilogue: epilogue)
        let expected = try batchNorm(try conv2d(x, weight: w, bias: convBias, padding: (1, 1)), runningMean: mean,
                                     runningVar: variance, weight: gamma, bias: beta, eps: 1e-5)
        try expectClose(fused, expected, rtol: 1e-5, atol: 1e-5)
    }

    @Test func badEpiloguesAreErrors() throws {
        let x = try randomTensor([1, 3, 4, 4], seed: 1), w = try randomTensor([2, 3, 1, 1], seed: 2)
        #expect(throws: VisionError.self) { try conv2dFused(x, weight: w, epilogue: ConvEpilogue(scale: [1, 2, 3])) }
        #expect(throws: VisionError.self) { try conv2dFused(x, weight: w, epilogue: ConvEpilogue(shift: [1])) }
        #expect(throws: VisionError.self) {
            try conv2dFused(x, weight: w, epilogue: ConvEpilogue(residual: try Tensor.zeros([1, 2, 4, 5])))
        }
        #expect(throws: VisionError.self) {
            try ConvEpilogue.batchNorm(mean: try Tensor.zeros([2]), variance: try Tensor.ones([3]), weight: nil, bias: nil, eps: 1e-5)
        }
    }
}

/// channelScaled against the composition it replaces (broadcast multiply, then the activation).
@Suite struct ChannelScaleTests {
    @Test func matchesMultiplyThenActivation() throws {
        let x = try randomTensor([2, 5, 7, 3], seed: 1), s = try randomTensor([2, 5, 1, 1], seed: 2)
        for activation in [nil, UnaryOp.relu6, .silu] {
            var expected = try mul(x, s)
            if let activation { expected = try unary(activation, expected) }
            try expectClose(try channelScaled(x, by: s, activation: activation), expected, "\(String(describing: activation))")
        }
        #expect(throws: VisionError.self) { try channelScaled(x, by: try Tensor.zeros([2, 4, 1, 1])) }
        #expect(throws: VisionError.self) { try channelScaled(x, by: try Tensor.zeros([2, 5, 2, 1])) }
    }
}
