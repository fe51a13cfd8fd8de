#if canImport(Glibc)
import Glibc
#endif
import Testing
import VisionCore
import VisionNN
@testable import VisionModels

/// A tiny classifier (conv-BN-ReLU, global pool, fc) registered at run time: the use path (registry, weights,
/// eval transform, top-k) is the same for it as for ResNet, ReXNet and PiT.
final class TinyTestNet: ImageClassifier {
    let conv1: Conv2d, bn1: BatchNorm2d, fc: Linear?

    init(_ options: ClassifierOptions) throws {
        var rng = RandomGenerator(seed: options.seed)
        conv1 = try Conv2d(options.inChans, 8, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1), bias: false, rng: &rng)
        bn1 = try BatchNorm2d(8)
        fc = options.numClasses > 0 ? try Linear(8, options.numClasses, rng: &rng) : nil
        super.init(name: TinyTestNet.name, config: TinyTestNet.config, numClasses: options.numClasses, numFeatures: 8)
        register("conv1", conv1); register("bn1", bn1)
        if let fc { register("fc", fc) }
    }

    static let name = "tiny_test_net"
    static let config = PretrainedConfig(inputSize: [3, 40, 40], cropPct: 0.9, interpolation: .bilinear, numClasses: 1000, classifier: "fc")
    static let entry = ClassifierEntry(name: name, config: config) { try TinyTestNet($0) }

    override func forwardFeatures(_ x: Tensor) throws -> Tensor { try relu(try bn1(try conv1(x))) }

    override func forwardHead(_ features: Tensor, preLogits: Bool = false) throws -> Tensor {
        let pooled = try adaptiveAvgPool2d(features, outputSize: (1, 1)).flatten(start: 1)
        guard !preLogits, let fc else { return pooled }
        return try fc(pooled)
    }
}

/// Registers the tiny model for the duration of a test (tests of this suite run one at a time).
func withTinyModel<R>(_ body: () throws -> R) throws -> R {
    if !ClassifierRegistry.allNames.contains(TinyTestNet.name) { try ClassifierRegistry.register(TinyTestNet.entry) }
    defer { ClassifierRegistry.unregister(TinyTestNet.name) }
    return try body()
}

func useTestTempPath(_ name: String) -> String { "/tmp/vc-use-\(getpid())-\(name)" }

@Suite(.serialized) struct ClassifierUseTests {
    @Test func registrationAndLookup() throws {
        try withTinyModel {
            #expect(ClassifierRegistry.allNames.last == TinyTestNet.name)
            #expect(try ClassifierRegistry.lookup(TinyTestNet.name).config == TinyTestNet.config)
            #expect(throws: VisionError.self) { try ClassifierRegistry.register(TinyTestNet.entry) }   // duplicate
            do {
                _ = try ClassifierRegistry.make("no_such_net")
                Issue.record("unknown name accepted")
            } catch let e as VisionError {
                #expect(e.message.contains("unknown model 'no_such_net'") && e.message.contains(TinyTestNet.name))
            }
            for bad in [ClassifierOptions(numClasses: -1), ClassifierOptions(inChans: 0), ClassifierOptions(dropPathRate: .nan),
                        ClassifierOptions(dropPathRate: 1), ClassifierOptions(numClasses: 1 << 40)] {
                #expect(throws: VisionError.self) { try ClassifierRegistry.make(TinyTestNet.name, options: bad) }
            }
        }
        #expect(!ClassifierRegistry.allNames.contains(TinyTestNet.name))
        #expect(!ClassifierRegistry.unregister(TinyTestNet.name))
    }

    @Test func createForwardAndModes() throws {
        try withTinyModel {
            let m = try ClassifierRegistry.make(TinyTestNet.name, options: ClassifierOptions(numClasses: 7, seed: 3))
            #expect(m.isTraining)
            let x = try randomTensorModels([2, 3, 40, 40], seed: 1)
            #expect(try m(x).shape == [2, 7])
            #expect(try m.forwardFeatures(x).shape == [2, 8, 20, 20])
            #expect(try m.forwardHead(try m.forwardFeatures(x), preLogits: true).shape == [2, 8])
            let headless = try ClassifierRegistry.make(TinyTestNet.name, options: ClassifierOptions(numClasses: 0))
            #expect(try headless(x).shape == [2, 8])
            // same seed, same weights (a training-mode forward above updated m's BatchNorm statistics only)
            let again = try ClassifierRegistry.make(TinyTestNet.name, options: ClassifierOptions(numClasses: 7, seed: 3))
            let other = try ClassifierRegistry.make(TinyTestNet.name, options: ClassifierOptions(numClasses: 7, seed: 4))
            #expect(try m.namedParameters().map { try $0.1.value.toArray(Float.self) } == again.namedParameters().map { try $0.1.value.toArray(Float.self) })
            #expect(try m.namedParameters().map { try $0.1.value.toArray(Float.self) } != other.namedParameters().map { try $0.1.value.toArray(Float.self) })
        }
    }

    @Test func pretrainedClassifyAndMismatchedWeights() throws {
        try withTinyModel {
            let path = useTestTempPath("tiny.safetensors")
            defer { unlink(path) }
            let source = try ClassifierRegistry.make(TinyTestNet.name, options: ClassifierOptions(seed: 11))
            try source.save(path: path)
            let model = try ImageClassifier.pretrained(TinyTestNet.name, weightsPath: path)
            #expect(!model.isTraining)
            let top = try model.classify(path: Repo.image("chelsea"), topk: 5)
            #expect(top.count == 5)
            #expect(zip(top, top.dropFirst()).allSatisfy { $0.probability >= $1.probability })
            #expect(top.allSatisfy { $0.label == imageNetClassNames[$0.index] })
            // the same as the explicit pipeline
            let logits = try model(try evalTransform(path: Repo.image("chelsea"), config: TinyTestNet.config))
            #expect(try topPredictions(logits, k: 5)[0] == top)

            // weights of a 10-class model: the error names the classifier keys and both shapes
            let other = try ClassifierRegistry.make(TinyTestNet.name, options: ClassifierOptions(numClasses: 10))
            let otherPath = useTestTempPath("tiny10.safetensors")
            defer { unlink(otherPath) }
            try other.save(path: otherPath)
            do {
                _ = try ImageClassifier.pretrained(TinyTestNet.name, weightsPath: otherPath)
                Issue.record("mismatched weights accepted")
            } catch let e as VisionError {
                #expect(e.message.contains("fc.weight") && e.message.contains("[10, 8]") && e.message.contains("[1000, 8]"))
            }
            #expect(throws: VisionError.self) { try ImageClassifier.pretrained(TinyTestNet.name, weightsPath: "/nonexistent.safetensors") }
            #expect(throws: VisionError.self) { try model.classify(path: "\(Repo.root)/data/images/README.md") }
        }
    }

    @Test func topPredictionsOrderAndNames() throws {
        var values = [Float](repeating: 0, count: 1000)
        values[281] = 5; values[285] = 4; values[3] = 3
        let top = try topPredictions(try Tensor(values, shape: [1, 1000]), k: 3)[0]
        #expect(top.map(\.index) == [281, 285, 3])
        #expect(top.map(\.label) == ["tabby", "Egyptian cat", "tiger shark"])
        let expected = exp(5.0) / (exp(5.0) + exp(4.0) + exp(3.0) + 997)
        #expect(abs(Double(top[0].probability) - expected) < 1e-6)
        let small = try topPredictions(try Tensor([Float(1), 3, 2], shape: [1, 3]), k: 10)[0]
        #expect(small.map(\.index) == [1, 2, 0] && small.allSatisfy { $0.label == nil })
        #expect(throws: VisionError.self) { try topPredictions(try Tensor([Float(1), 3], shape: [2]), k: 1) }
        #expect(throws: VisionError.self) { try topPredictions(try Tensor([Float(1), 3], shape: [1, 2]), k: 0) }
    }

    @Test func imageNetNames() {
        #expect(imageNetClassNames.count == 1000)
        #expect(imageNetClassNames[0] == "tench" && imageNetClassNames[999] == "toilet tissue")
        #expect(Set(imageNetClassNames).count == 1000)   // torchvision disambiguates the two "crane"s and "maillot"s
    }
}

func randomTensorModels(_ shape: [Int], seed: UInt64) throws -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return try Tensor.normal(shape, std: 1, rng: &rng)
}
