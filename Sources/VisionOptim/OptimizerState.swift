import VisionCore

/// An optimizer's state dict: named tensors plus JSON, the same split as a safetensors file (tensors + string
/// metadata), so a checkpoint stores it beside the model's tensors.
///
/// Tensors are named `state.<parameter name>.<buffer>` (for example `state.fc.weight.exp_avg`). The JSON is
/// ```
/// {"optimizer": "AdamP", "format": 1,
///  "param_groups": [{"params": ["fc.weight", ...], "lr": 0.001, "betas": [0.9, 0.999], ...}],
///  "state": [{"param": "fc.weight", "step": 20, "buffers": ["exp_avg", "exp_avg_sq"]}]}
/// ```
/// Loading checks the optimizer kind, the groups and their parameter names (in order), each group's
/// hyper-parameters, each buffer's name, dtype and shape against its parameter, and that no tensor is left over;
/// every error names the offending key.
public struct OptimizerState: @unchecked Sendable {
    public var tensors: [(String, Tensor)]
    public var json: JSONValue

    /// The safetensors metadata key under which `json` is stored.
    public static let metadataKey = "visioncore.optimizer"

    public init(tensors: [(String, Tensor)], json: JSONValue) {
        self.tensors = tensors
        self.json = json
    }

    /// Reads a state saved by `save(path:)` (or stored in a checkpoint with the same metadata key).
    public init(_ file: SafetensorsFile) throws {
        guard let text = file.metadata.first(where: { $0.0 == OptimizerState.metadataKey })?.1 else {
            throw VisionError.format("optimizer state: the file has no '\(OptimizerState.metadataKey)' metadata")
        }
        self.init(tensors: file.entries.map { ($0.name, $0.tensor) }, json: try JSONValue.parse(text))
    }

    /// Writes the state as a safetensors file, atomically.
    public func save(path: String) throws {
        try Safetensors.save(tensors, metadata: [(OptimizerState.metadataKey, json.serialized)], path: path)
    }

    public static func load(path: String) throws -> OptimizerState {
        try OptimizerState(Safetensors.load(path: path))
    }
}

extension Optimizer {
    /// A snapshot of hyper-parameters and state; buffers are copied, so later steps do not change it.
    public func stateDict() throws -> OptimizerState {
        var tensors: [(String, Tensor)] = []
        var stateJSON: [JSONValue] = []
        var groupJSON: [JSONValue] = []
        for (gi, g) in groups.enumerated() {
            groupJSON.append(.object([("params", .array(g.parameters.map { .string($0.name) }))] + g.options.json))
            for (pi, p) in g.parameters.enumerated() {
                guard let s = states[gi][pi] else { continue }
                let names = s.buffers.keys.sorted()
                for b in names { tensors.append(("state.\(p.name).\(b)", try s.buffers[b]!.copyContiguous())) }
                stateJSON.append(.object([("param", .string(p.name)), ("step", .number(Double(s.step))),
                                          ("buffers", .array(names.map { .string($0) }))]))
            }
        }
        let json = JSONValue.object([("optimizer", .string(kind)), ("format", .number(1)),
                                     ("param_groups", .array(groupJSON)), ("state", .array(stateJSON))])
        return OptimizerState(tensors: tensors, json: json)
    }

    /// Buffer names this optimizer may keep for a parameter; loading refuses others.
    var allowedBuffers: Set<String> {
        ["momentum_buffer", "momentum", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    }
}

extension OptimizerState {
    struct Decoded<O> {
        var options: [O]
        var states: [[ParameterState?]]
    }

    /// Validates this state against `optimizer` and builds its groups' options and fresh state objects.
    func decode<O>(for optimizer: Optimizer<O>) throws -> Decoded<O> {
        let kind = optimizer.kind
        func bad(_ m: String) -> VisionError { .invalidArgument("\(kind).load: \(m)") }
        guard let saved = json["optimizer"]?.stringValue else { throw bad("the state has no 'optimizer' entry") }
        guard saved == kind else { throw bad("the state belongs to a \(saved) optimizer, not \(kind)") }
        guard json["format"]?.numberValue == 1 else { throw bad("unknown state format \(json["format"]?.serialized ?? "none") (expected 1)") }
        guard let groupsJSON = json["param_groups"]?.arrayValue else { throw bad("the state has no 'param_groups' list") }
        guard groupsJSON.count == optimizer.groups.count else {
            throw bad("the state has \(groupsJSON.count) parameter groups, the optimizer \(optimizer.groups.count)")
        }
        var options: [O] = []
        var location: [String: (Int, Int)] = [:]
        for (gi, gj) in groupsJSON.enumerated() {
            let names = gj["params"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let expected = optimizer.groups[gi].parameters.map(\.name)
            guard names == expected else {
                let key = zip(names, expected).first { $0.0 != $0.1 }.map { "'\($0.0)' where the optimizer has '\($0.1)'" }
                    ?? "\(names.count) parameters where the optimizer has \(expected.count)"
                throw bad("param_groups[\(gi)].params differ: \(key)")
            }
            for (pi, n) in names.enumerated() { location[n] = (gi, pi) }
            let o: O
            do { o = try O(json: gj, context: "param_groups[\(gi)]"); try o.validate(kind) } catch let e as VisionError {
                throw bad("param_groups[\(gi)]: \(e.message)")
            }
            options.append(o)
        }
        var tensors: [String: Tensor] = [:]
        for (n, t) in self.tensors { tensors[n] = t }
        var used = Set<String>()
        var states = optimizer.groups.map { [ParameterState?](repeating: nil, count: $0.parameters.count) }
        for (si, sj) in (json["state"]?.arrayValue ?? []).enumerated() {
            guard let name = sj["param"]?.stringValue, let (gi, pi) = location[name] else {
                throw bad("state[\(si)] names parameter '\(sj["param"]?.stringValue ?? "?")', which the optimizer does not have")
            }
            guard states[gi][pi] == nil else { throw bad("state for parameter '\(name)' appears twice") }
            guard let step = sj["step"]?.numberValue, step >= 0, step == step.rounded(), step < 9e15 else {
                throw bad("state '\(name)': 'step' must be a non-negative integer")
            }
            let shape = optimizer.groups[gi].parameters[pi].tensor.shape
            let s = ParameterState(step: Int(step))
            for b in sj["buffers"]?.arrayValue ?? [] {
                guard let bn = b.stringValue, optimizer.allowedBuffers.contains(bn) else {
                    throw bad("state '\(name)': unknown buffer \(b.serialized)")
                }
                let key = "state.\(name).\(bn)"
                guard let t = tensors[key] else { throw bad("missing tensor '\(key)'") }
                guard t.dtype == .float32 else { throw bad("tensor '\(key)' is \(t.dtype), expected float32") }
                guard t.shape == shape else {
                    throw VisionError.shapeMismatch("\(kind).load: tensor '\(key)' has shape \(t.shape), the parameter has shape \(shape)")
                }
                s.buffers[bn] = try t.detach().copyContiguous()
                used.insert(key)
            }
            states[gi][pi] = s
        }
        if let extra = self.tensors.map(\.0).first(where: { !used.contains($0) }) {
            throw bad("unexpected tensor '\(extra)' (no parameter state refers to it)")
        }
        return Decoded(options: options, states: states)
    }
}

/// Reading hyper-parameters from JSON with errors that name the member.
extension JSONValue {
    func number(_ key: String, _ context: String) throws -> Double {
        guard let v = self[key]?.numberValue else {
            throw VisionError.invalidArgument("\(context).\(key) is missing or not a number")
        }
        return v
    }

    func flag(_ key: String, _ context: String) throws -> Bool {
        guard case .bool(let b)? = self[key] else {
            throw VisionError.invalidArgument("\(context).\(key) is missing or not a boolean")
        }
        return b
    }

    func pair(_ key: String, _ context: String) throws -> (Double, Double) {
        guard let a = self[key]?.arrayValue, a.count == 2, let x = a[0].numberValue, let y = a[1].numberValue else {
            throw VisionError.invalidArgument("\(context).\(key) is missing or not a pair of numbers")
        }
        return (x, y)
    }
}

/// Checks shared by the options of every optimizer.
func checkLR(_ lr: Double, _ optimizer: String) throws {
    guard lr.isFinite, lr >= 0 else { throw VisionError.invalidArgument("\(optimizer): invalid learning rate: \(lr)") }
}

func checkNonNegative(_ v: Double, _ name: String, _ optimizer: String) throws {
    guard v.isFinite, v >= 0 else { throw VisionError.invalidArgument("\(optimizer): invalid \(name) value: \(v)") }
}

func checkBetas(_ b: (Double, Double), _ optimizer: String) throws {
    for (i, v) in [b.0, b.1].enumerated() where !(v >= 0 && v < 1) {
        throw VisionError.invalidArgument("\(optimizer): invalid beta parameter at index \(i): \(v) (betas must lie in [0, 1))")
    }
}
