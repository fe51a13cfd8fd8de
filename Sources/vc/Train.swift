import ArgumentParser
import VisionCore
import VisionData
import VisionModels
import VisionTrain
#if canImport(Glibc)
import Glibc
#endif

/// `vc train`: trains a registry classifier on Fashion-MNIST or an ImageFolder tree (the loop is
/// VisionTrain's `ClassifierTrainer`; this command only parses options and prints progress).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classifier on Fashion-MNIST or an image folder (checkpoint every epoch, metrics.json).")

    @Option(help: "Registry model name (resnet_fmnist suits 28x28 grayscale; see `vc models`).")
    var model: String = "resnet_fmnist"

    @Option(help: "fashion-mnist, or a folder with one sub-folder per class (or with train/ and val/ or test/ inside).")
    var dataset: String = "fashion-mnist"

    @Option(help: "Where the Fashion-MNIST IDX files are (Debian's dataset-fashion-mnist).")
    var dataDir: String = FashionMNIST.defaultRoot

    @Option(help: "Image side for folder datasets (default: the model's input size).")
    var imageSize: Int?

    @Option(help: "Epochs.") var epochs: Int = 10
    @Option(help: "Images per batch (the last partial batch is dropped).") var batchSize: Int = 128
    @Option(help: "Peak learning rate.") var lr: Double = 2e-3
    @Option(help: "sgd, adamw, sgdp or adamp (SGD variants: momentum 0.9, Nesterov).") var optimizer: String = "adamp"
    @Option(help: "Weight decay.") var weightDecay: Double = 1e-4
    @Option(help: "cosine (per-iteration, with --warmup-epochs) or step (x0.1 every epochs/3).") var schedule: String = "cosine"
    @Option(help: "Linear warmup epochs of the cosine schedule.") var warmupEpochs: Int = 0
    @Option(help: "none, cutmix, mixup or cutout.") var mix: String = "none"
    @Option(help: "Beta(alpha, alpha) of CutMix / Mixup (> 0).") var mixAlpha: Double = 1
    @Option(help: "Probability that a batch is mixed (or cut).") var mixProb: Double = 0.5
    @Option(help: "Side of Cutout's hole (default: half the image).") var cutoutLength: Int?
    @Option(help: "Label smoothing epsilon.") var labelSmoothing: Double = 0
    @Option(help: "Seed of the weights, data order, augmentations and mixing.") var seed: UInt64 = 0
    @Option(help: "Output folder: checkpoint.safetensors, <model>.safetensors, metrics.json.") var out: String = "runs/train"
    @Flag(help: "Continue from <out>/checkpoint.safetensors (weights, optimizer, schedule, counters, generators).") var resume = false
    @Option(help: "Stop after this many steps in total (a short run; a checkpoint is written there).") var maxSteps: Int?
    @Option(help: "Evaluate on at most this many test images (default: all).") var evalLimit: Int?
    @Option(help: "Print a progress line every N steps.") var logEvery: Int = 50
    @Option(help: "Data loader threads.") var workers: Int = 1
    @Option(help: "Threads for VisionCore and OpenBLAS (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { try Threading.setThreadCount(threads) }
        guard let opt = ClassifierTrainingConfig.OptimizerKind(rawValue: optimizer) else {
            throw ValidationError("--optimizer must be sgd, adamw, sgdp or adamp, got \(optimizer)")
        }
        guard let sched = ClassifierTrainingConfig.Schedule(rawValue: schedule) else {
            throw ValidationError("--schedule must be cosine or step, got \(schedule)")
        }
        guard let mixKind = ClassifierTrainingConfig.Mix(rawValue: mix) else {
            throw ValidationError("--mix must be none, cutmix, mixup or cutout, got \(mix)")
        }
        var config = ClassifierTrainingConfig(model: model)
        (config.epochs, config.batchSize, config.lr, config.optimizer, config.weightDecay) = (epochs, batchSize, lr, opt, weightDecay)
        (config.schedule, config.warmupEpochs, config.mix, config.mixAlpha, config.mixProb) = (sched, warmupEpochs, mixKind, mixAlpha, mixProb)
        (config.cutoutLength, config.labelSmoothing, config.seed, config.maxSteps) = (cutoutLength, labelSmoothing, seed, maxSteps)
        (config.evalLimit, config.logEvery, config.workers) = (evalLimit, logEvery, workers)
        try config.validate()   // before any dataset is read

        let data = try TrainingData.load(dataset: dataset, dataDir: dataDir, model: model, imageSize: imageSize)
        let trainer = try ClassifierTrainer(config: config, train: data.train, test: data.test, numClasses: data.numClasses,
                                            inChans: data.inChans, trainTransform: data.trainTransform,
                                            testTransform: data.testTransform, outDir: out)
        if resume {
            try trainer.resume()
            print("resumed \(trainer.checkpointPath): epoch \(trainer.epoch), step \(trainer.step)")
        }
        print("training \(model) (\(trainer.model.parameterCount()) parameters) on \(data.description): \(data.train.count) train / \(data.test?.count ?? 0) test images, batch \(batchSize), \(trainer.stepsPerEpoch) steps per epoch, \(optimizer) lr \(lr), \(schedule) schedule, mix \(mix), \(Threading.threadCount) threads")
        if trainer.step >= trainer.totalSteps {
            print("nothing to do: the checkpoint is at step \(trainer.step) of \(trainer.totalSteps)")
            return
        }
        try trainer.run(progress: { r in
            print("[epoch \(r.epoch + 1)/\(epochs)][step \(r.step)/\(r.totalSteps)] loss \(fmt(r.loss)) acc \(fmt(r.accuracy * 100, 2))% | lr \(fmt(r.lr, 6)) | \(fmt(r.imagesPerSecond, 1)) img/s | ETA \(duration(r.eta))")
            fflush(nil)
        }, epochDone: { m in
            print("epoch \(m.epoch)\(m.complete ? "" : " (stopped at step \(m.steps))"): train loss \(fmt(m.trainLoss)) acc \(fmt(m.trainAccuracy * 100, 2))% | test loss \(fmt(m.testLoss)) acc \(fmt(m.testAccuracy * 100, 2))% | \(fmt(m.seconds, 1)) s, \(fmt(m.imagesPerSecond, 1)) img/s | wrote \(trainer.checkpointPath)")
            fflush(nil)
        })
        print("metrics: \(trainer.metricsPath); weights: \(trainer.weightsPath)")
    }
}

/// The train/test datasets and transforms of `vc train`'s --dataset.
struct TrainingData {
    var train: any Dataset
    var test: (any Dataset)?
    var numClasses: Int
    var inChans: Int
    var trainTransform: (any Transform)?
    var testTransform: (any Transform)?
    var description: String

    static func load(dataset: String, dataDir: String, model: String, imageSize: Int?) throws -> TrainingData {
        if dataset == "fashion-mnist" {
            // The two splits; a missing or corrupt file is an .io/.format error naming it and the package.
            let train = try FashionMNIST(root: dataDir, split: .train), test = try FashionMNIST(root: dataDir, split: .test)
            let norm = try Normalize(mean: SmallClassifiers.fashionMNISTMean, std: SmallClassifiers.fashionMNISTStd)
            return TrainingData(train: train, test: test, numClasses: 10, inChans: 1,
                                trainTransform: Compose([try RandomHorizontalFlip(), norm]), testTransform: norm,
                                description: "Fashion-MNIST (\(dataDir))")
        }
        guard FileSystemCheck.isDirectory(dataset) else {
            throw ValidationError("--dataset must be fashion-mnist or a folder of class folders; '\(dataset)' is neither")
        }
        // DIR/train + DIR/val (or test) when present; otherwise DIR is the training set and is also evaluated.
        let hasSplit = FileSystemCheck.isDirectory(dataset + "/train")
        let trainRoot = hasSplit ? dataset + "/train" : dataset
        let testRoot = hasSplit ? ["val", "test"].map { dataset + "/" + $0 }.first(where: FileSystemCheck.isDirectory) : dataset
        let train = try ImageFolder(root: trainRoot)
        let test = try testRoot.map { try ImageFolder(root: $0) }
        if let test, test.classes != train.classes {
            throw VisionError.format("\(testRoot!) has classes \(test.classes), the training folder \(train.classes)")
        }
        let size = try imageSize ?? ClassifierRegistry.lookup(model).config.inputSize.last ?? 224
        let norm = try Normalize(mean: Normalize.imagenet.mean, std: Normalize.imagenet.std)
        let trainT = Compose([try RandomResizedCrop(size: size), try RandomHorizontalFlip(), norm])
        let testT = Compose([try Resize(.shorter(size)), try CenterCrop(size: size), norm])
        return TrainingData(train: train, test: test, numClasses: train.classes.count, inChans: 3,
                            trainTransform: trainT, testTransform: testT,
                            description: "\(trainRoot) (\(train.classes.count) classes\(hasSplit ? "" : "; evaluated on the same folder"))")
    }
}

enum FileSystemCheck {
    static func isDirectory(_ path: String) -> Bool {
        var s = stat()
        return stat(path, &s) == 0 && (s.st_mode & S_IFMT) == S_IFDIR
    }
}

private func fmt(_ v: Double, _ digits: Int = 4) -> String {
    guard v.isFinite else { return "\(v)" }
    let p = pow(10, Double(digits))
    return "\((v * p).rounded() / p)"
}

private func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
}
