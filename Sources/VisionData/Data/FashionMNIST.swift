import VisionCore

/// Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test grey 28 x 28 images of 10 clothing classes,
/// read from the four IDX files (gzip-compressed or not). Debian's `dataset-fashion-mnist` package installs them
/// in `defaultRoot`. Examples are float32 [1, 28, 28] in [0, 1] (torchvision's ToTensor).
public struct FashionMNIST: Dataset {
    public enum Split: String, Sendable { case train, test }

    /// Where Debian's `dataset-fashion-mnist` puts the files.
    public static let defaultRoot = "/usr/share/datasets/fashion-mnist"
    /// Class names in label order (the dataset's README).
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                    "Sneaker", "Bag", "Ankle boot"]

    public let split: Split
    /// uint8 [N, 28, 28].
    public let images: Tensor
    public let labels: [Int]

    /// The file names of a split: (images, labels), without the optional ".gz".
    public static func fileNames(_ split: Split) -> (String, String) {
        let p = split == .train ? "train" : "t10k"
        return ("\(p)-images-idx3-ubyte", "\(p)-labels-idx1-ubyte")
    }

    /// Whether both files of `split` exist under `root` (compressed or not).
    public static func isAvailable(root: String = defaultRoot, split: Split = .train) -> Bool {
        let (i, l) = fileNames(split)
        return findFile(root, i) != nil && findFile(root, l) != nil
    }

    static func findFile(_ root: String, _ name: String) -> String? {
        for candidate in ["\(root)/\(name).gz", "\(root)/\(name)"] where FileSystem.isRegularFile(candidate) { return candidate }
        return nil
    }

    /// Loads a split. Errors: `.io` naming the missing file (with a hint at the Debian package), `.format` for
    /// corrupt files, images that are not uint8 [N, 28, 28], labels that are not uint8 [N] in 0...9 or whose
    /// count differs from the images'.
    public init(root: String = defaultRoot, split: Split) throws {
        let (imageName, labelName) = FashionMNIST.fileNames(split)
        func locate(_ name: String) throws -> String {
            guard let p = FashionMNIST.findFile(root, name) else {
                throw VisionError.io("FashionMNIST: neither '\(root)/\(name).gz' nor '\(root)/\(name)' exists (install Debian's dataset-fashion-mnist, or pass the folder holding the IDX files)")
            }
            return p
        }
        let imagePath = try locate(imageName), labelPath = try locate(labelName)
        let images = try IDX.read(path: imagePath), labels = try IDX.read(path: labelPath)
        guard images.dtype == .uint8, images.rank == 3, images.shape[1] == 28, images.shape[2] == 28 else {
            throw VisionError.format("FashionMNIST: '\(imagePath)' holds \(images.dtype) \(images.shape), expected uint8 [N, 28, 28]")
        }
        guard labels.dtype == .uint8, labels.rank == 1, labels.shape[0] == images.shape[0] else {
            throw VisionError.format("FashionMNIST: '\(labelPath)' holds \(labels.dtype) \(labels.shape), expected uint8 [\(images.shape[0])] to match the images")
        }
        let l = try labels.toArray(UInt8.self).map { Int($0) }
        if let bad = l.firstIndex(where: { $0 > 9 }) {
            throw VisionError.format("FashionMNIST: '\(labelPath)' has label \(l[bad]) at record \(bad), outside 0...9")
        }
        self.split = split
        self.images = images
        self.labels = l
    }

    public var count: Int { labels.count }

    public func example(at index: Int) throws -> Example {
        try checkIndex(index, "FashionMNIST")
        let pixels = try images.select(axis: 0, index: index).toArray(UInt8.self)
        return Example(input: try Tensor(pixels.map { Float($0) / 255 }, shape: [1, 28, 28]), label: labels[index])
    }
}
