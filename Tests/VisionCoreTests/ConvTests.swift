import Testing
@testable import VisionCore
import CKernels

/// Fast convolution kernels (padded-input GEMM, 1x1 in place, direct depthwise, GEMM + col2im) against their Double
/// reference versions, on odd sizes, and the errors of malformed arguments.
@Suite struct ConvTests {
    static func random(_ shape: [Int], seed: UInt64) throws -> Tensor { try randomTensor(shape, seed: seed) }


    struct Case: CustomTestStringConvertible, Sendable {
        var batch = 1, cin = 3, cout = 5, h = 7, w = 9, k = (3, 3)
        var stride = (1, 1), padding = (0, 0), dilation = (1, 1), groups = 1, bias = true
        var testDescription: String {
            "N\(batch) \(cin)->\(cout) \(h)x\(w) k\(k) s\(stride) p\(padding) d\(dilation) g\(groups)\(bias ? " bias" : "")"
        }
    }

    static let cases: [Case] = [
        Case(),                                                          // plain 3x3
        Case(batch: 3, padding: (1, 1)),
        Case(batch: 3, cin: 5, cout: 3, k: (1, 1), bias: false),         // 1x1 GEMM path
        Case(cin: 4, cout: 6, k: (1, 1), groups: 2),                      // grouped 1x1
        Case(cin: 3, cout: 4, k: (1, 1), stride: (2, 2)),                 // strided 1x1: the subsampled input
        Case(batch: 2, cin: 6, cout: 4, h: 12, w: 11, k: (1, 1), stride: (3, 2), dilation: (2, 2), groups: 2),
        Case(batch: 2, cin: 19, cout: 21, h: 31, w: 29, k: (1, 1), stride: (2, 2), bias: false),
        Case(batch: 3, stride: (2, 2), padding: (1, 2)),
        Case(k: (3, 5), stride: (2, 1), padding: (2, 1), dilation: (2, 1)),
        Case(cin: 4, cout: 6, padding: (1, 1), dilation: (2, 2), groups: 2),
        Case(h: 11, w: 13, k: (5, 5), padding: (2, 2)),
        Case(cin: 5, cout: 5, padding: (1, 1), groups: 5),                // depthwise 3x3
        Case(batch: 3, cin: 3, cout: 3, h: 9, w: 37, stride: (2, 2), padding: (1, 1), groups: 3),
        Case(cin: 5, cout: 5, h: 17, w: 23, k: (5, 5), padding: (2, 2), groups: 5),
        Case(cin: 3, cout: 3, h: 12, w: 19, k: (3, 3), stride: (2, 3), padding: (2, 0), dilation: (2, 3), groups: 3),
        Case(cin: 4, cout: 4, h: 10, w: 21, stride: (1, 2), padding: (1, 1), dilation: (1, 2), groups: 4),
        Case(batch: 2, cin: 2, cout: 2, h: 2, w: 3, padding: (1, 1), groups: 2),
        Case(cin: 3, cout: 6, padding: (1, 1), groups: 3, bias: false),   // channel multiplier: grouped GEMM
        Case(cin: 1, cout: 1, h: 5, w: 40, k: (3, 3), padding: (1, 1)),
        // Stride-2 GEMM convs on packed phase planes (maps of over 192 virtual columns) whose rows span several
        // 16-column blocks (the vector stride-2 packing), with even and odd widths and paddings on either side.
        Case(cin: 6, cout: 10, h: 31, w: 71, stride: (2, 2), padding: (1, 1)),
        Case(cin: 5, cout: 9, h: 30, w: 66, stride: (2, 2), padding: (0, 2)),
        Case(batch: 2, cin: 7, cout: 3, h: 27, w: 33, k: (5, 5), stride: (2, 2), padding: (2, 0)),
    ]

    @Test(arguments: cases)
    func conv2dMatchesReference(c: Case) throws {
        let x = try Self.random([c.batch, c.cin, c.h, c.w], seed: 1)
        let w = try Self.random([c.cout, c.cin / c.groups, c.k.0, c.k.1], seed: 2)
        let b = c.bias ? try Self.random([c.cout], seed: 3) : nil
        let fast = try conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups)
        let ref = try conv2dReference(x, weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups)
        #expect(try maxRelativeError(fast, ref) < 1e-5)
    }

    @Test func conv2dLargerPlanesUseEveryThreadAndTile() throws {
        // Enough output pixels for several GEMM tiles per image, and a depthwise plane wider than one vector.
        let x = try Self.random([2, 16, 41, 45], seed: 4)
        let w = try Self.random([8, 16, 3, 3], seed: 5), b = try Self.random([8], seed: 6)
        let fast = try conv2d(x, weight: w, bias: b, padding: (1, 1))
        #expect(try maxRelativeError(fast, try conv2dReference(x, weight: w, bias: b, padding: (1, 1))) < 1e-5)
        let dw = try Self.random([16, 1, 3, 3], seed: 7)
        let fd = try conv2d(x, weight: dw, bias: nil, stride: (2, 2), padding: (1, 1), groups: 16)
        #expect(try maxRelativeError(fd, try conv2dReference(x, weight: dw, stride: (2, 2), padding: (1, 1), groups: 16)) < 1e-5)
        let w1 = try Self.random([12, 16, 1, 1], seed: 8)
        #expect(try maxRelativeError(try conv2d(x, weight: w1), try conv2dReference(x, weight: w1)) < 1e-5)
    }

    @Test func conv2dAcceptsNonContiguousAndUnbatchedInput() throws {
        // [N, H, C, W] permuted to [N, C, H, W]: a view with non-contiguous strides.
        let x = try Self.random([2, 7, 4, 9], seed: 9).permute([0, 2, 1, 3])
        #expect(!x.isContiguous)
        let w = try Self.random([6, 2, 3, 3], seed: 10)
        let fast = try conv2d(x, weight: w, padding: (1, 1), groups: 2)
        #expect(try maxRelativeError(fast, try conv2dReference(try x.contiguous(), weight: w, padding: (1, 1), groups: 2)) < 1e-5)
        let dwWeight = try Self.random([4, 1, 3, 3], seed: 11).permute([0, 1, 3, 2])
        let fd = try conv2d(x, weight: dwWeight, padding: (1, 1), groups: 4)
        #expect(try maxRelativeError(fd, try conv2dReference(x, weight: dwWeight, padding: (1, 1), groups: 4)) < 1e-5)
        let single = try x.select(axis: 0, index: 1)
        let y = try conv2d(single, weight: w, padding: (1, 1), groups: 2)
        #expect(y.shape == [6, 7, 9])
        #expect(try maxRelativeError(y, try fast.select(axis: 0, index: 1).contiguous()) < 1e-6)
    }

    /// Depthwise geometries of the phase-plane kernel (square kernel and stride, dilation 1): strides 1 to 3,
    /// paddings 0 to 2 (odd and even, which decide the phase of the first column), odd widths, 3x3 and 5x5, a
    /// map of one row, and a wide stride-1 map left to the row kernel. (batch, channels, h, w, k, stride, padding)
    static let depthwiseCases: [(Int, Int, Int, Int, Int, Int, Int)] = [
        (2, 3, 7, 7, 3, 1, 1), (1, 4, 14, 13, 3, 2, 1), (1, 3, 9, 11, 3, 2, 0), (1, 2, 10, 12, 3, 2, 2),
        (1, 3, 11, 17, 3, 3, 1), (1, 2, 12, 9, 5, 2, 2), (1, 2, 13, 15, 5, 1, 2), (1, 3, 1, 20, 3, 1, 1),
        (1, 2, 5, 40, 3, 1, 1), (1, 2, 2, 2, 3, 2, 1),
    ]

    @Test(arguments: 0..<10) func depthwisePhasePlanesMatchReference(_ index: Int) throws {
        let (n, c, h, w, k, s, p) = Self.depthwiseCases[index]
        let x = try Self.random([n, c, h, w], seed: 21), wt = try Self.random([c, 1, k, k], seed: 22)
        let b = try Self.random([c], seed: 23)
        let ref = try conv2dReference(x, weight: wt, bias: b, stride: (s, s), padding: (p, p), groups: c)
        let fast = try conv2d(x, weight: wt, bias: b, stride: (s, s), padding: (p, p), groups: c)
        #expect(try maxRelativeError(fast, ref) < 1e-5, "case \(index)")
        // ReLU6 clamps inside the tap loop; SiLU and a residual go through the conv epilogue.
        let scale = (0..<c).map { 0.5 + Float($0) }, shift = (0..<c).map { Float($0) - 1 }
        let scaled = try add(try mul(ref, try Tensor(scale, shape: [1, c, 1, 1])), try Tensor(shift, shape: [1, c, 1, 1]))
        let residual = try Self.random(ref.shape, seed: 24)
        for (activation, withResidual) in [(UnaryOp.relu6, false), (.relu6, true), (.silu, false)] {
            var epilogue = ConvEpilogue(scale: scale, shift: shift, activation: activation)
            if withResidual { epilogue.residual = residual }
            var bias = try Tensor(shift, shape: [c])
            bias = try add(bias, try mul(b, try Tensor(scale, shape: [c])))
            epilogue.shift = try bias.toArray(Float.self)
            let fused = try conv2dFused(x, weight: wt, stride: (s, s), padding: (p, p), groups: c, epilogue: epilogue)
            let want = try unary(activation, withResidual ? try add(scaled, residual) : scaled)
            try expectClose(fused, want, rtol: 1e-5, atol: 1e-5, "case \(index) \(activation) residual \(withResidual)")
        }
    }

    @Test func conv2dEmptyBatchGivesEmptyOutput() throws {
        let y = try conv2d(try Tensor.zeros([0, 3, 5, 5]), weight: try Tensor.zeros([2, 3, 3, 3]))
        #expect(y.shape == [0, 2, 3, 3])
    }

    @Test func conv2dRejectsBadArguments() throws {
        let x = try Tensor.zeros([1, 4, 6, 6]), w = try Tensor.zeros([2, 4, 3, 3])
        #expect(throws: VisionError.self) { try conv2d(try Tensor.zeros([4, 6, 6, 1, 1]), weight: w) }
        #expect(throws: VisionError.self) { try conv2d(try Tensor.zeros([6, 6]), weight: w) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: try Tensor.zeros([2, 4, 3])) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: try Tensor.zeros([2, 3, 3, 3])) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, groups: 3) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, groups: 0) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, groups: Int.max) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, groups: Int.max) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: try Tensor.zeros([3, 2, 3, 3]), groups: 2) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: try Tensor.zeros([0, 4, 3, 3])) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: try Tensor.zeros([2, 4, 0, 3])) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, bias: try Tensor.zeros([3])) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, stride: (0, 1)) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, stride: (1, -2)) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, dilation: (0, 1)) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, padding: (-1, 0)) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, padding: (Int.max, 0)) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, dilation: (Int.max / 2, 1)) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: try Tensor.zeros([2, 4, 7, 3])) }
        #expect(throws: VisionError.self) { try conv2d(x, weight: w, dilation: (3, 1)) }
        #expect(throws: VisionError.self) { try conv2d(try Tensor.zeros([1, 4, 6, 6], dtype: .int32), weight: w) }
        #expect(throws: VisionError.self) { try conv2d(try Tensor.zeros([1, 4, 0, 6]), weight: w) }
        // A kernel larger than the input but not than the padded input is fine.
        #expect(try conv2d(x, weight: try Tensor.zeros([2, 4, 7, 3]), padding: (1, 0)).shape == [1, 2, 2, 4])
    }

    struct TransposeCase: CustomTestStringConvertible, Sendable {
        var batch = 1, cin = 4, cout = 6, h = 7, w = 9, k = (3, 3)
        var stride = (1, 1), padding = (0, 0), outputPadding = (0, 0), dilation = (1, 1), groups = 1, bias = true
        var testDescription: String {
            "N\(batch) \(cin)->\(cout) \(h)x\(w) k\(k) s\(stride) p\(padding) op\(outputPadding) d\(dilation) g\(groups)"
        }
    }

    static let transposeCases: [TransposeCase] = [
        TransposeCase(),
        TransposeCase(batch: 3, stride: (2, 2), padding: (1, 1), outputPadding: (1, 1)),
        TransposeCase(k: (4, 4), stride: (2, 2), padding: (1, 1), bias: false),
        TransposeCase(k: (3, 5), stride: (3, 2), padding: (2, 1), outputPadding: (2, 0), dilation: (1, 2)),
        TransposeCase(cin: 4, cout: 6, stride: (2, 2), groups: 2),
        TransposeCase(batch: 3, cin: 3, cout: 3, stride: (2, 1), padding: (1, 0), groups: 3),
        TransposeCase(cin: 5, cout: 3, k: (1, 1)),
        TransposeCase(cin: 2, cout: 2, h: 5, w: 4, k: (2, 2), stride: (1, 1), outputPadding: (1, 1), dilation: (2, 2)),
        TransposeCase(batch: 2, cin: 8, cout: 4, h: 23, w: 31, k: (3, 3), stride: (2, 2), padding: (1, 1), outputPadding: (1, 0)),
        // Batches of small maps: several images share a GEMM (a last chunk with fewer images, groups, dilation).
        TransposeCase(batch: 20, cin: 6, cout: 4, h: 2, w: 3, stride: (2, 2), padding: (1, 1), outputPadding: (1, 1)),
        TransposeCase(batch: 17, cin: 4, cout: 6, h: 1, w: 1, stride: (2, 2), groups: 2),
        TransposeCase(batch: 13, cin: 8, cout: 5, h: 4, w: 4, stride: (2, 2), padding: (1, 1), dilation: (1, 2), bias: false),
    ]

    @Test(arguments: transposeCases)
    func convTranspose2dMatchesReference(c: TransposeCase) throws {
        let x = try Self.random([c.batch, c.cin, c.h, c.w], seed: 21)
        let w = try Self.random([c.cin, c.cout / c.groups, c.k.0, c.k.1], seed: 22)
        let b = c.bias ? try Self.random([c.cout], seed: 23) : nil
        let fast = try convTranspose2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding,
                                       outputPadding: c.outputPadding, groups: c.groups, dilation: c.dilation)
        let ref = try convTranspose2dReference(x, weight: w, bias: b, stride: c.stride, padding: c.padding,
                                               outputPadding: c.outputPadding, groups: c.groups, dilation: c.dilation)
        #expect(try maxRelativeError(fast, ref) < 1e-5)
    }

    @Test func convTransposeIsTheAdjointOfConv() throws {
        // <conv(x), y> == <x, convT(y)> for the same weight: checks both kernels against each other.
        let x = try Self.random([2, 3, 9, 7], seed: 31), w = try Self.random([4, 3, 3, 3], seed: 32)
        let y0 = try conv2d(x, weight: w, stride: (2, 2), padding: (1, 1))
        let y = try Self.random(y0.shape, seed: 33)
        let xt = try convTranspose2d(y, weight: w, stride: (2, 2), padding: (1, 1), outputPadding: (0, 0))
        #expect(xt.shape == x.shape)
        let lhs = zip(try y0.toArray(Float.self), try y.toArray(Float.self)).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        let rhs = zip(try x.toArray(Float.self), try xt.toArray(Float.self)).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        #expect(abs(lhs - rhs) <= 1e-4 * max(1, abs(lhs)))
        let permuted = try Self.random([3, 2, 4, 5], seed: 34).permute([1, 0, 2, 3])
        let wt = try Self.random([3, 2, 3, 3], seed: 35)
        #expect(try maxRelativeError(try convTranspose2d(permuted, weight: wt, stride: (2, 2)),
                                          try convTranspose2dReference(permuted, weight: wt, stride: (2, 2))) < 1e-5)
    }

    @Test func convTranspose2dRejectsBadArguments() throws {
        let x = try Tensor.zeros([1, 4, 5, 5]), w = try Tensor.zeros([4, 2, 3, 3])
        #expect(throws: VisionError.self) { try convTranspose2d(try Tensor.zeros([4, 5]), weight: w) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: try Tensor.zeros([3, 2, 3, 3])) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, groups: 3) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, bias: try Tensor.zeros([3])) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, stride: (0, 1)) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, padding: (-1, 0)) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, outputPadding: (1, 0)) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, stride: (2, 2), outputPadding: (2, 0)) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, padding: (4, 0)) }
        #expect(throws: VisionError.self) { try convTranspose2d(x, weight: w, stride: (Int.max, 1)) }
        #expect(try convTranspose2d(x, weight: w, groups: 2).shape == [1, 4, 7, 7])
        #expect(try convTranspose2d(try Tensor.zeros([0, 4, 5, 5]), weight: w).shape == [0, 2, 7, 7])
    }
}

/// Strided convs whose taps reach past their stride phase's row (3x3 at stride 2, dilated and asymmetric windows,
/// a PiT-like 16x16 patch conv at stride 8) run their per-image GEMMs on planes per row phase and column tap.
/// Each output is the same chain of multiply-adds as on the stride phases (the same values of B in the same
/// order): the same bits on either layout, at every ISA level; and the reference's values, through the fused
/// epilogue too.
@Suite struct ConvColumnTapTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var batch = 1, cin = 9, cout = 19, h = 29, w = 31, k = (3, 3), stride = (2, 2), padding = (1, 1), dilation = (1, 1)
        var testDescription: String { "N\(batch) \(cin)->\(cout) \(h)x\(w) k\(k) s\(stride) p\(padding) d\(dilation)" }
    }

    static let cases: [Case] = [
        Case(),
        Case(h: 56, w: 56),                                                  // resnet50's 56 -> 28 at a tenth of the channels
        Case(cin: 5, cout: 17, h: 32, w: 32, padding: (0, 0)),
        Case(batch: 2, cin: 4, cout: 9, h: 33, w: 46, padding: (2, 1), dilation: (2, 2)),
        Case(cin: 6, cout: 10, h: 31, w: 73, k: (3, 5), stride: (2, 3), padding: (1, 2)),
        Case(cin: 3, cout: 16, h: 160, w: 160, k: (16, 16), stride: (8, 8), padding: (4, 4)),
    ]

    func gemmConv(_ x: Tensor, _ w: Tensor, _ c: Case, columnTaps: Bool) throws -> Tensor {
        let g = try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: c.stride, padding: c.padding,
                                 dilation: c.dilation, groups: 1)
        #expect(try ConvGemmPlan(g, singleImageColumns: true, allowColumnTaps: columnTaps).columnTaps == columnTaps)
        let out = try Tensor.uninitialized(g.outShape)
        try convGemm(g, x.pointer(Float.self), w.pointer(Float.self), .none, out.pointer(Float.self),
                     allowColumnTaps: columnTaps)
        return out
    }

    @Test(arguments: cases)
    func columnTapsGiveTheBitsOfStridePhases(c: Case) throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let x = try randomTensor([c.batch, c.cin, c.h, c.w], seed: 21)
        let w = try randomTensor([c.cout, c.cin, c.k.0, c.k.1], seed: 22)
        let ref = try conv2dReference(x, weight: w, stride: c.stride, padding: c.padding, dilation: c.dilation)
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            let taps = try gemmConv(x, w, c, columnTaps: true), phases = try gemmConv(x, w, c, columnTaps: false)
            #expect(try taps.toArray(Float.self) == phases.toArray(Float.self), "ISA \(level)")
            // Float sums of k products against the Double reference (the 16x16 patches: 768, 4.5e-5).
            let error = try maxRelativeError(taps, ref), k = c.cin * c.k.0 * c.k.1
            #expect(error < max(1e-5, Float(k) * 1e-7), "ISA \(level): \(error)")
        }
    }

    @Test func fusedEpilogueOnColumnTapsMatchesTheReference() throws {
        let x = try randomTensor([1, 12, 30, 30], seed: 23), w = try randomTensor([20, 12, 3, 3], seed: 24)
        let residual = try randomTensor([1, 20, 15, 15], seed: 25)
        let scale = (0..<20).map { 0.5 + Float($0) * 0.05 }, shift = (0..<20).map { Float($0) * 0.03 - 0.3 }
        var expected = try conv2dReference(x, weight: w, stride: (2, 2), padding: (1, 1))
        expected = try add(try add(try mul(expected, try Tensor(scale, shape: [1, 20, 1, 1])),
                                   try Tensor(shift, shape: [1, 20, 1, 1])), residual)
        expected = try unary(.relu, expected)
        let epilogue = ConvEpilogue(scale: scale, shift: shift, residual: residual, activation: .relu)
        let got = try conv2dFused(x, weight: w, stride: (2, 2), padding: (1, 1), epilogue: epilogue)
        #expect(try maxRelativeError(got, expected) < 1e-5)
    }
}
