import Testing
import VisionCore
import VisionData
import VisionModels
import VisionNN
@testable import VisionTrain
#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary folder (left for the OS to clean: the runs write only a few hundred kB).
private func temporaryFolder() throws -> String {
    var template = Array("/tmp/visiontrain-test-XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { throw VisionError.io("mkdtemp failed") }
    return String(cString: p)
}

/// 12 seeded 1 x 28 x 28 images of 3 classes: 3 steps per epoch at batch 4.
private func tinyDataset(seed: UInt64 = 1, count: Int = 12) throws -> TensorDataset {
    var rng = RandomGenerator(seed: seed)
    let images = try Tensor.uniform([count, 1, 28, 28], rng: &rng)
    return try TensorDataset(inputs: images, labels: (0..<count).map { $0 % 3 })
}

private func tinyConfig(maxSteps: Int?, mix: ClassifierTrainingConfig.Mix = .cutmix) -> ClassifierTrainingConfig {
    var c = ClassifierTrainingConfig(model: "resnet_fmnist")
    (c.epochs, c.batchSize, c.lr, c.optimizer, c.mix, c.mixProb) = (3, 4, 1e-3, .adamp, mix, 1)
    (c.warmupEpochs, c.maxSteps, c.seed, c.workers, c.logEvery) = (1, maxSteps, 5, 0, 1)
    return c
}

private func trainer(_ config: ClassifierTrainingConfig, out: String) throws -> ClassifierTrainer {
    try ClassifierTrainer(config: config, train: try tinyDataset(), test: try tinyDataset(seed: 2, count: 6),
                          numClasses: 3, inChans: 1, trainTransform: nil, testTransform: nil, outDir: out)
}

private func readText(_ path: String) throws -> String {
    String(decoding: try FileIO.read(path), as: UTF8.self)
}

@Suite struct ClassifierTrainingTests {
    @Test func twoStepRunWritesCheckpointWeightsAndMetrics() throws {
        let out = try temporaryFolder() + "/run"
        let t = try trainer(tinyConfig(maxSteps: 2), out: out)
        var reports: [TrainingStepReport] = []
        let metrics = try t.run(progress: { reports.append($0) })
        #expect(t.step == 2 && t.epoch == 0)
        #expect(reports.map(\.step) == [1, 2] && reports.allSatisfy { $0.loss.isFinite && $0.imagesPerSecond > 0 })
        #expect(metrics.count == 1 && metrics[0].steps == 2 && !metrics[0].complete)
        #expect(metrics[0].testAccuracy >= 0 && metrics[0].testAccuracy <= 1 && metrics[0].testLoss.isFinite)

        let json = try JSONValue.parse(try readText(out + "/metrics.json"))
        #expect(json["model"]?.stringValue == "resnet_fmnist" && json["step"]?.numberValue == 2)
        let epochs = json["epochs"]?.arrayValue ?? []
        #expect(epochs.count == 1 && epochs[0]["train_loss"]?.numberValue == metrics[0].trainLoss)
        #expect(epochs[0]["test_acc"]?.numberValue == metrics[0].testAccuracy)

        let fresh = try ClassifierRegistry.make("resnet_fmnist", options: ClassifierOptions(numClasses: 3, inChans: 1))
        let progress = try Checkpoint.load(path: out + "/checkpoint.safetensors", model: fresh)
        #expect(progress.step == 2 && progress.extra["optimizer"] == "adamp" && progress.rngs["mix"] != nil)
        // The weights file is the trained state dict, loadable on its own.
        try fresh.load(path: out + "/resnet_fmnist.safetensors")
        let a = try t.model.stateDict().first { $0.0 == "fc.weight" }!.1.toArray(Float.self)
        #expect(try fresh.stateDict().first { $0.0 == "fc.weight" }!.1.toArray(Float.self) == a)
    }

    /// Stopping at step 2 (mid-epoch) and resuming to step 4 gives the same weights as 4 steps in one go.
    @Test func resumeContinuesStepCounterBitExactly() throws {
        let root = try temporaryFolder()
        let first = try trainer(tinyConfig(maxSteps: 2), out: root + "/a")
        try first.run()
        let resumed = try trainer(tinyConfig(maxSteps: 4), out: root + "/a")
        try resumed.resume()
        #expect(resumed.step == 2 && resumed.epoch == 0 && resumed.metrics.count == 1)
        var steps: [Int] = []
        let metrics = try resumed.run(progress: { steps.append($0.step) })
        #expect(steps == [3, 4] && resumed.step == 4 && resumed.epoch == 1)
        // Epoch 1's partial entry was replaced by the complete one; epoch 2 stopped after 1 step.
        #expect(metrics.map(\.epoch) == [1, 2] && metrics.map(\.complete) == [true, false] && metrics.map(\.steps) == [3, 1])

        let straight = try trainer(tinyConfig(maxSteps: 4), out: root + "/b")
        try straight.run()
        for ((k, x), (_, y)) in zip(resumed.model.stateDict(), straight.model.stateDict()) {
            #expect(try x.to(.float32).toArray(Float.self) == y.to(.float32).toArray(Float.self), "\(k) differs after resume")
        }
        // Nothing left: a resumed run at its step limit trains no further.
        let done = try trainer(tinyConfig(maxSteps: 4), out: root + "/a")
        try done.resume()
        try done.run()
        #expect(done.step == 4)
    }

    @Test(arguments: [ClassifierTrainingConfig.Mix.none, .mixup, .cutout])
    func otherMixingMethodsTrain(_ mix: ClassifierTrainingConfig.Mix) throws {
        var c = tinyConfig(maxSteps: 1, mix: mix)
        c.labelSmoothing = 0.1
        let t = try trainer(c, out: try temporaryFolder())
        let m = try t.run()
        #expect(t.step == 1 && m[0].trainLoss.isFinite && m[0].trainLoss > 0)
    }

    @Test func badInputsAreErrors() throws {
        let out = try temporaryFolder()
        func rejects(_ edit: (inout ClassifierTrainingConfig) -> Void, _ fragment: String) {
            var c = tinyConfig(maxSteps: 2)
            edit(&c)
            #expect { try trainer(c, out: out) } throws: { "\($0)".contains(fragment) }
        }
        rejects({ $0.mixAlpha = 0 }, "--mix-alpha")
        rejects({ $0.mixAlpha = -1; $0.mix = .mixup }, "--mix-alpha")
        rejects({ $0.mixProb = 1.5 }, "--mix-prob")
        rejects({ $0.warmupEpochs = 3 }, "--warmup-epochs")
        rejects({ $0.lr = .nan }, "--lr")
        rejects({ $0.labelSmoothing = 1 }, "--label-smoothing")
        rejects({ $0.batchSize = 1 }, "--batch-size")
        rejects({ $0.batchSize = 64 }, "fewer than one batch")
        rejects({ $0.model = "no_such_model" }, "unknown model")
        // --resume without a checkpoint, and with one of another optimizer.
        let t = try trainer(tinyConfig(maxSteps: 1), out: out)
        #expect { try t.resume() } throws: { "\($0)".contains("no checkpoint") }
        try t.run()
        var other = tinyConfig(maxSteps: 2)
        other.optimizer = .sgd
        let u = try trainer(other, out: out)
        #expect { try u.resume() } throws: { "\($0)".contains("not resnet_fmnist with sgd") }
        #expect(u.step == 0)
        // Examples of another channel count than the model's: an error from the first step, no trap.
        let rgb = try ClassifierTrainer(config: tinyConfig(maxSteps: 1), train: try tinyDataset(), test: nil, numClasses: 3,
                                        inChans: 3, trainTransform: nil, testTransform: nil, outDir: out + "/rgb")
        #expect(throws: VisionError.self) { try rgb.run() }
    }
}

@Suite struct LabelMapAnnotatorTests {
    /// A 2-class folder of 4 PNGs, a seeded resnet_fmnist (3 channels) saved as weights: the maps equal the
    /// top-k of the model's dense logits on the same transformed images, under ImageFolder-relative names.
    @Test func annotatesAFolderWithASeededModel() throws {
        let root = try temporaryFolder()
        var rng = RandomGenerator(seed: 3)
        #expect(mkdir(root + "/data", 0o755) == 0)
        for (c, name) in ["cat", "dog"].enumerated() {
            #expect(mkdir(root + "/data/" + name, 0o755) == 0)
            for i in 0..<2 {
                let pixels = (0..<(40 * 36 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 56) &+ UInt8(c * 40) }
                try saveImage(try Tensor(pixels, shape: [40, 36, 3]), path: root + "/data/\(name)/img\(i).png")
            }
        }
        let model = try ClassifierRegistry.make("resnet_fmnist", options: ClassifierOptions(numClasses: 4, inChans: 3, seed: 9))
        try model.save(path: root + "/w.safetensors")
        let loaded = try LabelMapAnnotator.loadClassifier(model: "resnet_fmnist", weights: root + "/w.safetensors")
        #expect(loaded.numClasses == 4)
        let folder = try ImageFolder(root: root + "/data")
        // resnet_fmnist's config has one-channel statistics: a 3-channel model needs the annotator to say so.
        #expect(throws: VisionError.self) { try LabelMapAnnotator.annotate(model: loaded, folder: folder, size: 32, k: 2) }
        // A 1-channel model reads the RGB images as grayscale.
        let gray = try ClassifierRegistry.make("resnet_fmnist", options: ClassifierOptions(numClasses: 4, inChans: 1, seed: 9))
        try gray.save(path: root + "/g.safetensors")
        let g = try LabelMapAnnotator.loadClassifier(model: "resnet_fmnist", weights: root + "/g.safetensors")
        let maps = try LabelMapAnnotator.annotate(model: g, folder: folder, size: 64, k: 2, batchSize: 3)
        #expect(maps.map(\.name) == ["cat/img0", "cat/img1", "dog/img0", "dog/img1"])
        #expect(maps.allSatisfy { $0.map.shape == [2, 2, 2, 2] })   // 64 / 32 = 2 positions per side
        let transform = try LabelMapAnnotator.transform(for: g, size: 64)
        var unused = RandomGenerator(seed: 0)
        let x = try transform.apply(image: try folder.example(at: 2).input, draws: &unused)
        let expected = try Autograd.noGrad { try LabelMaps.fromDenseLogits(try g.forwardDenseLogits(try x.unsqueeze(axis: 0)), k: 2) }
        #expect(try maps[2].map.toArray(Float.self) == expected.select(axis: 0, index: 0).toArray(Float.self))
        // Written and read back in VisionData's many-image format.
        try LabelMaps.saveAll(maps, path: root + "/maps.safetensors")
        let back = try LabelMaps.loadAll(path: root + "/maps.safetensors", numClasses: 4)
        #expect(back.map(\.name) == maps.map(\.name))
        #expect(throws: VisionError.self) { try LabelMapAnnotator.annotate(model: g, folder: folder, size: 64, k: 5) }
        #expect(throws: VisionError.self) { try LabelMapAnnotator.loadClassifier(model: "resnet18", weights: root + "/g.safetensors") }
    }

    @Test func keysDropTheRootAndExtension() {
        #expect(LabelMapAnnotator.key("/d/n01/n01_1.JPEG", root: "/d") == "n01/n01_1")
        #expect(LabelMapAnnotator.key("/d/a.b/c", root: "/d") == "a.b/c")
    }
}
