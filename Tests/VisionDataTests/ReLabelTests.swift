import Testing
import VisionCore
@testable import VisionData

/// LabelPooling against the reference code with torchvision.ops.roi_align (tools/fixtures/relabel.py), in both
/// box conventions, and ReLabel + CutMix with replayed draws; label-map files and their validation.
@Suite struct ReLabelTests {
    let f: Fixture
    init() throws { f = try Fixture("relabel") }

    func crops(_ key: String) throws -> [CropBox] {
        let c = try f.ints(key)
        return (0..<(c.count / 6)).map { k in
            CropBox(i: c[6 * k], j: c[6 * k + 1], h: c[6 * k + 2], w: c[6 * k + 3], imageHeight: c[6 * k + 4], imageWidth: c[6 * k + 5])
        }
    }

    @Test(arguments: [("pool", 1000), ("rect", 40)])
    func labelPoolingMatchesReference(_ setup: (String, Int)) throws {
        let (name, classes) = setup
        let maps = try f["\(name).maps"], boxes = try crops("\(name).crops")
        for (convention, key) in [(LabelPooling.BoxConvention.official, "official"), (.geometric, "geometric")] {
            let pooling = try LabelPooling(numClasses: classes, convention: convention)
            let targets = try pooling(labelMaps: maps, crops: boxes)
            // Softmax outputs near 1e-3: relative 1e-4 covers the float32 summation-order differences.
            try expectClose(targets, try f["\(name).\(key)"], rtol: 1e-4, atol: 1e-7, "\(name) \(key)")
            let one = try pooling(labelMap: try maps.select(axis: 0, index: 1), crop: boxes[1])
            try expectClose(one, try f["\(name).\(key)"].select(axis: 0, index: 1), rtol: 1e-4, atol: 1e-7, "\(name) \(key) single")
        }
        // The conventions differ on non-square crops (the point of the option).
        let a = try LabelPooling(numClasses: classes, convention: .official)(labelMaps: maps, crops: boxes)
        let b = try LabelPooling(numClasses: classes, convention: .geometric)(labelMaps: maps, crops: boxes)
        #expect(try a.toArray(Float.self) != b.toArray(Float.self))
    }

    @Test func reLabelCutMixMatchesReference() throws {
        let maps = try f["pool.maps"].slice(axis: 0, end: 4), boxes = Array(try crops("pool.crops").prefix(4))
        let x = try pattern([4, 3, 8, 8], round: 0)
        let batch = Batch(inputs: x, labels: try Tensor([Int64](repeating: 0, count: 4), shape: [4]), indices: [0, 1, 2, 3],
                          cropBoxes: boxes, labelMaps: try maps.contiguous())
        let relabel = try ReLabelCutMix(pooling: try LabelPooling(numClasses: 1000),
                                        cutmix: try CutMix(alpha: 1, prob: 1, numClasses: 1000, labelSmoothing: 0.1))
        var draws = try f.draws("cutmix")
        let out = try relabel(batch, draws: &draws)
        try expectClose(out.images, try f["cutmix.mixed"], rtol: 0, atol: 0, "images")
        try expectClose(out.targets, try f["cutmix.targets"], rtol: 1e-4, atol: 1e-7, "targets")
        #expect(draws.mismatches.isEmpty && draws.exhausted, "\(draws.mismatches.prefix(3))")
        var noCrop = batch
        noCrop.cropBoxes[2] = nil
        var rng = RandomGenerator(seed: 0)
        #expect(thrownMessage { _ = try relabel(noCrop, draws: &rng) }?.contains("crop box") == true)
    }

    @Test func labelMapFilesRoundTripAndValidate() throws {
        let dir = try TemporaryFolder()
        let maps = try f["pool.maps"]
        let one = try maps.select(axis: 0, index: 0).contiguous()
        try LabelMaps.save(one, path: "\(dir.path)/one.safetensors")
        try expectClose(try LabelMaps.load(path: "\(dir.path)/one.safetensors", numClasses: 1000), one, rtol: 0, atol: 0, "single")
        let many = try (0..<3).map { ("n0144/img_\($0)", try maps.select(axis: 0, index: $0).contiguous()) }
        try LabelMaps.saveAll(many, path: "\(dir.path)/many.safetensors", storeAs: .F16)
        let back = try LabelMaps.loadAll(path: "\(dir.path)/many.safetensors")
        #expect(back.map(\.name) == many.map(\.0))
        // F16 keeps class indices below 2048 exactly and scores to about 3 decimals.
        for (b, m) in zip(back, many) { try expectClose(b.map, m.1, rtol: 1e-3, atol: 1e-3, b.name) }
        try expectClose(try back[0].map.select(axis: 0, index: 1), try many[0].1.select(axis: 0, index: 1), rtol: 0, atol: 0, "indices exact")
        // Wrong shapes, out-of-range classes and non-finite scores are errors.
        for bad in [try Tensor.zeros([5, 15, 15]), try Tensor.zeros([3, 5, 15, 15]), try Tensor.zeros([2, 0, 15, 15])] {
            #expect(thrownMessage { try LabelMaps.save(bad, path: "\(dir.path)/bad.safetensors") }?.contains("[2, k, S, S]") == true)
        }
        var v = try one.toArray(Float.self)
        v[v.count - 1] = 1000
        #expect(throws: VisionError.self) { try LabelMaps.validate(try Tensor(v, shape: one.shape), numClasses: 1000) }
        v[v.count - 1] = 3; v[0] = .nan
        #expect(throws: VisionError.self) { try LabelMaps.validate(try Tensor(v, shape: one.shape)) }
        try Safetensors.save([("a", one), ("b", one)], path: "\(dir.path)/two.safetensors")
        #expect(thrownMessage { _ = try LabelMaps.load(path: "\(dir.path)/two.safetensors") }?.contains("label_map") == true)
        #expect(throws: VisionError.self) { _ = try LabelPooling(numClasses: 1000)(labelMaps: maps, crops: []) }
    }

    @Test func denseLogitsToLabelMapAndBack() throws {
        var rng = RandomGenerator(seed: 8)
        let logits = try Tensor.normal([2, 12, 3, 4], rng: &rng)
        let maps = try LabelMaps.fromDenseLogits(logits, k: 5)
        #expect(maps.shape == [2, 2, 5, 3, 4])
        let l = try logits.toArray(Float.self), m = try maps.toArray(Float.self)
        for n in 0..<2 {
            for loc in 0..<12 {
                let column = (0..<12).map { l[(n * 12 + $0) * 12 + loc] }
                let top = column.enumerated().sorted { $0.element > $1.element }.prefix(5)
                for (r, (c, value)) in top.enumerated() {
                    #expect(m[((n * 2 + 0) * 5 + r) * 12 + loc] == value)
                    #expect(m[((n * 2 + 1) * 5 + r) * 12 + loc] == Float(c))
                }
            }
        }
        let dense = try LabelMaps.dense(maps, numClasses: 12)
        let d = try dense.toArray(Float.self)
        #expect(d.filter { $0 != 0 }.count <= 2 * 5 * 12)
        #expect(d[(0 * 12 + Int(m[(1 * 5) * 12])) * 12] == m[0])
        #expect(throws: VisionError.self) { _ = try LabelMaps.fromDenseLogits(logits, k: 13) }
    }

    @Test func imageFolderReadsLabelMapsFromTheReferenceLayout() throws {
        let dir = try TemporaryFolder()
        dir.makeFolder("images/n01")
        dir.makeFolder("maps/n01")
        try saveImage(try Tensor.zeros([6, 6, 3], dtype: .uint8), path: "\(dir.path)/images/n01/n01_7.v2.png")
        let map = try f["pool.maps"].select(axis: 0, index: 3).contiguous()
        #expect(ImageFolder.labelMapPath(root: "\(dir.path)/maps", imagePath: "\(dir.path)/images/n01/n01_7.v2.png")
                == "\(dir.path)/maps/n01/n01_7.safetensors")
        try LabelMaps.save(map, path: "\(dir.path)/maps/n01/n01_7.safetensors")
        let ds = try ImageFolder(root: "\(dir.path)/images", labelMapRoot: "\(dir.path)/maps")
        try expectClose(try #require(try ds.example(at: 0).labelMap), map, rtol: 0, atol: 0, "label map")
        let missing = try ImageFolder(root: "\(dir.path)/images", labelMapRoot: "\(dir.path)/nowhere")
        #expect(thrownMessage { _ = try missing.example(at: 0) }?.contains("n01_7.safetensors") == true)
    }
}
