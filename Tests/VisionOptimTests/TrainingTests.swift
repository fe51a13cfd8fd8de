import Testing
import VisionCore
import VisionNN
@testable import VisionOptim

/// Optimizers driving VisionNN modules: the parameters the module holds are the ones updated.
@Suite struct TrainingTests {
    /// Three Gaussian clusters in 4-D, labels 0...2.
    static func data(_ n: Int, seed: UInt64) throws -> (Tensor, Tensor) {
        var rng = RandomGenerator(seed: seed)
        let noise = try Tensor.normal([n, 4], std: 0.4, rng: &rng).toArray(Float.self)
        let centers: [[Float]] = [[1, 0, 0, 1], [-1, 1, 0, 0], [0, -1, 1, -1]]
        var x = [Float](), y = [Int64]()
        for i in 0..<n {
            let c = i % 3
            for j in 0..<4 { x.append(centers[c][j] + noise[i * 4 + j]) }
            y.append(Int64(c))
        }
        return (try Tensor(x, shape: [n, 4]), try Tensor(y, shape: [n]))
    }

    static func accuracy(_ net: Module, _ x: Tensor, _ y: Tensor) throws -> Double {
        let predicted = try Autograd.noGrad { try argmax(try net(x), axis: 1) }.to(.int64).toArray(Int64.self)
        let labels = try y.toArray(Int64.self)
        return Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(labels.count)
    }

    @Test(arguments: ["AdamP", "SGDP", "AdamW", "SGD"])
    func trainsASmallClassifier(_ kind: String) throws {
        var rng = RandomGenerator(seed: 7)
        let net = Sequential([try Linear(4, 16, rng: &rng), Activation(.relu), try Linear(16, 3, rng: &rng)])
        let params = net.trainableParameters().map { NamedParameter($0.0, $0.1) }
        let step: () throws -> Void
        let opt: any LearningRateControlled
        switch kind {
        case "AdamP":
            let o = try AdamP(groups: ParameterGroups.weightDecayGroups(params, options: .init(lr: 0.02, weightDecay: 1e-2)))
            (step, opt) = (o.step, o)
        case "SGDP":
            let o = try SGDP(groups: ParameterGroups.weightDecayGroups(params, options: .init(lr: 0.1, momentum: 0.9, weightDecay: 1e-4, nesterov: true)))
            (step, opt) = (o.step, o)
        case "AdamW":
            let o = try AdamW(groups: ParameterGroups.weightDecayGroups(params, options: .init(lr: 0.02, weightDecay: 0.05)))
            (step, opt) = (o.step, o)
        default:
            let o = try SGD(groups: ParameterGroups.weightDecayGroups(params, options: .init(lr: 0.1, momentum: 0.9, weightDecay: 1e-4)))
            (step, opt) = (o.step, o)
        }
        let schedule = try WarmupCosineLR(opt, warmup: 10, total: 150, warmupStartFactor: 0.1)
        let (x, y) = try Self.data(120, seed: 3)
        let before = try net.namedParameters().first!.1.value.toArray(Float.self)
        var firstLoss = 0.0, lastLoss = 0.0
        for it in 0..<150 {
            net.zeroGrad()
            let loss = try Loss.crossEntropy(try net(x), target: y)
            try loss.backward()
            try GradientClipping.clipGradNorm(params, maxNorm: 5)
            try step()
            try schedule.step()
            if it == 0 { firstLoss = try loss.item() }
            lastLoss = try loss.item()
        }
        // The module's own parameter tensors moved: the optimizer wrote into their storage.
        #expect(try net.namedParameters().first!.1.value.toArray(Float.self) != before)
        #expect(lastLoss < firstLoss / 4, "\(kind): loss \(firstLoss) -> \(lastLoss)")
        let (tx, ty) = try Self.data(300, seed: 4)
        let acc = try Self.accuracy(net, tx, ty)
        #expect(acc >= 0.95, "\(kind): held-out accuracy \(acc)")
    }
}
