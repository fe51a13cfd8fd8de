import Testing
@testable import VisionCore

/// Backward rules of the resampling and indexing ops: interpolate, grid_sample, roi_align, pad, split, gather,
/// index_select and topk. Each rule is checked two ways:
/// - by finite differences (`AutogradTests.gradcheck`), with inputs away from the points where the op is not
///   differentiable (grid locations off integer pixel coordinates, topk values further apart than the step);
/// - for ops that are linear in the input, as an adjoint: the gradient of sum(f(x) * r) at element i must equal
///   sum((f(e_i) - f(0)) * r) for the one-hot input e_i, computed through the forward op alone. This is exact
///   (no step to choose) and also covers nearest interpolation, whose index map is where a wrong rule would hide.
/// And against PyTorch's gradients (tools/fixtures/autograd_resampling.py) with tolerance 1e-5 absolute plus 1e-5
/// relative: the rules scatter the same weights as PyTorch's kernels and differ only in summation order over a
/// handful of terms of magnitude about 1.
@Suite struct AutogradResamplingTests {
    static func gradcheck(_ name: String, _ x: Tensor, eps: Float = 1e-2, tolerance: Float = 2e-2,
                          sourceLocation: SourceLocation = #_sourceLocation, _ f: (Tensor) throws -> Tensor) throws {
        try AutogradTests.gradcheck(name, x, eps: eps, tolerance: tolerance, sourceLocation: sourceLocation, f)
    }

    /// For f linear (or affine) in x: the backward of sum(f(x) * r) against sum((f(e_i) - f(0)) * r) for every
    /// one-hot e_i.
    static func adjointCheck(_ name: String, _ x: Tensor, tolerance: Float = 1e-5,
                             sourceLocation: SourceLocation = #_sourceLocation, _ f: (Tensor) throws -> Tensor) throws {
        let leaf = try x.requiringGrad()
        let y = try f(leaf)
        #expect(y.requiresGrad, "\(name): output does not require grad", sourceLocation: sourceLocation)
        let r = try randomTensor(y.shape, seed: 77)
        try y.backward(r)
        guard let grad = leaf.grad else { Issue.record("\(name): no gradient", sourceLocation: sourceLocation); return }
        #expect(grad.shape == x.shape, "\(name): gradient shape \(grad.shape)", sourceLocation: sourceLocation)
        let ga = try grad.toArray(Float.self), rv = try r.toArray(Float.self)
        var worst: Float = 0, worstIndex = -1
        try Autograd.noGrad {
            var e = [Float](repeating: 0, count: x.count)
            // f(0) is subtracted so that affine maps (a constant pad) work too.
            let offset = try f(try Tensor(e, shape: x.shape)).contiguous().toArray(Float.self)
            for i in 0..<x.count {
                e[i] = 1
                let column = try f(try Tensor(e, shape: x.shape)).contiguous().toArray(Float.self)
                e[i] = 0
                var dot: Double = 0
                for j in 0..<rv.count { dot += Double(column[j] - offset[j]) * Double(rv[j]) }
                let err = abs(Float(dot) - ga[i]) / max(1, abs(Float(dot)))
                if err > worst { worst = err; worstIndex = i }
            }
        }
        #expect(worst <= tolerance, "\(name): element \(worstIndex) of the gradient is off by \(worst)",
                sourceLocation: sourceLocation)
    }

    /// Grid locations whose pixel coordinates lie in cells from -2 to size (so some fall partly or wholly outside
    /// the image), at fractions 0.15...0.85 of a cell: at least 0.15 pixel from the integer coordinates where
    /// the grid gradient has kinks.
    static func offPixelGrid(_ shape: [Int], h: Int, w: Int, alignCorners: Bool, seed: UInt64) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let u = try Tensor.uniform(shape, low: 0, high: 1, rng: &rng).toArray(Float.self)
        let cells = try Tensor.uniform(shape, low: 0, high: 1, rng: &rng).toArray(Float.self)
        var values = [Float](repeating: 0, count: u.count)
        for i in 0..<u.count {
            let size = i % 2 == 0 ? w : h
            let cell = (cells[i] * Float(size + 3)).rounded(.down) - 2
            let pixel = cell + 0.15 + 0.7 * u[i]
            values[i] = alignCorners ? pixel * 2 / Float(size - 1) - 1 : (pixel * 2 + 1) / Float(size) - 1
        }
        return try Tensor(values, shape: shape)
    }

    // MARK: - Finite differences and adjoints

    @Test func interpolateNearest() throws {
        let x = try randomTensor([2, 2, 5, 6], seed: 21)
        for size in [(10, 12), (3, 4), (7, 9), (5, 6), (1, 1)] {
            try Self.adjointCheck("nearest \(size)", x) { try interpolate($0, size: size, mode: .nearest) }
        }
        try Self.adjointCheck("nearest scale", x) { try interpolate($0, scaleFactor: (1.75, 2.5), mode: .nearest) }
        try Self.gradcheck("nearest fd", x) { try interpolate($0, size: (7, 9), mode: .nearest) }
    }

    @Test(arguments: [false, true])
    func interpolateBilinear(alignCorners: Bool) throws {
        let x = try randomTensor([2, 2, 5, 6], seed: 22)
        for size in [(10, 12), (3, 4), (7, 11), (5, 6), (1, 1), (1, 9)] {
            try Self.adjointCheck("bilinear \(size) ac=\(alignCorners)", x) {
                try interpolate($0, size: size, mode: .bilinear, alignCorners: alignCorners)
            }
        }
        try Self.adjointCheck("bilinear scale ac=\(alignCorners)", x) {
            try interpolate($0, scaleFactor: (1.75, 0.625), mode: .bilinear, alignCorners: alignCorners)
        }
        try Self.gradcheck("bilinear fd ac=\(alignCorners)", x) {
            try interpolate($0, size: (7, 11), mode: .bilinear, alignCorners: alignCorners)
        }
    }

    @Test(arguments: [false, true])
    func gridSampleInputAndGrid(alignCorners: Bool) throws {
        let x = try randomTensor([2, 3, 5, 7], seed: 23)
        var rng = RandomGenerator(seed: 24)
        let anyGrid = try Tensor.uniform([2, 4, 6, 2], low: -1.3, high: 1.3, rng: &rng)
        try Self.adjointCheck("grid_sample input ac=\(alignCorners)", x) {
            try gridSample($0, grid: anyGrid, alignCorners: alignCorners)
        }
        let grid = try Self.offPixelGrid([2, 4, 6, 2], h: 5, w: 7, alignCorners: alignCorners, seed: 25)
        try Self.gradcheck("grid_sample input fd ac=\(alignCorners)", x) {
            try gridSample($0, grid: grid, alignCorners: alignCorners)
        }
        try Self.gradcheck("grid_sample grid ac=\(alignCorners)", grid, eps: 1e-2) {
            try gridSample(x, grid: $0, alignCorners: alignCorners)
        }
        // Both at once give the same gradients as each alone.
        let xl = try x.requiringGrad(), gl = try grid.requiringGrad()
        let r = try randomTensor([2, 3, 4, 6], seed: 26)
        try gridSample(xl, grid: gl, alignCorners: alignCorners).backward(r)
        let xOnly = try x.requiringGrad(), gOnly = try grid.requiringGrad()
        try gridSample(xOnly, grid: grid, alignCorners: alignCorners).backward(r)
        try gridSample(x, grid: gOnly, alignCorners: alignCorners).backward(r)
        try expectClose(try #require(xl.grad), try #require(xOnly.grad), rtol: 0, atol: 0, "input grad alone")
        try expectClose(try #require(gl.grad), try #require(gOnly.grad), rtol: 0, atol: 0, "grid grad alone")
    }

    @Test func gridSampleNonFiniteLocations() throws {
        // A NaN location's output is NaN whatever the input: its grid gradient is NaN, the input gets nothing.
        let x = try randomTensor([1, 2, 3, 3], seed: 27).requiringGrad()
        let grid = try Tensor([Float.nan, 0.2, 0.1, -0.3, 5e30, 0.4], shape: [1, 1, 3, 2]).requiringGrad()
        try gridSample(x, grid: grid, alignCorners: false).backward(try Tensor.ones([1, 2, 1, 3]))
        let gx = try #require(x.grad).toArray(Float.self), gg = try #require(grid.grad).toArray(Float.self)
        #expect(gx.allSatisfy { $0.isFinite })
        #expect(abs(gx.reduce(0, +) - 2) < 1e-5, "only the finite in-image location sends gradient: \(gx)")
        #expect(gg[0].isNaN && gg[1].isNaN)
        #expect(gg[2].isFinite && gg[3].isFinite)
        #expect(gg[4] == 0 && gg[5] == 0, "a location far outside the image has zero gradient")
    }

    @Test func roiAlignInput() throws {
        let x = try randomTensor([2, 3, 9, 11], seed: 28)
        let boxes = try Tensor([Float(0), 1.2, 0.7, 7.3, 6.1,
                                1, -2.3, 3.1, 5.2, 12.5,      // partly outside
                                0, 2.2, 1.1, 6.7, 5.5,        // overlaps the first
                                1, 9.5, 7.5, 10.9, 8.8,       // small, at the corner
                                0, 3.0, 2.0, 3.0, 2.0],       // empty
                               shape: [5, 5])
        for (aligned, ratio, scale, size) in [(false, -1, Float(1), (3, 3)), (true, -1, 1, (2, 4)),
                                              (false, 2, 0.5, (4, 3)), (true, 3, 0.75, (1, 1))] {
            try Self.adjointCheck("roi_align aligned=\(aligned) ratio=\(ratio)", x) {
                try roiAlign($0, boxes: boxes, outputSize: size, spatialScale: scale, samplingRatio: ratio, aligned: aligned)
            }
        }
        try Self.gradcheck("roi_align fd", x) { try roiAlign($0, boxes: boxes, outputSize: (2, 3)) }
        // Boxes that require grad receive none (torchvision does not differentiate them either).
        let xl = try x.requiringGrad(), bl = try boxes.requiringGrad()
        try sum(try roiAlign(xl, boxes: bl, outputSize: (2, 2))).backward()
        #expect(xl.grad != nil)
        #expect(bl.grad == nil)
    }

    @Test func padModes() throws {
        let x4 = try randomTensor([2, 3, 4, 5], seed: 29), x2 = try randomTensor([3, 4], seed: 30)
        let cases: [(Tensor, [Int], Padding)] = [
            (x4, [1, 2, 3, 0], .constant(0.5)), (x4, [1, -2, -1, 2], .constant(0)), (x4, [2, 1, 0, 1, 1, 1], .constant(0)),
            (x4, [3, 4, 2, 3], .reflect), (x4, [4, 0], .reflect), (x2, [2, 1, 1, 2], .reflect),
            (x4, [3, 1, 0, 5], .replicate), (x2, [0, 3, 2, 1], .replicate), (x4, [], .reflect),
        ]
        for (x, pads, mode) in cases {
            try Self.adjointCheck("pad \(pads) \(mode)", x) { try pad($0, pads: pads, mode: mode) }
            try Self.gradcheck("pad fd \(pads) \(mode)", x) { try pad($0, pads: pads, mode: mode) }
        }
    }

    @Test func splitPieces() throws {
        let x = try randomTensor([4, 6, 3], seed: 31)
        // Pieces used differently (and one not at all): each lands in its own slot of the gradient.
        try Self.gradcheck("split sizes", x) {
            let p = try split($0, sizes: [2, 1, 3], axis: 1)
            return try concat([try mul(p[0], p[0]), try mul(p[2], try Tensor.full([], value: 3))], axis: 1)
        }
        try Self.gradcheck("split chunks", x) {
            let p = try split($0, chunkSize: 3, axis: -1)
            return try add(try mul(p[0], p[0]), p[0])
        }
        let xl = try x.requiringGrad()
        let pieces = try split(xl, sizes: [3, 1], axis: 0)
        #expect(pieces.allSatisfy { $0.requiresGrad })
        try sum(pieces[1]).backward()
        let g = try #require(xl.grad).toArray(Float.self)
        #expect(g == [Float](repeating: 0, count: 54) + [Float](repeating: 1, count: 18))
    }

    @Test func indexOps() throws {
        let x = try randomTensor([3, 5, 4], seed: 32)
        var rng = RandomGenerator(seed: 33)
        let index = try Tensor.uniform([2, 7, 4], low: 0, high: 5, rng: &rng).to(.int64)
        try Self.adjointCheck("gather", x) { try gather($0, axis: 1, index: index) }
        try Self.gradcheck("gather fd", x) { try gather($0, axis: 1, index: index) }
        try Self.adjointCheck("gather last axis", x) {
            try gather($0, axis: -1, index: try Tensor([Int64](repeating: 3, count: 30), shape: [3, 5, 2]))
        }
        let repeated = try Tensor([Int64(4), 0, 4, 2, 4], shape: [5]), short = try Tensor([Int32(1), 1], shape: [2])
        try Self.adjointCheck("index_select", x) { try indexSelect($0, axis: 1, index: repeated) }
        try Self.gradcheck("index_select fd", x) { try indexSelect($0, axis: 1, index: repeated) }
        try Self.adjointCheck("index_select first axis", x) { try indexSelect($0, axis: 0, index: short) }
        try Self.adjointCheck("index_select last axis", x) { try indexSelect($0, axis: -1, index: try Tensor([Int64(3), 0, 3], shape: [3])) }
        // Zero-dimensional gather and an empty selection.
        try Self.gradcheck("gather scalar", try Tensor([Float(2)], shape: [])) {
            try gather($0, axis: 0, index: try Tensor([Int64(0)], shape: []))
        }
        let xl = try x.requiringGrad()
        try indexSelect(xl, axis: 1, index: try Tensor([Int64](), shape: [0])).backward(try Tensor.zeros([3, 0, 4]))
        #expect(try #require(xl.grad).toArray(Float.self) == [Float](repeating: 0, count: 60))
    }

    @Test func topkValues() throws {
        // A permutation scaled by 0.1: distinct values 0.1 apart, so the step of 0.01 never reorders them.
        var rng = RandomGenerator(seed: 34)
        let keys = try Tensor.uniform([60], rng: &rng).toArray(Float.self)
        let order = (0..<60).sorted { keys[$0] < keys[$1] }
        let x = try Tensor(order.map { Float($0) * 0.1 - 3 }, shape: [3, 4, 5])
        for (k, axis, largest) in [(2, -1, true), (3, 1, false), (4, 1, true), (5, 2, false)] {
            try Self.gradcheck("topk k=\(k) axis=\(axis) largest=\(largest)", x) {
                try topk($0, k: k, axis: axis, largest: largest).values
            }
        }
        let xl = try x.requiringGrad()
        let (values, indices) = try topk(xl, k: 2, axis: 0)
        #expect(values.requiresGrad && !indices.requiresGrad)
        try Self.gradcheck("topk scalar", try Tensor([Float(1.5)], shape: [])) { try topk($0, k: 1, axis: 0).values }
        let (none, _) = try topk(xl, k: 0, axis: 1)
        try none.backward(try Tensor.zeros([3, 0, 5]))
        #expect(try #require(xl.grad).toArray(Float.self) == [Float](repeating: 0, count: 60))
    }

    // MARK: - PyTorch parity

    @Test func interpolateMatchesPyTorch() throws {
        let f = try Fixture("autograd_resampling")
        let cases = f.cases("interp_")
        #expect(cases.count == 11)
        for name in cases {
            let p = try f.ints("\(name).params"), s = try f["\(name).scale"].toArray(Float.self)
            let x = try f["interp.x"].requiringGrad()
            let mode: InterpolationMode = p[0] == 0 ? .nearest : .bilinear
            let ac: Bool? = p[1] < 0 ? nil : p[1] == 1
            let y = p[4] == 1
                ? try interpolate(x, scaleFactor: (Double(s[0]), Double(s[1])), mode: mode, alignCorners: ac)
                : try interpolate(x, size: (p[2], p[3]), mode: mode, alignCorners: ac)
            #expect(y.shape == [2, 3, p[2], p[3]], "\(name)")
            try y.backward(try f["\(name).r"])
            try expectClose(try #require(x.grad), try f["\(name).grad_x"], rtol: 1e-5, atol: 1e-5, name)
        }
    }

    @Test func gridSampleMatchesPyTorch() throws {
        let f = try Fixture("autograd_resampling")
        for name in ["grid_sample_0", "grid_sample_1"] {
            let ac = try f.ints("\(name).params")[0] == 1
            let x = try f["grid_sample.x"].requiringGrad(), grid = try f["\(name).grid"].requiringGrad()
            try gridSample(x, grid: grid, alignCorners: ac).backward(try f["\(name).r"])
            try expectClose(try #require(x.grad), try f["\(name).grad_x"], rtol: 1e-5, atol: 1e-5, "\(name) input")
            try expectClose(try #require(grid.grad), try f["\(name).grad_grid"], rtol: 1e-5, atol: 1e-5, "\(name) grid")
        }
    }

    @Test func roiAlignMatchesTorchvision() throws {
        let f = try Fixture("autograd_resampling")
        let cases = f.cases("roi_align_")
        #expect(cases.count == 4)
        for name in cases {
            let p = try f.ints("\(name).params"), scale = Float(try f["\(name).spatial_scale"].item())
            let x = try f["roi_align.x"].requiringGrad()
            try roiAlign(x, boxes: try f["\(name).boxes"], outputSize: (p[2], p[3]), spatialScale: scale,
                         samplingRatio: p[1], aligned: p[0] != 0).backward(try f["\(name).r"])
            try expectClose(try #require(x.grad), try f["\(name).grad_x"], rtol: 1e-5, atol: 1e-5, name)
        }
    }

    @Test func padMatchesPyTorch() throws {
        let f = try Fixture("autograd_resampling")
        let cases = f.cases("pad_")
        #expect(cases.count == 5)
        for name in cases {
            let p = try f.ints("\(name).params")
            let mode: Padding = p[0] == 0 ? .constant(0) : p[0] == 1 ? .reflect : .replicate
            let x = try f["\(name).x"].requiringGrad()
            try pad(x, pads: Array(p[1...]), mode: mode).backward(try f["\(name).r"])
            try expectClose(try #require(x.grad), try f["\(name).grad_x"], rtol: 1e-5, atol: 1e-5, name)
        }
    }

    @Test func indexOpsMatchPyTorch() throws {
        let f = try Fixture("autograd_resampling")
        let x = try f["gather.x"].requiringGrad()
        try gather(x, axis: try f.int("gather.dim"), index: try f["gather.index"]).backward(try f["gather.r"])
        try expectClose(try #require(x.grad), try f["gather.grad_x"], rtol: 1e-5, atol: 1e-5, "gather")
        for name in ["index_select_0", "index_select_1"] {
            let x = try f["\(name).x"].requiringGrad()
            try indexSelect(x, axis: try f.int("\(name).dim"), index: try f["\(name).index"]).backward(try f["\(name).r"])
            try expectClose(try #require(x.grad), try f["\(name).grad_x"], rtol: 1e-5, atol: 1e-5, name)
        }
        let topkCases = f.cases("topk_")
        #expect(topkCases.count == 3)
        for name in topkCases {
            let p = try f.ints("\(name).params")
            let x = try f["\(name).x"].requiringGrad()
            try topk(x, k: p[0], axis: p[1], largest: p[2] == 1).values.backward(try f["\(name).r"])
            try expectClose(try #require(x.grad), try f["\(name).grad_x"], rtol: 0, atol: 0, name)
        }
    }
}
