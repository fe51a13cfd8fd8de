import Testing
@testable import VisionCore

/// grid_sample, roi_align, box_iou, nms and batched_nms against PyTorch / torchvision outputs
/// (tools/fixtures/geometry.py). Tolerance 1e-5 absolute and relative: the kernels compute sample coordinates in
/// the same Float operation order as the reference, and differ only in summation order. NMS results must be
/// identical, including the order of tied scores.
@Suite struct GeometryFixtureTests {
    let f: Fixture
    init() throws { f = try Fixture("geometry") }

    @Test func gridSampleMatchesTorch() throws {
        let x = try f["grid_sample.x"], grid = try f["grid_sample.grid"]
        for (ac, key) in [(false, "out_noalign"), (true, "out_align")] {
            try expectClose(try gridSample(x, grid: grid, alignCorners: ac), try f["grid_sample.\(key)"], "grid_sample \(key)")
            try expectClose(try gridSampleReference(x, grid: grid, alignCorners: ac), try f["grid_sample.\(key)"],
                            "grid_sample reference \(key)")
        }
    }

    @Test func roiAlignMatchesTorchvision() throws {
        let x = try f["roi_align.x"]
        let cases = f.cases("roi_align_")
        #expect(cases.count == 6)
        for name in cases {
            let p = try f.ints("\(name).params")
            let scale = Float(try f["\(name).spatial_scale"].item())
            let boxes = try f["\(name).boxes"], expected = try f["\(name).out"]
            let args = (size: (p[2], p[3]), ratio: p[1], aligned: p[0] != 0)
            try expectClose(try roiAlign(x, boxes: boxes, outputSize: args.size, spatialScale: scale,
                                         samplingRatio: args.ratio, aligned: args.aligned), expected, name)
            try expectClose(try roiAlignReference(x, boxes: boxes, outputSize: args.size, spatialScale: scale,
                                                  samplingRatio: args.ratio, aligned: args.aligned), expected, "\(name) reference")
        }
    }

    @Test func boxIoUMatchesTorchvision() throws {
        try expectClose(try boxIoU(try f["box_iou.a"], try f["box_iou.b"]), try f["box_iou.out"], "box_iou")
    }

    @Test func nmsMatchesTorchvision() throws {
        let boxes = try f["nms.boxes"], scores = try f["nms.scores"], idxs = try f["nms.idxs"]
        for t in [30, 50, 70] {
            let threshold = Float(t) / 100
            #expect(try nms(boxes, scores: scores, iouThreshold: threshold).toArray(Int64.self)
                    == f["nms.keep_\(t)"].toArray(Int64.self), "nms \(t)")
            #expect(try batchedNms(boxes, scores: scores, idxs: idxs, iouThreshold: threshold).toArray(Int64.self)
                    == f["nms.batched_keep_\(t)"].toArray(Int64.self), "batched_nms \(t)")
        }
    }
}
