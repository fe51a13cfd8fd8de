#if canImport(Glibc)
import Glibc
#endif
import VisionCore
import VisionModels
import VisionNN
import VisionOptim
import VisionTrain

/// Opaque C handle to a classification model of the registry (`vc_model *`): ResNet, ReXNet, PiT by timm name.
/// A model handle is single-threaded (forward in training mode updates BatchNorm statistics and dropout
/// generators).
public typealias VCModel = OpaquePointer

final class ModelBox {
    let model: ImageClassifier
    /// C strings handed out by vc_model_parameter_name; freed with the model.
    private var cStrings: [String: UnsafeMutablePointer<CChar>] = [:]

    init(_ model: ImageClassifier) { self.model = model }

    func cString(_ s: String) -> UnsafePointer<CChar>? {
        if let p = cStrings[s] { return UnsafePointer(p) }
        guard let p = strdup(s) else { return nil }
        cStrings[s] = p
        return UnsafePointer(p)
    }

    deinit { for p in cStrings.values { free(p) } }
}

private func modelArg(_ h: VCModel?) throws -> ModelBox { try object(h, ModelBox.self, "model", "vc_model") }

/// The registry's names as C strings that live as long as the process (the built-in list never changes;
/// names registered later from Swift are added on first use).
private final class NameStrings: @unchecked Sendable {
    private var strings: [String: UnsafeMutablePointer<CChar>] = [:]
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }
    func cString(_ s: String) -> UnsafePointer<CChar>? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if let p = strings[s] { return UnsafePointer(p) }
        guard let p = strdup(s) else { return nil }
        strings[s] = p
        return UnsafePointer(p)
    }
}

private let nameStrings = NameStrings()

/// Writes the number of model names vc_model_create accepts to *out_count.
@c public func vc_model_list_count(_ out_count: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        guard let out_count else { throw VisionError.invalidArgument("out_count is NULL") }
        out_count.pointee = Int64(ClassifierRegistry.allNames.count)
    }
}

/// Writes model name `index` (0-based, registry order: "resnet18", ..., "rexnet_100", ..., "pit_ti_224", ...) to
/// *out_name; the string stays valid for the life of the process.
@c public func vc_model_list_name(_ index: Int64, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capi {
        guard let out_name else { throw VisionError.invalidArgument("out_name is NULL") }
        out_name.pointee = nil
        let names = ClassifierRegistry.allNames
        guard index >= 0, index < names.count else {
            throw VisionError.invalidArgument("index \(index) is out of range for \(names.count) models")
        }
        out_name.pointee = nameStrings.cString(names[Int(index)])
    }
}

/// Writes the name of ImageNet-1k class `index` (0...999, torchvision's names, e.g. 281 "tabby") to
/// *out_name; the string stays valid for the life of the process.
@c public func vc_imagenet_class_name(_ index: Int64, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capi {
        guard let out_name else { throw VisionError.invalidArgument("out_name is NULL") }
        out_name.pointee = nil
        guard index >= 0, index < imageNetClassNames.count else {
            throw VisionError.invalidArgument("class index \(index) is out of range for \(imageNetClassNames.count) ImageNet classes")
        }
        out_name.pointee = nameStrings.cString(imageNetClassNames[Int(index)])
    }
}

/// Creates the registry model `name` (timm's model names) with freshly initialized weights, as timm's
/// create_model: `num_classes` outputs (0: no classifier, forward gives the pooled features), `in_chans` input
/// channels, stochastic-depth rate `drop_path_rate` in [0, 1), initializers and dropout generators seeded by
/// `seed`. The model starts in training mode (call vc_model_set_training(model, 0) before inference). An
/// unknown name fails with VC_INVALID_ARGUMENT and a message listing the known ones.
@c public func vc_model_create(_ name: UnsafePointer<CChar>?, _ num_classes: Int64, _ in_chans: Int64,
                               _ drop_path_rate: Float, _ seed: UInt64, _ out: UnsafeMutablePointer<VCModel?>?) -> Int32 {
    capi {
        guard let out else { throw VisionError.invalidArgument("out is NULL") }
        out.pointee = nil
        let n = try stringArg(name, "name")
        guard num_classes >= 0, num_classes <= Int64(ClassifierRegistry.maxClasses) else {
            throw VisionError.invalidArgument("num_classes must be in 0...\(ClassifierRegistry.maxClasses), got \(num_classes)")
        }
        guard in_chans >= 1, in_chans <= Int64(ClassifierRegistry.maxInChans) else {
            throw VisionError.invalidArgument("in_chans must be in 1...\(ClassifierRegistry.maxInChans), got \(in_chans)")
        }
        let options = ClassifierOptions(numClasses: Int(num_classes), inChans: Int(in_chans),
                                        dropPathRate: drop_path_rate, seed: seed)
        out.pointee = registerObject(ModelBox(try ClassifierRegistry.make(n, options: options)))
    }
}

/// Releases a model (NULL is a no-op). Parameter tensors taken from it stay valid (they own their data too).
@c public func vc_model_free(_ model: VCModel?) -> Int32 {
    capi { guard releaseObject(model, ModelBox.self) else { throw HandleError(message: "model is not a live vc_model (freed or invalid)") } }
}

/// Writes the model's registry name to *out_name (valid as long as the model).
@c public func vc_model_name(_ model: VCModel?, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capi {
        let box = try modelArg(model)
        guard let out_name else { throw VisionError.invalidArgument("out_name is NULL") }
        out_name.pointee = box.cString(box.model.name)
    }
}

/// Writes the number of classifier outputs (0 for a model created without classifier) and the width of the
/// pooled pre-logits features; either pointer may be NULL.
@c public func vc_model_num_classes(_ model: VCModel?, _ out_num_classes: UnsafeMutablePointer<Int64>?,
                                    _ out_num_features: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let m = try modelArg(model).model
        guard out_num_classes != nil || out_num_features != nil else {
            throw VisionError.invalidArgument("out_num_classes and out_num_features are both NULL")
        }
        out_num_classes?.pointee = Int64(m.numClasses)
        out_num_features?.pointee = Int64(m.numFeatures)
    }
}

/// Loads a safetensors file with timm's state-dict key names into the model, strictly: every key must be
/// present with the model's shape and no other key may appear. On a mismatch (weights of another model or
/// another num_classes) it fails with VC_SHAPE_MISMATCH and a message listing the missing, unexpected and
/// mis-shaped keys (with both shapes), and the model is unchanged. The training mode is not changed.
@c public func vc_model_load(_ model: VCModel?, _ path: UnsafePointer<CChar>?) -> Int32 {
    capi {
        let box = try modelArg(model)
        try box.model.load(path: try stringArg(path, "path"), strict: true)
    }
}

/// Loads the tensors of a vc_tensor_map (e.g. from vc_safetensors_load) into the model: strict (1) as
/// vc_model_load; non-strict (0) ignores missing and unexpected keys but still refuses mis-shaped ones.
@c public func vc_model_load_state_dict(_ model: VCModel?, _ map: VCTensorMap?, _ strict: Int32) -> Int32 {
    capi {
        let box = try modelArg(model)
        let entries = try mapArg(map).file.entries.map { ($0.name, $0.tensor) }
        guard strict == 0 || strict == 1 else { throw VisionError.invalidArgument("strict must be 0 or 1, got \(strict)") }
        try box.model.loadStateDict(entries, strict: strict == 1)
    }
}

/// Writes the model's state dict (parameters and buffers, timm's key names) to a safetensors file atomically.
@c public func vc_model_save(_ model: VCModel?, _ path: UnsafePointer<CChar>?) -> Int32 {
    capi {
        let box = try modelArg(model)
        try box.model.save(path: try stringArg(path, "path"), metadata: [("format", "pt"), ("model", box.model.name)])
    }
}

/// A new vc_tensor_map holding a copy of the model's state dict (parameters and buffers), in PyTorch's order.
@c public func vc_model_state_dict(_ model: VCModel?, _ out: UnsafeMutablePointer<VCTensorMap?>?) -> Int32 {
    capi {
        guard let out else { throw VisionError.invalidArgument("out is NULL") }
        out.pointee = nil
        let m = try modelArg(model).model
        let box = TensorMapBox()
        // Copies: training updates parameters in place, and the map is a snapshot.
        box.file.entries = try m.stateDict().map { ($0.0, try $0.1.copyContiguous(), SafetensorsDType($0.1.dtype)) }
        out.pointee = registerObject(box)
    }
}

/// Switches the model to training mode (1: dropout and drop-path active, BatchNorm uses and updates batch
/// statistics) or evaluation mode (0).
@c public func vc_model_set_training(_ model: VCModel?, _ training: Int32) -> Int32 {
    capi {
        let box = try modelArg(model)
        guard training == 0 || training == 1 else { throw VisionError.invalidArgument("training must be 0 or 1, got \(training)") }
        box.model.train(training == 1)
    }
}

/// Writes 1 to *out_flag when the model is in training mode.
@c public func vc_model_is_training(_ model: VCModel?, _ out_flag: UnsafeMutablePointer<Int32>?) -> Int32 {
    capi {
        let box = try modelArg(model)
        guard let out_flag else { throw VisionError.invalidArgument("out_flag is NULL") }
        out_flag.pointee = box.model.isTraining ? 1 : 0
    }
}

/// Runs the model on a float32 [N, C, H, W] batch and gives the logits [N, num_classes] (the pooled features
/// when num_classes is 0). With gradient recording on (vc_set_grad_enabled) and parameters that require
/// gradients (the default), the output carries the graph: vc_tensor_backward on a loss of it fills the
/// gradients of the vc_model_parameter tensors. Wrong channel counts, sizes a model cannot take (PiT's fixed
/// grid) and non-float32 input fail with a message.
@c public func vc_model_forward(_ model: VCModel?, _ x: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            let m = try modelArg(model).model
            return try m.forward(try batchArg(x, m))
        }
    }
}

/// The trunk's output before pooling (timm's forward_features): [N, C, h, w] for CNNs, the token sequence
/// [N, T + h*w, C] for PiT. Records gradients as vc_model_forward.
@c public func vc_model_forward_features(_ model: VCModel?, _ x: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            let m = try modelArg(model).model
            return try m.forwardFeatures(try batchArg(x, m))
        }
    }
}

/// timm's forward_head on the output of vc_model_forward_features: pooling, dropout and classifier, or with
/// `pre_logits` = 1 the pooled [N, num_features] features.
@c public func vc_model_forward_head(_ model: VCModel?, _ features: VCTensor?, _ pre_logits: Int32,
                                     _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            let m = try modelArg(model).model
            guard pre_logits == 0 || pre_logits == 1 else { throw VisionError.invalidArgument("pre_logits must be 0 or 1, got \(pre_logits)") }
            let f = try tensorArg(features, "features")
            guard f.dtype == .float32 else { throw VisionError.dtypeMismatch("features must be float32, got \(f.dtype)") }
            return try m.forwardHead(f, preLogits: pre_logits == 1)
        }
    }
}

/// The model input: float32, rank 4, non-empty (a clear message before any kernel sees it).
private func batchArg(_ x: VCTensor?, _ m: ImageClassifier) throws -> Tensor {
    let t = try tensorArg(x, "x")
    guard t.dtype == .float32 else {
        throw VisionError.dtypeMismatch("\(m.name) forward: input must be float32 [N, C, H, W], got \(t.dtype) (convert images with vc_image_eval_transform)")
    }
    guard t.rank == 4, t.count > 0 else {
        throw VisionError.shapeMismatch("\(m.name) forward: input must be a non-empty float32 [N, C, H, W] batch, got shape \(t.shape)")
    }
    return t
}

/// Writes the number of parameter elements (timm's sum of p.numel()) to *out_n: of all parameters, or with
/// `trainable_only` = 1 of those that require gradients.
@c public func vc_model_num_params(_ model: VCModel?, _ trainable_only: Int32, _ out_n: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let m = try modelArg(model).model
        guard trainable_only == 0 || trainable_only == 1 else { throw VisionError.invalidArgument("trainable_only must be 0 or 1, got \(trainable_only)") }
        guard let out_n else { throw VisionError.invalidArgument("out_n is NULL") }
        out_n.pointee = Int64(m.parameterCount(trainableOnly: trainable_only == 1))
    }
}

/// Writes the number of parameter tensors (what vc_model_parameter enumerates; buffers such as BatchNorm's
/// running statistics are not parameters) to *out_count.
@c public func vc_model_parameter_count(_ model: VCModel?, _ out_count: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let m = try modelArg(model).model
        guard let out_count else { throw VisionError.invalidArgument("out_count is NULL") }
        out_count.pointee = Int64(m.namedParameters().count)
    }
}

/// Gives a new tensor handle to parameter `index` (0-based, PyTorch's named_parameters order) that shares the
/// model's storage and gradient: vc_optimizer_create over these handles trains the model, loading weights
/// changes what they read, and vc_tensor_grad gives the gradient after a backward through vc_model_forward.
/// Free each handle with vc_tensor_free. Read it with vc_tensor_copy_to: vc_tensor_data and
/// vc_tensor_set_requires_grad give the handle a private copy that no longer trains the model.
@c public func vc_model_parameter(_ model: VCModel?, _ index: Int64, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            let params = try modelArg(model).model.namedParameters()
            guard index >= 0, index < params.count else {
                throw VisionError.invalidArgument("parameter index \(index) is out of range for \(params.count) parameters")
            }
            return params[Int(index)].1.value
        }
    }
}

/// Writes the state-dict name of parameter `index` (e.g. "conv1.weight") to *out_name; the string lives as long
/// as the model.
@c public func vc_model_parameter_name(_ model: VCModel?, _ index: Int64, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capi {
        let box = try modelArg(model)
        guard let out_name else { throw VisionError.invalidArgument("out_name is NULL") }
        out_name.pointee = nil
        let params = box.model.namedParameters()
        guard index >= 0, index < params.count else {
            throw VisionError.invalidArgument("parameter index \(index) is out of range for \(params.count) parameters")
        }
        out_name.pointee = box.cString(params[Int(index)].0)
    }
}

/// Clears the gradients of every parameter of the model.
@c public func vc_model_zero_grad(_ model: VCModel?) -> Int32 {
    capi { try modelArg(model).model.zeroGrad() }
}

/// The input the model's weights expect (timm's pretrained cfg). Writes [channels, height, width] to
/// out_input_size (3 values), the per-channel normalisation to out_mean and out_std (`capacity` values of room
/// each, at least the channel count), the crop fraction to *out_crop_pct and the resampling filter to *out_interpolation:
/// VC_RESIZE_BILINEAR or VC_RESIZE_BICUBIC (PIL's filters of those names, which the eval transform uses). Any output may be NULL (with capacity 0 for mean and std).
@c public func vc_model_input_config(_ model: VCModel?, _ out_input_size: UnsafeMutablePointer<Int64>?,
                                     _ out_mean: UnsafeMutablePointer<Float>?, _ out_std: UnsafeMutablePointer<Float>?,
                                     _ capacity: Int64, _ out_crop_pct: UnsafeMutablePointer<Double>?,
                                     _ out_interpolation: UnsafeMutablePointer<Int32>?) -> Int32 {
    capi {
        let cfg = try modelArg(model).model.config
        if out_mean != nil || out_std != nil {
            guard capacity >= Int64(cfg.mean.count), capacity >= Int64(cfg.std.count) else {
                throw VisionError.invalidArgument("capacity \(capacity) is below the \(cfg.mean.count) mean/std values")
            }
        }
        if let out_input_size { for (i, v) in cfg.inputSize.prefix(3).enumerated() { out_input_size[i] = Int64(v) } }
        if let out_mean { for (i, v) in cfg.mean.enumerated() { out_mean[i] = v } }
        if let out_std { for (i, v) in cfg.std.enumerated() { out_std[i] = v } }
        out_crop_pct?.pointee = cfg.cropPct
        out_interpolation?.pointee = cfg.interpolation == .bilinear ? ResizeFilter.bilinear.rawValue : ResizeFilter.bicubic.rawValue
    }
}

/// timm's eval transform for `model` of a uint8 [H, W, C] image (as vc_image_load gives, C = the model's input
/// channels): shorter side resized to floor(size / crop_pct) with the model's interpolation (bit-exact with PIL's
/// resize), center crop to the input size, x / 255, normalised by mean/std. *out receives float32 [1, C, H, W]
/// ready for vc_model_forward. A wrong dtype, rank or channel count fails with a message.
@c public func vc_image_eval_transform(_ image: VCTensor?, _ model: VCModel?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            let m = try modelArg(model).model
            return try evalTransform(try tensorArg(image, "image"), config: m.config)
        }
    }
}

/// vc_image_eval_transform of an image file (PNG, JPEG or BMP), decoded to the model's channel count (grey and
/// RGBA photos are converted, as timm's loader converts to RGB). Unreadable files are VC_IO_ERROR, data that
/// does not decode VC_FORMAT_ERROR.
@c public func vc_image_eval_transform_file(_ path: UnsafePointer<CChar>?, _ model: VCModel?,
                                            _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            let m = try modelArg(model).model
            return try evalTransform(path: try stringArg(path, "path"), config: m.config)
        }
    }
}

private final class ModelOptimizer: CheckpointableOptimizer {
    let box: OptimizerBox
    init(_ box: OptimizerBox) { self.box = box }
    func stateDict() throws -> OptimizerState { try box.stateDict() }
    func load(_ saved: OptimizerState) throws { try box.load(saved) }
}

/// Saves a training checkpoint of a model: its whole state dict (parameters and buffers such as BatchNorm's
/// running statistics), the optimizer's and the scheduler's state (either may be NULL), the dropout / drop-path
/// generators and the step and epoch counters, in one safetensors file written atomically.
@c public func vc_model_checkpoint_save(_ path: UnsafePointer<CChar>?, _ model: VCModel?, _ optimizer: VCOptimizer?,
                                        _ scheduler: VCScheduler?, _ step: Int64, _ epoch: Int64) -> Int32 {
    capi {
        guard step >= 0, epoch >= 0 else { throw VisionError.invalidArgument("step and epoch must be >= 0") }
        let m = try modelArg(model).model
        let opt = try optimizer.map { ModelOptimizer(try object($0, OptimizerBox.self, "optimizer", "vc_optimizer")) }
        let sched = try scheduler.map { try object($0, SchedulerBox.self, "scheduler", "vc_scheduler").scheduler }
        try Checkpoint.save(path: try stringArg(path, "path"), model: m, optimizer: opt, scheduler: sched,
                            progress: TrainingProgress(step: Int(step), epoch: Int(epoch), extra: ["model": m.name]))
    }
}

/// Restores a checkpoint written by vc_model_checkpoint_save into the model (in place: parameter handles and
/// optimizers stay attached), the optimizer and the scheduler (either may be NULL), and writes the counters to
/// *out_step and *out_epoch (either may be NULL). Everything is checked first: a checkpoint of another model or
/// optimizer fails with a message naming the key and changes nothing.
@c public func vc_model_checkpoint_load(_ path: UnsafePointer<CChar>?, _ model: VCModel?, _ optimizer: VCOptimizer?,
                                        _ scheduler: VCScheduler?, _ out_step: UnsafeMutablePointer<Int64>?,
                                        _ out_epoch: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let m = try modelArg(model).model
        let opt = try optimizer.map { ModelOptimizer(try object($0, OptimizerBox.self, "optimizer", "vc_optimizer")) }
        let sched = try scheduler.map { try object($0, SchedulerBox.self, "scheduler", "vc_scheduler").scheduler }
        let progress = try Checkpoint.load(path: try stringArg(path, "path"), model: m, optimizer: opt, scheduler: sched)
        out_step?.pointee = Int64(progress.step)
        out_epoch?.pointee = Int64(progress.epoch)
    }
}
