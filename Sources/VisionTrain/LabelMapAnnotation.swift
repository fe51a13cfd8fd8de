import VisionCore
import VisionData
import VisionModels
import VisionNN

/// ReLabel's "machine annotator" step: a trained classifier's dense pre-pool logits (its classifier applied at
/// every position of the last feature map) over every image of an ImageFolder, kept as top-k label maps
/// [2, k, S, S] in VisionData's format (`LabelMaps.saveAll`, one entry per image named by its path below the
/// root without extension — the names `ImageFolder(labelMapRoot:)`'s per-image layout also uses).
public enum LabelMapAnnotator {
    /// Builds `model` with the class count and input channels its weights file implies, and loads the weights.
    /// Errors: unknown model, weights of another architecture (the missing / mismatching key is named).
    public static func loadClassifier(model name: String, weights: String) throws -> ImageClassifier {
        let file = try Safetensors.load(path: weights)
        let entry = try ClassifierRegistry.lookup(name)
        // Class count from the classifier's weight [K, F]; input channels from the stem conv [O, C, kh, kw].
        let classifierKey = entry.config.classifier + ".weight"
        guard let fc = file[classifierKey], fc.rank == 2 else {
            throw VisionError.format("\(weights): no 2-D '\(classifierKey)' tensor, so these are not \(name) classifier weights")
        }
        let probe = try ClassifierRegistry.make(name, options: ClassifierOptions(numClasses: fc.shape[0], inChans: 3))
        guard let stemKey = probe.stateDict().first(where: { $0.1.rank == 4 })?.0, let stem = file[stemKey], stem.rank == 4 else {
            throw VisionError.format("\(weights): no 4-D stem convolution weight for \(name)")
        }
        let model = stem.shape[1] == 3 ? probe
            : try ClassifierRegistry.make(name, options: ClassifierOptions(numClasses: fc.shape[0], inChans: stem.shape[1]))
        try model.load(path: weights)
        return model.eval()
    }

    /// The eval transform for `model`: resize the short side to `size`, centre crop, grayscale when the model
    /// takes one channel, normalize with the model's mean/std.
    public static func transform(for model: ImageClassifier, size: Int) throws -> any Transform {
        let inChans = model.stateDict().first(where: { $0.1.rank == 4 })?.1.shape[1] ?? 3
        var steps: [any Transform] = [try Resize(.shorter(size)), try CenterCrop(size: size)]
        if inChans == 1 { steps.append(Grayscale()) }
        let (mean, std) = (model.config.mean, model.config.std)
        guard mean.count == inChans, std.count == inChans else {
            throw VisionError.invalidArgument("\(model.name): its config has \(mean.count)-channel statistics for a \(inChans)-channel input")
        }
        steps.append(try Normalize(mean: mean, std: std))
        return Compose(steps)
    }

    /// Label maps of every image of `folder` (in its order), named by path below the root without extension.
    /// Errors: k outside 1...numClasses, a model without dense logits (PiT), an unreadable image (named).
    public static func annotate(model: ImageClassifier, folder: ImageFolder, size: Int, k: Int = 5,
                                batchSize: Int = 16, workers: Int = 1,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> [(name: String, map: Tensor)] {
        guard k >= 1, k <= model.numClasses else {
            throw VisionError.invalidArgument("--topk must be in 1...\(model.numClasses) (the model's classes), got \(k)")
        }
        let loader = try DataLoader(folder, batchSize: batchSize, workers: workers, transform: try transform(for: model, size: size))
        var maps: [(String, Tensor)] = []
        model.eval()
        try Autograd.noGrad {
            try loader.forEachBatch(epoch: 0) { batch in
                let batched = try LabelMaps.fromDenseLogits(try model.forwardDenseLogits(batch.inputs), k: k)
                for (row, index) in batch.indices.enumerated() {
                    maps.append((key(folder.samples[index].path, root: folder.root), try batched.select(axis: 0, index: row).copyContiguous()))
                }
                progress(maps.count, folder.count)
            }
        }
        return maps
    }

    /// "cls/sub/img.JPEG" below `root` -> "cls/sub/img" (ReLabel's naming, extension dropped).
    static func key(_ path: String, root: String) -> String {
        var rel = path.hasPrefix(root + "/") ? String(path.dropFirst(root.count + 1)) : path
        if let dot = rel.lastIndex(of: "."), !rel[dot...].contains("/") { rel = String(rel[..<dot]) }
        return rel
    }
}

/// RGB -> one channel (torchvision's rgb_to_grayscale weights), for models trained on grayscale data.
struct Grayscale: Transform {
    func apply<R: RandomDraws>(_ example: Example, draws: inout R) throws -> Example {
        var e = example
        e.input = try rgbToGrayscale(example.input)
        return e
    }
}
