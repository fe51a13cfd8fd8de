import ArgumentParser
import VisionCore
import VisionData
import VisionModels
import VisionTrain

/// `vc relabel-maps`: ReLabel's machine-annotator step (VisionTrain's `LabelMapAnnotator`): a trained
/// classifier's dense pre-pool logits over an ImageFolder, written as top-k label maps [2, k, S, S] in one
/// safetensors file (one entry per image, named by its path below --data without extension).
struct RelabelMaps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relabel-maps",
        abstract: "Write ReLabel label maps (top-k dense logits) of an image folder with a trained classifier.")

    @Option(help: "Registry model name (a CNN: resnet*, rexnet*, resnet_fmnist).") var model: String
    @Option(help: "Weights (safetensors state dict, e.g. the <model>.safetensors `vc train` writes).") var weights: String
    @Option(help: "ImageFolder root (one sub-folder per class).") var data: String
    @Option(help: "Output safetensors file.") var out: String
    @Option(help: "Classes kept per location.") var topk: Int = 5
    @Option(help: "Input side (default: the model's input size).") var imageSize: Int?
    @Option(help: "Store the maps as F16 (half the size) or F32.") var dtype: String = "F32"
    @Option(help: "Images per forward pass.") var batchSize: Int = 16
    @Option(help: "Threads for VisionCore and OpenBLAS (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { try Threading.setThreadCount(threads) }
        guard dtype == "F32" || dtype == "F16" else { throw ValidationError("--dtype must be F32 or F16, got \(dtype)") }
        guard topk >= 1, batchSize >= 1 else { throw ValidationError("--topk and --batch-size must be >= 1") }
        let classifier = try LabelMapAnnotator.loadClassifier(model: model, weights: weights)
        let folder = try ImageFolder(root: data)
        let size = imageSize ?? classifier.config.inputSize.last ?? 224
        let maps = try LabelMapAnnotator.annotate(model: classifier, folder: folder, size: size, k: topk, batchSize: batchSize)
        try makeParentDirectory(out)
        try LabelMaps.saveAll(maps, path: out, storeAs: dtype == "F16" ? .F16 : .F32)
        let shape = maps.first?.map.shape ?? []
        print("wrote \(maps.count) label maps \(shape) (\(classifier.numClasses) classes, top-\(topk)) to \(out)")
    }
}
