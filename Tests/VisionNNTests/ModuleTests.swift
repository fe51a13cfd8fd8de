import Testing
import VisionCore
@testable import VisionNN

final class TinyNet: Module {
    let features: Sequential, head: Linear

    init(rng: inout RandomGenerator, classes: Int = 3) throws {
        features = Sequential([try Conv2d(3, 4, kernelSize: (3, 3), padding: (1, 1), bias: false, rng: &rng),
                               try BatchNorm2d(4), Activation(.relu)])
        head = try Linear(4, classes, rng: &rng)
        super.init()
        register("features", features)
        register("head", head)
    }

    override func forward(_ x: Tensor) throws -> Tensor {
        try head(try mean(try features(x), axes: [2, 3]))
    }
}

@Suite struct ModuleTests {
    @Test func stateDictKeysFollowPyTorch() throws {
        var rng = RandomGenerator(seed: 1)
        let net = try TinyNet(rng: &rng)
        #expect(net.stateDict().map(\.0) == ["features.0.weight", "features.1.weight", "features.1.bias",
                                            "features.1.running_mean", "features.1.running_var",
                                            "features.1.num_batches_tracked", "head.weight", "head.bias"])
        #expect(net.parameterCount() == 4 * 3 * 9 + 4 + 4 + 4 * 3 + 3)
        #expect(net.stateDict().first { $0.0 == "features.1.num_batches_tracked" }?.1.dtype == .int64)
        try net.features.freeze()
        #expect(net.parameterCount(trainableOnly: true) == 4 * 3 + 3)
        #expect(net.trainableParameters().map(\.0) == ["head.weight", "head.bias"])
    }

    @Test func trainEvalAndBackwardReachEveryParameter() throws {
        var rng = RandomGenerator(seed: 2)
        let net = try TinyNet(rng: &rng)
        let x = try Tensor.normal([2, 3, 5, 5], rng: &rng)
        let loss = try sum(try net(x))
        try loss.backward()
        for (name, p) in net.namedParameters() { #expect(p.grad != nil, "no gradient reached \(name)") }
        net.eval()
        #expect(net.namedModules().allSatisfy { !$0.1.isTraining })
        let y1 = try net(x), y2 = try net(x)
        #expect(try y1.toArray(Float.self) == y2.toArray(Float.self))
    }

    @Test func loadingCopiesInPlaceAndValidatesEverythingFirst() throws {
        var rng = RandomGenerator(seed: 3)
        let a = try TinyNet(rng: &rng), b = try TinyNet(rng: &rng)
        let held = b.head.weight.value                      // e.g. what an optimizer holds
        try b.loadStateDict(a.stateDict())
        #expect(try held.toArray(Float.self) == a.head.weight.value.toArray(Float.self))
        // A checkpoint of another model: one error naming missing, unexpected and mis-shaped keys; nothing written.
        let other = try TinyNet(rng: &rng, classes: 5)
        let before = try #require(b.head.bias).value.toArray(Float.self)
        var wrong = other.stateDict().filter { $0.0 != "head.bias" }
        wrong.append(("extra.weight", try Tensor.zeros([1])))
        do {
            try b.loadStateDict(wrong)
            Issue.record("a mismatched state dict was accepted")
        } catch let e as VisionError {
            #expect(e.message.contains("missing keys: head.bias"))
            #expect(e.message.contains("unexpected keys: extra.weight"))
            #expect(e.message.contains("head.weight: checkpoint [5, 4], model [3, 4]"))
        }
        #expect(try #require(b.head.bias).value.toArray(Float.self) == before)
        #expect(try b.features.layers[0].stateDict()[0].1.toArray(Float.self) == a.features.layers[0].stateDict()[0].1.toArray(Float.self))
        // Non-strict loading ignores missing and unexpected keys but still refuses wrong shapes.
        #expect(throws: VisionError.self) { try b.loadStateDict(wrong, strict: false) }
        try b.loadStateDict(wrong.filter { !$0.0.hasPrefix("head") }, strict: false)
        // BatchNorm's counter may be absent (timm checkpoints, converters): strict loading still succeeds.
        try b.loadStateDict(a.stateDict().filter { !$0.0.hasSuffix("num_batches_tracked") })
        #expect(try b.head.weight.value.toArray(Float.self) == a.head.weight.value.toArray(Float.self))
    }

    @Test func saveAndLoadSafetensors() throws {
        var rng = RandomGenerator(seed: 4)
        let a = try TinyNet(rng: &rng), b = try TinyNet(rng: &rng)
        let path = "/tmp/vc-nn-\(rng.next()).safetensors"
        try a.save(path: path)
        try b.load(path: path)
        for ((k1, t1), (_, t2)) in zip(a.stateDict(), b.stateDict()) {
            #expect(try t1.to(.float32).toArray(Float.self) == t2.to(.float32).toArray(Float.self), "\(k1)")
        }
        #expect(throws: VisionError.self) { try b.load(path: "/tmp/does-not-exist.safetensors") }
    }
}
