import Testing
@testable import VisionCore
import CKernels

/// conv2dFused against the composition it replaces: conv2d, per-channel scale and shift, residual, activation.
@Suite struct ConvEpilogueTests {
    /// (input shape, weight shape, stride, padding, groups): 1x1 in place, padded-input GEMM, depthwise (stride 1
    /// and 2), grouped; then channel counts that are no multiple of the register tile, several column tiles with
    /// a partial last one, a 7x7 map whose few columns are split into row blocks over the threads, and small maps
    /// whose images share one GEMM (strided and grouped, 1x1).
    static let geometries: [([Int], [Int], Int, Int, Int)] = [
        ([2, 5, 7, 9], [6, 5, 1, 1], 1, 0, 1),
        ([1, 3, 11, 10], [4, 3, 3, 3], 2, 1, 1),
        ([2, 6, 9, 13], [6, 1, 3, 3], 1, 1, 6),
        ([1, 5, 12, 11], [5, 1, 3, 3], 2, 1, 5),
        ([2, 4, 6, 7], [8, 1, 3, 3], 2, 1, 4),
        ([1, 6, 5, 5], [4, 3, 1, 1], 1, 0, 2),
        ([1, 37, 13, 11], [27, 37, 3, 3], 1, 1, 1),
        ([2, 19, 17, 21], [13, 19, 1, 1], 1, 0, 1),
        ([1, 40, 7, 7], [70, 40, 3, 3], 1, 1, 1),
        ([1, 9, 23, 19], [11, 9, 3, 3], 2, 1, 1),
        ([3, 8, 5, 6], [12, 4, 3, 3], 2, 1, 2),
        ([4, 6, 3, 3], [10, 6, 1, 1], 1, 0, 1),
        // Explicit columns built chunk by chunk (9 images, and a last chunk of 1), the epilogue on each chunk.
        ([28, 32, 7, 7], [64, 32, 3, 3], 1, 1, 1),
        // A strided 1x1 (a downsampling shortcut): the stride-1 conv of the subsampled input.
        ([2, 24, 13, 15], [40, 24, 1, 1], 2, 0, 1),
    ]

    @Test(arguments: 0..<14) func matchesTheComposition(_ index: Int) throws {
        let (xs, ws, s, p, groups) = Self.geometries[index]
        let x = try randomTensor(xs, seed: 1), w = try randomTensor(ws, seed: 2, scale: 0.5)
        if index == 12 {
            let geo = try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: (s, s), padding: (p, p),
                                       dilation: (1, 1), groups: groups)
            #expect(!winogradApplies(geo))
            #expect(try columnChunkImages(ConvGemmPlan(geo)) == 9)
        }
        let plain = try conv2d(x, weight: w, stride: (s, s), padding: (p, p), groups: groups)
        let c = ws[0]
        let scale = (0..<c).map { Float($0 % 3) * 0.7 - 0.4 }, shift = (0..<c).map { Float($0) * 0.1 - 0.2 }
        let residual = try randomTensor(plain.shape, seed: 3)
        for activation in [nil, UnaryOp.relu, .relu6, .silu, .leakyRelu, .hardSwish, .hardSigmoid, .geluErf, .abs] {
            for withResidual in [false, true] {
                let epilogue = ConvEpilogue(scale: scale, shift: shift, residual: withResidual ? residual : nil, activation: activation)
                let fused = try conv2dFused(x, weight: w, stride: (s, s), padding: (p, p), groups: groups, epilogue: epilogue)
                var expected = try add(try mul(plain, try Tensor(scale, shape: [1, c, 1, 1])), try Tensor(shift, shape: [1, c, 1, 1]))
                if withResidual { expected = try add(expected, residual) }
                if let activation { expected = try unary(activation, expected) }
                try expectClose(fused, expected, rtol: 1e-5, atol: 1e-5, "geometry \(index) \(String(describing: activation)) residual \(withResidual)")
                if withResidual {
                    // A skip that joins after the activation (EXTD's upsampling path).
                    var after = epilogue
                    after.residualAfterActivation = true
                    let got = try conv2dFused(x, weight: w, stride: (s, s), padding: (p, p), groups: groups, epilogue: after)
                    var want = try add(try mul(plain, try Tensor(scale, shape: [1, c, 1, 1])), try Tensor(shift, shape: [1, c, 1, 1]))
                    if let activation { want = try unary(activation, want) }
                    try expectClose(got, try add(want, residual), rtol: 1e-5, atol: 1e-5,
                                    "geometry \(index) \(String(describing: activation)) residual after")
                }
                // Shift alone: a conv bias.
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

    /// The fold's scale and shift carry the bits of the Double formula (scale = weight / sqrt(var + eps), shift =
    /// bias + (convBias - mean) * scale, rounded to Float) for channel counts around its vector lanes and chunks,
    /// with each optional term absent (weight 1, biases 0) and from a strided (non-contiguous) variance.
    @Test func batchNormFoldHasTheBitsOfTheDoubleFormula() throws {
        for c in [1, 3, 7, 64, 65, 131, 2048] {
            let mean = try randomTensor([c], seed: 31), gamma = try randomTensor([c], seed: 32)
            let beta = try randomTensor([c], seed: 33), convBias = try randomTensor([c], seed: 34)
            let wide = try add(try unary(.abs, try randomTensor([c, 2], seed: 35)), try Tensor.full([], value: 0.01))
            let variance = try wide.select(axis: 1, index: 1)
            let eps = 1e-3
            for (weight, bias, cb) in [(gamma, beta, convBias), (nil, nil, nil), (gamma, nil, convBias), (nil, beta, nil)] {
                let e = try ConvEpilogue.batchNorm(mean: mean, variance: variance, weight: weight, bias: bias, eps: eps, convBias: cb)
                let (m, v) = (try mean.toArray(Float.self), try variance.toArray(Float.self))
                let (w, b, k) = (try weight?.toArray(Float.self), try bias?.toArray(Float.self), try cb?.toArray(Float.self))
                var scale = [Double](repeating: 0, count: c), shift = [Double](repeating: 0, count: c)
                for i in 0..<c {
                    let wi = Double(w?[i] ?? 1), bi = Double(b?[i] ?? 0), ki = Double(k?[i] ?? 0)
                    scale[i] = wi / (Double(v[i]) + eps).squareRoot()
                    shift[i] = bi + (ki - Double(m[i])) * scale[i]
                }
                #expect(e.scale == scale.map { Float($0) }, "c \(c)")
                #expect(e.shift == shift.map { Float($0) }, "c \(c)")
            }
        }
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

/// squeezeExcitation and addingLeadingChannels against the compositions they replace.
@Suite struct ChannelScaleTests {
    /// mean -> 1x1 conv (scale, shift, ReLU) -> 1x1 conv (bias, sigmoid) -> multiply -> activation; the larger
    /// shape spreads every pass over the threads.
    @Test(arguments: [[2, 5, 7, 3, 3], [2, 600, 14, 14, 50]]) func squeezeExcitationMatchesTheComposition(_ s: [Int]) throws {
        let (c, r) = (s[1], s[4])
        let x = try randomTensor([s[0], c, s[2], s[3]], seed: 1)
        let w1 = try randomTensor([r, c, 1, 1], seed: 2), w2 = try randomTensor([c, r, 1, 1], seed: 3)
        let reduce = ConvEpilogue(scale: (0..<r).map { 0.5 + Float($0 % 3) * 0.25 }, shift: (0..<r).map { Float($0 % 5) * 0.1 - 0.2 },
                                  activation: .relu)
        let expand = ConvEpilogue(shift: (0..<c).map { Float($0 % 7) * 0.1 - 0.3 }, activation: .sigmoid)
        let hidden = try conv2dFused(try mean(x, axes: [2, 3], keepDim: true), weight: w1, epilogue: reduce)
        let gate = try conv2dFused(hidden, weight: w2, epilogue: expand)
        for activation in [nil, UnaryOp.relu, .relu6, .silu] {
            var expected = try mul(x, gate)
            if let activation { expected = try unary(activation, expected) }
            let y = try squeezeExcitation(x, reduceWeight: w1, reduce: reduce, expandWeight: w2, expand: expand,
                                          activation: activation)
            try expectClose(y, expected, "\(s) \(String(describing: activation))")
        }
        #expect(throws: VisionError.self) {
            try squeezeExcitation(x, reduceWeight: w2, reduce: reduce, expandWeight: w1, expand: expand)
        }
        #expect(throws: VisionError.self) {
            try squeezeExcitation(x, reduceWeight: w1, reduce: ConvEpilogue(shift: [1]), expandWeight: w2, expand: expand)
        }
        #expect(throws: VisionError.self) {
            try squeezeExcitation(x, reduceWeight: w1, reduce: ConvEpilogue(residual: hidden), expandWeight: w2, expand: expand)
        }
        #expect(throws: VisionError.self) {
            try squeezeExcitation(try x.reshape([s[0], c, s[2] * s[3]]), reduceWeight: w1, reduce: reduce, expandWeight: w2,
                                  expand: expand)
        }
    }

    /// addingLeadingChannels against pad + add; a y that the caller still holds keeps its values.
    @Test func leadingChannelsMatchPadThenAdd() throws {
        // 3 x 9 x 1000 floats: several 16K-float pieces per image, so the threads split an image.
        let y = try randomTensor([2, 9, 1000, 3], seed: 3), before = try y.toArray(Float.self)
        for channels in [9, 4, 1] {
            let x = try randomTensor([2, channels, 1000, 3], seed: 4)
            let expected = try add(y, try pad(x, pads: [0, 0, 0, 0, 0, 9 - channels]))
            #expect(try addingLeadingChannels(y, x).toArray(Float.self) == expected.toArray(Float.self), "\(channels)")
        }
        #expect(try y.toArray(Float.self) == before)
        #expect(throws: VisionError.self) { try addingLeadingChannels(y, try Tensor.zeros([2, 10, 1000, 3])) }
        #expect(throws: VisionError.self) { try addingLeadingChannels(y, try Tensor.zeros([2, 4, 1000, 2])) }
        #expect(throws: VisionError.self) { try addingLeadingChannels(y, try Tensor.zeros([1, 4, 1000, 3])) }
    }
}

/// Every ISA variant of the convolution GEMM (AVX-512, AVX2, SSE2 where the CPU has them) against the Double
/// reference. The variant is the test thread's choice (vck_isa_choice), which the pool's workers take for its jobs;
/// other tests running meanwhile keep the CPU's best.
@Suite struct ConvGemmISATests {
    @Test func everyKernelVariantMatchesTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let x = try randomTensor([2, 13, 15, 17], seed: 11), w = try randomTensor([19, 13, 3, 3], seed: 12)
        let expected = try conv2dReference(x, weight: w, stride: (2, 1), padding: (1, 2))
        let w1 = try randomTensor([21, 13, 1, 1], seed: 13)
        let expected1 = try conv2dReference(x, weight: w1)
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            #expect(try maxRelativeError(try conv2d(x, weight: w, stride: (2, 1), padding: (1, 2)), expected) < 1e-5, "ISA \(level)")
            #expect(try maxRelativeError(try conv2d(x, weight: w1), expected1) < 1e-5, "ISA \(level) 1x1")
            tested += 1
        }
        #expect(tested >= 1)
        #expect(vck_conv_gemm_set_isa(2) == -1)
    }

    /// Maps whose last column tile holds 1, 4 or 8 outputs (AVX-512 runs the first two on its columns kernel,
    /// the third on its 8-wide one) and 20 (a 16-wide one), through the whole epilogue, for every kernel variant.
    @Test func narrowLastTilesMatchTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let w = try randomTensor([11, 13, 1, 1], seed: 14, scale: 0.5)
        let scale = (0..<11).map { 0.6 + Float($0) * 0.1 }, shift = (0..<11).map { Float($0) * 0.05 - 0.2 }
        for (h, wd) in [(1, 97), (10, 10), (8, 13), (4, 17)] {
            let x = try randomTensor([1, 13, h, wd], seed: 15), residual = try randomTensor([1, 11, h, wd], seed: 16)
            var expected = try conv2dReference(x, weight: w)
            expected = try add(try add(try mul(expected, try Tensor(scale, shape: [1, 11, 1, 1])),
                                       try Tensor(shift, shape: [1, 11, 1, 1])), residual)
            expected = try unary(.silu, expected)
            let epilogue = ConvEpilogue(scale: scale, shift: shift, residual: residual, activation: .silu)
            for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
                let got = try conv2dFused(x, weight: w, epilogue: epilogue)
                #expect(try maxRelativeError(got, expected) < 1e-5, "ISA \(level) \(h)x\(wd)")
                let plain = try conv2d(x, weight: w)
                #expect(try maxRelativeError(plain, try conv2dReference(x, weight: w)) < 1e-5, "ISA \(level) \(h)x\(wd) plain")
            }
        }
    }
}

extension ConvGemmISATests {
    /// Every activation the kernels take, with no residual, the residual before it and after it, on panels of 6
    /// rows and a short last one (13 output channels) and on full and partial column tiles (9x11), for every kernel
    /// variant: the AVX2 6x16 kernel computes all of them in registers.
    @Test func everyEpilogueOfEveryKernelVariantMatchesTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let c = 13
        let x = try randomTensor([1, 16, 9, 11], seed: 21), w = try randomTensor([c, 16, 1, 1], seed: 22, scale: 0.5)
        let scale = (0..<c).map { 0.6 + Float($0 % 5) * 0.2 }, shift = (0..<c).map { Float($0 % 7) * 0.1 - 0.3 }
        let plain = try conv2dReference(x, weight: w), residual = try randomTensor(plain.shape, seed: 23)
        let affine = try add(try mul(plain, try Tensor(scale, shape: [1, c, 1, 1])), try Tensor(shift, shape: [1, c, 1, 1]))
        let activations: [UnaryOp?] = [nil, .relu, .relu6, .leakyRelu, .hardSwish, .hardSigmoid, .silu, .geluErf,
                                       .geluTanh, .sigmoid, .tanh, .exp]
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            for activation in activations {
                func act(_ t: Tensor) throws -> Tensor { try activation.map { try unaryReference($0, t, parameter: 0.1) } ?? t }
                for (mode, expected) in [("none", try act(affine)), ("before", try act(try add(affine, residual))),
                                         ("after", try add(try act(affine), residual))] {
                    let epilogue = ConvEpilogue(scale: scale, shift: shift, residual: mode == "none" ? nil : residual,
                                                activation: activation, activationParameter: 0.1,
                                                residualAfterActivation: mode == "after")
                    let got = try conv2dFused(x, weight: w, epilogue: epilogue)
                    #expect(try maxRelativeError(got, expected) < 1e-5, "ISA \(level) \(String(describing: activation)) residual \(mode)")
                }
            }
            tested += 1
        }
        #expect(tested >= 1)
    }

    /// conv(x, w) through the whole epilogue (scale, shift, a residual drawn with `seed`; SiLU, ReLU) and plain,
    /// against the Double reference within `tolerance`; returns the plain conv.
    func expectEpiloguesMatchTheReference(_ x: Tensor, _ w: Tensor, stride: (Int, Int), padding: (Int, Int), seed: UInt64,
                                          tolerance: Float, _ label: String) throws -> Tensor {
        let cout = w.shape[0]
        let scale = (0..<cout).map { 0.6 + Float($0 % 9) * 0.1 }, shift = (0..<cout).map { Float($0 % 7) * 0.05 - 0.2 }
        let plain = try conv2dReference(x, weight: w, stride: stride, padding: padding)
        let residual = try randomTensor(plain.shape, seed: seed)
        let affine = try add(try mul(plain, try Tensor(scale, shape: [1, cout, 1, 1])), try Tensor(shift, shape: [1, cout, 1, 1]))
        for activation in [UnaryOp.silu, .relu] {
            let expected = try unary(activation, try add(affine, residual))
            let epilogue = ConvEpilogue(scale: scale, shift: shift, residual: residual, activation: activation)
            let got = try conv2dFused(x, weight: w, stride: stride, padding: padding, epilogue: epilogue)
            #expect(try maxRelativeError(got, expected) < tolerance, "\(label) \(activation)")
        }
        let y = try conv2d(x, weight: w, stride: stride, padding: padding)
        #expect(try maxRelativeError(y, plain) < tolerance, "\(label) plain")
        return y
    }
}

/// The blocked order of the narrow kernels (AVX2, SSE2; k >= 256): blocks of k whose partial sums seed the next
/// block, B slices copied contiguous when a row block has 12+ panels and read in place otherwise, on contiguous
/// outputs, padded rows (vw > ow), phase planes and batched small maps, through the whole epilogue, for every
/// kernel variant; and an image gets the same bits alone as in its batch.
extension ConvGemmISATests {
    @Test func blockedOrderMatchesTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        // (input, weight, stride, padding): k = 300 with 14 panels of 6 rows (one block, packed slices); k = 1080
        // (three blocks) on padded rows, 100 rows; k = 576 (two blocks) on phase planes, 4 panels (B in place);
        // k = 600 on a batch of 3x3 maps sharing one GEMM.
        let cases: [([Int], [Int], (Int, Int), (Int, Int))] = [
            ([2, 300, 9, 11], [80, 300, 1, 1], (1, 1), (0, 0)),
            ([1, 120, 10, 9], [100, 120, 3, 3], (1, 1), (1, 1)),
            ([2, 64, 11, 12], [20, 64, 3, 3], (2, 2), (1, 1)),
            ([5, 600, 3, 3], [30, 600, 1, 1], (1, 1), (0, 0)),
        ]
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            for (index, (xs, ws, stride, padding)) in cases.enumerated() {
                let x = try randomTensor(xs, seed: UInt64(70 + index)), w = try randomTensor(ws, seed: UInt64(80 + index), scale: 0.1)
                let y = try expectEpiloguesMatchTheReference(x, w, stride: stride, padding: padding, seed: UInt64(90 + index),
                                                             tolerance: 1e-5, "ISA \(level) case \(index)")
                let last = xs[0] - 1
                let alone = try conv2d(try x.slice(axis: 0, start: last, end: last + 1), weight: w, stride: stride, padding: padding)
                #expect(try alone.toArray(Float.self) == y.slice(axis: 0, start: last, end: last + 1).contiguous().toArray(Float.self),
                        "ISA \(level) case \(index): image \(last) alone")
            }
            tested += 1
        }
        #expect(tested >= 1)
    }
}

/// B packed once into column tiles and shared by the row blocks of a batch-1 conv whose output channels outnumber
/// its columns (the narrow kernels; AVX-512 reads B in place): k = 64 on 1x1 (tiles read whole), k = 1080 in
/// blocks on explicit columns, k = 864 on phase planes with a last partial tile, through the whole epilogue,
/// against the reference (float sums of up to 1080 products); and the 1x1 conv's image gets the same bits alone
/// (packed) as in a batch of two (in place).
extension ConvGemmISATests {
    @Test func packedColumnsMatchTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let cases: [([Int], [Int], (Int, Int), (Int, Int))] = [
            ([2, 64, 7, 7], [200, 64, 1, 1], (1, 1), (0, 0)),
            ([1, 120, 6, 6], [150, 120, 3, 3], (1, 1), (1, 1)),
            ([1, 96, 13, 13], [128, 96, 3, 3], (2, 2), (1, 1)),
        ]
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            for (index, (xs, ws, stride, padding)) in cases.enumerated() {
                let x = try randomTensor(xs, seed: UInt64(40 + index)), w = try randomTensor(ws, seed: UInt64(50 + index), scale: 0.1)
                let image = try x.slice(axis: 0, start: 0, end: 1)
                let alone = try expectEpiloguesMatchTheReference(image, w, stride: stride, padding: padding,
                                                                 seed: UInt64(60 + index), tolerance: 2e-5,
                                                                 "ISA \(level) case \(index)")
                if xs[0] > 1 {
                    let batch = try conv2d(x, weight: w, stride: stride, padding: padding)
                    #expect(try alone.toArray(Float.self) == batch.slice(axis: 0, start: 0, end: 1).contiguous().toArray(Float.self),
                            "ISA \(level) case \(index): image 0 alone")
                }
            }
            tested += 1
        }
        #expect(tested >= 1)
    }
}

/// A batch-1 1x1 conv reads its input in place, and its rows (input planes, H x W floats apart) lie far apart for
/// the threads' column chunks: each chunk runs in column blocks copied tile-major (k = 200: blocks of 320 columns,
/// the last one ragged, 39 x 41 outputs; k = 16: one block per chunk), through the whole epilogue, for every
/// kernel variant, on 1 and 2 threads.
extension ConvGemmISATests {
    @Test func scatteredRowsMatchTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let cases: [([Int], [Int])] = [([1, 200, 39, 41], [30, 200, 1, 1]), ([1, 16, 45, 37], [26, 16, 1, 1])]
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            // The thread count for this task only (a process-wide one would change other tests' bits mid-run).
            for count in [1, 2] {
                try Threading.withThreadCount(count) {
                    for (index, (xs, ws)) in cases.enumerated() {
                        let x = try randomTensor(xs, seed: UInt64(110 + index)), w = try randomTensor(ws, seed: UInt64(120 + index), scale: 0.1)
                        _ = try expectEpiloguesMatchTheReference(x, w, stride: (1, 1), padding: (0, 0), seed: UInt64(130 + index),
                                                                 tolerance: 2e-5, "ISA \(level), \(count) threads, case \(index)")
                    }
                }
            }
            tested += 1
        }
        #expect(tested >= 1)
    }
}

/// The weight gradient on the conv GEMM (large maps, rows of at least 256 taps) for every ISA variant, against a
/// Double sum over images and output pixels: stride, padding, dilation, groups, output channels that leave a
/// partial column tile, and maps long enough for several reduction chunks. In the ISA suite.
extension ConvGemmISATests {
    /// dW[co][ci][ky][kx] = Σ_n,oy,ox G[n][co][oy][ox] · X[n][g·Cin/g + ci][oy·s + ky·d - p][ox·s + kx·d - p].
    static func weightGradReference(_ x: Tensor, _ g: Tensor, weightShape: [Int], stride: (Int, Int), padding: (Int, Int),
                          dilation: (Int, Int), groups: Int) throws -> Tensor {
        let xs = x.shape, gs = g.shape, xv = try x.toArray(Float.self), gv = try g.toArray(Float.self)
        let (cout, cinPer, kh, kw) = (weightShape[0], weightShape[1], weightShape[2], weightShape[3])
        let coutPer = cout / groups
        var out = [Float](repeating: 0, count: weightShape.reduce(1, *))
        for co in 0..<cout {
            for ci in 0..<cinPer {
                let c = (co / coutPer) * cinPer + ci
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        var sum = 0.0
                        for n in 0..<xs[0] {
                            for oy in 0..<gs[2] {
                                let iy = oy * stride.0 + ky * dilation.0 - padding.0
                                if iy < 0 || iy >= xs[2] { continue }
                                for ox in 0..<gs[3] {
                                    let ix = ox * stride.1 + kx * dilation.1 - padding.1
                                    if ix < 0 || ix >= xs[3] { continue }
                                    sum += Double(gv[((n * cout + co) * gs[2] + oy) * gs[3] + ox])
                                        * Double(xv[((n * xs[1] + c) * xs[2] + iy) * xs[3] + ix])
                                }
                            }
                        }
                        out[((co * cinPer + ci) * kh + ky) * kw + kx] = Float(sum)
                    }
                }
            }
        }
        return try Tensor(out, shape: weightShape)
    }

    @Test func weightGradientOfEveryKernelVariantMatchesTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        // (input, weight, stride, padding, dilation, groups)
        let cases: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int), Int)] = [
            ([2, 32, 24, 20], [20, 32, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([1, 30, 26, 23], [50, 30, 3, 3], (2, 2), (1, 1), (1, 1), 1),
            ([2, 64, 18, 21], [34, 32, 3, 3], (1, 2), (2, 1), (2, 1), 2),
            ([2, 300, 17, 19], [17, 300, 1, 1], (1, 1), (0, 0), (1, 1), 1),
            // Whole 64-wide tiles, a 48-wide tail, and 261 taps (not a multiple of the tile's 6 or 8 rows).
            ([1, 29, 11, 10], [64, 29, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([1, 32, 12, 13], [112, 32, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            // 16 and 32 output channels: tiles of one and two vectors, no zero columns.
            ([1, 29, 9, 10], [16, 29, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([1, 29, 9, 10], [32, 29, 3, 3], (1, 1), (1, 1), (1, 1), 1),
        ]
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            for (index, (xs, ws, stride, padding, dilation, groups)) in cases.enumerated() {
                let x = try randomTensor(xs, seed: UInt64(40 + index)), w = try randomTensor(ws, seed: UInt64(50 + index))
                let geo = try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: stride, padding: padding,
                                           dilation: dilation, groups: groups)
                #expect(try !ConvGemmPlan(geo).batched, "case \(index) must take the GEMM path")
                let g = try randomTensor(geo.outShape, seed: UInt64(60 + index))
                let expected = try Self.weightGradReference(x, g, weightShape: ws, stride: stride, padding: padding,
                                                  dilation: dilation, groups: groups)
                let got = try conv2dWeightGrad(geo, x, g, weightShape: ws)
                #expect(try maxRelativeError(got, expected) < 1e-4, "ISA \(level) case \(index)")
                // A fixed order of summation: the same bits every time.
                #expect(try conv2dWeightGrad(geo, x, g, weightShape: ws).toArray(Float.self) == got.toArray(Float.self))
            }
            tested += 1
        }
        #expect(tested >= 1)
    }
}

/// Small maps whose images share one GEMM through the batch's explicit im2col columns: forward against
/// conv2dReference, and the weight gradient (on the same columns) against the Double sum, with stride, padding
/// larger than the map, dilation and groups, the shifted copies of stride 1, and every path of the AVX-512 and
/// the scalar im2col.
@Suite struct SmallMapColumnTests {
    @Test func forwardAndWeightGradientMatchTheReference() throws {
        // (input, weight, stride, padding, dilation, groups)
        let cases: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int), Int)] = [
            ([6, 20, 7, 7], [64, 20, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([5, 12, 4, 5], [16, 6, 3, 3], (2, 1), (2, 1), (1, 2), 2),
            ([9, 8, 1, 1], [70, 8, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([3, 16, 6, 6], [66, 16, 1, 1], (2, 2), (0, 0), (1, 1), 1),
            // Stride 1 with as many output as input columns: each tap is a shifted copy of the plane.
            ([4, 10, 5, 6], [64, 10, 3, 3], (1, 1), (2, 2), (2, 2), 1),
            ([3, 8, 4, 4], [64, 8, 1, 3], (1, 1), (0, 1), (1, 1), 1),
            ([2, 6, 3, 5], [64, 6, 5, 3], (1, 1), (2, 1), (1, 1), 1),
            // Several images per AVX-512 vector (1, 2, 4 and 8 output pixels), a last vector of fewer images, and
            // planes too large for the registers (gathered).
            ([17, 4, 2, 2], [64, 4, 2, 2], (1, 1), (0, 0), (1, 1), 1),
            ([3, 4, 1, 4], [64, 4, 1, 3], (1, 2), (0, 1), (1, 1), 1),
            ([7, 4, 4, 4], [64, 4, 3, 3], (2, 2), (1, 1), (1, 1), 1),
            ([5, 8, 2, 2], [64, 8, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([5, 4, 2, 4], [64, 4, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([3, 4, 9, 9], [64, 4, 3, 3], (2, 2), (1, 1), (1, 1), 1),
            // Columns built chunk by chunk: the forward in chunks of 4 images per group (a last chunk of 2), the
            // weight gradient in two chunks of images (20 and 2) and rows in blocks.
            ([22, 128, 7, 7], [64, 64, 3, 3], (1, 1), (1, 1), (1, 1), 2),
        ]
        defer { _ = vck_im2col_set_isa(0) }
        for level: Int32 in [4, 1] where vck_im2col_set_isa(level) == 0 {
            try check(cases, level: level)
        }
        #expect(vck_im2col_set_isa(3) == -1)
    }

    private func check(_ cases: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int), Int)], level: Int32) throws {
        for (index, (xs, ws, stride, padding, dilation, groups)) in cases.enumerated() {
            let x = try randomTensor(xs, seed: UInt64(70 + index)), w = try randomTensor(ws, seed: UInt64(80 + index))
            let geo = try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: stride, padding: padding,
                                       dilation: dilation, groups: groups)
            let plan = try ConvGemmPlan(geo)
            #expect(plan.columnMatrix, "case \(index) must use the explicit columns")
            #expect((columnChunkImages(plan) != nil) == (xs[0] > 20), "case \(index): chunked columns")
            let y = try conv2d(x, weight: w, stride: stride, padding: padding, dilation: dilation, groups: groups)
            let expected = try conv2dReference(x, weight: w, stride: stride, padding: padding, dilation: dilation, groups: groups)
            let forwardError = try maxRelativeError(y, expected)
            #expect(forwardError < 5e-5, "forward case \(index), im2col level \(level): \(forwardError)")
            let g = try randomTensor(geo.outShape, seed: UInt64(90 + index))
            let gw = try conv2dWeightGrad(geo, x, g, weightShape: ws)
            let gwExpected = try ConvGemmISATests.weightGradReference(x, g, weightShape: ws, stride: stride, padding: padding,
                                                                       dilation: dilation, groups: groups)
            #expect(try maxRelativeError(gw, gwExpected) < 1e-4, "weight gradient case \(index), im2col level \(level)")
        }
    }
}

/// Last column tiles of 1 to 4 outputs, which AVX-512 computes with the rows as vector lanes (weights transposed
/// in registers, eight steps of k at a time; k here with and without a remainder of k % 8): against the reference
/// through the epilogue, and each image of a batch of two, whose tiles then fall elsewhere (its last columns
/// inside a full tile), bit for bit the same alone; for every kernel variant.
extension ConvGemmISATests {
    @Test func columnsOfTheLastTileMatchTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        // (input [batch 2], weight, padding): 49, 50, 51 and 196 columns at batch 1 (1x1: k = 5, 16, 37, 300),
        // and a 3x3 conv on a 7x7 map's explicit columns (k = 63).
        let cases: [([Int], [Int], Int)] = [
            ([2, 5, 7, 7], [12, 5, 1, 1], 0), ([2, 16, 10, 5], [20, 16, 1, 1], 0), ([2, 37, 17, 3], [40, 37, 1, 1], 0),
            ([2, 300, 14, 14], [24, 300, 1, 1], 0), ([2, 7, 7, 7], [16, 7, 3, 3], 1),
        ]
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            for (index, (xs, ws, padding)) in cases.enumerated() {
                let x = try randomTensor(xs, seed: UInt64(400 + index)), w = try randomTensor(ws, seed: UInt64(410 + index), scale: 0.3)
                let batch = try expectEpiloguesMatchTheReference(x, w, stride: (1, 1), padding: (padding, padding),
                                                                 seed: UInt64(420 + index), tolerance: 2e-5,
                                                                 "ISA \(level) case \(index)")
                for n in 0..<2 {
                    let alone = try conv2d(try x.slice(axis: 0, start: n, end: n + 1), weight: w, padding: (padding, padding))
                    #expect(try alone.toArray(Float.self) == batch.slice(axis: 0, start: n, end: n + 1).contiguous().toArray(Float.self),
                            "ISA \(level) case \(index): image \(n) alone")
                }
            }
            tested += 1
        }
        #expect(tested >= 1)
    }
}

/// The output written over the residual: only when the epilogue holds the residual's only reference (handed over
/// with `consume`) and the kernel reads each residual element before writing there (conv GEMM, Winograd); a
/// residual the caller still holds, or a view's, keeps its values, and OpenBLAS's small-map products (which
/// write the output first) take new memory. Every case against the reference.
@Suite struct ConvResidualOutputTests {
    /// (input, weight, padding, whether the output may take the residual's memory): a 1x1 conv on the conv GEMM, a
    /// 3x3 conv on Winograd, a 1x1 conv on 3x3 maps (OpenBLAS's products per image), a 3x3 conv with too few
    /// channels for Winograd (the conv GEMM on a small map's explicit columns).
    static let cases: [([Int], [Int], Int, Bool)] = [
        ([1, 24, 9, 10], [40, 24, 1, 1], 0, true),
        ([1, 32, 14, 14], [32, 32, 3, 3], 1, true),
        ([2, 96, 3, 3], [40, 96, 1, 1], 0, false),
        ([1, 12, 5, 6], [20, 12, 3, 3], 1, true),
    ]

    func expected(_ x: Tensor, _ w: Tensor, padding: Int, residual: Tensor, scale: [Float]) throws -> Tensor {
        let plain = try conv2dReference(x, weight: w, padding: (padding, padding))
        return try relu(try add(try mul(plain, try Tensor(scale, shape: [1, scale.count, 1, 1])), residual))
    }

    /// Case `index`'s input and weight (seeds from `seed`), its padding, output shape and per-channel scales.
    func operands(_ index: Int, seed: UInt64) throws -> (x: Tensor, w: Tensor, padding: Int, outShape: [Int], scale: [Float]) {
        let (xs, ws, padding, _) = Self.cases[index]
        let x = try randomTensor(xs, seed: seed), w = try randomTensor(ws, seed: seed + 10, scale: 0.2)
        let outShape = try conv2dReference(x, weight: w, padding: (padding, padding)).shape
        return (x, w, padding, outShape, (0..<ws[0]).map { 0.5 + Float($0 % 5) * 0.1 })
    }

    @Test(arguments: cases.indices)
    func ownedResidualTakesTheOutput(_ index: Int) throws {
        let (x, w, padding, outShape, scale) = try operands(index, seed: UInt64(200 + index))
        let reusable = Self.cases[index].3
        let residual = try randomTensor(outShape, seed: UInt64(220 + index))
        let want = try expected(x, w, padding: padding, residual: try residual.copyContiguous(), scale: scale)
        let memory = residual.pointer(Float.self)
        let got = try conv2dFused(x, weight: w, padding: (padding, padding),
                                  epilogue: ConvEpilogue(scale: scale, residual: consume residual, activation: .relu))
        #expect(try maxRelativeError(got, want) < 1e-5, "case \(index)")
        #expect((got.pointer(Float.self) == memory) == reusable, "case \(index): output over the residual")
    }

    @Test(arguments: cases.indices)
    func heldResidualKeepsItsValues(_ index: Int) throws {
        let (x, w, padding, outShape, scale) = try operands(index, seed: UInt64(300 + index))
        let residual = try randomTensor(outShape, seed: UInt64(320 + index)), before = try residual.toArray(Float.self)
        let got = try conv2dFused(x, weight: w, padding: (padding, padding),
                                  epilogue: ConvEpilogue(scale: scale, residual: residual, activation: .relu))
        #expect(try residual.toArray(Float.self) == before, "case \(index)")
        #expect(got.pointer(Float.self) != residual.pointer(Float.self))
        #expect(try maxRelativeError(got, try expected(x, w, padding: padding, residual: residual, scale: scale)) < 1e-5)
        // A view of a larger tensor shares its storage: never written over, even when the view itself is handed over.
        let wide = try randomTensor([outShape[0], outShape[1] * 2] + outShape.suffix(2), seed: UInt64(330 + index))
        let wideBefore = try wide.toArray(Float.self)
        let view = try wide.slice(axis: 1, start: 0, end: outShape[1])
        let viewValues = try view.copyContiguous()
        let fromView = try conv2dFused(x, weight: w, padding: (padding, padding),
                                       epilogue: ConvEpilogue(scale: scale, residual: consume view, activation: .relu))
        #expect(try wide.toArray(Float.self) == wideBefore, "case \(index): the viewed tensor")
        #expect(try maxRelativeError(fromView, try expected(x, w, padding: padding, residual: viewValues, scale: scale)) < 1e-5)
    }
}

/// A last tile of 1 to 4 columns (7x7 and 14x14 maps) on AVX-512's columns kernel, two panels of rows per call
/// where the rows are not a multiple of 4 KB apart: 5 and 3 panels (pairs and a single one), k with a ragged last
/// step of 8, a 3x3 conv's explicit columns, and rows 4 KB apart (one panel at a time), through the whole epilogue,
/// for every kernel variant; each image gets the same bits alone (its last columns in the narrow tile) as in a
/// batch of two (the same columns inside a full tile).
extension ConvGemmISATests {
    @Test func columnPairsMatchTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let cases: [([Int], [Int], (Int, Int))] = [
            ([2, 37, 7, 7], [40, 37, 1, 1], (0, 0)),
            ([2, 29, 14, 14], [24, 29, 1, 1], (0, 0)),
            ([2, 41, 7, 7], [21, 41, 3, 3], (1, 1)),
            ([2, 1024, 7, 7], [16, 1024, 1, 1], (0, 0)),
        ]
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            for (index, (xs, ws, padding)) in cases.enumerated() {
                let x = try randomTensor(xs, seed: UInt64(110 + index)), w = try randomTensor(ws, seed: UInt64(120 + index), scale: 0.1)
                let batch = try conv2d(x, weight: w, padding: padding)
                for n in 0..<2 {
                    let image = try x.slice(axis: 0, start: n, end: n + 1)
                    let alone = try expectEpiloguesMatchTheReference(image, w, stride: (1, 1), padding: padding,
                                                                     seed: UInt64(130 + index), tolerance: 2e-5,
                                                                     "ISA \(level) case \(index) image \(n)")
                    #expect(try alone.toArray(Float.self) == batch.slice(axis: 0, start: n, end: n + 1).contiguous().toArray(Float.self),
                            "ISA \(level) case \(index): image \(n) alone")
                }
            }
            tested += 1
        }
        #expect(tested >= 1)
    }
}
