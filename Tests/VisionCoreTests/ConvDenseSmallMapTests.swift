import Testing
@testable import VisionCore
import CKernels

/// conv2d in training on maps with fewer pixels than kernel taps, which runs through the conv's dense matrix
/// (`denseConv`): output against conv2dReference, and the input, weight and bias gradients of sum(y * r) against
/// Double references (the transposed convolution of r, the weight-gradient sum, r summed per channel), with
/// stride, dilation, asymmetric kernels and padding; finite differences on one case.
@Suite struct ConvDenseSmallMapTests {
    // (input, weight, stride, padding, dilation)
    static let cases: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int))] = [
        ([3, 5, 2, 2], [7, 5, 3, 3], (1, 1), (1, 1), (1, 1)),
        ([2, 4, 1, 2], [6, 4, 3, 3], (1, 1), (1, 1), (1, 1)),
        ([2, 3, 2, 2], [4, 3, 3, 3], (2, 2), (1, 1), (1, 1)),
        ([2, 3, 2, 3], [5, 3, 3, 3], (1, 1), (2, 2), (2, 2)),
        ([2, 3, 2, 2], [4, 3, 3, 2], (1, 2), (1, 0), (1, 1)),
    ]

    @Test(arguments: 0..<5) func outputAndGradientsMatchTheReferences(_ index: Int) throws {
        let (xs, ws, stride, padding, dilation) = Self.cases[index]
        let x = try randomTensor(xs, seed: UInt64(10 + index)).requiringGrad()
        let w = try randomTensor(ws, seed: UInt64(20 + index), scale: 0.5).requiringGrad()
        let b = try randomTensor([ws[0]], seed: UInt64(30 + index)).requiringGrad()
        let geo = try ConvGeometry("conv2d", x: x, weight: w, bias: b, stride: stride, padding: padding,
                                   dilation: dilation, groups: 1)
        #expect(denseConvApplies(geo), "case \(index) must run through the dense matrix")
        let y = try conv2d(x, weight: w, bias: b, stride: stride, padding: padding, dilation: dilation)
        let expected = try conv2dReference(x.detach(), weight: w.detach(), bias: b.detach(), stride: stride,
                                           padding: padding, dilation: dilation)
        #expect(try maxRelativeError(y, expected) < 1e-5, "output, case \(index)")
        // Without recording, the same conv runs on the conv GEMM.
        let plain = try Autograd.noGrad {
            try conv2d(x.detach(), weight: w.detach(), bias: b.detach(), stride: stride, padding: padding, dilation: dilation)
        }
        #expect(try maxRelativeError(plain, expected) < 1e-5, "no-grad output, case \(index)")

        let r = try randomTensor(y.shape, seed: UInt64(40 + index))
        try sum(try mul(y, r)).backward()
        let (kh, kw) = (ws[2], ws[3])
        let extra = (xs[2] - ((geo.outHeight - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + 1),
                     xs[3] - ((geo.outWidth - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + 1))
        let gx = try convTranspose2dReference(r, weight: w.detach(), stride: stride, padding: padding,
                                              outputPadding: extra, dilation: dilation)
        #expect(try maxRelativeError(try #require(x.grad), gx) < 1e-5, "input gradient, case \(index)")
        let gw = try ConvGemmISATests.weightGradReference(x.detach(), r, weightShape: ws, stride: stride, padding: padding,
                                                           dilation: dilation, groups: 1)
        #expect(try maxRelativeError(try #require(w.grad), gw) < 1e-5, "weight gradient, case \(index)")
        #expect(try maxRelativeError(try #require(b.grad), try sum(r, axes: [0, 2, 3])) < 1e-5, "bias gradient, case \(index)")
    }

    @Test func finiteDifferences() throws {
        let x = try randomTensor([2, 3, 2, 2], seed: 50), w = try randomTensor([4, 3, 3, 3], seed: 51, scale: 0.5)
        try AutogradTests.check("dense conv x", x, 1e-2, 2e-2, #_sourceLocation) {
            try conv2d($0, weight: w, padding: (1, 1))
        }
        try AutogradTests.check("dense conv w", w, 1e-2, 2e-2, #_sourceLocation) {
            try conv2d(x, weight: $0, padding: (1, 1))
        }
    }

    @Test func largerMapsAndGroupsKeepTheConvGemm() throws {
        let x = try randomTensor([2, 4, 3, 3], seed: 60), w = try randomTensor([4, 4, 3, 3], seed: 61)
        let wide = try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: (1, 1), padding: (1, 1),
                                    dilation: (1, 1), groups: 1)
        #expect(!denseConvApplies(wide), "9 pixels are not fewer than 9 taps")
        let grouped = try ConvGeometry("conv2d", x: try randomTensor([2, 4, 2, 2], seed: 62),
                                       weight: try randomTensor([4, 2, 3, 3], seed: 63), bias: nil, stride: (1, 1),
                                       padding: (1, 1), dilation: (1, 1), groups: 2)
        #expect(!denseConvApplies(grouped))
    }
}

/// 1x1 convs on small maps (`pointwiseSmallMapsConv` for reductions without AVX-512: OpenBLAS products per image
/// and block of output channels, an even number of blocks of up to 256; expansions, and with AVX-512 reductions
/// too, on the conv GEMM): against conv2dReference with a partial last block, and each image bit for bit the same
/// alone as in a batch, with the conv GEMM's kernels of every level the CPU has.
@Suite struct PointwiseSmallMapTests {
    /// Two threads taking the blocks in turn get shares within an eighth of the channels (or one block of 8) of
    /// each other, from blocks of at most 256 channels in whole multiples of 8.
    @Test func rowBlocksShareTheChannelsEvenly() {
        for cout in [8, 9, 150, 256, 257, 261, 277, 300, 512, 777, 1280, 2048, 2100] {
            let rb = pointwiseRowBlock(outChannels: cout)
            #expect(rb % 8 == 0 && rb <= 256, "\(cout)")
            var shares = [0, 0]
            for (i, c0) in stride(from: 0, to: cout, by: rb).enumerated() { shares[i % 2] += min(rb, cout - c0) }
            #expect(abs(shares[0] - shares[1]) <= max(8, cout / 8), "\(cout): \(shares)")
        }
    }

    @Test(arguments: [(300, 320), (150, 170), (300, 20), (150, 20)])
    func matchesTheReferenceAndIgnoresTheBatch(_ cout: Int, _ cin: Int) throws {
        #expect(pointwiseRowBlock(outChannels: cout) == (cout > 256 ? 152 : 80))
        defer { _ = vck_conv_gemm_set_isa(0) }
        let x = try randomTensor([3, cin, 7, 7], seed: 70), w = try randomTensor([cout, cin, 1, 1], seed: 71, scale: 0.5)
        let b = try randomTensor([cout], seed: 72)
        let geo = try ConvGeometry("conv2d", x: x, weight: w, bias: b, stride: (1, 1), padding: (0, 0),
                                   dilation: (1, 1), groups: 1)
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            #expect(pointwiseSmallMapsApplies(geo) == (cout < cin && level < 4), "ISA \(level)")
            let y = try conv2d(x, weight: w, bias: b)
            // Float sums of up to 320 products against Double ones.
            #expect(try maxRelativeError(y, try conv2dReference(x, weight: w, bias: b)) < 3e-5, "ISA \(level)")
            for n in 0..<3 {
                let alone = try conv2d(try x.slice(axis: 0, start: n, end: n + 1), weight: w, bias: b)
                #expect(try alone.toArray(Float.self) == y.slice(axis: 0, start: n, end: n + 1).contiguous().toArray(Float.self),
                        "ISA \(level) image \(n)")
            }
        }
    }
}
