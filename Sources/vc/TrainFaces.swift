import ArgumentParser
import VisionCore
import VisionModels
import VisionNN
import VisionOptim
import VisionTrain
#if canImport(Glibc)
import Glibc
#endif

extension Optimizer: FaceTrainingOptimizer {}

/// `vc train-faces`: trains EXTD on WIDER FACE as the official train.py (SGD with momentum 0.9 and weight decay
/// 5e-4, learning rate x0.1 at steps 240k and 360k, loss = loss_l + loss_c, the S3FD augmentations), writing a
/// resumable checkpoint and the weights (official keys, for `vc detect-faces --weights`) after every epoch.
struct TrainFaces: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-faces",
        abstract: "Train the EXTD face detector on WIDER FACE (or data in its annotation format).")

    @Option(help: "Folder the image paths of the annotation file are relative to (WIDER_train/images).")
    var data: String

    @Option(help: "Annotations in the wider_face_train_bbx_gt.txt format.")
    var annotations: String

    @Option(help: "Model: extd_32, extd_48 or extd_64.")
    var model: String = "extd_32"

    @Option(help: "Start from these weights (safetensors, official keys) instead of a fresh xavier initialization.")
    var weights: String?

    @Option(help: "Epochs to train (train.py: 600).")
    var epochs: Int = 600

    @Option(help: "Images per batch (train.py: 4; its README used 16).")
    var batchSize: Int = 4

    @Option(help: "Learning rate (x0.1 at steps 240000 and 360000).")
    var lr: Double = 1e-3

    @Option(help: "sgd (momentum 0.9, as train.py) or adamp; both with weight decay 5e-4.")
    var optimizer: String = "sgd"

    @Option(help: "Folder for checkpoint.safetensors and <model>.safetensors.")
    var out: String = "runs/extd"

    @Option(help: "Seed of the initialization, the batch order and the augmentations.")
    var seed: UInt64 = 0

    @Option(help: "Stop after this many steps in total (train.py: 480000).")
    var maxSteps: Int = 480_000

    @Option(help: "Network input side of the augmentation's final resize (EXTD: 640).")
    var inputSize: Int = 640

    @Flag(help: "Continue from <out>/checkpoint.safetensors (weights, optimizer, counters and generators).")
    var resume = false

    @Option(help: "Threads for VisionCore and OpenBLAS (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard EXTDVariant(name: model) != nil else { throw ValidationError("unknown model '\(model)': use extd_32, extd_48 or extd_64") }
        guard ["sgd", "adamp"].contains(optimizer) else { throw ValidationError("--optimizer must be sgd or adamp, got \(optimizer)") }
        guard epochs >= 1, batchSize >= 1, maxSteps >= 1 else { throw ValidationError("--epochs, --batch-size and --max-steps must be >= 1") }
        guard lr.isFinite, lr > 0 else { throw ValidationError("--lr must be positive, got \(lr)") }
        guard (32...2048).contains(inputSize) else { throw ValidationError("--input-size must be in 32...2048, got \(inputSize)") }
        if resume && weights != nil { throw ValidationError("--resume continues from the checkpoint's weights; drop --weights") }
    }

    func run() throws {
        if let threads { try Threading.setThreadCount(threads) }
        guard let variant = EXTDVariant(name: model) else { throw ValidationError("unknown model '\(model)'") }
        var config = S3FDAugmentationConfig()
        config.resizeWidth = inputSize; config.resizeHeight = inputSize
        let entries = try WiderFaceAnnotations.load(path: annotations)
        let dataset = try WiderFaceTrainingSet(imagesRoot: data, annotations: entries, augmentation: S3FDAugmentation(config: config))
        let net = try EXTDNet(variant: variant, seed: seed)
        let params = net.trainableParameters()
        let opt: CheckpointableOptimizer & FaceTrainingOptimizer & LearningRateControlled = optimizer == "sgd"
            ? try SGD(parameters: params, lr: lr, momentum: 0.9, weightDecay: 5e-4)
            : try AdamP(parameters: params, lr: lr, weightDecay: 5e-4)
        let trainer = try EXTDFaceTrainer(net: net, data: dataset, batchSize: batchSize, seed: seed)
        let checkpoint = out + "/checkpoint.safetensors", weightsOut = out + "/\(variant.name).safetensors"
        try makeParentDirectory(checkpoint)
        if resume {
            // Name a checkpoint of another variant or optimizer before trying to load it.
            let meta = try Safetensors.load(path: checkpoint).metadata.first { $0.0 == Checkpoint.metadataKey }
                .map { try JSONValue.parse($0.1) }
            let saved = (meta?["extra"]?["model"]?.stringValue, meta?["extra"]?["optimizer"]?.stringValue)
            guard saved.0 == variant.name, saved.1 == optimizer else {
                throw ValidationError("\(checkpoint) was written for \(saved.0 ?? "an unknown model") with \(saved.1 ?? "an unknown optimizer"), not \(variant.name) with \(optimizer)")
            }
            let progress = try Checkpoint.load(path: checkpoint, model: net, optimizer: opt)
            (trainer.epoch, trainer.step) = (progress.epoch, progress.step)
            if let g = progress.rngs["order"] { trainer.orderRandom = g }
            if let g = progress.rngs["augment"] { trainer.augmentRandom.generator = g }
            print("resumed \(checkpoint): epoch \(trainer.epoch), step \(trainer.step)")
        } else if let weights {
            try net.load(path: weights)   // fine-tuning: the given heads are kept
        } else {
            try net.initializeForTraining(seed: seed, backbone: true)
        }
        print("training \(variant.name) (\(net.parameterCount()) parameters) on \(dataset.count) images, batch \(batchSize), \(trainer.stepsPerEpoch) steps per epoch, \(optimizer) lr \(lr)")
        let totalSteps = min(maxSteps, epochs * trainer.stepsPerEpoch)
        // cfg.LR_STEPS with gamma 0.1, as adjust_learning_rate.
        let setLR: (Int) throws -> Void = { step in
            let decays = [240_000, 360_000].filter { step >= $0 }.count
            try opt.setLearningRate(lr * pow(0.1, Double(decays)), group: 0)
        }
        func save() throws {
            let progress = TrainingProgress(step: trainer.step, epoch: trainer.epoch,
                                            rngs: ["order": trainer.orderRandom, "augment": trainer.augmentRandom.generator],
                                            extra: ["model": variant.name, "optimizer": optimizer])
            try Checkpoint.save(path: checkpoint, model: net, optimizer: opt, progress: progress)
            try net.save(path: weightsOut)
        }
        while trainer.epoch < epochs && trainer.step < maxSteps {
            let mean = try trainer.trainEpoch(optimizer: opt, totalSteps: totalSteps, maxSteps: maxSteps, learningRate: setLR) { r in
                if r.step == 1 || r.step % 10 == 0 || r.stepInEpoch == r.stepsPerEpoch || r.step == totalSteps {
                    print("[epoch \(r.epoch + 1)/\(epochs)][step \(r.step)/\(totalSteps)] loss_l \(fmt(r.lossL)) loss_c \(fmt(r.lossC)) | \(fmt(r.imagesPerSecond, 2)) img/s | ETA \(duration(r.eta))")
                }
            }
            try save()
            print("epoch \(trainer.epoch) done: mean loss \(fmt(mean)); wrote \(checkpoint) and \(weightsOut)")
        }
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
    return s >= 3600 ? "\(s / 3600)h\(String(format2(s % 3600 / 60)))m" : s >= 60 ? "\(s / 60)m\(format2(s % 60))s" : "\(s)s"
}

private func format2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
