import Testing
import VisionCore
import VisionNN
import VisionOptim
@testable import VisionTrain

final class SmallNet: Module {
    let conv: Conv2d, bn: BatchNorm2d, drop: Dropout, fc: Linear

    init(seed: UInt64, classes: Int = 3) throws {
        var rng = RandomGenerator(seed: seed)
        conv = try Conv2d(3, 6, kernelSize: (3, 3), padding: (1, 1), rng: &rng)
        bn = try BatchNorm2d(6)
        drop = try Dropout(p: 0.2, seed: seed &+ 1)
        fc = try Linear(6, classes, rng: &rng)
        super.init()
        register("conv", conv); register("bn", bn); register("drop", drop); register("fc", fc)
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        let h = try relu(try bn(try conv(x)))
        return try fc(try drop(try mean(h, axes: [2, 3])))
    }
}

/// One training run: a model, AdamP with a warmup-cosine schedule, and a data generator.
final class Run {
    let model: SmallNet
    let optimizer: AdamP
    let scheduler: WarmupCosineLR
    var data: RandomGenerator
    var step = 0

    init(seed: UInt64) throws {
        model = try SmallNet(seed: seed)
        optimizer = try AdamP(parameters: model.trainableParameters(), lr: 0.01, weightDecay: 1e-4, nesterov: true)
        scheduler = try WarmupCosineLR(optimizer, warmup: 3, total: 20)
        data = RandomGenerator(seed: seed &+ 100)
    }

    func train(steps: Int) throws {
        for _ in 0..<steps {
            let x = try Tensor.normal([4, 3, 6, 6], rng: &data)
            let y = try Tensor((0..<4).map { _ in Int64(data.next() % 3) }, shape: [4])
            optimizer.zeroGrad()
            try Loss.crossEntropy(try model(x), target: y, labelSmoothing: 0.1).backward()
            try optimizer.step()
            try scheduler.step()
            step += 1
        }
    }

    var progress: TrainingProgress { TrainingProgress(step: step, epoch: 0, rngs: ["data": data]) }
}

@Suite struct CheckpointTests {
    static func path() -> String { "/tmp/vc-ckpt-\(UInt64.random(in: 0..<UInt64.max)).safetensors" }

    @Test func resumingContinuesBitForBit() throws {
        let straight = try Run(seed: 1)
        try straight.train(steps: 8)

        let first = try Run(seed: 1)
        try first.train(steps: 4)
        let path = Self.path()
        try Checkpoint.save(path: path, model: first.model, optimizer: first.optimizer, scheduler: first.scheduler,
                            progress: first.progress)
        // A fresh run with other initial weights and generators, restored from the file.
        let resumed = try Run(seed: 99)
        let progress = try Checkpoint.load(path: path, model: resumed.model, optimizer: resumed.optimizer,
                                           scheduler: resumed.scheduler)
        #expect(progress.step == 4)
        resumed.data = try #require(progress.rngs["data"])
        resumed.step = progress.step
        try resumed.train(steps: 4)

        for ((name, a), (_, b)) in zip(straight.model.stateDict(), resumed.model.stateDict()) {
            #expect(try a.to(.float32).toArray(Float.self) == b.to(.float32).toArray(Float.self), "\(name) differs")
        }
        #expect(straight.optimizer.learningRates == resumed.optimizer.learningRates)
    }

    @Test func wrongModelOrCorruptFileChangesNothing() throws {
        let run = try Run(seed: 2)
        try run.train(steps: 2)
        let path = Self.path()
        try Checkpoint.save(path: path, model: run.model, optimizer: run.optimizer, scheduler: run.scheduler, progress: run.progress)

        // Another model (5 classes): the error names the key and both shapes; nothing is changed.
        let other = try SmallNet(seed: 3, classes: 5)
        let before = try other.stateDict().map { try $0.1.to(.float32).toArray(Float.self) }
        do {
            _ = try Checkpoint.load(path: path, model: other)
            Issue.record("loaded a checkpoint of another model")
        } catch let e as VisionError {
            #expect(e.message.contains("fc.weight: checkpoint [3, 6], model [5, 6]"))
        }
        #expect(try other.stateDict().map { try $0.1.to(.float32).toArray(Float.self) } == before)

        // The right model with an optimizer over other parameters: rolled back, model untouched.
        let target = try Run(seed: 4)
        let weightsBefore = try target.model.stateDict().map { try $0.1.to(.float32).toArray(Float.self) }
        let foreign = try AdamP(parameters: [("w", try Tensor.zeros([2]).requiringGrad())])
        #expect(throws: VisionError.self) { try Checkpoint.load(path: path, model: target.model, optimizer: foreign) }
        #expect(try target.model.stateDict().map { try $0.1.to(.float32).toArray(Float.self) } == weightsBefore)

        // Truncated and non-checkpoint files.
        let bytes = try FileIO.read(path)
        let cut = Self.path()
        try Array(bytes[..<(bytes.count / 2)]).withUnsafeBytes { try FileIO.writeAtomically(cut, $0) }
        #expect(throws: VisionError.self) { try Checkpoint.load(path: cut, model: target.model) }
        let plain = Self.path()
        try target.model.save(path: plain)
        #expect(throws: VisionError.self) { try Checkpoint.load(path: plain, model: target.model) }
    }

    @Test func savingOverAnExistingCheckpointIsAtomic() throws {
        let run = try Run(seed: 5)
        let path = Self.path()
        try Checkpoint.save(path: path, model: run.model, progress: run.progress)
        try run.train(steps: 1)
        try Checkpoint.save(path: path, model: run.model, optimizer: run.optimizer, progress: run.progress)
        let fresh = try Run(seed: 6)
        #expect(try Checkpoint.load(path: path, model: fresh.model, optimizer: fresh.optimizer).step == 1)
    }
}
