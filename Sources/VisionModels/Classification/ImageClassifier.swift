import VisionCore
import VisionNN

/// How an image is resampled by the eval transform (timm's `interpolation` field).
public enum ResampleMode: String, Sendable, CaseIterable {
    case bilinear, bicubic
}

/// A model's pretrained configuration as timm's `pretrained_cfg`: what its weights expect.
public struct PretrainedConfig: Sendable, Equatable {
    /// [channels, height, width] of the network input.
    public var inputSize: [Int]
    public var mean: [Float]
    public var std: [Float]
    /// Fraction of the resized image kept by the center crop (resize shorter side to floor(size / cropPct)).
    public var cropPct: Double
    public var interpolation: ResampleMode
    public var numClasses: Int
    /// True when the network only accepts `inputSize` (PiT's position embedding has a fixed grid).
    public var fixedInputSize: Bool
    /// State-dict prefix of the classifier (timm's `classifier`), e.g. "fc", "head.fc", "head".
    public var classifier: String

    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    public init(inputSize: [Int] = [3, 224, 224], mean: [Float] = imagenetMean, std: [Float] = imagenetStd,
                cropPct: Double = 0.875, interpolation: ResampleMode = .bicubic, numClasses: Int = 1000,
                fixedInputSize: Bool = false, classifier: String) {
        (self.inputSize, self.mean, self.std, self.cropPct) = (inputSize, mean, std, cropPct)
        (self.interpolation, self.numClasses, self.fixedInputSize, self.classifier) = (interpolation, numClasses, fixedInputSize, classifier)
    }
}

/// What `createClassifier` may change from a model's defaults (timm's create_model keyword arguments).
public struct ClassifierOptions: Sendable, Equatable {
    /// Classifier outputs; 0 removes the classifier (forward returns pre-logits), as timm's `num_classes=0`.
    public var numClasses: Int
    /// Input channels of the stem (timm's `in_chans`).
    public var inChans: Int
    /// Dropout before the classifier; nil keeps the family's default (ReXNet 0.2, others 0).
    public var dropRate: Float?
    /// Stochastic depth rate of the residual branches (timm's `drop_path_rate`).
    public var dropPathRate: Float
    /// Seed of the initializers and of the dropout / drop-path generators.
    public var seed: UInt64

    public init(numClasses: Int = 1000, inChans: Int = 3, dropRate: Float? = nil, dropPathRate: Float = 0, seed: UInt64 = 0) {
        (self.numClasses, self.inChans, self.dropRate, self.dropPathRate, self.seed) = (numClasses, inChans, dropRate, dropPathRate, seed)
    }
}

/// The base of every classification model (ResNet, ReXNet, PiT): timm's split of the forward pass into
/// `forward_features` and `forward_head`, a registry name and the pretrained config of its weights.
open class ImageClassifier: Module {
    /// The registry name (timm's model name), e.g. "resnet50".
    public let name: String
    public let config: PretrainedConfig
    public let numClasses: Int
    /// Width of the pre-logits features (the classifier's input).
    public let numFeatures: Int

    public init(name: String, config: PretrainedConfig, numClasses: Int, numFeatures: Int) {
        (self.name, self.config, self.numClasses, self.numFeatures) = (name, config, numClasses, numFeatures)
        super.init()
    }

    /// The trunk's output before pooling: [B, C, h, w] for CNNs, the normed class tokens [B, T, C] for PiT
    /// (as timm's forward_features).
    open func forwardFeatures(_ x: Tensor) throws -> Tensor {
        throw VisionError.unsupported("\(name) does not implement forwardFeatures")
    }

    /// Pooling, dropout and classifier applied to `forwardFeatures`' output; with `preLogits` the classifier is
    /// skipped and the pooled [B, numFeatures] features are returned.
    open func forwardHead(_ features: Tensor, preLogits: Bool = false) throws -> Tensor {
        throw VisionError.unsupported("\(name) does not implement forwardHead")
    }

    /// Class scores at every position of the dense pre-pool feature map, [B, numClasses, h, w] (the classifier
    /// applied before global pooling, ReLabel's "machine annotator" output). CNNs only.
    open func forwardDenseLogits(_ x: Tensor) throws -> Tensor {
        throw VisionError.unsupported("\(name) has no dense pre-pool feature map")
    }

    /// Logits [B, numClasses] (or pre-logits when the model was created with numClasses 0).
    open override func forward(_ x: Tensor) throws -> Tensor {
        try forwardHead(try forwardFeatures(x), preLogits: numClasses == 0)
    }
}

/// The classifier applied at every position of a [B, C, h, w] map: a 1x1 convolution with the Linear's weights,
/// [B, numClasses, h, w]. Errors when the model has no classifier (numClasses 0).
func denseLogits(_ features: Tensor, classifier: Linear?, model: String) throws -> Tensor {
    guard let classifier else {
        throw VisionError.unsupported("\(model): created without a classifier (numClasses 0), so there are no dense logits")
    }
    let w = classifier.weight.value
    guard w.rank == 2 else { throw VisionError.shapeMismatch("\(model): classifier weight must be 2-D, got \(w.shape)") }
    return try conv2d(features, weight: try w.reshape([w.shape[0], w.shape[1], 1, 1]), bias: classifier.bias?.value)
}
