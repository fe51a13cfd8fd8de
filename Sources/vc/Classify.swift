import ArgumentParser
import VisionCore
import VisionModels

/// `vc classify`: one photo through a registry classifier (ResNet, ReXNet, PiT) with timm-format weights.
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify a photo with a timm-named model and its weights (timm-format safetensors).",
        discussion: """
            The photo goes through timm's eval transform for the model (resize to floor(size / crop_pct) with \
            PIL's bilinear/bicubic, center crop, normalize); the top-k classes are printed with their softmax \
            probabilities and, for 1000-class models, their ImageNet-1k names. `vc models` lists the names.
            """)

    @Argument(help: "Photo to classify (PNG, JPEG or BMP).")
    var image: String?

    @Option(help: "Model name (timm's), e.g. resnet50, rexnet_100, pit_ti_224; see `vc models`.")
    var model: String?

    @Option(help: "Weights: a safetensors file with timm's state-dict key names (strictly checked).")
    var weights: String?

    @Option(help: "Number of classes the weights were trained for (default: the model's, 1000).")
    var numClasses: Int?

    @Option(help: "How many classes to print.")
    var topk: Int = 5

    @Flag(help: "Print JSON: [{\"index\": i, \"label\": name, \"probability\": p}, ...].")
    var json = false

    @Option(help: "Threads for VisionCore and OpenBLAS (default: all cores).")
    var threads: Int?

    @Flag(help: "List the model names and exit.")
    var list = false

    func validate() throws {
        if list { return }
        guard image != nil else { throw ValidationError("missing the IMAGE to classify") }
        guard let model else { throw ValidationError("missing --model NAME (see `vc models`)") }
        guard ClassifierRegistry.allNames.contains(model) else {
            throw ValidationError("unknown model '\(model)'; known models: \(modelList())")
        }
        guard weights != nil else { throw ValidationError("missing --weights FILE (timm-format safetensors for \(model))") }
        guard topk >= 1 else { throw ValidationError("--topk must be at least 1, got \(topk)") }
        if let numClasses, !(1...ClassifierRegistry.maxClasses).contains(numClasses) {
            throw ValidationError("--num-classes must be in 1...\(ClassifierRegistry.maxClasses), got \(numClasses)")
        }
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be in 1...256, got \(threads)") }
    }

    func run() throws {
        if list { Models.printNames(); return }
        guard let image, let model, let weights else { throw ValidationError("missing arguments") }
        if let threads { try Threading.setThreadCount(threads) }
        let net = try ImageClassifier.pretrained(model, weightsPath: weights, numClasses: numClasses)
        let top = try net.classify(path: image, topk: topk)
        if json {
            print(predictionsJSON(top))
        } else {
            print("\(image): \(model) (\(weights)), top \(top.count):")
            for (rank, p) in top.enumerated() {
                let pct = (Double(p.probability) * 10000).rounded() / 100
                print("  \(rank + 1). \(p.label ?? "class \(p.index)") (\(p.index))  \(pct)%")
            }
        }
    }
}

/// `vc models`: the registry's names with each model's input size, crop fraction and interpolation.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the classification models `vc classify` accepts.")

    func run() throws { Models.printNames() }

    static func printNames() {
        let names = ClassifierRegistry.allNames
        if names.isEmpty { print("(no classification models registered)"); return }
        for name in names {
            guard let c = try? ClassifierRegistry.lookup(name).config else { continue }
            print("\(name)  input \(c.inputSize.map(String.init).joined(separator: "x"))  crop_pct \(c.cropPct)  \(c.interpolation.rawValue)")
        }
    }
}

private func modelList() -> String {
    let names = ClassifierRegistry.allNames
    return names.isEmpty ? "(none registered)" : names.joined(separator: ", ")
}

/// JSON string escaping for class names (quotes and backslashes; control characters do not occur in them).
private func jsonString(_ s: String) -> String {
    var out = "\""
    for ch in s {
        if ch == "\"" || ch == "\\" { out.append("\\") }
        out.append(ch)
    }
    return out + "\""
}

func predictionsJSON(_ top: [ClassPrediction]) -> String {
    "[" + top.map { p in
        "{\"index\": \(p.index), \"label\": \(p.label.map(jsonString) ?? "null"), \"probability\": \(p.probability)}"
    }.joined(separator: ", ") + "]"
}
