import VisionCore

/// One registered model: its timm name, pretrained config and constructor.
public struct ClassifierEntry: Sendable {
    public let name: String
    public let config: PretrainedConfig
    let make: @Sendable (ClassifierOptions) throws -> ImageClassifier

    public init(name: String, config: PretrainedConfig, make: @escaping @Sendable (ClassifierOptions) throws -> ImageClassifier) {
        (self.name, self.config, self.make) = (name, config, make)
    }
}

/// Every classification model by timm name (as timm's `create_model` registry).
public enum ClassifierRegistry {
    /// All entries, family by family.
    public static let entries: [ClassifierEntry] = ResNet.entries + ReXNet.entries + PiT.entries + SmallClassifiers.entries

    /// The registered names, in registry order.
    public static var names: [String] { entries.map(\.name) }

    public static func entry(_ name: String) throws -> ClassifierEntry {
        guard let e = entries.first(where: { $0.name == name }) else {
            throw VisionError.invalidArgument("unknown model '\(name)'; known models: \(names.joined(separator: ", "))")
        }
        return e
    }

    /// Builds `name` with freshly initialized weights (seeded by `options.seed`), in training mode as timm.
    public static func create(_ name: String, options: ClassifierOptions = ClassifierOptions()) throws -> ImageClassifier {
        guard options.numClasses >= 0, options.inChans >= 1, options.dropPathRate >= 0, options.dropPathRate < 1,
              (options.dropRate ?? 0) >= 0, (options.dropRate ?? 0) < 1 else {
            throw VisionError.invalidArgument("create \(name): invalid options \(options)")
        }
        let model = try entry(name).make(options)
        // Initializers replace some freshly drawn weights (zero-init, timm's schemes); give that memory back.
        Memory.releaseIdle()
        return model
    }
}
