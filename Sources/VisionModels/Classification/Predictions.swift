import VisionCore

/// One class of a classifier's top-k: index, probability (softmax of the logits) and name when known.
public struct ClassPrediction: Sendable, Equatable {
    public let index: Int
    public let probability: Float
    /// The class name (ImageNet-1k's for 1000-class models), nil when the model has another number of classes.
    public let label: String?
}

/// The `k` most probable classes of each row of `logits` [N, numClasses], best first. Names come from `labels`
/// (default: the ImageNet-1k names when there are 1000 classes).
public func topPredictions(_ logits: Tensor, k: Int, labels: [String]? = nil) throws -> [[ClassPrediction]] {
    guard logits.rank == 2, logits.shape[1] >= 1 else {
        throw VisionError.shapeMismatch("top_predictions: logits must be [N, num_classes], got \(logits.shape)")
    }
    let classes = logits.shape[1]
    guard k >= 1 else { throw VisionError.invalidArgument("top_predictions: k must be at least 1, got \(k)") }
    let names = labels ?? (classes == imageNetClassNames.count ? imageNetClassNames : nil)
    if let names, names.count != classes {
        throw VisionError.invalidArgument("top_predictions: \(names.count) labels for \(classes) classes")
    }
    let probs = try Autograd.noGrad { try softmax(logits.detach(), axis: 1) }
    let (values, indices) = try topk(probs, k: min(k, classes), axis: 1)
    let v = try values.toArray(Float.self), ix = try indices.to(.int64).toArray(Int64.self)
    let kk = min(k, classes)
    return (0..<logits.shape[0]).map { row in
        (0..<kk).map { j in
            let i = Int(ix[row * kk + j])
            return ClassPrediction(index: i, probability: v[row * kk + j], label: names?[i])
        }
    }
}

extension ImageClassifier {
    /// Creates `name` from the registry, loads `weightsPath` (timm-format safetensors, strict: weights of another
    /// model are an error listing the missing, unexpected and mis-shaped keys) and switches to eval mode.
    public static func pretrained(_ name: String, weightsPath: String, numClasses: Int? = nil) throws -> ImageClassifier {
        let config = try ClassifierRegistry.lookup(name).config
        let model = try ClassifierRegistry.make(name, options: ClassifierOptions(numClasses: numClasses ?? config.numClasses))
        try model.load(path: weightsPath, strict: true)
        return model.eval()
    }

    /// The `k` most probable classes of an image file (timm's eval transform, no gradient recording).
    public func classify(path: String, topk k: Int = 5) throws -> [ClassPrediction] {
        guard numClasses > 0 else { throw VisionError.invalidArgument("classify: \(name) was created without a classifier (num_classes 0)") }
        let x = try evalTransform(path: path, config: config)
        let logits = try Autograd.noGrad { try forward(x) }
        return try topPredictions(logits, k: k)[0]
    }
}
