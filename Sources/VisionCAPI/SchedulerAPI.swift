import VisionCore
import VisionOptim

/// Opaque C handle to a learning-rate scheduler (`vc_scheduler *`).
public typealias VCScheduler = OpaquePointer

final class SchedulerBox {
    let scheduler: LRScheduler
    /// Keeps the optimizer alive as long as the scheduler that sets its rates.
    let optimizer: OptimizerBox
    init(_ scheduler: LRScheduler, _ optimizer: OptimizerBox) { (self.scheduler, self.optimizer) = (scheduler, optimizer) }
}

private func schedulerArg(_ h: VCScheduler?) throws -> SchedulerBox {
    try object(h, SchedulerBox.self, "scheduler", "vc_scheduler")
}

/// Creates a scheduler that sets the learning rates of `optimizer`'s groups. `kind` and its JSON options:
/// "step" {"step_size": n, "gamma": 0.1}, "multistep" {"milestones": [...], "gamma": 0.1}, "cosine"
/// {"warmup": w, "total": t, "warmup_start_factor": 1/3, "min_lr": 0}; every kind also takes
/// "steps_per_epoch" (default 1) so that vc_scheduler_step can be called per iteration with epoch-based numbers.
@c public func vc_scheduler_create(_ kind: UnsafePointer<CChar>?, _ optimizer: VCOptimizer?, _ options_json: UnsafePointer<CChar>?,
                                   _ out: UnsafeMutablePointer<VCScheduler?>?) -> Int32 {
    capi {
        guard let out else { throw VisionError.invalidArgument("out is NULL") }
        out.pointee = nil
        let opt = try object(optimizer, OptimizerBox.self, "optimizer", "vc_optimizer")
        let k = try stringArg(kind, "kind")
        let json = try JSONValue.parse(try stringArg(options_json, "options_json"))
        guard case .object(let members) = json else { throw VisionError.invalidArgument("options_json must be a JSON object") }
        let known: Set<String> = k == "step" ? ["step_size", "gamma", "steps_per_epoch"]
            : k == "multistep" ? ["milestones", "gamma", "steps_per_epoch"]
            : ["warmup", "total", "warmup_start_factor", "min_lr", "steps_per_epoch"]
        for (name, _) in members where !known.contains(name) {
            throw VisionError.invalidArgument("\(k) scheduler: unknown option '\(name)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        func int(_ name: String, _ fallback: Int?) throws -> Int {
            guard let v = json[name] else {
                guard let fallback else { throw VisionError.invalidArgument("\(k) scheduler: option '\(name)' is required") }
                return fallback
            }
            guard let d = v.numberValue, d == d.rounded(), abs(d) < 1e15 else {
                throw VisionError.invalidArgument("\(k) scheduler: '\(name)' must be an integer")
            }
            return Int(d)
        }
        func double(_ name: String, _ fallback: Double) throws -> Double {
            guard let v = json[name] else { return fallback }
            guard let d = v.numberValue else { throw VisionError.invalidArgument("\(k) scheduler: '\(name)' must be a number") }
            return d
        }
        let perEpoch = try int("steps_per_epoch", 1)
        let scheduler: LRScheduler
        switch k {
        case "step":
            scheduler = try StepLR(opt.control, stepSize: try int("step_size", nil), gamma: try double("gamma", 0.1), stepsPerEpoch: perEpoch)
        case "multistep":
            guard let ms = json["milestones"]?.arrayValue?.compactMap(\.numberValue), ms.allSatisfy({ $0 == $0.rounded() && abs($0) < 1e15 }) else {
                throw VisionError.invalidArgument("multistep scheduler: 'milestones' must be a list of integers")
            }
            scheduler = try MultiStepLR(opt.control, milestones: ms.map { Int($0) }, gamma: try double("gamma", 0.1), stepsPerEpoch: perEpoch)
        case "cosine":
            scheduler = try WarmupCosineLR(opt.control, warmup: try int("warmup", 0), total: try int("total", nil),
                                           warmupStartFactor: try double("warmup_start_factor", 1.0 / 3),
                                           minLR: try double("min_lr", 0), stepsPerEpoch: perEpoch)
        default:
            throw VisionError.invalidArgument("scheduler kind '\(k)' is unknown (step, multistep, cosine)")
        }
        out.pointee = registerObject(SchedulerBox(scheduler, opt))
    }
}

/// Advances the schedule by one step (an epoch, or an iteration with steps_per_epoch) and sets the rates.
@c public func vc_scheduler_step(_ scheduler: VCScheduler?) -> Int32 {
    capi { try schedulerArg(scheduler).scheduler.step() }
}

/// Releases a scheduler (NULL is a no-op); the optimizer is not freed.
@c public func vc_scheduler_free(_ scheduler: VCScheduler?) -> Int32 {
    capi { guard releaseObject(scheduler, SchedulerBox.self) else { throw HandleError(message: "scheduler is not a live vc_scheduler") } }
}
