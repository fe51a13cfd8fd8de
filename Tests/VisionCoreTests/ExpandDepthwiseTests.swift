import Testing
@testable import VisionCore

/// expandDepthwiseConv (1x1 expansion and depthwise conv, band by band) against the two fused convs it replaces.
@Suite struct ExpandDepthwiseTests {
    /// (x shape, expanded channels, kernel, stride, padding): one band and block; several channel blocks with a
    /// partial last one; several bands (a wide map) at stride 1 and 2; a 5x5 kernel; padding 0 and 2; a batch;
    /// bands whose every tap lies in the padding (padding 3 around a 2-row map, one row per band).
    static let cases: [([Int], Int, Int, Int, Int)] = [
        ([1, 3, 7, 7], 10, 3, 1, 1),
        ([1, 5, 9, 8], 150, 3, 2, 1),
        ([1, 4, 23, 300], 70, 3, 1, 1),
        ([2, 3, 21, 301], 66, 3, 2, 1),
        ([1, 6, 12, 11], 20, 5, 2, 2),
        ([1, 2, 8, 9], 9, 3, 1, 0),
        ([1, 2, 2, 1600], 64, 3, 1, 3),
    ]

    @Test(arguments: 0..<7) func matchesTheComposition(_ index: Int) throws {
        let (xs, c, k, s, p) = Self.cases[index]
        let x = try randomTensor(xs, seed: 1), we = try randomTensor([c, xs[1], 1, 1], seed: 2, scale: 0.5)
        let wd = try randomTensor([c, 1, k, k], seed: 3, scale: 0.5)
        if index == 2 || index == 3 || index == 6 {
            // These cases exist for their several bands.
            #expect(expandDepthwiseBand(channels: min(c, expandDepthwiseChannelBlock), width: xs[3], kernel: k, stride: s,
                                        outHeight: (xs[2] + 2 * p - k) / s + 1) < (xs[2] + 2 * p - k) / s + 1)
        }
        let expandScale = (0..<c).map { 0.5 + Float($0 % 5) * 0.2 }, expandShift = (0..<c).map { Float($0 % 7) * 0.1 - 0.3 }
        let dwScale = (0..<c).map { 1.5 - Float($0 % 3) * 0.4 }, dwShift = (0..<c).map { Float($0 % 4) * 0.2 - 0.2 }
        for (ea, da) in [(UnaryOp.silu, UnaryOp?.some(.relu6)), (.silu, nil), (.relu, .silu)] {
            let expand = ConvEpilogue(scale: expandScale, shift: expandShift, activation: ea)
            let depthwise = ConvEpilogue(scale: dwScale, shift: dwShift, activation: da)
            let fused = try expandDepthwiseConv(x, expandWeight: we, expand: expand, depthwiseWeight: wd, stride: s,
                                                padding: p, depthwise: depthwise)
            let expanded = try conv2dFused(x, weight: we, epilogue: expand)
            let want = try conv2dFused(expanded, weight: wd, stride: (s, s), padding: (p, p), groups: c, epilogue: depthwise)
            try expectClose(fused, want, rtol: 1e-5, atol: 1e-5, "case \(index) \(ea) \(String(describing: da))")
        }
    }

    @Test func rejectsResidualsAndBadShapes() throws {
        let x = try randomTensor([1, 3, 6, 6], seed: 4), we = try randomTensor([8, 3, 1, 1], seed: 5)
        let wd = try randomTensor([8, 1, 3, 3], seed: 6)
        let residual = ConvEpilogue(residual: try Tensor.zeros([1, 8, 6, 6]))
        #expect(throws: VisionError.self) {
            try expandDepthwiseConv(x, expandWeight: we, expand: residual, depthwiseWeight: wd, stride: 1, padding: 1,
                                    depthwise: ConvEpilogue())
        }
        #expect(throws: VisionError.self) {
            try expandDepthwiseConv(x, expandWeight: try randomTensor([8, 4, 1, 1], seed: 7), expand: ConvEpilogue(),
                                    depthwiseWeight: wd, stride: 1, padding: 1, depthwise: ConvEpilogue())
        }
        #expect(throws: VisionError.self) {
            try expandDepthwiseConv(x, expandWeight: we, expand: ConvEpilogue(scale: [1, 2]), depthwiseWeight: wd,
                                    stride: 1, padding: 1, depthwise: ConvEpilogue())
        }
        #expect(throws: VisionError.self) {
            try expandDepthwiseConv(x, expandWeight: we, expand: ConvEpilogue(), depthwiseWeight: wd, stride: 0,
                                    padding: 1, depthwise: ConvEpilogue())
        }
    }
}
