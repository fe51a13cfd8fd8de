import Testing
@testable import VisionCore

/// Gradients of convolution, pooling and normalization: finite differences, and PyTorch parity on a small CNN
/// (tools/fixtures/autograd_cnn.py).
@Suite struct AutogradConvTests {
    let gradcheck = AutogradTests.check

    @Test func conv2dInputWeightAndBias() throws {
        let x = try randomTensor([2, 4, 7, 6], seed: 20), w = try randomTensor([6, 2, 3, 2], seed: 21, scale: 0.5)
        let b = try randomTensor([6], seed: 22)
        let run = { (x: Tensor, w: Tensor, b: Tensor) in
            try conv2d(x, weight: w, bias: b, stride: (2, 1), padding: (1, 2), dilation: (1, 2), groups: 2)
        }
        try gradcheck("conv2d x", x, 1e-2, 2e-2, #_sourceLocation) { try run($0, w, b) }
        try gradcheck("conv2d w", w, 1e-2, 2e-2, #_sourceLocation) { try run(x, $0, b) }
        try gradcheck("conv2d b", b, 1e-2, 2e-2, #_sourceLocation) { try run(x, w, $0) }
        // 1x1 (GEMM path), depthwise (direct path), unbatched input.
        let w1 = try randomTensor([3, 4, 1, 1], seed: 23)
        try gradcheck("conv2d 1x1", x, 1e-2, 2e-2, #_sourceLocation) { try conv2d($0, weight: w1) }
        let wd = try randomTensor([4, 1, 3, 3], seed: 24)
        try gradcheck("depthwise", x, 1e-2, 2e-2, #_sourceLocation) { try conv2d($0, weight: wd, padding: (1, 1), groups: 4) }
        try gradcheck("depthwise w", wd, 1e-2, 2e-2, #_sourceLocation) { try conv2d(x, weight: $0, stride: (2, 2), padding: (1, 1), groups: 4) }
        try gradcheck("unbatched", try randomTensor([4, 5, 5], seed: 25), 1e-2, 2e-2, #_sourceLocation) { try conv2d($0, weight: wd, groups: 4) }
    }

    @Test func convTranspose2d() throws {
        let x = try randomTensor([2, 4, 3, 4], seed: 26), w = try randomTensor([4, 3, 3, 2], seed: 27, scale: 0.5)
        let b = try randomTensor([6], seed: 28)
        let run = { (x: Tensor, w: Tensor, b: Tensor) in
            try VisionCore.convTranspose2d(x, weight: w, bias: b, stride: (2, 2), padding: (1, 0), outputPadding: (1, 1), groups: 2)
        }
        try gradcheck("conv_transpose2d x", x, 1e-2, 2e-2, #_sourceLocation) { try run($0, w, b) }
        try gradcheck("conv_transpose2d w", w, 1e-2, 2e-2, #_sourceLocation) { try run(x, $0, b) }
        try gradcheck("conv_transpose2d b", b, 1e-2, 2e-2, #_sourceLocation) { try run(x, w, $0) }
    }

    @Test func pooling() throws {
        // Distinct values (a shuffled ramp) so that no window has a tie within the finite-difference step.
        var rng = RandomGenerator(seed: 29)
        var values = (0..<(2 * 3 * 7 * 8)).map { Float($0) * 0.05 }
        values.shuffle(using: &rng)
        let x = try Tensor(values, shape: [2, 3, 7, 8])
        try gradcheck("max_pool2d", x, 1e-2, 2e-2, #_sourceLocation) { try maxPool2d($0, kernelSize: (3, 2), stride: (2, 2), padding: (1, 1), ceilMode: true) }
        try gradcheck("max_pool2d dilated", x, 1e-2, 2e-2, #_sourceLocation) { try maxPool2d($0, kernelSize: (2, 2), dilation: (2, 3)) }
        for includePad in [true, false] {
            try gradcheck("avg_pool2d \(includePad)", x, 1e-2, 2e-2, #_sourceLocation) {
                try avgPool2d($0, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: true, countIncludePad: includePad)
            }
        }
        try gradcheck("adaptive_avg_pool2d", x, 1e-2, 2e-2, #_sourceLocation) { try adaptiveAvgPool2d($0, outputSize: (3, 5)) }
    }

    @Test func normalization() throws {
        let x = try randomTensor([2, 4, 3, 5], seed: 30)
        let m = try randomTensor([4], seed: 31), v = try add(try unary(.abs, try randomTensor([4], seed: 32)), try Tensor.full([], value: 0.5))
        let w = try randomTensor([4], seed: 33), b = try randomTensor([4], seed: 34)
        try gradcheck("batch_norm x", x, 1e-2, 2e-2, #_sourceLocation) { try batchNorm($0, runningMean: m, runningVar: v, weight: w, bias: b) }
        try gradcheck("batch_norm mean", m, 1e-2, 2e-2, #_sourceLocation) { try batchNorm(x, runningMean: $0, runningVar: v, weight: w, bias: b) }
        try gradcheck("batch_norm var", v, 1e-3, 2e-2, #_sourceLocation) { try batchNorm(x, runningMean: m, runningVar: $0, weight: w, bias: b) }
        try gradcheck("batch_norm weight", w, 1e-2, 2e-2, #_sourceLocation) { try batchNorm(x, runningMean: m, runningVar: v, weight: $0, bias: b) }
        let lw = try randomTensor([3, 5], seed: 35), lb = try randomTensor([3, 5], seed: 36)
        try gradcheck("layer_norm x", x, 1e-2, 3e-2, #_sourceLocation) { try layerNorm($0, normalizedShape: [3, 5], weight: lw, bias: lb) }
        try gradcheck("layer_norm w", lw, 1e-2, 2e-2, #_sourceLocation) { try layerNorm(x, normalizedShape: [3, 5], weight: $0, bias: lb) }
        try gradcheck("layer_norm b", lb, 1e-2, 2e-2, #_sourceLocation) { try layerNorm(x, normalizedShape: [3, 5], weight: lw, bias: $0) }
        try gradcheck("group_norm x", x, 1e-2, 3e-2, #_sourceLocation) { try groupNorm($0, numGroups: 2, weight: w, bias: b) }
        try gradcheck("group_norm w", w, 1e-2, 2e-2, #_sourceLocation) { try groupNorm(x, numGroups: 2, weight: $0, bias: b) }
        try gradcheck("batch_norm_training x", x, 1e-2, 3e-2, #_sourceLocation) { try batchNormTraining($0, weight: w, bias: b).output }
        try gradcheck("batch_norm_training w", w, 1e-2, 2e-2, #_sourceLocation) { try batchNormTraining(x, weight: $0, bias: b).output }
        try gradcheck("batch_norm_training b", b, 1e-2, 2e-2, #_sourceLocation) { try batchNormTraining(x, weight: w, bias: $0).output }
        try gradcheck("batch_norm_training no affine", x, 1e-2, 3e-2, #_sourceLocation) { try batchNormTraining($0, weight: nil, bias: nil).output }
        // Spans of 64 values and more take the channel-chunk passes.
        let xl = try randomTensor([2, 4, 9, 9], seed: 37)
        try gradcheck("batch_norm_training long spans x", xl, 1e-2, 3e-2, #_sourceLocation) { try batchNormTraining($0, weight: w, bias: b).output }
        try gradcheck("batch_norm_training long spans w", w, 1e-2, 2e-2, #_sourceLocation) { try batchNormTraining(xl, weight: $0, bias: b).output }
    }

    @Test func batchNormTrainingEqualsTheComposedFormula() throws {
        for shape in [[3, 5, 7, 9], [4, 6], [2, 3, 37], [3, 5, 9, 9]] {
            let x = try randomTensor(shape, seed: 40), c = shape[1]
            let w = try randomTensor([c], seed: 41), b = try randomTensor([c], seed: 42)
            let (y, m, v) = try batchNormTraining(x, weight: w, bias: b, eps: 1e-5)
            let axes = [0] + Array(2..<shape.count)
            let mu = try mean(x, axes: axes), va = try variance(x, axes: axes, correction: 0)
            let expected = try batchNorm(x, runningMean: mu, runningVar: va, weight: w, bias: b, eps: 1e-5)
            #expect(try maxRelativeError(y, expected) < 1e-5, "output \(shape)")
            #expect(try maxRelativeError(m, mu) < 1e-6 && maxRelativeError(v, va) < 1e-5, "statistics \(shape)")
        }
        #expect(throws: VisionError.self) { try batchNormTraining(try Tensor.zeros([1, 3]), weight: nil, bias: nil) }
        #expect(throws: VisionError.self) { try batchNormTraining(try Tensor.zeros([2, 3, 4]), weight: try Tensor.zeros([2]), bias: nil) }
    }

    /// BatchNorm + shortcut + ReLU as one op gives the composed ops' output and gradients bit for bit, on spans
    /// of both code paths (under and over 64 values per image and channel).
    @Test func batchNormTrainingWithResidualAndReluEqualsTheComposition() throws {
        for shape in [[4, 6, 5, 5], [3, 5, 9, 9]] {
            for (withResidual, relu) in [(true, true), (false, true), (true, false)] {
                let c = shape[1]
                func run(_ fused: Bool) throws -> [[Float]] {
                    let x = try randomTensor(shape, seed: 50).requiringGrad(), r = try randomTensor(shape, seed: 51).requiringGrad()
                    let w = try randomTensor([c], seed: 52).requiringGrad(), b = try randomTensor([c], seed: 53).requiringGrad()
                    let residual = withResidual ? r : nil
                    var y: Tensor
                    if fused {
                        y = try batchNormTraining(x, weight: w, bias: b, residual: residual, relu: relu).output
                    } else {
                        y = try batchNormTraining(x, weight: w, bias: b).output
                        if let residual { y = try add(y, residual) }
                        if relu { y = try VisionCore.relu(y) }
                    }
                    try sum(try mul(y, try randomTensor(shape, seed: 54))).backward()
                    let grads = [x, w, b] + (withResidual ? [r] : [])
                    return try [y.toArray(Float.self)] + grads.map { try #require($0.grad).toArray(Float.self) }
                }
                #expect(try run(true) == run(false), "\(shape) residual \(withResidual) relu \(relu)")
            }
        }
        let x = try Tensor.zeros([2, 3, 4])
        #expect(throws: VisionError.self) { try batchNormTraining(x, weight: nil, bias: nil, residual: try Tensor.zeros([2, 3, 5])) }
    }

    @Test func smallCNNMatchesPyTorch() throws {
        let f = try Fixture("autograd_cnn")
        var t: [String: Tensor] = [:]
        for k in ["x", "w1", "b1", "bnw", "bnb", "w2", "gnw", "gnb", "wt", "bt", "lnw", "lnb", "wl", "bl"] {
            t[k] = try f["cnn.\(k)"].requiringGrad()
        }
        func p(_ k: String) -> Tensor { t[k]! }
        var h = try conv2d(p("x"), weight: p("w1"), bias: p("b1"), padding: (1, 1))
        h = try batchNorm(h, runningMean: try f["cnn.rm"], runningVar: try f["cnn.rv"], weight: p("bnw"), bias: p("bnb"))
        h = try maxPool2d(try relu(h), kernelSize: (2, 2))
        h = try conv2d(h, weight: p("w2"), padding: (2, 2), dilation: (2, 2), groups: 2)
        h = try avgPool2d(h, kernelSize: (2, 2), ceilMode: true, countIncludePad: false)
        h = try groupNorm(h, numGroups: 4, weight: p("gnw"), bias: p("gnb"))
        h = try adaptiveAvgPool2d(h, outputSize: (3, 3))
        h = try VisionCore.convTranspose2d(h, weight: p("wt"), bias: p("bt"), stride: (2, 2), groups: 2)
        h = try layerNorm(h, normalizedShape: [6], weight: p("lnw"), bias: p("lnb"))
        let logits = try linear(try h.reshape([2, -1]), weight: p("wl"), bias: p("bl"))
        let nll = try sum(try mul(try logSoftmax(logits, axis: 1), try f["cnn.onehot"]))
        let loss = try div(try unary(.neg, nll), try Tensor.full([], value: 2))
        try expectClose(try loss.reshape([1]), try f["cnn.loss"], rtol: 1e-5, atol: 1e-6, "loss")
        try loss.backward()
        for (k, v) in t {
            try expectClose(try #require(v.grad, "grad \(k)"), try f["cnn.grad_\(k)"], rtol: 1e-3, atol: 1e-5, "grad \(k)")
        }
    }
}
