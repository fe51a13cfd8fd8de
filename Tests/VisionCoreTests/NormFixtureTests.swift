import Testing
@testable import VisionCore

/// Reductions, softmax, normalization, interpolate, pad and topk against PyTorch's outputs
/// (tools/fixtures/norm.py). Tolerances: 1e-6 relative + 1e-6 absolute for softmax and reductions (summation
/// order), 1e-5 for the normalizations (rsqrt and folded affine), interpolate nearest and pad and topk exact,
/// bilinear 1e-6 (same float index math and blend as torch).
@Suite struct NormFixtureTests {
    let f: Fixture
    init() throws { f = try Fixture("norm") }

    @Test func softmaxMatchesTorch() throws {
        let x = try f["softmax.x"]
        for d in 0..<3 {
            try expectClose(try softmax(x, axis: d), try f["softmax.dim\(d)"], rtol: 1e-6, atol: 1e-7, "softmax \(d)")
            try expectClose(try logSoftmax(x, axis: d), try f["softmax.log_dim\(d)"], rtol: 1e-6, atol: 1e-6, "log_softmax \(d)")
        }
    }

    @Test func reductionsMatchTorch() throws {
        let x = try f["reduce.x"]
        try expectClose(try sum(x, axes: [1]), try f["reduce.sum_1"], rtol: 1e-6, atol: 1e-6, "sum")
        try expectClose(try mean(x, axes: [0, 2]), try f["reduce.mean_02"], rtol: 1e-6, atol: 1e-6, "mean")
        try expectClose(try amax(x, axes: [0, 2], keepDim: true), try f["reduce.amax_02_keep"], rtol: 0, atol: 0, "amax")
        try expectClose(try amin(x), try f["reduce.amin_all"], rtol: 0, atol: 0, "amin")
        try expectClose(try variance(x, axes: [0, 2]), try f["reduce.var_02"], rtol: 1e-6, atol: 1e-6, "var")
        try expectClose(try variance(x, axes: [1], correction: 0, keepDim: true), try f["reduce.var_1_c0_keep"], rtol: 1e-6, atol: 1e-6, "var c0")
        try expectClose(try variance(x), try f["reduce.var_all"], rtol: 1e-6, atol: 1e-6, "var all")
        #expect(try argmax(x, axis: 1).toArray(Int64.self) == f["reduce.argmax_1"].toArray(Int64.self))
        #expect(try argmax(x).toArray(Int64.self) == f["reduce.argmax_all"].toArray(Int64.self))
    }

    @Test func normalizationsMatchTorch() throws {
        let b = try batchNorm(try f["batch_norm.x"], runningMean: try f["batch_norm.mean"], runningVar: try f["batch_norm.var"],
                              weight: try f["batch_norm.weight"], bias: try f["batch_norm.bias"], eps: 1e-3)
        try expectClose(b, try f["batch_norm.out"], rtol: 1e-5, atol: 1e-5, "batch_norm")
        let lx = try f["layer_norm.x"]
        try expectClose(try layerNorm(lx, normalizedShape: [4, 6], weight: try f["layer_norm.weight"], bias: try f["layer_norm.bias"]),
                        try f["layer_norm.out"], rtol: 1e-5, atol: 1e-5, "layer_norm")
        try expectClose(try layerNorm(lx, normalizedShape: [6], eps: 1e-6), try f["layer_norm.out_last"], rtol: 1e-5, atol: 1e-5, "layer_norm last")
        let gx = try f["group_norm.x"]
        try expectClose(try groupNorm(gx, numGroups: 3, weight: try f["group_norm.weight"], bias: try f["group_norm.bias"]),
                        try f["group_norm.out"], rtol: 1e-5, atol: 1e-5, "group_norm")
        try expectClose(try groupNorm(gx, numGroups: 2), try f["group_norm.out_g2"], rtol: 1e-5, atol: 1e-5, "group_norm g2")
    }

    @Test func interpolateMatchesTorch() throws {
        let x = try f["interp.x"]
        let names = f.file.names.filter { $0.hasPrefix("interp.") && $0.hasSuffix(".out") }
        #expect(names.count == 13)
        for key in names {
            let name = String(key.dropLast(4))
            let mode = try f.int("\(name).mode") == 0 ? InterpolationMode.nearest : .bilinear
            let ac = try f.int("\(name).align_corners")
            let alignCorners: Bool? = ac < 0 ? nil : ac == 1
            let y: Tensor
            if f.file.names.contains("\(name).size") {
                let s = try f.ints("\(name).size")
                y = try interpolate(x, size: (s[0], s[1]), mode: mode, alignCorners: alignCorners)
            } else {
                let s = try f.ints("\(name).scale_milli").map { Double($0) / 1000 }
                y = try interpolate(x, scaleFactor: (s[0], s[1]), mode: mode, alignCorners: alignCorners)
            }
            try expectClose(y, try f[key], rtol: mode == .nearest ? 0 : 1e-6, atol: mode == .nearest ? 0 : 1e-6, name)
        }
    }

    @Test func padMatchesTorch() throws {
        let modes: [(String, Padding)] = [("reflect", .reflect), ("replicate", .replicate),
                                          ("constant", .constant(Double(try f.int("pad.constant.value_milli")) / 1000)),
                                          ("reflect_crop", .reflect)]
        for (name, mode) in modes {
            let y = try pad(try f["pad.\(name).x"], pads: try f.ints("pad.\(name).pads"), mode: mode)
            try expectClose(y, try f["pad.\(name).out"], rtol: 0, atol: 0, "pad \(name)")
        }
    }

    @Test func topkMatchesTorch() throws {
        let x = try f["topk.x"]
        let l = try topk(x, k: 5, axis: -1)
        try expectClose(l.values, try f["topk.largest.values"], rtol: 0, atol: 0, "topk values")
        #expect(try l.indices.toArray(Int64.self) == f["topk.largest.indices"].toArray(Int64.self))
        let s = try topk(x, k: 2, axis: 0, largest: false)
        try expectClose(s.values, try f["topk.smallest.values"], rtol: 0, atol: 0, "topk smallest values")
        #expect(try s.indices.toArray(Int64.self) == f["topk.smallest.indices"].toArray(Int64.self))
    }
}
