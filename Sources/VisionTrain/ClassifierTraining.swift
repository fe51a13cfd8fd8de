#if canImport(Glibc)
import Glibc
#endif
import VisionCore
import VisionData
import VisionModels
import VisionNN
import VisionOptim

/// The recipe of a classifier training run (`vc train`): model, optimizer, schedule, mixing, counters.
public struct ClassifierTrainingConfig: Sendable {
    public enum OptimizerKind: String, Sendable, CaseIterable { case sgd, adamw, sgdp, adamp }
    public enum Schedule: String, Sendable, CaseIterable { case cosine, step }
    public enum Mix: String, Sendable, CaseIterable { case none, cutmix, mixup, cutout }

    public var model: String
    public var epochs = 10
    public var batchSize = 128
    public var lr = 1e-3
    public var optimizer = OptimizerKind.adamp
    public var weightDecay = 1e-4
    public var schedule = Schedule.cosine
    public var warmupEpochs = 0
    public var mix = Mix.none
    /// Beta(alpha, alpha) of CutMix / Mixup (must be > 0 when used).
    public var mixAlpha = 1.0
    /// Probability that a batch is mixed (CutMix, Mixup) or cut (Cutout).
    public var mixProb = 1.0
    /// Side of Cutout's square hole; nil: half the image side.
    public var cutoutLength: Int?
    public var labelSmoothing = 0.0
    public var seed: UInt64 = 0
    /// Stop after this many optimizer steps in total (checkpoint written there), nil: run all epochs.
    public var maxSteps: Int?
    /// Evaluate on at most this many test examples (nil: all).
    public var evalLimit: Int?
    public var evalBatchSize = 256
    /// Loader threads (0: batches built in the training thread).
    public var workers = 1
    /// Progress callback every this many steps.
    public var logEvery = 50

    public init(model: String) { self.model = model }

    /// Checks the values a user types; each error names the option.
    public func validate() throws {
        func bad(_ s: String) -> VisionError { .invalidArgument(s) }
        guard !model.isEmpty else { throw bad("--model is empty") }
        guard epochs >= 1 else { throw bad("--epochs must be >= 1, got \(epochs)") }
        guard batchSize >= 1, batchSize <= 1 << 16 else { throw bad("--batch-size must be in 1...65536, got \(batchSize)") }
        guard lr.isFinite, lr > 0 else { throw bad("--lr must be a positive number, got \(lr)") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw bad("--weight-decay must be >= 0, got \(weightDecay)") }
        guard warmupEpochs >= 0 else { throw bad("--warmup-epochs must be >= 0, got \(warmupEpochs)") }
        if schedule == .cosine, warmupEpochs >= epochs {
            throw bad("--warmup-epochs (\(warmupEpochs)) must be smaller than --epochs (\(epochs))")
        }
        if schedule == .step, warmupEpochs > 0 { throw bad("--warmup-epochs applies to --schedule cosine only") }
        if mix == .cutmix || mix == .mixup {
            guard mixAlpha.isFinite, mixAlpha > 0 else { throw bad("--mix-alpha must be > 0 for \(mix.rawValue), got \(mixAlpha)") }
            guard batchSize >= 2 else { throw bad("--mix \(mix.rawValue) pairs images within a batch: --batch-size must be >= 2") }
        }
        guard mixProb.isFinite, (0...1).contains(mixProb) else { throw bad("--mix-prob must be in [0, 1], got \(mixProb)") }
        if let c = cutoutLength, c < 1 { throw bad("--cutout-length must be >= 1, got \(c)") }
        guard labelSmoothing.isFinite, labelSmoothing >= 0, labelSmoothing < 1 else {
            throw bad("--label-smoothing must be in [0, 1), got \(labelSmoothing)")
        }
        if let m = maxSteps, m < 1 { throw bad("--max-steps must be >= 1, got \(m)") }
        if let e = evalLimit, e < 1 { throw bad("--eval-limit must be >= 1, got \(e)") }
        guard evalBatchSize >= 1, (0...64).contains(workers), logEvery >= 1 else {
            throw bad("eval batch size and log interval must be >= 1 and workers in 0...64")
        }
    }
}

/// One line of the progress display.
public struct TrainingStepReport: Sendable {
    public var epoch: Int, step: Int, stepInEpoch: Int, stepsPerEpoch: Int, totalSteps: Int
    /// Running means over the epoch so far.
    public var loss: Double, accuracy: Double
    public var imagesPerSecond: Double
    /// Seconds left for the remaining steps at this run's pace (evaluation not included).
    public var eta: Double
    public var lr: Double
}

/// Metrics of one epoch (or of the part of an epoch a `maxSteps` run covered).
public struct EpochMetrics: Sendable, Equatable {
    public var epoch: Int
    public var steps: Int
    public var complete: Bool
    public var trainLoss: Double, trainAccuracy: Double
    public var testLoss: Double, testAccuracy: Double
    public var seconds: Double
    public var imagesPerSecond: Double

    var json: JSONValue {
        .object([("epoch", .number(Double(epoch))), ("steps", .number(Double(steps))), ("complete", .bool(complete)),
                 ("train_loss", num(trainLoss)), ("train_acc", num(trainAccuracy)),
                 ("test_loss", num(testLoss)), ("test_acc", num(testAccuracy)),
                 ("time_s", num(seconds)), ("images_per_s", num(imagesPerSecond))])
    }

    init(epoch: Int, steps: Int, complete: Bool, trainLoss: Double, trainAccuracy: Double, testLoss: Double,
         testAccuracy: Double, seconds: Double, imagesPerSecond: Double) {
        (self.epoch, self.steps, self.complete) = (epoch, steps, complete)
        (self.trainLoss, self.trainAccuracy, self.testLoss, self.testAccuracy) = (trainLoss, trainAccuracy, testLoss, testAccuracy)
        (self.seconds, self.imagesPerSecond) = (seconds, imagesPerSecond)
    }

    init(json: JSONValue) throws {
        func n(_ k: String) throws -> Double {
            guard let v = json[k]?.numberValue else { throw VisionError.format("metrics: entry without '\(k)'") }
            return v
        }
        guard case .bool(let complete)? = json["complete"] else { throw VisionError.format("metrics: entry without 'complete'") }
        self.init(epoch: Int(try n("epoch")), steps: Int(try n("steps")), complete: complete,
                  trainLoss: try n("train_loss"), trainAccuracy: try n("train_acc"), testLoss: try n("test_loss"),
                  testAccuracy: try n("test_acc"), seconds: try n("time_s"), imagesPerSecond: try n("images_per_s"))
    }
}

/// NaN/inf are not JSON numbers; they are written as null-like strings instead of corrupting the file.
private func num(_ v: Double) -> JSONValue { v.isFinite ? .number(v) : .string("\(v)") }

/// What the loop needs of an optimizer (every `Optimizer<Options>` conforms).
public protocol TrainableOptimizer: CheckpointableOptimizer, LearningRateControlled {
    func step() throws
}

extension Optimizer: TrainableOptimizer {}

/// The training loop behind `vc train`: a registry classifier trained on a `Dataset` with the chosen optimizer,
/// per-iteration LR schedule and mixing, evaluated after every epoch, with an atomic checkpoint (weights,
/// optimizer, scheduler, mixing generator, counters, metrics so far) after every epoch and when `maxSteps`
/// stops a run, so that `resume` continues bit for bit and a run that dies keeps its last checkpoint.
public final class ClassifierTrainer {
    public let config: ClassifierTrainingConfig
    public let model: ImageClassifier
    public let trainLoader: DataLoader
    public let testLoader: DataLoader?
    public let numClasses: Int
    public let outDir: String
    let optimizer: TrainableOptimizer
    let scheduler: LRScheduler
    public private(set) var step = 0
    public private(set) var epoch = 0
    /// Draws of the mixing augmentations (saved in the checkpoint).
    var mixRandom: RandomGenerator
    public private(set) var metrics: [EpochMetrics] = []

    public var stepsPerEpoch: Int { trainLoader.batchCount }
    public var totalSteps: Int { min(config.maxSteps ?? Int.max, config.epochs * stepsPerEpoch) }
    public var checkpointPath: String { outDir + "/checkpoint.safetensors" }
    public var metricsPath: String { outDir + "/metrics.json" }
    public var weightsPath: String { outDir + "/\(config.model).safetensors" }

    /// `train` examples are float32 [C, H, W] of one size after `trainTransform`; `test` (optional) after
    /// `testTransform`. Errors: invalid config, unknown model, a training set smaller than one batch.
    public init(config: ClassifierTrainingConfig, train: any Dataset, test: (any Dataset)?, numClasses: Int,
                inChans: Int, trainTransform: (any Transform)?, testTransform: (any Transform)?, outDir: String) throws {
        try config.validate()
        guard numClasses >= 2 else { throw VisionError.invalidArgument("training needs at least 2 classes, got \(numClasses)") }
        guard train.count >= config.batchSize else {
            throw VisionError.invalidArgument("the training set has \(train.count) examples, fewer than one batch of \(config.batchSize) (the last partial batch is dropped)")
        }
        self.config = config
        self.numClasses = numClasses
        self.outDir = outDir
        model = try ClassifierRegistry.make(config.model, options: ClassifierOptions(numClasses: numClasses, inChans: inChans, seed: config.seed))
        // drop_last: mixing needs pairs, and equal batches keep BatchNorm statistics sane.
        trainLoader = try DataLoader(train, batchSize: config.batchSize, shuffle: true, dropLast: true, seed: config.seed,
                                     workers: config.workers, transform: trainTransform)
        if let test, test.count > 0 {
            let limited: any Dataset = config.evalLimit.map { $0 < test.count ? SubsetDataset(base: test, count: $0) : test } ?? test
            testLoader = try DataLoader(limited, batchSize: config.evalBatchSize, workers: config.workers, transform: testTransform)
        } else {
            testLoader = nil
        }
        let params = model.trainableParameters()
        let (lr, wd) = (config.lr, config.weightDecay)
        switch config.optimizer {
        case .sgd: optimizer = try SGD(parameters: params, lr: lr, momentum: 0.9, weightDecay: wd, nesterov: true)
        case .adamw: optimizer = try AdamW(parameters: params, lr: lr, weightDecay: wd)
        case .sgdp: optimizer = try SGDP(parameters: params, lr: lr, momentum: 0.9, weightDecay: wd, nesterov: true)
        case .adamp: optimizer = try AdamP(parameters: params, lr: lr, weightDecay: wd)
        }
        // Stepped every iteration; lengths in epochs.
        let spe = trainLoader.batchCount
        switch config.schedule {
        case .cosine:
            scheduler = try WarmupCosineLR(optimizer, warmup: config.warmupEpochs, total: config.epochs,
                                           warmupStartFactor: config.warmupEpochs > 0 ? 0.01 : 1, minLR: 0, stepsPerEpoch: spe)
        case .step:
            scheduler = try StepLR(optimizer, stepSize: max(1, config.epochs / 3), gamma: 0.1, stepsPerEpoch: spe)
        }
        mixRandom = RandomGenerator(seed: config.seed ^ 0x6D69_7869_6E67)   // "mixing": independent of the loader's streams
    }

    /// Restores `checkpointPath`. Errors name a checkpoint of another model or optimizer, or a missing file.
    public func resume() throws {
        guard access(checkpointPath, R_OK) == 0 else {
            throw VisionError.io("--resume: no checkpoint at \(checkpointPath)")
        }
        let meta = try Safetensors.load(path: checkpointPath).metadata.first { $0.0 == Checkpoint.metadataKey }
            .map { try JSONValue.parse($0.1) }
        let saved = (meta?["extra"]?["model"]?.stringValue, meta?["extra"]?["optimizer"]?.stringValue)
        guard saved.0 == config.model, saved.1 == config.optimizer.rawValue else {
            throw VisionError.invalidArgument("\(checkpointPath) was written for \(saved.0 ?? "an unknown model") with \(saved.1 ?? "an unknown optimizer"), not \(config.model) with \(config.optimizer.rawValue)")
        }
        let progress = try Checkpoint.load(path: checkpointPath, model: model, optimizer: optimizer, scheduler: scheduler)
        var restored: [EpochMetrics] = []
        if let text = progress.extra["metrics"], case .array(let items) = try JSONValue.parse(text) {
            restored = try items.map { try EpochMetrics(json: $0) }
        }
        (step, epoch, metrics) = (progress.step, progress.epoch, restored)
        if let g = progress.rngs["mix"] { mixRandom = g }
    }

    /// Trains until `epochs` or `maxSteps`; returns the metrics of every epoch so far (resumed ones included).
    @discardableResult
    public func run(progress: (TrainingStepReport) -> Void = { _ in },
                    epochDone: (EpochMetrics) -> Void = { _ in }) throws -> [EpochMetrics] {
        try makeDirectories(outDir)
        let total = totalSteps
        let runStart = now(), runStartStep = step
        while epoch < config.epochs && step < total {
            let e = epoch
            let first = step - e * stepsPerEpoch          // > 0 when resuming inside an epoch
            let last = min(stepsPerEpoch, total - e * stepsPerEpoch)
            guard first >= 0, first < last else { throw VisionError.format("checkpoint step \(step) does not fit epoch \(e)") }
            model.train()
            var lossSum = 0.0, correct = 0, seen = 0
            let t0 = now()
            // Whole epochs use the prefetching iterator; a resumed partial epoch rebuilds its batches by index.
            let it: EpochIterator? = first == 0 ? trainLoader.epoch(e) : nil
            for b in first..<last {
                guard let batch = try it.map({ try $0.next() }) ?? trainLoader.batch(b, epoch: e) else { break }
                let (loss, hits) = try trainStep(batch)
                lossSum += loss * Double(batch.labels.count)
                correct += hits
                seen += batch.labels.count
                step += 1
                try scheduler.step()
                if step % config.logEvery == 0 || b == first || b == last - 1 {
                    let elapsed = now() - runStart, done = step - runStartStep
                    progress(TrainingStepReport(epoch: e, step: step, stepInEpoch: b + 1, stepsPerEpoch: stepsPerEpoch,
                                                totalSteps: total, loss: lossSum / Double(seen),
                                                accuracy: Double(correct) / Double(seen),
                                                imagesPerSecond: Double(seen) / max(now() - t0, 1e-9),
                                                eta: elapsed / Double(done) * Double(total - step),
                                                lr: optimizer.learningRates.first ?? 0))
                }
            }
            let seconds = now() - t0
            let complete = step == (e + 1) * stepsPerEpoch
            if complete { epoch += 1 }
            let (testLoss, testAcc) = try evaluate()
            let m = EpochMetrics(epoch: e + 1, steps: step - e * stepsPerEpoch, complete: complete,
                                 trainLoss: lossSum / Double(max(seen, 1)), trainAccuracy: Double(correct) / Double(max(seen, 1)),
                                 testLoss: testLoss, testAccuracy: testAcc, seconds: seconds,
                                 imagesPerSecond: Double(seen) / max(seconds, 1e-9))
            // A resumed partial epoch replaces the entry written when it stopped.
            metrics.removeAll { $0.epoch == m.epoch }
            metrics.append(m)
            try save()
            epochDone(m)
        }
        return metrics
    }

    /// One optimizer step on a batch: returns the loss and the number of argmax hits on the batch's labels.
    func trainStep(_ batch: Batch) throws -> (Double, Int) {
        var inputs = batch.inputs
        var soft: Tensor? = nil
        let ls = config.labelSmoothing
        switch config.mix {
        case .none: break
        case .cutmix:
            let r = try CutMix(alpha: config.mixAlpha, prob: config.mixProb, numClasses: numClasses, labelSmoothing: ls)(inputs, labels: batch.labels, draws: &mixRandom)
            (inputs, soft) = (r.images, r.targets)
        case .mixup:
            let r = try Mixup(alpha: config.mixAlpha, prob: config.mixProb, numClasses: numClasses, labelSmoothing: ls)(inputs, labels: batch.labels, draws: &mixRandom)
            (inputs, soft) = (r.images, r.targets)
        case .cutout:
            // Cutout has no probability of its own: one uniform per batch decides, as CutMix's r < prob.
            if mixRandom.uniform() < config.mixProb {
                let side = config.cutoutLength ?? max(1, inputs.shape[inputs.rank - 1] / 2)
                inputs = try Cutout(length: side)(inputs, labels: batch.labels, numClasses: numClasses, draws: &mixRandom).images
            }
        }
        model.zeroGrad()
        let logits = try model(inputs)
        let loss = try soft.map { try Loss.crossEntropy(logits, softTarget: $0) }
            ?? Loss.crossEntropy(logits, target: batch.labels, labelSmoothing: ls)
        try loss.backward()
        try optimizer.step()
        let value = try loss.item()
        guard value.isFinite else {
            throw VisionError.invalidArgument("training diverged at step \(step + 1): loss \(value) (lower --lr?); the last checkpoint is kept")
        }
        return (value, try hits(logits, batch.labels))
    }

    /// Test loss and accuracy (NaN, NaN without a test set).
    public func evaluate() throws -> (loss: Double, accuracy: Double) {
        guard let testLoader else { return (.nan, .nan) }
        model.eval()
        defer { model.train() }
        var lossSum = 0.0, correct = 0, seen = 0
        try Autograd.noGrad {
            try testLoader.forEachBatch(epoch: 0) { batch in
                let logits = try model(batch.inputs)
                let n = batch.labels.count
                lossSum += try Loss.crossEntropy(logits, target: batch.labels).item() * Double(n)
                correct += try hits(logits, batch.labels)
                seen += n
            }
        }
        return (lossSum / Double(seen), Double(correct) / Double(seen))
    }

    /// Checkpoint, weights (plain state dict, for `vc classify --weights` / `vc relabel-maps`) and metrics.json.
    public func save() throws {
        let history = JSONValue.array(metrics.map(\.json))
        let progress = TrainingProgress(step: step, epoch: epoch, rngs: ["mix": mixRandom],
                                        extra: ["model": config.model, "optimizer": config.optimizer.rawValue,
                                                "num_classes": String(numClasses), "metrics": history.serialized])
        try Checkpoint.save(path: checkpointPath, model: model, optimizer: optimizer, scheduler: scheduler, progress: progress)
        try model.save(path: weightsPath)
        let doc = JSONValue.object([("model", .string(config.model)), ("optimizer", .string(config.optimizer.rawValue)),
                                    ("batch_size", .number(Double(config.batchSize))), ("lr", .number(config.lr)),
                                    ("mix", .string(config.mix.rawValue)), ("seed", .number(Double(config.seed))),
                                    ("step", .number(Double(step))), ("epochs", history)])
        let bytes = Array((doc.serialized + "\n").utf8)
        try bytes.withUnsafeBytes { try FileIO.writeAtomically(metricsPath, $0) }
    }
}

/// Number of rows of `logits` [N, K] whose argmax equals the label.
private func hits(_ logits: Tensor, _ labels: Tensor) throws -> Int {
    let predicted = try argmax(logits.detach(), axis: 1).toArray(Int64.self)
    let truth = try labels.to(.int64).toArray(Int64.self)
    return zip(predicted, truth).filter { $0 == $1 }.count
}

/// The first `count` examples of a dataset (evaluation on part of a test set).
struct SubsetDataset: Dataset {
    let base: any Dataset
    let count: Int
    func example(at index: Int) throws -> Example { try base.example(at: index) }
}

private func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Creates `path` and its missing parents.
func makeDirectories(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") where !part.isEmpty {
        prefix += "/" + part
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw VisionError.io("cannot create folder '\(prefix)': \(String(cString: strerror(errno)))")
        }
    }
}
