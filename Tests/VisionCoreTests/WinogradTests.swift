import Testing
@testable import VisionCore
import CKernels

/// 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3) against the Double reference: odd and even output sizes,
/// padding 0 to 2, chunks of tiles that end inside a tile row, few tiles whose output channels are split over
/// work items, several images; then the fused epilogue against the composition it replaces, and which
/// convolutions take the path.
@Suite struct WinogradTests {
    /// (input, weight, padding)
    static let geometries: [([Int], [Int], (Int, Int))] = [
        ([4, 16, 8, 8], [16, 16, 3, 3], (1, 1)),
        ([2, 16, 9, 11], [20, 16, 3, 3], (1, 1)),
        ([7, 20, 10, 12], [24, 20, 3, 3], (0, 0)),
        ([5, 17, 7, 9], [33, 17, 3, 3], (2, 1)),
        ([2, 16, 30, 29], [16, 16, 3, 3], (1, 1)),
        ([1, 64, 14, 14], [70, 64, 3, 3], (1, 1)),
        ([20, 64, 5, 6], [16, 64, 3, 3], (1, 0)),
        // Two chunks that each transform the weights, and three that share one transform (two blocks of channels).
        ([1, 128, 30, 30], [40, 128, 3, 3], (1, 1)),
        ([1, 128, 34, 34], [40, 128, 3, 3], (1, 1)),
        // The tiles as the GEMMs' rows (128 input channels and more on AVX2): one chunk whose output channels are
        // split over the threads, input channels past the last 8, a last column block of 5 channels; and several
        // images of narrow maps.
        ([1, 130, 14, 14], [37, 130, 3, 3], (1, 1)),
        ([4, 256, 7, 9], [48, 256, 3, 3], (1, 1)),
    ]

    @Test(arguments: 0..<11) func matchesTheReference(_ index: Int) throws {
        let (xs, ws, padding) = Self.geometries[index]
        let x = try randomTensor(xs, seed: UInt64(70 + index)), w = try randomTensor(ws, seed: UInt64(80 + index), scale: 0.3)
        let geo = try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: (1, 1), padding: padding,
                                   dilation: (1, 1), groups: 1)
        #expect(winogradApplies(geo), "geometry \(index) must take the Winograd path")
        let bias = try randomTensor([ws[0]], seed: 9)
        let got = try conv2d(x, weight: w, bias: bias, padding: padding)
        let expected = try conv2dReference(x, weight: w, bias: bias, padding: padding)
        try expectClose(got, expected, rtol: 1e-5, atol: 2e-5, "geometry \(index)")
    }

    /// The transforms' AVX2 code and their plain C loops (which run with the conv GEMM's SSE2 kernels) against the
    /// reference: rows of 2, 5, 7 and 15 tiles (a last partial block of 8 tiles), 17 and 20 input channels (a
    /// remainder after the weight transform's blocks of 8) and 64 (none).
    @Test func everyTransformPathMatchesTheReference() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        var levels = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            levels += 1
            for index in [2, 3, 4, 5, 6] {
                let (xs, ws, padding) = Self.geometries[index]
                let x = try randomTensor(xs, seed: UInt64(70 + index))
                let w = try randomTensor(ws, seed: UInt64(80 + index), scale: 0.3)
                let got = try conv2d(x, weight: w, padding: padding)
                let expected = try conv2dReference(x, weight: w, bias: nil, padding: padding)
                try expectClose(got, expected, rtol: 1e-5, atol: 2e-5, "geometry \(index) at ISA level \(level)")
            }
        }
        #expect(levels >= 1)
    }

    /// One chunk of tiles on several threads (resnet50's 14x14 convs at batch 1): its input transformed once by all
    /// of them and the output channels taken in pieces; the same bits as on one thread (one part that transforms
    /// its input itself), at every kernel level (AVX2 with 128 input channels takes the tiles as rows, unshared).
    @Test func oneChunkOnSeveralThreadsGivesTheBitsOfOne() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        var levels = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            levels += 1
            for (index, (xs, ws)) in [([1, 64, 14, 14], [70, 64, 3, 3]), ([1, 256, 14, 14], [256, 256, 3, 3])].enumerated() {
                let x = try randomTensor(xs, seed: UInt64(90 + index)), w = try randomTensor(ws, seed: UInt64(95 + index), scale: 0.1)
                let one = try Threading.withThreadCount(1) { try conv2d(x, weight: w, padding: (1, 1)) }.toArray(Float.self)
                for threads in [2, 3] {
                    let many = try Threading.withThreadCount(threads) { try conv2d(x, weight: w, padding: (1, 1)) }
                    #expect(try many.toArray(Float.self) == one, "case \(index), ISA \(level), \(threads) threads")
                }
            }
        }
        #expect(levels >= 1)
    }

    /// 16 input channels (the output channels as the GEMMs' rows) and 136 (the tiles as rows, on AVX2).
    @Test(arguments: [16, 136]) func fusedEpilogueMatchesTheComposition(_ cin: Int) throws {
        let x = try randomTensor([3, cin, 10, 10], seed: 1), w = try randomTensor([24, cin, 3, 3], seed: 2, scale: 0.3)
        #expect(winogradApplies(try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: (1, 1), padding: (1, 1),
                                                 dilation: (1, 1), groups: 1)))
        let plain = try conv2d(x, weight: w, padding: (1, 1))
        let c = 24
        let scale = (0..<c).map { Float($0 % 3) * 0.7 - 0.4 }, shift = (0..<c).map { Float($0) * 0.1 - 0.2 }
        let residual = try randomTensor(plain.shape, seed: 3)
        let affine = try add(try mul(plain, try Tensor(scale, shape: [1, c, 1, 1])), try Tensor(shift, shape: [1, c, 1, 1]))
        for activation in [nil, UnaryOp.relu, .leakyRelu, .hardSwish, .silu, .abs] {
            for after in [false, true] {
                var epilogue = ConvEpilogue(scale: scale, shift: shift, residual: residual, activation: activation)
                epilogue.residualAfterActivation = after
                let fused = try conv2dFused(x, weight: w, padding: (1, 1), epilogue: epilogue)
                var expected = after ? affine : try add(affine, residual)
                if let activation { expected = try unary(activation, expected) }
                if after { expected = try add(expected, residual) }
                try expectClose(fused, expected, rtol: 1e-5, atol: 1e-5, "\(cin) inputs, \(String(describing: activation)) after \(after)")
            }
        }
    }

    @Test func choosesWinogradOnlyWhereItPays() throws {
        func applies(_ xs: [Int], _ ws: [Int], stride: Int = 1, dilation: Int = 1, groups: Int = 1) throws -> Bool {
            let x = try Tensor.zeros(xs), w = try Tensor.zeros(ws)
            return winogradApplies(try ConvGeometry("conv2d", x: x, weight: w, bias: nil, stride: (stride, stride),
                                                    padding: (1, 1), dilation: (dilation, dilation), groups: groups))
        }
        #expect(try applies([1, 64, 56, 56], [64, 64, 3, 3]))
        #expect(try applies([8, 512, 7, 7], [512, 512, 3, 3]))
        #expect(try !applies([1, 512, 7, 7], [512, 512, 3, 3]))     // 49 outputs per channel
        #expect(try !applies([1, 64, 56, 56], [64, 64, 3, 3], stride: 2))
        #expect(try !applies([1, 64, 56, 56], [64, 64, 3, 3], dilation: 2))
        #expect(try !applies([1, 64, 56, 56], [64, 32, 3, 3], groups: 2))
        #expect(try !applies([1, 64, 56, 56], [64, 64, 1, 1]))
        #expect(try !applies([1, 8, 56, 56], [64, 8, 3, 3]))         // a stem-like 8 input channels
        #expect(try applies([128, 64, 4, 4], [64, 64, 3, 3]))
        #expect(try !applies([128, 32, 7, 7], [32, 32, 3, 3]))       // narrow map, few input channels
        #expect(try !applies([128, 128, 2, 2], [128, 128, 3, 3]))
    }

    /// The input gradient of a stride-1 3x3 conv, which runs by Winograd with the weights read transposed and
    /// rotated, against the Double sum gx[n][ci][y][x] = Σ g[n][co][y + p - ky][x + p - kx] w[co][ci][ky][kx];
    /// with 130 output channels, the gradient's conv takes the tiles as the GEMMs' rows (AVX2).
    @Test(arguments: [((1, 1), 24), ((0, 0), 24), ((2, 1), 24), ((1, 1), 130)])
    func inputGradientMatchesTheReference(_ padding: (Int, Int), _ cout: Int) throws {
        let (n, cin, h, wd) = (2, 20, 12, 11)
        let x = try randomTensor([n, cin, h, wd], seed: 5).requiringGrad()
        let w = try randomTensor([cout, cin, 3, 3], seed: 6, scale: 0.3)
        let y = try conv2d(x, weight: w, padding: padding)
        let g = try randomTensor(y.shape, seed: 7)
        try sum(try mul(y, g)).backward()
        let (oh, ow) = (y.shape[2], y.shape[3])
        let gs = try g.toArray(Float.self), ws = try w.toArray(Float.self)
        var expected = [Float](repeating: 0, count: n * cin * h * wd)
        for b in 0..<n {
            for ci in 0..<cin {
                for iy in 0..<h {
                    for ix in 0..<wd {
                        var s = 0.0
                        for co in 0..<cout {
                            for ky in 0..<3 {
                                let oy = iy + padding.0 - ky
                                if oy < 0 || oy >= oh { continue }
                                for kx in 0..<3 {
                                    let ox = ix + padding.1 - kx
                                    if ox < 0 || ox >= ow { continue }
                                    s += Double(gs[((b * cout + co) * oh + oy) * ow + ox]) * Double(ws[((co * cin + ci) * 3 + ky) * 3 + kx])
                                }
                            }
                        }
                        expected[((b * cin + ci) * h + iy) * wd + ix] = Float(s)
                    }
                }
            }
        }
        let grad = try #require(x.grad)
        try expectClose(grad, try Tensor(expected, shape: x.shape), rtol: 1e-5, atol: 2e-5, "padding \(padding), \(cout) outputs")
    }
}
