import VisionCore

/// torchvision's `ImageFolder`: `root/<class>/**/<image>`, one sub-folder per class. Classes are the
/// sub-folder names sorted in Python's order (every sub-folder counts, hidden ones included, as in torchvision),
/// labelled 0..<classes.count; images are the files below each class folder (recursively, following symbolic
/// links) whose lower-cased name ends with one of `extensions`, ordered like torchvision's `sorted(os.walk())`:
/// by folder path, then by file name. So class indices and sample order match a torchvision ImageFolder on the
/// same tree.
///
/// Examples are float32 [3, H, W] in [0, 1]: JPEG, PNG and BMP are decoded to RGB, grey images replicated to
/// three channels and alpha dropped (as PIL's `convert("RGB")`).
///
/// Unreadable images: with `.fail` (default) loading such an example throws a `.format` or `.io` error naming the
/// file. With `.skip` every image is decoded once when the dataset is built (a full pass over the data, in
/// parallel) and the ones that fail are left out and listed in `skipped`, so later loads do not fail.
///
/// ReLabel: with `labelMapRoot`, each example also carries the label map of its image, read from
/// `<labelMapRoot>/<image's folder name>/<file name up to its first '.'>.safetensors` — the layout of the
/// reference's `ImageFolderWithCoordsAndLabelMap` (`<relabel_root>/<wnid>/<name>.pt`), with safetensors files
/// (see `LabelMaps`).
public struct ImageFolder: Dataset {
    public enum UnreadableImages: Sendable { case fail, skip }

    public static let defaultExtensions = [".jpg", ".jpeg", ".png", ".bmp"]

    public let root: String
    public let classes: [String]
    public let samples: [(path: String, label: Int)]
    /// Files left out because they could not be decoded (`.skip` only), with the reason.
    public let skipped: [(path: String, reason: String)]
    /// Where ReLabel label maps are read from (nil: examples carry none).
    public let labelMapRoot: String?

    /// Errors: `.io` when `root` is not a readable folder or has no class folders, `.format` when a class folder
    /// has no image file (torchvision's "Found no valid file" error), `.invalidArgument` for an empty extension
    /// list.
    public init(root: String, extensions: [String] = defaultExtensions, unreadable: UnreadableImages = .fail,
                labelMapRoot: String? = nil) throws {
        guard !extensions.isEmpty else { throw VisionError.invalidArgument("ImageFolder: the extension list is empty") }
        guard FileSystem.isDirectory(root) else { throw VisionError.io("ImageFolder: '\(root)' is not a folder") }
        let classes = try FileSystem.entries(root).filter { FileSystem.isDirectory("\(root)/\($0)") }
            .sorted(by: FileSystem.pythonOrder)
        guard !classes.isEmpty else { throw VisionError.io("ImageFolder: '\(root)' has no class sub-folders") }
        let lowered = extensions.map { $0.lowercased() }
        var samples: [(String, Int)] = []
        for (label, name) in classes.enumerated() {
            var folders: [(String, [String])] = []
            try ImageFolder.walk("\(root)/\(name)", depth: 0, into: &folders)
            folders.sort { FileSystem.pythonOrder($0.0, $1.0) }
            let before = samples.count
            for (dir, files) in folders {
                for f in files.sorted(by: FileSystem.pythonOrder) where lowered.contains(where: { f.lowercased().hasSuffix($0) }) {
                    samples.append(("\(dir)/\(f)", label))
                }
            }
            guard samples.count > before else {
                throw VisionError.format("ImageFolder: found no image file (\(extensions.joined(separator: ", "))) in class folder '\(root)/\(name)'")
            }
        }
        var skipped: [(String, String)] = []
        if unreadable == .skip {
            var failures = [String?](repeating: nil, count: samples.count)
            let paths = samples.map(\.0)
            failures.withUnsafeMutableBufferPointer { out in
                let box = UncheckedSendable(out)
                Threading.forEachChunk(paths.count, minChunk: 8) { range in
                    for i in range {
                        do { _ = try loadImage(path: paths[i], channels: 3) } catch { box.value[i] = "\(error)" }
                    }
                }
            }
            skipped = zip(paths, failures).compactMap { p, f in f.map { (p, $0) } }
            samples = zip(samples, failures).filter { $0.1 == nil }.map(\.0)
        }
        self.root = root
        self.classes = classes
        self.samples = samples
        self.skipped = skipped
        self.labelMapRoot = labelMapRoot
    }

    /// The label-map file of an image path (see the type's documentation).
    public static func labelMapPath(root: String, imagePath: String) -> String {
        let parts = imagePath.split(separator: "/", omittingEmptySubsequences: true)
        let folder = parts.count >= 2 ? String(parts[parts.count - 2]) : ""
        let stem = parts.last.map { String($0.prefix(while: { $0 != "." })) } ?? ""
        return "\(root)/\(folder)/\(stem).safetensors"
    }

    /// Collects (folder, file names) of `dir` and the folders below it. Symbolic links are followed as
    /// torchvision's `os.walk(followlinks=True)` does; the depth limit stops link cycles.
    private static func walk(_ dir: String, depth: Int, into out: inout [(String, [String])]) throws {
        guard depth < 64 else { throw VisionError.io("ImageFolder: '\(dir)' is nested more than 64 folders deep (a symbolic-link cycle?)") }
        var files: [String] = []
        for name in try FileSystem.entries(dir) {
            let path = "\(dir)/\(name)"
            if FileSystem.isDirectory(path) { try walk(path, depth: depth + 1, into: &out) } else { files.append(name) }
        }
        out.append((dir, files))
    }

    public var count: Int { samples.count }

    public func example(at index: Int) throws -> Example {
        try checkIndex(index, "ImageFolder")
        let (path, label) = samples[index]
        // loadImage names the file in its errors; channels: 3 converts grey and drops alpha.
        let map = try labelMapRoot.map { try LabelMaps.load(path: ImageFolder.labelMapPath(root: $0, imagePath: path)) }
        return Example(input: try imageToTensor(try loadImage(path: path, channels: 3)), label: label, labelMap: map)
    }
}

/// Hands a value to `Threading.forEachChunk`'s closure; the caller guarantees the threads touch distinct parts.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
