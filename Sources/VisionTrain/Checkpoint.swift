import VisionCore
import VisionNN
import VisionOptim

/// What an optimizer contributes to a checkpoint (every `Optimizer<Options>` conforms).
public protocol CheckpointableOptimizer: AnyObject {
    func stateDict() throws -> OptimizerState
    func load(_ saved: OptimizerState) throws
}

extension Optimizer: CheckpointableOptimizer {}

/// The counters and generators of a training run, saved beside the weights so that a resumed run continues
/// bit for bit.
public struct TrainingProgress: Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    /// Named generator states (data order, augmentation, dropout...).
    public var rngs: [String: RandomGenerator]
    /// Free-form strings (model name, command line, metrics).
    public var extra: [String: String]

    public init(step: Int = 0, epoch: Int = 0, rngs: [String: RandomGenerator] = [:], extra: [String: String] = [:]) {
        (self.step, self.epoch, self.rngs, self.extra) = (step, epoch, rngs, extra)
    }
}

/// A training checkpoint: model weights, optimizer state, scheduler state, generator states and counters in one
/// safetensors file (tensors `model.<key>` and `optimizer.<key>`, JSON metadata under `visioncore.checkpoint`),
/// written atomically (temporary file, fsync, rename) so that a crash while saving leaves the previous file whole.
public enum Checkpoint {
    public static let metadataKey = "visioncore.checkpoint"
    static let format = 1

    public static func save(path: String, model: Module, optimizer: CheckpointableOptimizer? = nil,
                            scheduler: LRScheduler? = nil, progress: TrainingProgress) throws {
        var tensors = model.stateDict().map { ("model." + $0.0, $0.1) }
        var optimizerJSON = JSONValue.null
        if let optimizer {
            let s = try optimizer.stateDict()
            tensors += s.tensors.map { ("optimizer." + $0.0, $0.1) }
            optimizerJSON = s.json
        }
        // The generators of stochastic layers (dropout masks) travel with the run's own generators.
        var all = progress.rngs
        for (name, m) in model.namedModules() { if let s = m as? StochasticModule { all["module." + name] = s.rng } }
        let rngs = all.sorted { $0.key < $1.key }.map { (name, g) -> (String, JSONValue) in
            let s = g.state
            return (name, .array([s.0, s.1, s.2, s.3].map { .string(String($0)) }))  // strings: Double loses 64-bit words
        }
        let meta = JSONValue.object([
            ("format", .number(Double(format))),
            ("model", .string(String(describing: type(of: model)))),
            ("step", .number(Double(progress.step))), ("epoch", .number(Double(progress.epoch))),
            ("optimizer", optimizerJSON), ("scheduler", scheduler?.stateJSON ?? .null),
            ("rngs", .object(rngs)),
            ("extra", .object(progress.extra.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ])
        try Safetensors.save(tensors, metadata: [(metadataKey, meta.serialized)], path: path)
    }

    /// Restores a checkpoint into `model`, `optimizer` and `scheduler` and returns the saved progress. The file is
    /// fully read and checked first; if any part does not fit (another model, another optimizer, a corrupt file),
    /// the error says which and every object is left as it was.
    public static func load(path: String, model: Module, optimizer: CheckpointableOptimizer? = nil,
                            scheduler: LRScheduler? = nil) throws -> TrainingProgress {
        let file = try Safetensors.load(path: path)
        guard let text = file.metadata.first(where: { $0.0 == metadataKey })?.1 else {
            throw VisionError.format("\(path): not a VisionCore checkpoint (no '\(metadataKey)' metadata)")
        }
        let meta = try JSONValue.parse(text)
        guard meta["format"]?.numberValue == Double(format) else {
            throw VisionError.format("\(path): unsupported checkpoint format \(meta["format"]?.serialized ?? "none")")
        }
        let progress = try parseProgress(meta, path)
        let modelEntries = file.entries.filter { $0.name.hasPrefix("model.") }.map { (String($0.name.dropFirst(6)), $0.tensor) }
        let optimizerEntries = file.entries.filter { $0.name.hasPrefix("optimizer.") }.map { (String($0.name.dropFirst(10)), $0.tensor) }
        guard modelEntries.count + optimizerEntries.count == file.entries.count else {
            throw VisionError.format("\(path): tensors outside the model. and optimizer. sections")
        }
        if optimizer != nil, meta["optimizer"] == nil || meta["optimizer"] == .null {
            throw VisionError.invalidArgument("\(path): the checkpoint has no optimizer state to restore")
        }
        // Snapshots for rollback: a later part failing must not leave earlier parts changed.
        let modelBefore = try model.stateDict().map { ($0.0, try $0.1.copyContiguous()) }
        let optimizerBefore = try optimizer?.stateDict()
        let schedulerBefore = scheduler?.stateJSON
        do {
            try model.loadStateDict(modelEntries)
            if let optimizer, let json = meta["optimizer"] {
                try optimizer.load(OptimizerState(tensors: optimizerEntries, json: json))
            }
            if let scheduler {
                guard let json = meta["scheduler"], json != .null else {
                    throw VisionError.invalidArgument("\(path): the checkpoint has no scheduler state to restore")
                }
                try scheduler.load(json)
            }
            for (name, m) in model.namedModules() {
                if let s = m as? StochasticModule, let g = progress.rngs["module." + name] { s.rng = g }
            }
        } catch {
            try? model.loadStateDict(modelBefore)
            if let optimizerBefore { try? optimizer?.load(optimizerBefore) }
            if let schedulerBefore { try? scheduler?.load(schedulerBefore) }
            throw error
        }
        var userProgress = progress
        userProgress.rngs = progress.rngs.filter { !$0.key.hasPrefix("module.") }
        return userProgress
    }

    static func parseProgress(_ meta: JSONValue, _ path: String) throws -> TrainingProgress {
        func count(_ key: String) throws -> Int {
            guard let v = meta[key]?.numberValue, v >= 0, v == v.rounded(), v < 9e15 else {
                throw VisionError.format("\(path): checkpoint '\(key)' is not a non-negative integer")
            }
            return Int(v)
        }
        var rngs: [String: RandomGenerator] = [:]
        if case .object(let members)? = meta["rngs"] {
            for (name, value) in members {
                guard let words = value.arrayValue?.compactMap({ $0.stringValue.flatMap { UInt64($0) } }), words.count == 4 else {
                    throw VisionError.format("\(path): generator state '\(name)' is not four 64-bit words")
                }
                rngs[name] = RandomGenerator(state: (words[0], words[1], words[2], words[3]))
            }
        }
        var extra: [String: String] = [:]
        if case .object(let members)? = meta["extra"] {
            for (k, v) in members { extra[k] = v.stringValue ?? v.serialized }
        }
        return TrainingProgress(step: try count("step"), epoch: try count("epoch"), rngs: rngs, extra: extra)
    }
}
