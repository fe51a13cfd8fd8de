import VisionCore
import VisionOptim

/// Opaque C handle to an optimizer (`vc_optimizer *`).
public typealias VCOptimizer = OpaquePointer

/// The optimizer behind a `vc_optimizer *`, with its type erased, and the tensor handles it updates.
final class OptimizerBox {
    let kind: String
    /// The caller's tensor handles and the tensor values the optimizer holds (sharing storage with them).
    let boxes: [TensorBox]
    let held: [Tensor]
    let control: any LearningRateControlled
    let stepBody: () throws -> Void
    let zeroGrad: () -> Void
    let stateDict: () throws -> OptimizerState
    let load: (OptimizerState) throws -> Void

    init<O>(_ optimizer: Optimizer<O>, boxes: [TensorBox], held: [Tensor]) {
        kind = optimizer.kind
        self.boxes = boxes
        self.held = held
        control = optimizer
        stepBody = optimizer.step
        zeroGrad = optimizer.zeroGrad
        stateDict = optimizer.stateDict
        load = optimizer.load
    }

    /// The optimizer writes into the storage it was given; a handle whose tensor was replaced since (by
    /// vc_tensor_set_requires_grad, which makes a new leaf) would silently stop being trained.
    func step() throws {
        for (i, (box, t)) in zip(boxes, held).enumerated() {
            guard box.tensor.isSameParameter(as: t), box.tensor.storage === t.storage else {
                throw VisionError.invalidArgument("\(kind).step: parameter \(i) is no longer the tensor the optimizer was created with (requires_grad was reset or the handle's data replaced); create a new optimizer")
            }
        }
        try stepBody()
    }
}

private func optimizerArg(_ h: VCOptimizer?) throws -> OptimizerBox {
    try object(h, OptimizerBox.self, "optimizer", "vc_optimizer")
}

/// The default hyper-parameters of each kind, as the JSON the options decode from; nil lr means "required".
private func defaults(_ kind: String) throws -> [(String, JSONValue)] {
    switch kind {
    case "SGD": return SGD.Options(lr: .nan).json
    case "Adam": return Adam.Options().json
    case "AdamW": return Adam.Options(weightDecay: 1e-2, decoupledWeightDecay: true).json
    case "AdamP": return AdamP.Options().json
    case "SGDP": return SGDP.Options(lr: .nan).json
    default: throw VisionError.invalidArgument("optimizer kind '\(kind)' is unknown (SGD, Adam, AdamW, AdamP, SGDP)")
    }
}

/// The user's options (a JSON object) over the defaults; unknown names are errors.
private func merged(_ kind: String, _ user: JSONValue, group: Int) throws -> JSONValue {
    var members = try defaults(kind)
    guard case .object(let given) = user else {
        throw VisionError.invalidArgument("\(kind): the options of group \(group) must be a JSON object")
    }
    for (k, v) in given {
        guard let i = members.firstIndex(where: { $0.0 == k }) else {
            throw VisionError.invalidArgument("\(kind): unknown option '\(k)' (known: \(members.map(\.0).joined(separator: ", ")))")
        }
        members[i].1 = v
    }
    if case .number(let lr)? = members.first(where: { $0.0 == "lr" })?.1, lr.isNaN {
        throw VisionError.invalidArgument("\(kind): the learning rate 'lr' is required")
    }
    return .object(members)
}

private func build<O: OptimizerOptions>(_ make: ([ParameterGroup<O>]) throws -> Optimizer<O>, kind: String,
                                        params: [NamedParameter], groupIDs: [Int], options: [JSONValue]) throws -> Optimizer<O> {
    var groups: [ParameterGroup<O>] = []
    for (g, o) in options.enumerated() {
        let opts = try O(json: try merged(kind, o, group: g), context: "group \(g)")
        groups.append(ParameterGroup(zip(params, groupIDs).filter { $0.1 == g }.map(\.0), opts))
    }
    return try make(groups)
}

/// Creates an optimizer over the `n` tensors of `params` (float32 leaves that require gradients; the optimizer
/// updates their data in place). `kind` is "SGD", "Adam", "AdamW", "AdamP" or "SGDP". `names` (NULL: "0",
/// "1", ...) names the parameters in saved states. `options_json` is a JSON object of hyper-parameters with
/// PyTorch's names (lr, momentum, dampening, weight_decay, nesterov, betas, eps, amsgrad, delta, wd_ratio), missing
/// ones taking the defaults of torch.optim / adamp (lr is required for SGD and SGDP), or a JSON array of such
/// objects, one per parameter group, with `group_ids` (NULL: all 0) giving each parameter's group.
@c public func vc_optimizer_create(_ kind: UnsafePointer<CChar>?, _ params: UnsafeMutablePointer<VCTensor?>?, _ n: Int64,
                                   _ names: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ group_ids: UnsafePointer<Int64>?,
                                   _ options_json: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<VCOptimizer?>?) -> Int32 {
    capi {
        guard let out else { throw VisionError.invalidArgument("out is NULL") }
        out.pointee = nil
        let kind = try stringArg(kind, "kind")
        guard n >= 1, n <= 1 << 20 else { throw VisionError.invalidArgument("parameter count \(n) must be in 1...2^20") }
        guard let params else { throw VisionError.invalidArgument("params is NULL") }
        let boxes = try (0..<Int(n)).map { try tensorBox(params[$0], "params[\($0)]") }
        let held = boxes.map(\.tensor)
        let labels = try (0..<Int(n)).map { i in try names.map { try stringArg($0[i], "names[\(i)]") } ?? String(i) }
        let json = try JSONValue.parse(try stringArg(options_json, "options_json"))
        let options = json.arrayValue ?? [json]
        guard !options.isEmpty else { throw VisionError.invalidArgument("\(kind): options_json is an empty array") }
        let ids = try (0..<Int(n)).map { i -> Int in
            let g = group_ids.map { Int($0[i]) } ?? 0
            guard g >= 0, g < options.count else {
                throw VisionError.invalidArgument("\(kind): group_ids[\(i)] = \(g), but there are \(options.count) option groups")
            }
            return g
        }
        let named = zip(labels, held).map { NamedParameter($0, $1) }
        let box: OptimizerBox
        switch kind {
        case "SGD": box = OptimizerBox(try build(SGD.init(groups:), kind: kind, params: named, groupIDs: ids, options: options), boxes: boxes, held: held)
        case "Adam": box = OptimizerBox(try build(Adam.init(groups:), kind: kind, params: named, groupIDs: ids, options: options), boxes: boxes, held: held)
        case "AdamW": box = OptimizerBox(try build(AdamW.init(groups:), kind: kind, params: named, groupIDs: ids, options: options), boxes: boxes, held: held)
        case "AdamP": box = OptimizerBox(try build(AdamP.init(groups:), kind: kind, params: named, groupIDs: ids, options: options), boxes: boxes, held: held)
        case "SGDP": box = OptimizerBox(try build(SGDP.init(groups:), kind: kind, params: named, groupIDs: ids, options: options), boxes: boxes, held: held)
        default: _ = try defaults(kind); return
        }
        out.pointee = registerObject(box)
    }
}

/// Frees an optimizer (NULL is a no-op). The parameters are not freed.
@c public func vc_optimizer_free(_ optimizer: VCOptimizer?) -> Int32 {
    capi {
        guard releaseObject(optimizer, OptimizerBox.self) else {
            throw HandleError(message: "optimizer is not a live vc_optimizer (freed or invalid)")
        }
    }
}

/// One update of every parameter that has a gradient (those without one are skipped, as in PyTorch).
@c public func vc_optimizer_step(_ optimizer: VCOptimizer?) -> Int32 {
    capi { try optimizerArg(optimizer).step() }
}

/// Clears the gradients of the optimizer's parameters (zero_grad(set_to_none=True)).
@c public func vc_optimizer_zero_grad(_ optimizer: VCOptimizer?) -> Int32 {
    capi { try optimizerArg(optimizer).zeroGrad() }
}

/// Writes the number of parameter groups to *out_n.
@c public func vc_optimizer_num_groups(_ optimizer: VCOptimizer?, _ out_n: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let o = try optimizerArg(optimizer)
        guard let out_n else { throw VisionError.invalidArgument("out_n is NULL") }
        out_n.pointee = Int64(o.control.learningRates.count)
    }
}

/// Writes the learning rate of parameter group `group` to *out_lr.
@c public func vc_optimizer_get_lr(_ optimizer: VCOptimizer?, _ group: Int64, _ out_lr: UnsafeMutablePointer<Double>?) -> Int32 {
    capi {
        let rates = try optimizerArg(optimizer).control.learningRates
        guard let out_lr else { throw VisionError.invalidArgument("out_lr is NULL") }
        guard group >= 0, group < rates.count else { throw VisionError.invalidArgument("no parameter group \(group) (there are \(rates.count))") }
        out_lr.pointee = rates[Int(group)]
    }
}

/// Sets the learning rate of parameter group `group` (finite, >= 0); schedulers call this.
@c public func vc_optimizer_set_lr(_ optimizer: VCOptimizer?, _ group: Int64, _ lr: Double) -> Int32 {
    capi {
        guard group >= 0, group <= Int64(Int32.max) else { throw VisionError.invalidArgument("no parameter group \(group)") }
        try optimizerArg(optimizer).control.setLearningRate(lr, group: Int(group))
    }
}

/// Saves the optimizer's state (hyper-parameters, step counts, moment buffers) as a safetensors file, atomically.
@c public func vc_optimizer_save_state(_ optimizer: VCOptimizer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    capi { try optimizerArg(optimizer).stateDict().save(path: try stringArg(path, "path")) }
}

/// Loads a state saved by vc_optimizer_save_state into an optimizer of the same kind over parameters of the same
/// names and shapes; on any mismatch it fails with a message naming the key and changes nothing.
@c public func vc_optimizer_load_state(_ optimizer: VCOptimizer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    capi {
        let o = try optimizerArg(optimizer)
        try o.load(try OptimizerState.load(path: try stringArg(path, "path")))
    }
}
