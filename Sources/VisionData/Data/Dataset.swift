import VisionCore

/// One training example as it travels from a dataset through the transforms to the loader.
public struct Example: Sendable {
    /// The input, float32 [C, H, W] for images (values in [0, 1] as torchvision's ToTensor, until a `Normalize`).
    public var input: Tensor
    /// The class index.
    public var label: Int
    /// The crop `RandomResizedCrop` took (ReLabel's LabelPooling needs it); nil until one ran.
    public var cropBox: CropBox?
    /// A ReLabel label map [2, k, S, S] (top-k scores and class indices), when the dataset has one.
    public var labelMap: Tensor?
    /// Whether a `RandomHorizontalFlip` flipped the input (ReLabel ignores it: pooling to 1 x 1 is flip-invariant).
    public var flipped: Bool = false

    public init(input: Tensor, label: Int, cropBox: CropBox? = nil, labelMap: Tensor? = nil) {
        self.input = input
        self.label = label
        self.cropBox = cropBox
        self.labelMap = labelMap
    }
}

/// A random-access collection of examples. Implementations are deterministic (the same index gives the same
/// example) and safe to call from several threads at once: `DataLoader` does, and all randomness lives in the
/// loader's transforms, seeded per example.
public protocol Dataset: Sendable {
    /// Number of examples.
    var count: Int { get }
    /// The example at `index` (0..<count); errors name what could not be read.
    func example(at index: Int) throws -> Example
}

extension Dataset {
    func checkIndex(_ index: Int, _ name: String) throws {
        guard index >= 0, index < count else {
            throw VisionError.invalidArgument("\(name): index \(index) is outside 0..<\(count)")
        }
    }
}

/// An in-memory dataset: example i is `inputs[i]` (a copy of the slice along the first axis) with `labels[i]`,
/// and `labelMaps[i]` when given (ReLabel maps [N, 2, k, S, S]).
public struct TensorDataset: Dataset {
    public let inputs: Tensor
    public let labels: [Int]
    public let labelMaps: Tensor?

    /// Errors: a rank-0 input, a label count different from inputs.shape[0], or label maps whose first
    /// dimension differs.
    public init(inputs: Tensor, labels: [Int], labelMaps: Tensor? = nil) throws {
        guard inputs.rank >= 1, inputs.shape[0] == labels.count else {
            throw VisionError.shapeMismatch("TensorDataset: \(labels.count) labels for inputs of shape \(inputs.shape)")
        }
        if let m = labelMaps, m.rank == 0 || m.shape[0] != labels.count {
            throw VisionError.shapeMismatch("TensorDataset: label maps of shape \(m.shape) for \(labels.count) examples")
        }
        self.inputs = inputs
        self.labels = labels
        self.labelMaps = labelMaps
    }

    /// Labels from an integer tensor [N] (int32, int64 or uint8).
    public init(inputs: Tensor, labels: Tensor, labelMaps: Tensor? = nil) throws {
        guard labels.rank == 1, labels.dtype != .float32 else {
            throw VisionError.invalidArgument("TensorDataset: labels must be an integer tensor [N], got \(labels.dtype) \(labels.shape)")
        }
        try self.init(inputs: inputs, labels: try labels.to(.int64).toArray(Int64.self).map { Int($0) }, labelMaps: labelMaps)
    }

    public var count: Int { labels.count }

    public func example(at index: Int) throws -> Example {
        try checkIndex(index, "TensorDataset")
        return Example(input: try inputs.select(axis: 0, index: index).copyContiguous(), label: labels[index],
                       labelMap: try labelMaps?.select(axis: 0, index: index).copyContiguous())
    }
}
