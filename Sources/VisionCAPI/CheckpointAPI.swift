import VisionCore
import VisionNN
import VisionOptim
import VisionTrain

/// The C API's "model": the caller's named tensor handles, registered without copying so that loading writes
/// into the handles' own storage.
private final class HandleModel: Module {
    init(_ boxes: [TensorBox], _ names: [String]) throws {
        super.init()
        for (box, name) in zip(boxes, names) { register(name, try Parameter(wrapping: box.tensor)) }
    }
}

private final class BoxedOptimizer: CheckpointableOptimizer {
    let box: OptimizerBox
    init(_ box: OptimizerBox) { self.box = box }
    func stateDict() throws -> OptimizerState { try box.stateDict() }
    func load(_ saved: OptimizerState) throws { try box.load(saved) }
}

private func handleModel(_ params: UnsafeMutablePointer<VCTensor?>?, _ names: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                         _ n: Int64) throws -> HandleModel {
    guard n >= 1, n <= 1 << 20 else { throw VisionError.invalidArgument("n must be in 1...\(1 << 20), got \(n)") }
    guard let params, let names else { throw VisionError.invalidArgument("params and names must not be NULL") }
    let boxes = try (0..<Int(n)).map { try tensorBox(params[$0], "params[\($0)]") }
    let labels = try (0..<Int(n)).map { try stringArg(names[$0], "names[\($0)]") }
    guard Set(labels).count == labels.count, labels.allSatisfy({ !$0.isEmpty }) else {
        throw VisionError.invalidArgument("names must be non-empty and distinct")
    }
    return try HandleModel(boxes, labels)
}

/// Saves a training checkpoint: the `n` named parameter tensors, the optimizer's state (optimizer may be NULL),
/// and the step and epoch counters, in one safetensors file written atomically (a crash while saving leaves the
/// previous file intact).
@c public func vc_checkpoint_save(_ path: UnsafePointer<CChar>?, _ params: UnsafeMutablePointer<VCTensor?>?,
                                  _ names: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ n: Int64,
                                  _ optimizer: VCOptimizer?, _ step: Int64, _ epoch: Int64) -> Int32 {
    capi {
        guard step >= 0, epoch >= 0 else { throw VisionError.invalidArgument("step and epoch must be >= 0") }
        let model = try handleModel(params, names, n)
        let opt = try optimizer.map { BoxedOptimizer(try object($0, OptimizerBox.self, "optimizer", "vc_optimizer")) }
        try Checkpoint.save(path: try stringArg(path, "path"), model: model, optimizer: opt,
                            progress: TrainingProgress(step: Int(step), epoch: Int(epoch)))
    }
}

/// Restores a checkpoint written by vc_checkpoint_save into the same named tensors (in place) and optimizer
/// (may be NULL), and writes the saved counters to *out_step and *out_epoch (either may be NULL). Everything is
/// checked first: a checkpoint of another model or optimizer fails with a message naming the key, changing nothing.
@c public func vc_checkpoint_load(_ path: UnsafePointer<CChar>?, _ params: UnsafeMutablePointer<VCTensor?>?,
                                  _ names: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ n: Int64,
                                  _ optimizer: VCOptimizer?, _ out_step: UnsafeMutablePointer<Int64>?,
                                  _ out_epoch: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let model = try handleModel(params, names, n)
        let opt = try optimizer.map { BoxedOptimizer(try object($0, OptimizerBox.self, "optimizer", "vc_optimizer")) }
        let progress = try Checkpoint.load(path: try stringArg(path, "path"), model: model, optimizer: opt)
        out_step?.pointee = Int64(progress.step)
        out_epoch?.pointee = Int64(progress.epoch)
    }
}
