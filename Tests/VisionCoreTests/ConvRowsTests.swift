import Testing
@testable import VisionCore
import CKernels

/// The stems' row kernels (`convRows`, conv_rows.c) against the Double reference and, bit for bit, against the
/// conv GEMM they replace.
@Suite struct ConvRowsTests {
    /// (input shape, weight shape, stride, padding): ReXNet's and ResNet's stems on small maps (output channels
    /// no multiple of 16, output widths no multiple of 6), PiT's patch conv (16x16 at stride 8, unpadded), one
    /// input channel, a rectangular kernel with unequal strides and padding, a batch of three.
    static let geometries: [([Int], [Int], (Int, Int), (Int, Int))] = [
        ([1, 3, 23, 29], [21, 3, 3, 3], (2, 2), (1, 1)),
        ([1, 3, 30, 31], [64, 3, 7, 7], (2, 2), (3, 3)),
        ([1, 3, 64, 56], [40, 3, 16, 16], (8, 8), (0, 0)),
        ([1, 1, 17, 13], [5, 1, 3, 3], (1, 1), (1, 1)),
        ([1, 2, 9, 14], [7, 2, 5, 3], (2, 1), (2, 1)),
        ([3, 4, 12, 20], [33, 4, 3, 3], (1, 2), (1, 0)),
    ]

    static func geometry(_ index: Int) throws -> (Tensor, Tensor, ConvGeometry) {
        let (xs, ws, stride, padding) = geometries[index]
        let x = try randomTensor(xs, seed: 31 + UInt64(index)), w = try randomTensor(ws, seed: 41 + UInt64(index))
        let g = try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: stride, padding: padding,
                                 dilation: (1, 1), groups: 1)
        return (x, w, g)
    }

    /// Each test at every kernel level the CPU has of AVX-512 (eight pixels by 32 channels where more than 16
    /// remain) and AVX2 (six by 16): the calling thread's choice, which the pool's workers take. The activations
    /// of the row buffer (vck_activation) at the same level as the conv GEMM's in registers, as on a CPU of that
    /// level.
    static func atEachLevel(_ body: () throws -> Void) rethrows {
        defer { _ = vck_conv_gemm_set_isa(0); _ = vck_activation_set_isa(0) }
        for level: Int32 in [4, 3] where vck_conv_gemm_set_isa(level) == 0 && vck_activation_set_isa(level) == 0 {
            try body()
        }
    }

    @Test(arguments: 0..<6) func stemsMatchTheReference(_ index: Int) throws {
        try Self.atEachLevel { try stemMatchesTheReference(index) }
    }

    func stemMatchesTheReference(_ index: Int) throws {
        let (x, w, g) = try Self.geometry(index)
        let (_, _, stride, padding) = Self.geometries[index]
        #expect(convRowsApplies(g) == (vck_conv_gemm_isa() >= 3))
        // Float sums of 768 taps (PiT's patches) drift further from the Double reference than those of 27.
        let tolerance: Float = g.inChannels * g.kernelArea > 256 ? 5e-5 : 1e-5
        let plain = try conv2dReference(x, weight: w, stride: stride, padding: padding)
        #expect(try maxRelativeError(try conv2d(x, weight: w, stride: stride, padding: padding), plain) < tolerance)
        let c = g.outChannels
        let scale = (0..<c).map { 0.6 + Float($0 % 9) * 0.1 }, shift = (0..<c).map { Float($0 % 7) * 0.05 - 0.2 }
        let residual = try randomTensor(plain.shape, seed: 51)
        let affine = try add(try mul(plain, try Tensor(scale, shape: [1, c, 1, 1])), try Tensor(shift, shape: [1, c, 1, 1]))
        // Without a residual the epilogue runs on the tiles (ReLU6 excepted); .abs has no C epilogue code: applied
        // after the kernels, with the residual that follows it.
        for activation in [nil, UnaryOp.relu, .relu6, .silu, .abs] {
            for mode in ["none", "before", "after"] {
                func act(_ t: Tensor) throws -> Tensor { try activation.map { try unary($0, t) } ?? t }
                let expected = mode == "none" ? try act(affine)
                    : mode == "after" ? try add(try act(affine), residual) : try act(try add(affine, residual))
                let epilogue = ConvEpilogue(scale: scale, shift: shift, residual: mode == "none" ? nil : residual,
                                            activation: activation, residualAfterActivation: mode == "after")
                let got = try conv2dFused(x, weight: w, stride: stride, padding: padding, epilogue: epilogue)
                #expect(try maxRelativeError(got, expected) < tolerance, "\(index) \(String(describing: activation)) \(mode)")
            }
        }
    }

    /// Each output is the conv GEMM's chain of multiply-adds in the same order, and the same epilogue: same bits.
    @Test(arguments: 0..<6) func stemsHaveTheConvGemmBits(_ index: Int) throws {
        try Self.atEachLevel { try stemHasTheConvGemmBits(index) }
    }

    func stemHasTheConvGemmBits(_ index: Int) throws {
        let (x, w, g) = try Self.geometry(index)
        guard convRowsApplies(g) else { return }
        let c = g.outChannels
        let scale = (0..<c).map { 0.6 + Float($0 % 9) * 0.1 }, shift = (0..<c).map { Float($0 % 7) * 0.05 - 0.2 }
        let residual = try randomTensor(g.outShape, seed: 52)
        let cases = [nil, UnaryOp.relu, .relu6, .silu].flatMap { a in [(a, false), (a, true)] }
        for (activation, withResidual) in cases {
            let rows = try Tensor.uninitialized(g.outShape), gemm = try Tensor.uninitialized(g.outShape)
            try scale.withUnsafeBufferPointer { sc in
                try shift.withUnsafeBufferPointer { sh in
                    let epi = EpiloguePointers(scale: sc.baseAddress, shift: sh.baseAddress,
                                               residual: withResidual ? UnsafePointer(residual.pointer(Float.self)) : nil,
                                               activation: activation, parameter: 0, residualAfter: false)
                    let px = UnsafePointer(x.pointer(Float.self)), pw = UnsafePointer(w.pointer(Float.self))
                    try convRows(g, px, pw, epi, rows.pointer(Float.self))
                    try convGemm(g, px, pw, epi, gemm.pointer(Float.self))
                }
            }
            #expect(try rows.toArray(Float.self) == gemm.toArray(Float.self),
                    "\(index) \(String(describing: activation)) residual \(withResidual)")
        }
    }

    /// With SSE2 kernels chosen (no FMA) the stems go back to the conv GEMM's SSE2 variant.
    @Test func sse2ChoiceRunsTheConvGemm() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        let (x, w, g) = try Self.geometry(1)
        #expect(vck_conv_gemm_set_isa(1) == 0)
        #expect(!convRowsApplies(g))
        let got = try conv2d(x, weight: w, stride: (2, 2), padding: (3, 3))
        #expect(try maxRelativeError(got, try conv2dReference(x, weight: w, stride: (2, 2), padding: (3, 3))) < 1e-5)
    }
}
