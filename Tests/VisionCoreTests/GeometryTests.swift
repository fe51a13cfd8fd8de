import Testing
@testable import VisionCore

/// grid_sample, roi_align, box_iou and NMS: fast kernels against their reference versions, plus properties that
/// hold by construction (identity grids, constant inputs, pixel-aligned boxes, overlapping clusters).
@Suite struct GeometryTests {
    static func random(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try Tensor.uniform(shape, low: low, high: high, rng: &rng)
    }

    static func maxAbsDiff(_ a: Tensor, _ b: Tensor) throws -> Float {
        #expect(a.shape == b.shape)
        var worst: Float = 0
        for (u, v) in zip(try a.toArray(Float.self), try b.toArray(Float.self)) {
            if u.isNaN && v.isNaN { continue }
            worst = max(worst, abs(u - v))
            if u.isNaN != v.isNaN { worst = .infinity }
        }
        return worst
    }

    // MARK: grid_sample

    @Test(arguments: [false, true])
    func gridSampleMatchesReference(alignCorners: Bool) throws {
        for (i, (n, c, h, w, ho, wo)) in [(2, 3, 5, 7, 4, 6), (1, 1, 1, 1, 3, 3), (1, 17, 9, 4, 11, 2), (3, 2, 6, 6, 1, 1)].enumerated() {
            let x = try Self.random([n, c, h, w], seed: UInt64(i), low: -5, high: 5)
            // Locations beyond [-1, 1] exercise the partial and fully outside neighbours.
            let grid = try Self.random([n, ho, wo, 2], seed: UInt64(100 + i), low: -1.4, high: 1.4)
            let fast = try gridSample(x, grid: grid, alignCorners: alignCorners)
            let ref = try gridSampleReference(x, grid: grid, alignCorners: alignCorners)
            #expect(fast.shape == [n, c, ho, wo])
            #expect(try Self.maxAbsDiff(fast, ref) < 1e-5, "case \(i)")
        }
        // A non-contiguous input (a transposed view) gives the same result as its contiguous copy.
        let base = try Self.random([1, 2, 6, 5], seed: 9)
        let view = try base.transpose(2, 3)
        let grid = try Self.random([1, 3, 4, 2], seed: 10)
        #expect(try Self.maxAbsDiff(try gridSample(view, grid: grid, alignCorners: alignCorners),
                                    try gridSample(try view.contiguous(), grid: grid, alignCorners: alignCorners)) == 0)
    }

    /// A grid that addresses every pixel centre reproduces the input: x_j = -1 + 2j/(W-1) with align_corners,
    /// x_j = (2j+1)/W - 1 without.
    @Test(arguments: [false, true])
    func pixelCentreGridReproducesInput(alignCorners: Bool) throws {
        let (h, w) = (5, 8)
        let x = try Self.random([2, 3, h, w], seed: 1, low: 0, high: 10)
        var g = [Float]()
        for _ in 0..<2 {
            for i in 0..<h {
                for j in 0..<w {
                    if alignCorners { g += [-1 + 2 * Float(j) / Float(w - 1), -1 + 2 * Float(i) / Float(h - 1)] }
                    else { g += [(2 * Float(j) + 1) / Float(w) - 1, (2 * Float(i) + 1) / Float(h) - 1] }
                }
            }
        }
        let y = try gridSample(x, grid: try Tensor(g, shape: [2, h, w, 2]), alignCorners: alignCorners)
        #expect(try Self.maxAbsDiff(y, x) < 1e-5)
    }

    @Test func gridSampleEdgesAndErrors() throws {
        let x = try Tensor.full([1, 2, 3, 4], value: 2)
        let nan = Float.nan
        let grid = try Tensor([Float(5), 0, -3, 0, 0, 1e30, nan, 0, 0, .infinity, -1, -1], shape: [1, 1, 6, 2])
        for ac in [false, true] {
            let y = try gridSample(x, grid: grid, alignCorners: ac).toArray(Float.self)
            // Far outside gives 0; NaN and infinity give NaN (PyTorch's CPU behaviour).
            #expect(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3].isNaN && y[4].isNaN)
            // The corner: with align_corners it is the corner pixel's centre, else a quarter of its weight.
            #expect(abs(y[5] - (ac ? 2 : 0.5)) < 1e-6)
        }
        #expect(throws: VisionError.self) { try gridSample(x, grid: try Tensor.zeros([2, 1, 1, 2]), alignCorners: false) }
        #expect(throws: VisionError.self) { try gridSample(x, grid: try Tensor.zeros([1, 1, 1, 3]), alignCorners: false) }
        #expect(throws: VisionError.self) { try gridSample(try Tensor.zeros([1, 1, 0, 3]), grid: try Tensor.zeros([1, 1, 1, 2]), alignCorners: false) }
        #expect(throws: VisionError.self) { try gridSample(try Tensor.zeros([2, 3]), grid: try Tensor.zeros([1, 1, 1, 2]), alignCorners: false) }
        #expect(try gridSample(x, grid: try Tensor.zeros([1, 0, 5, 2]), alignCorners: true).shape == [1, 2, 0, 5])
    }

    // MARK: roi_align

    static func randomBoxes(_ k: Int, batch: Int, extent: Float, seed: UInt64) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        var v = [Float]()
        for _ in 0..<k {
            // Boxes may start before 0 and end past the image, and some are tiny.
            let x1 = rng.nextFloat() * extent * 1.2 - 0.2 * extent, y1 = rng.nextFloat() * extent * 1.2 - 0.2 * extent
            let bw = rng.nextFloat() * extent * 0.8, bh = rng.nextFloat() * extent * 0.8
            v += [Float(Int(rng.next() % UInt64(batch))), x1, y1, x1 + bw, y1 + bh]
        }
        return try Tensor(v, shape: [k, 5])
    }

    @Test(arguments: [false, true])
    func roiAlignMatchesReference(aligned: Bool) throws {
        let x = try Self.random([2, 3, 13, 17], seed: 3, low: -2, high: 2)
        let boxes = try Self.randomBoxes(12, batch: 2, extent: 30, seed: 4)
        for (size, scale, ratio) in [((7, 7), Float(0.5), -1), ((3, 5), 0.5, 2), ((2, 2), 1, -1), ((1, 1), 0.25, 1), ((4, 3), 1, 3)] {
            let fast = try roiAlign(x, boxes: boxes, outputSize: size, spatialScale: scale, samplingRatio: ratio, aligned: aligned)
            let ref = try roiAlignReference(x, boxes: boxes, outputSize: size, spatialScale: scale, samplingRatio: ratio, aligned: aligned)
            #expect(fast.shape == [12, 3, size.0, size.1])
            #expect(try Self.maxAbsDiff(fast, ref) < 1e-5, "size \(size) scale \(scale) ratio \(ratio)")
        }
    }

    @Test func roiAlignProperties() throws {
        // A constant map pools to the constant for any box inside it.
        let c = try Tensor.full([1, 2, 10, 10], value: 3)
        let inside = try Tensor([Float(0), 1, 2, 7.5, 8, 0, 0, 0, 9, 9], shape: [2, 5])
        for aligned in [false, true] {
            let y = try roiAlign(c, boxes: inside, outputSize: (3, 4), samplingRatio: -1, aligned: aligned)
            #expect(try y.toArray(Float.self).allSatisfy { abs($0 - 3) < 1e-5 })
        }
        // With aligned=true, one sample per bin and one bin per pixel, the whole-image box returns the image.
        let x = try Self.random([1, 2, 6, 9], seed: 5)
        let whole = try Tensor([Float(0), 0, 0, 9, 6], shape: [1, 5])
        let y = try roiAlign(x, boxes: whole, outputSize: (6, 9), samplingRatio: 1, aligned: true)
        #expect(try Self.maxAbsDiff(try y.reshape([1, 2, 6, 9]), x) < 1e-6)
        // A box far outside the map pools to 0; an empty box list gives an empty result.
        let far = try Tensor([Float(0), 100, 100, 120, 130], shape: [1, 5])
        #expect(try roiAlign(x, boxes: far, outputSize: (2, 2)).toArray(Float.self) == [Float](repeating: 0, count: 8))
        #expect(try roiAlign(x, boxes: try Tensor.zeros([0, 5]), outputSize: (2, 2)).shape == [0, 2, 2, 2])
    }

    @Test func roiAlignErrors() throws {
        let x = try Tensor.zeros([2, 1, 4, 4])
        func run(_ box: [Float], size: (Int, Int) = (2, 2), scale: Float = 1) throws -> Tensor {
            try roiAlign(x, boxes: try Tensor(box, shape: [1, 5]), outputSize: size, spatialScale: scale)
        }
        #expect(throws: VisionError.self) { try run([2, 0, 0, 1, 1]) }       // batch index = N
        #expect(throws: VisionError.self) { try run([-1, 0, 0, 1, 1]) }
        #expect(throws: VisionError.self) { try run([.nan, 0, 0, 1, 1]) }
        #expect(throws: VisionError.self) { try run([0, 0, .nan, 1, 1]) }
        #expect(throws: VisionError.self) { try run([0, 0, 0, .infinity, 1]) }
        #expect(throws: VisionError.self) { try run([0, 0, 0, 1, 1], size: (0, 2)) }
        #expect(throws: VisionError.self) { try run([0, 0, 0, 1, 1], scale: 0) }
        #expect(throws: VisionError.self) { try run([0, -3e37, -3e37, 3e37, 3e37]) } // absurd adaptive grid
        #expect(throws: VisionError.self) { try roiAlign(x, boxes: try Tensor.zeros([1, 4]), outputSize: (2, 2)) }
        #expect(try run([1.9, 0, 0, 1, 1]).shape == [1, 1, 2, 2]) // fractional index truncates, as torchvision
    }

    // MARK: boxes

    @Test func boxIoUProperties() throws {
        let a = try Tensor([Float(0), 0, 2, 2, 1, 1, 3, 3, 10, 10, 11, 12], shape: [3, 4])
        let iou = try boxIoU(a, a).toArray(Float.self)
        for i in 0..<3 {
            #expect(abs(iou[i * 3 + i] - 1) < 1e-7)
            for j in 0..<3 { #expect(iou[i * 3 + j] == iou[j * 3 + i]) }
        }
        #expect(abs(iou[1] - 1.0 / 7.0) < 1e-7)
        #expect(iou[2] == 0)
        let b = try Self.randomBoxes(9, batch: 1, extent: 10, seed: 8).slice(axis: 1, start: 1)
        let m = try boxIoU(a, b)
        #expect(m.shape == [3, 9])
        #expect(try m.toArray(Float.self).allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(try boxIoU(a, try Tensor.zeros([0, 4])).shape == [3, 0])
        #expect(throws: VisionError.self) { try boxIoU(a, try Tensor.zeros([2, 5])) }
    }

    /// Clusters of jittered copies of a few boxes, with random scores (some tied).
    static func clusters(_ n: Int, seed: UInt64) throws -> (Tensor, Tensor, Tensor) {
        var rng = RandomGenerator(seed: seed)
        var b = [Float](), s = [Float](), c = [Int64]()
        for i in 0..<n {
            let centre = Float(i % 5) * 7
            let x1 = centre + rng.nextFloat() * 3, y1 = rng.nextFloat() * 3
            b += [x1, y1, x1 + 5 + rng.nextFloat() * 3, y1 + 5 + rng.nextFloat() * 3]
            s.append(Float(Int(rng.nextFloat() * 20)) / 20)
            c.append(Int64(rng.next() % 3))
        }
        return (try Tensor(b, shape: [n, 4]), try Tensor(s, shape: [n]), try Tensor(c, shape: [n]))
    }

    @Test func nmsMatchesReference() throws {
        for seed in 0..<20 as Range<UInt64> {
            let (b, s, c) = try Self.clusters(40 + Int(seed), seed: seed)
            for t in [Float(0), 0.3, 0.5, 0.7, 1] {
                #expect(try nms(b, scores: s, iouThreshold: t).toArray(Int64.self)
                        == nmsReference(b, scores: s, iouThreshold: t).toArray(Int64.self))
                #expect(try batchedNms(b, scores: s, idxs: c, iouThreshold: t).toArray(Int64.self)
                        == nmsReference(b, scores: s, idxs: c, iouThreshold: t).toArray(Int64.self))
            }
        }
    }

    @Test func nmsKeepsBestAndSuppressesOverlaps() throws {
        let b = try Tensor([Float(0), 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60, 0, 0, 10, 10, 0.5, 0, 10.5, 10],
                           shape: [5, 4])
        let s = try Tensor([Float(0.5), 0.9, 0.3, 0.9, 0.8], shape: [5])
        // 1 (0.9) beats 3 (0.9, later index); 3 overlaps 1 with IoU 0.68 > 0.5; 4 and 0 overlap 1 too.
        #expect(try nms(b, scores: s, iouThreshold: 0.5).toArray(Int64.self) == [1, 2])
        // Ties keep index order; a threshold of 1 suppresses nothing.
        #expect(try nms(b, scores: s, iouThreshold: 1).toArray(Int64.self) == [1, 3, 4, 0, 2])
        // Identical boxes in different classes both survive batched NMS.
        let idxs = try Tensor([Int64(0), 1, 0, 0, 1], shape: [5])
        #expect(try batchedNms(b, scores: s, idxs: idxs, iouThreshold: 0.5).toArray(Int64.self) == [1, 3, 2])
        #expect(try batchedNms(b, scores: s, idxs: try idxs.to(.int32), iouThreshold: 0.5).toArray(Int64.self) == [1, 3, 2])
        // NaN scores are visited first (torch.sort order).
        let sn = try Tensor([Float(0.5), .nan, 0.3, 0.9, 0.8], shape: [5])
        #expect(try nms(b, scores: sn, iouThreshold: 0.5).toArray(Int64.self) == [1, 2])
        #expect(try nms(try Tensor.zeros([0, 4]), scores: try Tensor.zeros([0]), iouThreshold: 0.5).shape == [0])
        #expect(throws: VisionError.self) { try nms(b, scores: try Tensor.zeros([4]), iouThreshold: 0.5) }
        #expect(throws: VisionError.self) { try nms(b, scores: s, iouThreshold: .nan) }
        #expect(throws: VisionError.self) { try batchedNms(b, scores: s, idxs: try Tensor.zeros([5]), iouThreshold: 0.5) }
    }
}
