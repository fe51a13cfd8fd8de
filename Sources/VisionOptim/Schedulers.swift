#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// Learning-rate schedulers: each sets every parameter group's learning rate to a function of a counter and of
/// the group's initial rate, as `torch.optim.lr_scheduler` does.
///
/// Construction records each group's current rate as its base rate and applies the schedule at count 0 (like
/// PyTorch's initial step); each `step()` advances the count by one and applies it. Whether the count means
/// iterations or epochs is up to where `step()` is called. With `stepsPerEpoch` = k > 1 the schedule's lengths
/// (step size, milestones, warmup, total) are in epochs while `step()` is called every iteration: step-shaped
/// schedules change at epoch boundaries (count / k rounded down), the warmup-cosine one moves every iteration
/// (count / k as a fractional epoch).
///
/// ```swift
/// let opt = try SGD(parameters: [("w", w)], lr: 0.1, momentum: 0.9)
/// let sched = try WarmupCosineLR(opt, warmup: 5, total: 100, warmupStartFactor: 0.01, minLR: 1e-5)
/// for _ in 0..<100 { /* train one epoch */; try sched.step() }
/// ```
open class LRScheduler {
    public let optimizer: any LearningRateControlled
    /// The groups' rates when the scheduler was made.
    public private(set) var baseLRs: [Double]
    /// Number of `step()` calls so far (PyTorch's `last_epoch`).
    public private(set) var count = 0
    public let stepsPerEpoch: Int

    public init(_ optimizer: any LearningRateControlled, stepsPerEpoch: Int = 1) throws {
        guard stepsPerEpoch >= 1 else {
            throw VisionError.invalidArgument("scheduler: stepsPerEpoch must be at least 1, got \(stepsPerEpoch)")
        }
        self.optimizer = optimizer
        self.stepsPerEpoch = stepsPerEpoch
        baseLRs = optimizer.learningRates
    }

    /// The rate of a group whose base rate is `base` at count `t`. Subclasses override it.
    open func lr(base: Double, at t: Int) -> Double { base }

    /// The rates the schedule gives at count `t`.
    public func learningRates(at t: Int) -> [Double] { baseLRs.map { lr(base: $0, at: t) } }

    /// The current rates of the optimizer's groups.
    public var lastLRs: [Double] { optimizer.learningRates }

    /// Advances the count and sets the groups' rates.
    public func step() throws {
        count += 1
        try apply()
    }

    func apply() throws {
        for (g, r) in learningRates(at: count).enumerated() { try optimizer.setLearningRate(r, group: g) }
    }

    /// The scheduler's state for checkpoints: `{"count": n, "base_lrs": [...]}`.
    public var stateJSON: JSONValue {
        .object([("count", .number(Double(count))), ("base_lrs", .array(baseLRs.map { .number($0) }))])
    }

    /// Restores a state written by `stateJSON` and re-applies the rates for its count.
    public func load(_ json: JSONValue) throws {
        guard let c = json["count"]?.numberValue, c >= 0, c == c.rounded(), c < 9e15 else {
            throw VisionError.invalidArgument("scheduler.load: 'count' must be a non-negative integer")
        }
        guard let b = json["base_lrs"]?.arrayValue?.compactMap(\.numberValue), b.count == baseLRs.count,
              b.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw VisionError.invalidArgument("scheduler.load: 'base_lrs' must hold \(baseLRs.count) non-negative rates (one per parameter group)")
        }
        count = Int(c)
        baseLRs = b
        try apply()
    }

    /// The count as whole epochs.
    func epoch(_ t: Int) -> Int { t / stepsPerEpoch }
}

/// `torch.optim.lr_scheduler.StepLR`: base · gamma^⌊epoch / stepSize⌋.
public final class StepLR: LRScheduler {
    public let stepSize: Int
    public let gamma: Double

    public init(_ optimizer: any LearningRateControlled, stepSize: Int, gamma: Double = 0.1, stepsPerEpoch: Int = 1) throws {
        guard stepSize >= 1 else { throw VisionError.invalidArgument("StepLR: stepSize must be at least 1, got \(stepSize)") }
        guard gamma.isFinite, gamma >= 0 else { throw VisionError.invalidArgument("StepLR: invalid gamma \(gamma)") }
        self.stepSize = stepSize
        self.gamma = gamma
        try super.init(optimizer, stepsPerEpoch: stepsPerEpoch)
        try apply()
    }

    public override func lr(base: Double, at t: Int) -> Double {
        base * pow(gamma, Double(epoch(t) / stepSize))
    }
}

/// `torch.optim.lr_scheduler.MultiStepLR`: base · gamma^(number of milestones ≤ epoch). Repeated milestones
/// count once each time they appear, as in PyTorch (whose milestones are a Counter).
public final class MultiStepLR: LRScheduler {
    public let milestones: [Int]
    public let gamma: Double

    public init(_ optimizer: any LearningRateControlled, milestones: [Int], gamma: Double = 0.1, stepsPerEpoch: Int = 1) throws {
        guard milestones.allSatisfy({ $0 >= 0 }) else {
            throw VisionError.invalidArgument("MultiStepLR: milestones must be non-negative, got \(milestones)")
        }
        guard gamma.isFinite, gamma >= 0 else { throw VisionError.invalidArgument("MultiStepLR: invalid gamma \(gamma)") }
        self.milestones = milestones.sorted()
        self.gamma = gamma
        try super.init(optimizer, stepsPerEpoch: stepsPerEpoch)
        try apply()
    }

    public override func lr(base: Double, at t: Int) -> Double {
        let e = epoch(t)
        return base * pow(gamma, Double(milestones.filter { $0 <= e }.count))
    }
}

/// Linear warmup followed by cosine annealing — PyTorch's
/// `SequentialLR([LinearLR(start_factor=s, total_iters=W), CosineAnnealingLR(T_max=T−W, eta_min=minLR)], [W])`:
/// ```
/// e < W:      base · (s + (1 − s) · e / W)
/// W ≤ e ≤ T:  minLR + (base − minLR) · (1 + cos(π (e − W) / (T − W))) / 2
/// e > T:      minLR                           (PyTorch's cosine would rise again; training has ended)
/// ```
/// `e` is the count divided by `stepsPerEpoch` (fractional), so per-iteration stepping of an epoch-based
/// schedule is smooth. `warmup` 0 gives plain cosine annealing.
public final class WarmupCosineLR: LRScheduler {
    public let warmup: Int
    public let total: Int
    public let warmupStartFactor: Double
    public let minLR: Double

    public init(_ optimizer: any LearningRateControlled, warmup: Int, total: Int, warmupStartFactor: Double = 1.0 / 3,
                minLR: Double = 0, stepsPerEpoch: Int = 1) throws {
        guard warmup >= 0, total > warmup else {
            throw VisionError.invalidArgument("WarmupCosineLR: need 0 <= warmup < total, got warmup \(warmup), total \(total)")
        }
        guard warmupStartFactor > 0, warmupStartFactor <= 1 else {
            throw VisionError.invalidArgument("WarmupCosineLR: warmupStartFactor must lie in (0, 1], got \(warmupStartFactor)")
        }
        guard minLR.isFinite, minLR >= 0 else { throw VisionError.invalidArgument("WarmupCosineLR: invalid minLR \(minLR)") }
        self.warmup = warmup
        self.total = total
        self.warmupStartFactor = warmupStartFactor
        self.minLR = minLR
        try super.init(optimizer, stepsPerEpoch: stepsPerEpoch)
        try apply()
    }

    public override func lr(base: Double, at t: Int) -> Double {
        let e = Double(t) / Double(stepsPerEpoch)
        if e < Double(warmup) {
            return base * (warmupStartFactor + (1 - warmupStartFactor) * e / Double(warmup))
        }
        if e > Double(total) { return minLR }
        let progress = (e - Double(warmup)) / Double(total - warmup)
        return minLR + (base - minLR) * (1 + cos(Double.pi * progress)) / 2
    }
}
