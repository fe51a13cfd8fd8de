#if canImport(Glibc)
import Glibc
#endif
import Testing
import VisionCore
import VisionOptim
@testable import VisionModels

extension Optimizer: FaceTrainingOptimizer {}

/// The WIDER FACE annotation format, the training set and the training loop on a synthetic dataset the test writes.
@Suite struct S3FDWiderFaceTrainingTests {
    static let annotations = """
    0--Parade/0_Parade_marchingband_1_849.jpg
    1
    449 330 122 149 0 0 0 0 0 0 
    0--Parade/0_Parade_Parade_0_904.jpg
    2
    361 98 263 339 0 0 0 0 0 0
    10 20 0 5 2 0 1 0 0 0
    0--Parade/0_Parade_marchingband_1_310.jpg
    0
    0 0 0 0 0 0 0 0 0 0

    """

    @Test func parsesTheOfficialFormat() throws {
        let e = try WiderFaceAnnotations.parse(Self.annotations)
        #expect(e.map(\.path) == ["0--Parade/0_Parade_marchingband_1_849.jpg", "0--Parade/0_Parade_Parade_0_904.jpg",
                                  "0--Parade/0_Parade_marchingband_1_310.jpg"])
        #expect(e.map(\.faces.count) == [1, 2, 0])
        #expect(e[0].faces[0] == WiderFaceBox(x: 449, y: 330, w: 122, h: 149))
        #expect(e[1].faces[1].blur == 2 && e[1].faces[1].illumination == 1 && e[1].faces[1].w == 0)
    }

    @Test func malformedFilesNameTheLine() throws {
        func message(_ text: String) -> String {
            do { _ = try WiderFaceAnnotations.parse(text, source: "gt.txt"); return "no error" } catch { return "\(error)" }
        }
        #expect(message("a.jpg\ntwo\n1 2 3 4 0 0 0 0 0 0\n").hasPrefix("gt.txt:2:"))
        #expect(message("a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n").hasPrefix("gt.txt:4:"))          // a face line missing
        #expect(message("a.jpg\n1\n1 2 3 0 0 0 0 0 0\n").hasPrefix("gt.txt:3:"))            // 9 numbers
        #expect(message("a.jpg\n1\n1 2 x 4 0 0 0 0 0 0\n").hasPrefix("gt.txt:3:"))
        #expect(message("a.jpg\n0\n0 0 5 0 0 0 0 0 0 0\n").hasPrefix("gt.txt:3:"))          // 0 faces, non-zero line
        #expect(message("a.jpg\n-1\n").hasPrefix("gt.txt:2:"))
        #expect(message("a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n5\n").hasPrefix("gt.txt:4:"))       // a count where a path belongs
        #expect(message("") == "no error")
        #expect(throws: VisionError.self) { try WiderFaceAnnotations.load(path: "/nonexistent/gt.txt") }
    }

    /// A folder with `n` 96 x 80 images, each with two bright "faces" on a textured background, and annotations.
    static func syntheticDataset(_ n: Int) throws -> (String, String) {
        var template = Array("/tmp/vc-wider-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        mkdir(dir + "/images", 0o755)
        var gt = ""
        var rng = RandomGenerator(seed: 11)
        for i in 0..<n {
            let (w, h) = (96, 80)
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for j in 0..<px.count { px[j] = UInt8(40 + Int(rng.next() % 60)) }
            let faces = [(10 + 3 * i, 12, 30, 34), (56, 30 + 2 * i, 24, 26)]
            for (x, y, fw, fh) in faces {
                for yy in y..<(y + fh) { for xx in x..<(x + fw) { px[(yy * w + xx) * 3] = 230; px[(yy * w + xx) * 3 + 1] = 180; px[(yy * w + xx) * 3 + 2] = 150 } }
            }
            let name = "img\(i).png"
            try saveImage(try Tensor(px, shape: [h, w, 3]), path: "\(dir)/images/\(name)")
            gt += "\(name)\n\(faces.count + 1)\n" + faces.map { "\($0.0) \($0.1) \($0.2) \($0.3) 0 0 0 0 0 0\n" }.joined()
            gt += "5 5 0 10 0 0 0 1 0 0\n"   // zero width: skipped, as WIDERDetection does
        }
        gt += "empty.png\n0\n0 0 0 0 0 0 0 0 0 0\n"   // no faces: dropped (its file does not even exist)
        let path = dir + "/gt.txt"
        try Array(gt.utf8).withUnsafeBytes { try FileIO.writeAtomically(path, $0) }
        return (dir, path)
    }

    func smallAugmentation() -> S3FDAugmentation {
        var config = S3FDAugmentationConfig()
        config.resizeWidth = 128; config.resizeHeight = 128
        return S3FDAugmentation(config: config)
    }

    @Test func trainingSetFiltersAndSamples() throws {
        let (dir, gt) = try Self.syntheticDataset(3)
        let set = try WiderFaceTrainingSet(imagesRoot: dir + "/images", annotations: try WiderFaceAnnotations.load(path: gt),
                                           augmentation: smallAugmentation())
        #expect(set.count == 3 && set.entries.allSatisfy { $0.faces.count == 2 })
        var rng = S3FDRandom(seed: 3)
        let batch = try set.batch([0, 2], random: &rng)
        #expect(batch.input.shape == [2, 3, 128, 128] && batch.targets.count == 2 && batch.targets.allSatisfy { !$0.isEmpty })
        // A missing image is an I/O error that names it; no usable image at all is an error too.
        let missing = try WiderFaceTrainingSet(imagesRoot: dir + "/nowhere", annotations: set.entries)
        #expect(throws: VisionError.self) { try missing.sample(0, random: &rng) }
        #expect(throws: VisionError.self) { try set.sample(7, random: &rng) }
        #expect(throws: VisionError.self) {
            try WiderFaceTrainingSet(imagesRoot: dir, annotations: [WiderFaceEntry(path: "a.png", faces: [WiderFaceBox(x: 1, y: 1, w: 0, h: 3)])])
        }
    }

    @Test func twoTrainingStepsAndTheWeightsReload() throws {
        let (dir, gt) = try Self.syntheticDataset(4)
        let set = try WiderFaceTrainingSet(imagesRoot: dir + "/images", annotations: try WiderFaceAnnotations.load(path: gt),
                                           augmentation: smallAugmentation())
        let net = try EXTDNet(variant: .extd32, seed: 1)
        try net.initializeForTraining(seed: 1, backbone: true)
        let opt = try SGD(parameters: net.trainableParameters(), lr: 1e-3, momentum: 0.9, weightDecay: 5e-4)
        let trainer = try EXTDFaceTrainer(net: net, data: set, batchSize: 2, seed: 5)
        let before = try net.stateDict().first { $0.0 == "loc.0.weight" }!.1.copyContiguous()
        var reports: [FaceTrainingReport] = []
        let mean = try trainer.trainEpoch(optimizer: opt, totalSteps: 2, maxSteps: 2, report: { reports.append($0) })
        #expect(reports.count == 2 && trainer.step == 2 && trainer.epoch == 1)
        #expect(reports.allSatisfy { $0.lossL.isFinite && $0.lossC.isFinite && $0.lossC > 0 && $0.imagesPerSecond > 0 })
        #expect(mean.isFinite && abs(mean - reports.map { $0.lossL + $0.lossC }.reduce(0, +) / 2) < 1e-9)
        let after = try net.stateDict().first { $0.0 == "loc.0.weight" }!.1
        #expect(try relativeL2(after, before) > 0, "the step changed the weights")
        // The weights file (official keys) loads into the inference network and back into a trainable one.
        let path = dir + "/extd_32.safetensors"
        try net.save(path: path)
        let inference = try EXTD(variant: .extd32, weightsPath: path)
        #expect(inference.parameterCount == EXTDVariant.extd32.expectedParameterCount)
        let reloaded = try EXTDNet(variant: .extd32, seed: 9)
        try reloaded.load(path: path)
        for ((k, a), (_, b)) in zip(net.stateDict(), reloaded.stateDict()) {
            #expect(try a.to(.float32).contiguous().toArray(Float.self) == (try b.to(.float32).contiguous().toArray(Float.self)), "\(k)")
        }
        // A batch size of zero is refused.
        #expect(throws: VisionError.self) { try EXTDFaceTrainer(net: net, data: set, batchSize: 0, seed: 0) }
    }
}
