#if canImport(Glibc)
import Glibc
#endif
import VisionCore
import VisionData

// The data pipeline (datasets, transforms, a deterministic loader) and the mixing augmentations (CutMix, Mixup,
// timm's Mixup, Cutout, VideoMix) for C and Python training loops.

/// Opaque C handle to a dataset (`vc_dataset *`): Fashion-MNIST, an image folder or in-memory tensors.
public typealias VCDataset = OpaquePointer
/// Opaque C handle to a per-example transform pipeline (`vc_transform *`), applied by a loader.
public typealias VCTransform = OpaquePointer
/// Opaque C handle to a data loader (`vc_loader *`).
public typealias VCLoader = OpaquePointer
/// Opaque C handle to a mixing augmentation with its own seeded generator (`vc_mixer *`).
public typealias VCMixer = OpaquePointer

/// How timm's Mixup shares its random parameters: one set per batch, per mirrored pair (i, N-1-i) or per element.
/// C constants: VC_MIX_MODE_
public enum VCMixMode: Int32 {
    case batch = 0
    case pair = 1
    case elem = 2
}

/// Which cuboid VideoMix cuts from the partner clip: an H x W box in all frames, whole frames, or a T x H x W cuboid.
/// C constants: VC_VIDEOMIX_
public enum VCVideoMixVariant: Int32 {
    case spatial = 0
    case temporal = 1
    case spatioTemporal = 2
}

/// Bounds on sizes from C: large enough for any real training, small enough that a wrong value fails with a
/// message instead of an allocation failure.
private let maxClasses: Int64 = 1 << 20
private let maxBatch: Int64 = 1 << 20

final class DatasetBox {
    let dataset: any Dataset
    let classCount: Int
    /// nil: the names are the indices ("0", "1", ...), made on demand (up to 2^20 classes from tensors).
    private let classNames: [String]?
    private var cStrings: [Int: UnsafeMutablePointer<CChar>] = [:]

    init(_ dataset: any Dataset, classNames: [String]) {
        self.dataset = dataset
        self.classNames = classNames
        classCount = classNames.count
    }

    init(_ dataset: any Dataset, classCount: Int) {
        self.dataset = dataset
        self.classNames = nil
        self.classCount = classCount
    }

    func cString(_ i: Int) -> UnsafePointer<CChar>? {
        if let p = cStrings[i] { return UnsafePointer(p) }
        guard let p = strdup(classNames?[i] ?? String(i)) else { return nil }
        cStrings[i] = p
        return UnsafePointer(p)
    }

    deinit { for p in cStrings.values { free(p) } }
}

final class TransformBox {
    var steps: [any Transform] = []
}

/// A loader plus the epoch iterator that serves in-order requests, so that worker threads prefetch the batches
/// a training loop asks for next.
final class LoaderBox {
    let loader: DataLoader
    private var iterator: EpochIterator?
    private var iteratorEpoch = 0
    private var nextIndex = 0

    init(_ loader: DataLoader) { self.loader = loader }

    func batch(epoch: Int, index: Int) throws -> Batch {
        guard index >= 0, index < loader.batchCount else {
            throw VisionError.invalidArgument("batch index \(index) is outside 0..<\(loader.batchCount)")
        }
        // Batch 0 starts a prefetching pass; the next index in the same epoch continues it. Anything else is
        // rebuilt on its own, which gives the same batch (the loader is deterministic per (seed, epoch, index)).
        if index == 0 {
            iterator = loader.epoch(epoch)
            iteratorEpoch = epoch
            nextIndex = 0
        }
        guard let it = iterator, iteratorEpoch == epoch, nextIndex == index else {
            return try loader.batch(index, epoch: epoch)
        }
        nextIndex += 1
        if nextIndex == loader.batchCount { iterator = nil }
        guard let b = try it.next() else { throw VisionError.invalidArgument("batch index \(index) is past the end of the epoch") }
        return b
    }
}

final class MixerBox {
    enum Method {
        case cutmix(CutMix)
        case mixup(Mixup)
        case timm(TimmMixup)
        case cutout(Cutout, numClasses: Int, labelSmoothing: Double)
        case videomix(VideoMix)
    }
    var method: Method
    var rng: RandomGenerator

    init(_ method: Method, seed: UInt64) {
        self.method = method
        rng = RandomGenerator(seed: seed)
    }
}

private func datasetArg(_ h: VCDataset?) throws -> DatasetBox { try object(h, DatasetBox.self, "dataset", "vc_dataset") }
private func transformArg(_ h: VCTransform?) throws -> TransformBox { try object(h, TransformBox.self, "transform", "vc_transform") }
private func loaderArg(_ h: VCLoader?) throws -> LoaderBox { try object(h, LoaderBox.self, "loader", "vc_loader") }
private func mixerArg(_ h: VCMixer?) throws -> MixerBox { try object(h, MixerBox.self, "mixer", "vc_mixer") }

private func flag(_ v: Int32, _ name: String) throws -> Bool {
    guard v == 0 || v == 1 else { throw VisionError.invalidArgument("\(name) must be 0 or 1, got \(v)") }
    return v == 1
}

private func classCount(_ n: Int64) throws -> Int {
    guard n >= 1, n <= maxClasses else { throw VisionError.invalidArgument("num_classes must be in 1...\(maxClasses), got \(n)") }
    return Int(n)
}

/// Stores a new handle of any kind in `*out`, which must not be NULL; `*out` stays NULL when `body` throws.
private func outputHandle(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ body: () throws -> OpaquePointer) throws {
    guard let out else { throw VisionError.invalidArgument("out is NULL") }
    out.pointee = nil
    out.pointee = try body()
}

// MARK: datasets

/// Opens Fashion-MNIST from the four IDX files (gzip-compressed or not) in `root`; NULL means
/// /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist). `train` 1 selects the 60,000 training
/// images, 0 the 10,000 test images. Examples are float32 [1, 28, 28] in [0, 1] with labels 0...9. Missing files
/// fail with VC_IO_ERROR naming the path, corrupt ones with VC_FORMAT_ERROR.
@c public func vc_dataset_fashion_mnist(_ root: UnsafePointer<CChar>?, _ train: Int32, _ out: UnsafeMutablePointer<VCDataset?>?) -> Int32 {
    capi {
        try outputHandle(out) {
            let split: FashionMNIST.Split = try flag(train, "train") ? .train : .test
            let r = root.map { String(cString: $0) } ?? FashionMNIST.defaultRoot
            return registerObject(DatasetBox(try FashionMNIST(root: r, split: split), classNames: FashionMNIST.classNames))
        }
    }
}

/// Opens torchvision's ImageFolder layout `root/<class>/.../<image>` (.jpg .jpeg .png .bmp, sub-folders
/// included; classes are the class folders in sorted order, so indices match torchvision). Examples are float32
/// RGB [3, H, W] in [0, 1] (grey replicated, alpha dropped). `skip_unreadable` 1 decodes every image once now and
/// leaves out the ones that fail; 0 makes such an image fail when it is loaded (vc_dataset_get or its batch).
/// `label_map_root` (NULL: none) gives each example its ReLabel label map, read from
/// `<label_map_root>/<image's folder>/<file name up to its first '.'>.safetensors` (entry "label_map", float32
/// [2, k, S, S]: top-k scores and class indices), for vc_loader_batch_relabel.
@c public func vc_dataset_image_folder(_ root: UnsafePointer<CChar>?, _ skip_unreadable: Int32, _ label_map_root: UnsafePointer<CChar>?,
                                       _ out: UnsafeMutablePointer<VCDataset?>?) -> Int32 {
    capi {
        try outputHandle(out) {
            let skip = try flag(skip_unreadable, "skip_unreadable")
            let ds = try ImageFolder(root: try stringArg(root, "root"), unreadable: skip ? .skip : .fail,
                                     labelMapRoot: label_map_root.map { String(cString: $0) })
            return registerObject(DatasetBox(ds, classNames: ds.classes))
        }
    }
}

/// An in-memory dataset: example i is a copy of inputs[i] (any dtype, rank >= 2: [N, ...]) with label labels[i]
/// (an int32/int64/uint8 tensor [N] of values >= 0). Both tensors are copied. Class names are "0", "1", ... up
/// to the largest label.
@c public func vc_dataset_from_tensors(_ inputs: VCTensor?, _ labels: VCTensor?, _ out: UnsafeMutablePointer<VCDataset?>?) -> Int32 {
    capi {
        try outputHandle(out) {
            let x = try tensorArg(inputs, "inputs"), y = try tensorArg(labels, "labels")
            guard x.rank >= 2 else { throw VisionError.shapeMismatch("inputs must be [N, ...] with rank >= 2, got \(x.shape)") }
            let ds = try TensorDataset(inputs: try x.copyContiguous(), labels: y)
            guard ds.count > 0 else { throw VisionError.invalidArgument("the dataset is empty (inputs \(x.shape))") }
            if let bad = ds.labels.firstIndex(where: { $0 < 0 || $0 >= Int(maxClasses) }) {
                throw VisionError.invalidArgument("label \(ds.labels[bad]) of example \(bad) is outside 0..<\(maxClasses)")
            }
            return registerObject(DatasetBox(ds, classCount: (ds.labels.max() ?? 0) + 1))
        }
    }
}

/// Releases a dataset (NULL is a no-op). Loaders created from it keep what they need.
@c public func vc_dataset_free(_ dataset: VCDataset?) -> Int32 {
    capi { guard releaseObject(dataset, DatasetBox.self) else { throw HandleError(message: "dataset is not a live vc_dataset (freed or invalid)") } }
}

/// Writes the number of examples to *out_len.
@c public func vc_dataset_len(_ dataset: VCDataset?, _ out_len: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let box = try datasetArg(dataset)
        guard let out_len else { throw VisionError.invalidArgument("out_len is NULL") }
        out_len.pointee = Int64(box.dataset.count)
    }
}

/// Writes the number of classes (Fashion-MNIST: 10; an image folder: its class folders; tensors: largest label
/// + 1) to *out_n.
@c public func vc_dataset_num_classes(_ dataset: VCDataset?, _ out_n: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let box = try datasetArg(dataset)
        guard let out_n else { throw VisionError.invalidArgument("out_n is NULL") }
        out_n.pointee = Int64(box.classCount)
    }
}

/// Writes the name of class `index` to *out_name (valid as long as the dataset).
@c public func vc_dataset_class_name(_ dataset: VCDataset?, _ index: Int64, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capi {
        guard let out_name else { throw VisionError.invalidArgument("out_name is NULL") }
        out_name.pointee = nil
        let box = try datasetArg(dataset)
        guard index >= 0, index < box.classCount else {
            throw VisionError.invalidArgument("class index \(index) is outside 0..<\(box.classCount)")
        }
        out_name.pointee = box.cString(Int(index))
    }
}

/// Loads example `index` (0..<len): a new tensor in *out_input (float32 [C, H, W] for images) and its class in
/// *out_label. Both outputs must be non-NULL; on failure *out_input is NULL.
@c public func vc_dataset_get(_ dataset: VCDataset?, _ index: Int64, _ out_input: UnsafeMutablePointer<VCTensor?>?,
                              _ out_label: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        guard let out_input, let out_label else { throw VisionError.invalidArgument("out_input or out_label is NULL") }
        out_input.pointee = nil
        let box = try datasetArg(dataset)
        guard index >= 0, index < box.dataset.count else {
            throw VisionError.invalidArgument("index \(index) is outside 0..<\(box.dataset.count)")
        }
        let e = try box.dataset.example(at: Int(index))
        out_label.pointee = Int64(e.label)
        out_input.pointee = makeHandle(e.input)
    }
}

// MARK: transforms

/// Creates an empty transform pipeline; the vc_transform_add_* calls append steps that run in order on each
/// float32 [C, H, W] example (torchvision's Compose). Random steps draw from a generator derived from the
/// loader's (seed, epoch, example index).
@c public func vc_transform_create(_ out: UnsafeMutablePointer<VCTransform?>?) -> Int32 {
    capi { try outputHandle(out) { registerObject(TransformBox()) } }
}

/// Releases a transform pipeline (NULL is a no-op); loaders created with it keep their own copy.
@c public func vc_transform_free(_ transform: VCTransform?) -> Int32 {
    capi { guard releaseObject(transform, TransformBox.self) else { throw HandleError(message: "transform is not a live vc_transform (freed or invalid)") } }
}

/// Appends torchvision's RandomResizedCrop to height x width (bilinear, antialiased): area fraction in
/// [scale_min, scale_max], aspect ratio in [ratio_min, ratio_max] (torchvision: 0.08, 1, 3/4, 4/3).
@c public func vc_transform_add_random_resized_crop(_ transform: VCTransform?, _ height: Int64, _ width: Int64,
                                                    _ scale_min: Double, _ scale_max: Double, _ ratio_min: Double,
                                                    _ ratio_max: Double) -> Int32 {
    capi {
        let box = try transformArg(transform)
        guard height >= 1, width >= 1, height <= Int64(ImageLimits.maxSide), width <= Int64(ImageLimits.maxSide) else {
            throw VisionError.invalidArgument("size \(height) x \(width) must be in 1...\(ImageLimits.maxSide)")
        }
        box.steps.append(try RandomResizedCrop(height: Int(height), width: Int(width), scale: (scale_min, scale_max),
                                               ratio: (ratio_min, ratio_max)))
    }
}

/// Appends a horizontal flip taken with probability p in [0, 1].
@c public func vc_transform_add_horizontal_flip(_ transform: VCTransform?, _ p: Double) -> Int32 {
    capi {
        let box = try transformArg(transform)
        guard p.isFinite, p >= 0, p <= 1 else { throw VisionError.invalidArgument("p must be in [0, 1], got \(p)") }
        box.steps.append(try RandomHorizontalFlip(p: p))
    }
}

/// Appends a bilinear resize to height x width, or with width 0 a resize of the shorter side to `height`
/// (torchvision's Resize(int)).
@c public func vc_transform_add_resize(_ transform: VCTransform?, _ height: Int64, _ width: Int64) -> Int32 {
    capi {
        let box = try transformArg(transform)
        let limit = Int64(ImageLimits.maxSide)
        guard height >= 1, height <= limit, width >= 0, width <= limit else {
            throw VisionError.invalidArgument("resize to \(height) x \(width): height must be in 1...\(limit), width in 0...\(limit)")
        }
        box.steps.append(try Resize(width == 0 ? .shorter(Int(height)) : .exact(height: Int(height), width: Int(width))))
    }
}

/// Appends a center crop to height x width (zero padding first when the image is smaller).
@c public func vc_transform_add_center_crop(_ transform: VCTransform?, _ height: Int64, _ width: Int64) -> Int32 {
    capi {
        let box = try transformArg(transform)
        let limit = Int64(ImageLimits.maxSide)
        guard height >= 1, width >= 1, height <= limit, width <= limit else {
            throw VisionError.invalidArgument("crop \(height) x \(width) must be in 1...\(limit)")
        }
        box.steps.append(try CenterCrop(height: Int(height), width: Int(width)))
    }
}

/// Appends (x - mean[c]) / std[c] per channel; `n` values each (1 applies to every channel), std > 0.
@c public func vc_transform_add_normalize(_ transform: VCTransform?, _ mean: UnsafePointer<Float>?, _ std: UnsafePointer<Float>?,
                                          _ n: Int64) -> Int32 {
    capi {
        let box = try transformArg(transform)
        guard n >= 1, n <= 4096 else { throw VisionError.invalidArgument("n must be in 1...4096, got \(n)") }
        guard let mean, let std else { throw VisionError.invalidArgument("mean or std is NULL") }
        box.steps.append(try Normalize(mean: Array(UnsafeBufferPointer(start: mean, count: Int(n))),
                                       std: Array(UnsafeBufferPointer(start: std, count: Int(n)))))
    }
}

/// Appends torchvision's ColorJitter(brightness, contrast, saturation, hue) for RGB images (all >= 0, hue <= 0.5).
@c public func vc_transform_add_color_jitter(_ transform: VCTransform?, _ brightness: Double, _ contrast: Double,
                                             _ saturation: Double, _ hue: Double) -> Int32 {
    capi {
        let box = try transformArg(transform)
        box.steps.append(try ColorJitter(brightness: brightness, contrast: contrast, saturation: saturation, hue: hue))
    }
}

/// Runs the pipeline on one float32 [C, H, W] image with a generator seeded by `seed` (for inspection and tests;
/// a loader derives its own per example). The result is a new tensor.
@c public func vc_transform_apply(_ transform: VCTransform?, _ image: VCTensor?, _ seed: UInt64,
                                  _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            let steps = try transformArg(transform).steps
            let x = try tensorArg(image, "image")
            guard x.dtype == .float32, x.rank == 3, x.count > 0 else {
                throw VisionError.shapeMismatch("image must be a non-empty float32 [C, H, W] tensor, got \(x.dtype) \(x.shape)")
            }
            var rng = RandomGenerator(seed: seed)
            return try Compose(steps).apply(image: x, draws: &rng)
        }
    }
}

// MARK: loader

/// Creates a loader over `dataset` (PyTorch's DataLoader): batches of `batch_size` examples, shuffled per
/// epoch when `shuffle` is 1, the last partial batch dropped when `drop_last` is 1, each example passed through
/// `transform` (NULL: none; the pipeline is copied). Deterministic: the order of epoch e comes from (seed, e)
/// and example i's transform draws from (seed, e, i), so batches are identical across runs and for every
/// `workers` count (0: built in the calling thread; 1...256 threads build batches ahead, in order).
@c public func vc_loader_create(_ dataset: VCDataset?, _ transform: VCTransform?, _ batch_size: Int64, _ shuffle: Int32,
                                _ drop_last: Int32, _ seed: UInt64, _ workers: Int32,
                                _ out: UnsafeMutablePointer<VCLoader?>?) -> Int32 {
    capi {
        try outputHandle(out) {
            let ds = try datasetArg(dataset)
            let steps = try transform.map { try transformArg($0).steps }
            guard batch_size >= 1, batch_size <= maxBatch else {
                throw VisionError.invalidArgument("batch_size must be in 1...\(maxBatch), got \(batch_size)")
            }
            guard workers >= 0, workers <= 256 else { throw VisionError.invalidArgument("workers must be in 0...256, got \(workers)") }
            let loader = try DataLoader(ds.dataset, batchSize: Int(batch_size), shuffle: try flag(shuffle, "shuffle"),
                                        dropLast: try flag(drop_last, "drop_last"), seed: seed, workers: Int(workers),
                                        transform: steps.map { Compose($0) })
            guard loader.batchCount > 0 else {
                throw VisionError.invalidArgument("drop_last with batch_size \(batch_size) leaves no batch of \(ds.dataset.count) examples")
            }
            return registerObject(LoaderBox(loader))
        }
    }
}

/// Releases a loader (NULL is a no-op); batches being prefetched are discarded.
@c public func vc_loader_free(_ loader: VCLoader?) -> Int32 {
    capi { guard releaseObject(loader, LoaderBox.self) else { throw HandleError(message: "loader is not a live vc_loader (freed or invalid)") } }
}

/// Writes the number of batches per epoch to *out_n (len / batch_size, rounded up unless drop_last).
@c public func vc_loader_num_batches(_ loader: VCLoader?, _ out_n: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let box = try loaderArg(loader)
        guard let out_n else { throw VisionError.invalidArgument("out_n is NULL") }
        out_n.pointee = Int64(box.loader.batchCount)
    }
}

/// Builds batch `index` of epoch `epoch` (>= 0): the stacked inputs ([B, C, H, W] float32 for images) in
/// *out_inputs and the int64 [B] labels in *out_labels. Asking for batches 0, 1, 2, ... of an epoch in order lets
/// the workers prefetch; any other order rebuilds the requested batch (same content). An example that fails to
/// load or examples of different shapes fail the batch with a message naming them.
@c public func vc_loader_batch(_ loader: VCLoader?, _ epoch: Int64, _ index: Int64, _ out_inputs: UnsafeMutablePointer<VCTensor?>?,
                               _ out_labels: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let out_inputs, let out_labels else { throw VisionError.invalidArgument("out_inputs or out_labels is NULL") }
        out_inputs.pointee = nil
        out_labels.pointee = nil
        let box = try loaderArg(loader)
        guard epoch >= 0, epoch <= Int64(Int32.max) else { throw VisionError.invalidArgument("epoch must be in 0...\(Int32.max), got \(epoch)") }
        guard index >= 0, index < Int64(box.loader.batchCount) else {
            throw VisionError.invalidArgument("batch index \(index) is outside 0..<\(box.loader.batchCount)")
        }
        let b = try box.batch(epoch: Int(epoch), index: Int(index))
        out_inputs.pointee = makeHandle(b.inputs)
        out_labels.pointee = makeHandle(b.labels)
    }
}

/// Builds batch `index` of epoch `epoch` as vc_loader_batch does, and ReLabel's soft targets for it: the
/// LabelPooling of each example's label map over the crop its RandomResizedCrop took (RoIAlign to 1 x 1, softmax
/// over `num_classes`), float32 [B, num_classes] in *out_targets — give them to vc_mixer_apply (CutMix with
/// label smoothing, as ReLabel trains). `geometric` 0 reproduces the official code's box convention (rows taken
/// as x); 1 uses the geometrically correct box (docs/data.md, ReLabel). Errors: a dataset without label maps, a
/// transform without vc_transform_add_random_resized_crop, maps whose class indices reach num_classes.
@c public func vc_loader_batch_relabel(_ loader: VCLoader?, _ epoch: Int64, _ index: Int64, _ num_classes: Int64, _ geometric: Int32,
                                       _ out_inputs: UnsafeMutablePointer<VCTensor?>?, _ out_labels: UnsafeMutablePointer<VCTensor?>?,
                                       _ out_targets: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let out_inputs, let out_labels, let out_targets else {
            throw VisionError.invalidArgument("out_inputs, out_labels or out_targets is NULL")
        }
        out_inputs.pointee = nil
        out_labels.pointee = nil
        out_targets.pointee = nil
        let box = try loaderArg(loader)
        let pooling = try LabelPooling(numClasses: try classCount(num_classes),
                                       convention: try flag(geometric, "geometric") ? .geometric : .official)
        guard epoch >= 0, epoch <= Int64(Int32.max) else { throw VisionError.invalidArgument("epoch must be in 0...\(Int32.max), got \(epoch)") }
        guard index >= 0, index < Int64(box.loader.batchCount) else {
            throw VisionError.invalidArgument("batch index \(index) is outside 0..<\(box.loader.batchCount)")
        }
        let b = try box.batch(epoch: Int(epoch), index: Int(index))
        guard let maps = b.labelMaps else {
            throw VisionError.invalidArgument("the batch has no label maps (open the dataset with vc_dataset_image_folder and a label_map_root)")
        }
        let crops = try b.cropBoxes.enumerated().map { k, c in
            guard let c else {
                throw VisionError.invalidArgument("example \(b.indices[k]) has no crop box (add vc_transform_add_random_resized_crop to the transform)")
            }
            return c
        }
        let targets = try pooling(labelMaps: maps, crops: crops)
        out_inputs.pointee = makeHandle(b.inputs)
        out_labels.pointee = makeHandle(b.labels)
        out_targets.pointee = makeHandle(targets)
    }
}

// MARK: mixing

private func registerMixer(_ out: UnsafeMutablePointer<VCMixer?>?, _ seed: UInt64, _ make: () throws -> MixerBox.Method) throws {
    try outputHandle(out) { registerObject(MixerBox(try make(), seed: seed)) }
}

/// Creates CutMix with the official clovaai/CutMix-PyTorch semantics: per batch, with probability `prob`,
/// lambda ~ Beta(alpha, alpha) (alpha > 0), a random partner permutation, one box of side len*sqrt(1 - lambda)
/// pasted from the partner into every image, lambda corrected to 1 - box area / (H*W). `label_smoothing` in
/// [0, 1) smooths the targets first (ReLabel's variant; 0 is the official code). Draws come from the mixer's
/// own generator seeded by `seed`, so a sequence of vc_mixer_apply calls is reproducible.
@c public func vc_mixer_cutmix(_ alpha: Double, _ prob: Double, _ num_classes: Int64, _ label_smoothing: Double, _ seed: UInt64,
                               _ out: UnsafeMutablePointer<VCMixer?>?) -> Int32 {
    capi {
        try registerMixer(out, seed) {
            .cutmix(try CutMix(alpha: alpha, prob: prob, numClasses: try classCount(num_classes), labelSmoothing: label_smoothing))
        }
    }
}

/// Creates Mixup (facebookresearch/mixup-cifar10): lambda ~ Beta(alpha, alpha) (alpha > 0), a random partner
/// permutation, x = lambda*x + (1 - lambda)*x[perm], applied with probability `prob`; any [N, ...] batch.
@c public func vc_mixer_mixup(_ alpha: Double, _ prob: Double, _ num_classes: Int64, _ label_smoothing: Double, _ seed: UInt64,
                              _ out: UnsafeMutablePointer<VCMixer?>?) -> Int32 {
    capi {
        try registerMixer(out, seed) {
            .mixup(try Mixup(alpha: alpha, prob: prob, numClasses: try classCount(num_classes), labelSmoothing: label_smoothing))
        }
    }
}

/// Creates timm's Mixup (timm/data/mixup.py): Mixup or CutMix chosen per batch, pair or element (`mode`,
/// VC_MIX_MODE_*), sample i mixed with sample N-1-i (batches must be even). mixup_alpha / cutmix_alpha >= 0
/// (0 disables that method); `cutmix_min` < `cutmix_max` in [0, 1] gives timm's cutmix_minmax (both 0: none);
/// `prob` of mixing, `switch_prob` of CutMix when both are on, `correct_lam` 1 corrects lambda to the clipped
/// box, `label_smoothing` in [0, 1) (timm's default 0.1).
@c public func vc_mixer_timm(_ mixup_alpha: Double, _ cutmix_alpha: Double, _ cutmix_min: Double, _ cutmix_max: Double,
                             _ prob: Double, _ switch_prob: Double, _ mode: Int32, _ correct_lam: Int32,
                             _ label_smoothing: Double, _ num_classes: Int64, _ seed: UInt64,
                             _ out: UnsafeMutablePointer<VCMixer?>?) -> Int32 {
    capi {
        try registerMixer(out, seed) {
            guard let m = VCMixMode(rawValue: mode) else { throw VisionError.invalidArgument("mode must be a VC_MIX_MODE_* value, got \(mode)") }
            let minmax: (Double, Double)? = cutmix_min == 0 && cutmix_max == 0 ? nil : (cutmix_min, cutmix_max)
            let swiftMode: TimmMixup.Mode = m == .batch ? .batch : m == .pair ? .pair : .elem
            return .timm(try TimmMixup(mixupAlpha: mixup_alpha, cutmixAlpha: cutmix_alpha, cutmixMinMax: minmax, prob: prob,
                                       switchProb: switch_prob, mode: swiftMode, correctLambda: try flag(correct_lam, "correct_lam"),
                                       labelSmoothing: label_smoothing, numClasses: try classCount(num_classes)))
        }
    }
}

/// Creates Cutout (uoguelph-mlrg/Cutout): `holes` squares of side `length` (ends clipped to the image) zeroed
/// in every image; the targets are the labels as (smoothed) one-hot rows. Apply it after normalizing.
@c public func vc_mixer_cutout(_ length: Int64, _ holes: Int64, _ num_classes: Int64, _ label_smoothing: Double, _ seed: UInt64,
                               _ out: UnsafeMutablePointer<VCMixer?>?) -> Int32 {
    capi {
        try registerMixer(out, seed) {
            guard length >= 1, length <= Int64(ImageLimits.maxSide), holes >= 1, holes <= 65536 else {
                throw VisionError.invalidArgument("length must be in 1...\(ImageLimits.maxSide) and holes in 1...65536, got \(length), \(holes)")
            }
            let k = try classCount(num_classes)
            guard label_smoothing.isFinite, label_smoothing >= 0, label_smoothing < 1 else {
                throw VisionError.invalidArgument("label_smoothing must be in [0, 1), got \(label_smoothing)")
            }
            return .cutout(try Cutout(length: Int(length), holes: Int(holes)), numClasses: k, labelSmoothing: label_smoothing)
        }
    }
}

/// Creates VideoMix for clips [N, C, T, H, W]: with probability `prob`, lambda ~ Beta(alpha, alpha), a partner
/// permutation and one cuboid (`variant`, VC_VIDEOMIX_*) pasted from the partner into every clip; the labels are
/// mixed by the voxel fraction that stays the clip's own.
@c public func vc_mixer_videomix(_ variant: Int32, _ alpha: Double, _ prob: Double, _ num_classes: Int64, _ label_smoothing: Double,
                                 _ seed: UInt64, _ out: UnsafeMutablePointer<VCMixer?>?) -> Int32 {
    capi {
        try registerMixer(out, seed) {
            guard let v = VCVideoMixVariant(rawValue: variant) else {
                throw VisionError.invalidArgument("variant must be a VC_VIDEOMIX_* value, got \(variant)")
            }
            let sv: VideoMix.Variant = v == .spatial ? .spatial : v == .temporal ? .temporal : .spatioTemporal
            return .videomix(try VideoMix(variant: sv, alpha: alpha, prob: prob, numClasses: try classCount(num_classes),
                                          labelSmoothing: label_smoothing))
        }
    }
}

/// Releases a mixer (NULL is a no-op).
@c public func vc_mixer_free(_ mixer: VCMixer?) -> Int32 {
    capi { guard releaseObject(mixer, MixerBox.self) else { throw HandleError(message: "mixer is not a live vc_mixer (freed or invalid)") } }
}

/// Restarts the mixer's generator from `seed`, as if it had just been created with it: a loop that reseeds from
/// (seed, epoch, step) makes its mixing resumable mid-run, like the loader's batches.
@c public func vc_mixer_reseed(_ mixer: VCMixer?, _ seed: UInt64) -> Int32 {
    capi { try mixerArg(mixer).rng = RandomGenerator(seed: seed) }
}

/// Switches mixing on (1) or off (0) for CutMix and timm's Mixup (timm's mixup_enabled, ReLabel's last epochs):
/// when off nothing is drawn and the targets are only smoothed. Other methods fail with VC_UNSUPPORTED.
@c public func vc_mixer_set_enabled(_ mixer: VCMixer?, _ enabled: Int32) -> Int32 {
    capi {
        let box = try mixerArg(mixer)
        let on = try flag(enabled, "enabled")
        switch box.method {
        case .cutmix(var m): m.enabled = on; box.method = .cutmix(m)
        case .timm(var m): m.enabled = on; box.method = .timm(m)
        default: throw VisionError.unsupported("only CutMix and timm's Mixup can be switched off; do not apply the others")
        }
    }
}

/// Mixes a float32 batch — [N, C, H, W] (CutMix, timm, Cutout), [N, ...] (Mixup) or [N, C, T, H, W] (VideoMix) —
/// with its labels: int32/int64 class indices [N] or float32 soft targets [N, num_classes]. Writes the mixed
/// batch (a new tensor) to *out_images and the float32 [N, num_classes] targets (rows summing to 1) to
/// *out_targets. Optional outputs (may be NULL): *out_lambdas, float32 [N], each sample's weight of its own
/// target after the area correction (1 when unmixed); *out_boxes, int64 [N, 4] (top, bottom, left, right) of
/// the pasted or erased box, or [N, 6] (t0, t1, top, bottom, left, right) for VideoMix, -1 where there is none.
/// A failed call leaves the mixer's generator where it was.
@c public func vc_mixer_apply(_ mixer: VCMixer?, _ images: VCTensor?, _ labels: VCTensor?, _ out_images: UnsafeMutablePointer<VCTensor?>?,
                              _ out_targets: UnsafeMutablePointer<VCTensor?>?, _ out_lambdas: UnsafeMutablePointer<VCTensor?>?,
                              _ out_boxes: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let out_images, let out_targets else { throw VisionError.invalidArgument("out_images or out_targets is NULL") }
        out_images.pointee = nil
        out_targets.pointee = nil
        out_lambdas?.pointee = nil
        out_boxes?.pointee = nil
        let box = try mixerArg(mixer)
        let x = try tensorArg(images, "images"), y = try tensorArg(labels, "labels")
        var rng = box.rng      // committed only on success
        let mixed: Tensor, targets: Tensor, lambdas: [Double], rects: [[Int]]
        func rows(_ bs: [MixBox?]) -> [[Int]] { bs.map { b in b.map { [$0.top, $0.bottom, $0.left, $0.right] } ?? [-1, -1, -1, -1] } }
        switch box.method {
        case .cutmix(let m):
            let r = try m(x, labels: y, draws: &rng)
            (mixed, targets, lambdas, rects) = (r.images, r.targets, r.lambdas, rows(r.boxes))
        case .mixup(let m):
            let r = try m(x, labels: y, draws: &rng)
            (mixed, targets, lambdas, rects) = (r.images, r.targets, r.lambdas, rows(r.boxes))
        case .timm(let m):
            let r = try m(x, labels: y, draws: &rng)
            (mixed, targets, lambdas, rects) = (r.images, r.targets, r.lambdas, rows(r.boxes))
        case .cutout(let m, let k, let eps):
            let r = try m(x, labels: y, numClasses: k, labelSmoothing: eps, draws: &rng)
            (mixed, targets, lambdas, rects) = (r.images, r.targets, r.lambdas, rows(r.boxes))
        case .videomix(let m):
            let r = try m(x, labels: y, draws: &rng)
            let n = r.partners.count
            let c = r.cuboid.map { [$0.t0, $0.t1, $0.top, $0.bottom, $0.left, $0.right] } ?? [-1, -1, -1, -1, -1, -1]
            (mixed, targets) = (r.clips, r.targets)
            lambdas = Array(repeating: r.lambda, count: n)
            rects = Array(repeating: c, count: n)
        }
        let n = lambdas.count, width = rects.first?.count ?? 4
        let lam = try out_lambdas.map { _ in try Tensor(lambdas.map { Float($0) }, shape: [n]) }
        let bx = try out_boxes.map { _ in try Tensor(rects.flatMap { $0.map { Int64($0) } }, shape: [n, width]) }
        box.rng = rng
        out_images.pointee = makeHandle(mixed)
        out_targets.pointee = makeHandle(targets)
        if let lam { out_lambdas?.pointee = makeHandle(lam) }
        if let bx { out_boxes?.pointee = makeHandle(bx) }
    }
}
