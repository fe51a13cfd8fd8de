#if canImport(Glibc)
import Glibc
#endif
import VisionCore
import VisionNN

// EXTD training on WIDER FACE as the official train.py: the wider_face_train_bbx_gt.txt annotations, the
// WIDERDetection dataset with the S3FD augmentation, shuffled batches, and loss = loss_l + loss_c.

/// One annotated face: the box (x, y, w, h in pixels) and WIDER's attribute flags.
public struct WiderFaceBox: Sendable, Equatable {
    public var x: Double, y: Double, w: Double, h: Double
    public var blur = 0, expression = 0, illumination = 0, invalid = 0, occlusion = 0, pose = 0
    public init(x: Double, y: Double, w: Double, h: Double) { (self.x, self.y, self.w, self.h) = (x, y, w, h) }
}

/// One image of an annotation file: its path (relative to the images folder) and faces.
public struct WiderFaceEntry: Sendable, Equatable {
    public var path: String
    public var faces: [WiderFaceBox]
    public init(path: String, faces: [WiderFaceBox]) { (self.path, self.faces) = (path, faces) }
}

/// The WIDER FACE ground-truth format (wider_face_train_bbx_gt.txt): per image a path line, a count line, then
/// `count` lines "x y w h blur expression illumination invalid occlusion pose" (a count of 0 is followed by one
/// line of zeros).
public enum WiderFaceAnnotations {
    /// Parses annotation text; `source` names it in errors, which give the 1-based line number.
    public static func parse(_ text: String, source: String = "annotations") throws -> [WiderFaceEntry] {
        func trimmed(_ s: Substring) -> String {
            let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
            guard let a = s.firstIndex(where: { !blank($0) }), let b = s.lastIndex(where: { !blank($0) }) else { return "" }
            return String(s[a...b])
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(trimmed)
        var entries: [WiderFaceEntry] = []
        var i = 0
        func fail(_ line: Int, _ what: String) -> VisionError { .format("\(source):\(line + 1): \(what)") }
        while i < lines.count {
            if lines[i].isEmpty { i += 1; continue }
            let path = lines[i]
            guard Double(path.split(separator: " ").first ?? "") == nil else {
                throw fail(i, "expected an image path, got '\(path.prefix(60))'")
            }
            guard i + 1 < lines.count, let count = Int(lines[i + 1]), count >= 0, count <= 100_000 else {
                throw fail(i + 1, "expected the number of faces of '\(path)' (an integer >= 0), got '\(i + 1 < lines.count ? String(lines[i + 1].prefix(60)) : "end of file")'")
            }
            i += 2
            var faces: [WiderFaceBox] = []
            for k in 0..<max(count, 1) {
                guard i < lines.count, !lines[i].isEmpty else {
                    throw fail(i, "'\(path)' announces \(count) face\(count == 1 ? "" : "s") but line \(k + 1) of them is missing")
                }
                let fields = lines[i].split(whereSeparator: { $0 == " " || $0 == "\t" })
                let values = fields.map { Double($0) }
                guard fields.count == 4 || fields.count == 10, values.allSatisfy({ $0 != nil && $0!.isFinite }) else {
                    throw fail(i, "expected 'x y w h' and 6 attribute flags (10 numbers), got '\(lines[i].prefix(80))'")
                }
                let v = values.map { $0! }
                if count > 0 {
                    var box = WiderFaceBox(x: v[0], y: v[1], w: v[2], h: v[3])
                    if v.count == 10 {
                        (box.blur, box.expression, box.illumination) = (Int(v[4]), Int(v[5]), Int(v[6]))
                        (box.invalid, box.occlusion, box.pose) = (Int(v[7]), Int(v[8]), Int(v[9]))
                    }
                    faces.append(box)
                } else if !v.allSatisfy({ $0 == 0 }) {
                    throw fail(i, "'\(path)' has 0 faces, so this line must be all zeros")
                }
                i += 1
            }
            entries.append(WiderFaceEntry(path: path, faces: faces))
        }
        return entries
    }

    public static func load(path: String) throws -> [WiderFaceEntry] {
        let bytes = try FileIO.read(path, maxBytes: 1 << 30)
        return try parse(String(decoding: bytes, as: UTF8.self), source: path)
    }
}

/// A training batch: the network input [B, 3, H, W] and each image's face boxes (normalized).
public struct FaceTrainingBatch {
    public var input: Tensor
    public var targets: [[S3FDBox]]
}

/// WIDER FACE as the official WIDERDetection in 'train' mode: faces with w <= 0 or h <= 0 are skipped, images
/// left without faces are dropped; each sample is loaded (gray images as RGB), its boxes normalized to the image,
/// and augmented; a sample whose faces all fall out of the augmented crop is replaced by a random other image.
public struct WiderFaceTrainingSet: Sendable {
    public let imagesRoot: String
    public let entries: [WiderFaceEntry]
    public var augmentation: S3FDAugmentation
    /// Replacements tried before giving up on a sample (the official loop has no limit).
    public var maxRetries = 100

    public init(imagesRoot: String, annotations: [WiderFaceEntry], augmentation: S3FDAugmentation = S3FDAugmentation()) throws {
        self.imagesRoot = imagesRoot
        self.augmentation = augmentation
        entries = annotations.compactMap { e in
            let faces = e.faces.filter { $0.w > 0 && $0.h > 0 }
            return faces.isEmpty ? nil : WiderFaceEntry(path: e.path, faces: faces)
        }
        guard !entries.isEmpty else {
            throw VisionError.invalidArgument("WIDER FACE training set: no image with a face of positive size in the \(annotations.count) annotated images")
        }
    }

    public var count: Int { entries.count }

    func imagePath(_ e: WiderFaceEntry) -> String { e.path.hasPrefix("/") ? e.path : imagesRoot + "/" + e.path }

    /// The augmented sample of image `index` (or of a replacement, see the type's description).
    public func sample<R: S3FDRandomSource>(_ index: Int, random: inout R) throws -> S3FDSample {
        guard entries.indices.contains(index) else {
            throw VisionError.invalidArgument("WIDER FACE training set: index \(index) outside 0..<\(entries.count)")
        }
        var i = index
        for _ in 0...maxRetries {
            let e = entries[i]
            let path = imagePath(e)
            let image: S3FDImage
            do {
                image = try S3FDImage(try loadImage(path: path, channels: 3))
            } catch let error as VisionError {
                throw VisionError.io("WIDER FACE training set: image '\(path)': \(error.message)")
            }
            let w = Double(image.width), h = Double(image.height)
            let boxes = e.faces.map { S3FDBox(label: 1, x1: $0.x / w, y1: $0.y / h, x2: ($0.x + $0.w) / w, y2: ($0.y + $0.h) / h) }
            let s = try augmentation.apply(image, boxes: boxes, random: &random)
            if !s.boxes.isEmpty { return s }
            i = random.randint(0, entries.count)
        }
        throw VisionError.invalidArgument("WIDER FACE training set: no face survived the augmentation in \(maxRetries + 1) images from index \(index)")
    }

    /// Samples `indices` and stacks them (all share the augmentation's output size).
    public func batch<R: S3FDRandomSource>(_ indices: [Int], random: inout R) throws -> FaceTrainingBatch {
        guard !indices.isEmpty else { throw VisionError.invalidArgument("WIDER FACE training set: empty batch") }
        var inputs: [Tensor] = [], targets: [[S3FDBox]] = []
        for i in indices {
            let s = try sample(i, random: &random)
            inputs.append(try s.input.unsqueeze(axis: 0))
            targets.append(s.boxes)
        }
        return FaceTrainingBatch(input: try concat(inputs, axis: 0), targets: targets)
    }
}

/// The training objective of train.py: S3FD matching of each image's faces to the priors of the input size, the
/// multibox loss (3:1 hard negatives) as (loss_l, loss_c); the optimizer minimizes their sum.
public func extdTrainingLoss(net: EXTDNet, batch: FaceTrainingBatch) throws -> (loc: Tensor, conf: Tensor) {
    let x = batch.input
    guard x.rank == 4, batch.targets.count == x.shape[0] else {
        throw VisionError.shapeMismatch("EXTD training loss: \(batch.targets.count) target lists for input \(x.shape)")
    }
    let out = try net.forwardDetection(x)
    let priors = try S3FDAnchors.priors(inputHeight: x.shape[2], inputWidth: x.shape[3], featureSizes: out.featureSizes)
    var locs: [Tensor] = [], confs: [Tensor] = []
    for boxes in batch.targets {
        let flat = boxes.flatMap { [Float($0.x1), Float($0.y1), Float($0.x2), Float($0.y2)] }
        let (l, c) = try S3FDMatcher().match(truths: try Tensor(flat, shape: [boxes.count, 4]), labels: boxes.map(\.label), priors: priors)
        locs.append(try l.unsqueeze(axis: 0)); confs.append(try c.unsqueeze(axis: 0))
    }
    return try MultiBoxLoss()(loc: out.loc, conf: out.conf, locTargets: try concat(locs, axis: 0), confTargets: try concat(confs, axis: 0))
}

/// What a training step needs from an optimizer (VisionOptim's optimizers have these methods).
public protocol FaceTrainingOptimizer: AnyObject {
    func zeroGrad()
    func step() throws
}

/// One line of progress.
public struct FaceTrainingReport: Sendable {
    public var epoch: Int, step: Int, stepInEpoch: Int, stepsPerEpoch: Int
    public var lossL: Double, lossC: Double
    public var imagesPerSecond: Double
    /// Seconds left for the run's remaining steps at the recent speed.
    public var eta: Double
}

/// The loop of train.py: epochs of shuffled batches (the last one may be smaller), a forward, loss_l + loss_c,
/// backward and an optimizer step per batch. Its generators (batch order, augmentation) and counters are the state
/// a checkpoint keeps, so that a resumed run continues with the same batches.
public final class EXTDFaceTrainer {
    public let net: EXTDNet
    public let data: WiderFaceTrainingSet
    public let batchSize: Int
    /// Shuffles each epoch's order.
    public var orderRandom: RandomGenerator
    /// Drives the augmentations.
    public var augmentRandom: S3FDRandom
    public var epoch = 0
    public var step = 0

    public init(net: EXTDNet, data: WiderFaceTrainingSet, batchSize: Int, seed: UInt64) throws {
        guard batchSize >= 1 else { throw VisionError.invalidArgument("EXTD trainer: batch size must be >= 1, got \(batchSize)") }
        (self.net, self.data, self.batchSize) = (net, data, batchSize)
        orderRandom = RandomGenerator(seed: seed)
        augmentRandom = S3FDRandom(seed: seed &+ 0x9E37_79B9)
    }

    public var stepsPerEpoch: Int { (data.count + batchSize - 1) / batchSize }

    /// Trains one epoch (from the state's position: a fresh epoch), or until `step` reaches `maxSteps`; reports
    /// after every step. Returns the mean loss_l + loss_c of the epoch's steps. The epoch counter advances only
    /// when the epoch completes.
    @discardableResult
    public func trainEpoch(optimizer: FaceTrainingOptimizer, totalSteps: Int? = nil, maxSteps: Int? = nil,
                           learningRate: ((Int) throws -> Void)? = nil,
                           report: (FaceTrainingReport) -> Void = { _ in }) throws -> Double {
        net.train()
        // Fisher-Yates with the order generator: DataLoader(shuffle=True).
        var order = Array(0..<data.count)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(orderRandom.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        var total = 0.0, steps = 0
        var recent: [Double] = []   // seconds per image of the last steps
        for b in 0..<stepsPerEpoch {
            if let maxSteps, step >= maxSteps { return steps > 0 ? total / Double(steps) : .nan }
            let start = monotonicSeconds()
            try learningRate?(step)
            let indices = Array(order[(b * batchSize)..<min((b + 1) * batchSize, order.count)])
            let batch = try data.batch(indices, random: &augmentRandom)
            optimizer.zeroGrad()
            let (ll, lc) = try extdTrainingLoss(net: net, batch: batch)
            let loss = try add(ll, lc)
            let (l, c) = (try ll.item(), try lc.item())
            guard l.isFinite, c.isFinite else {
                throw VisionError.invalidArgument("EXTD trainer: the loss is not finite at step \(step) (loss_l \(l), loss_c \(c)); lower the learning rate")
            }
            try loss.backward()
            try optimizer.step()
            step += 1; steps += 1; total += l + c
            let seconds = max(monotonicSeconds() - start, 1e-9)
            recent.append(seconds / Double(indices.count))
            if recent.count > 20 { recent.removeFirst() }
            let perImage = recent.reduce(0, +) / Double(recent.count)
            let remaining = max((totalSteps ?? step) - step, 0)
            report(FaceTrainingReport(epoch: epoch, step: step, stepInEpoch: b + 1, stepsPerEpoch: stepsPerEpoch,
                                      lossL: l, lossC: c, imagesPerSecond: 1 / perImage,
                                      eta: Double(remaining) * perImage * Double(batchSize)))
        }
        epoch += 1
        return steps > 0 ? total / Double(steps) : .nan
    }
}

extension EXTDNet {
    /// The official initialization before training (train.py without --resume): xavier-uniform weights and zero
    /// biases for every convolution of the heads, and of the backbone too when no pretrained backbone is given
    /// (the MobileFaceNet pretraining it expects was not released).
    public func initializeForTraining(seed: UInt64, backbone: Bool) throws {
        try initializeHeadsXavier(seed: seed)
        guard backbone else { return }
        var rng = RandomGenerator(seed: seed &+ 1)
        for (_, m) in base.namedModules() {
            guard let conv = m as? Conv2d else { continue }
            let w = conv.weight.value
            // xavier_uniform's fans: in = C_in/groups * k * k, out = C_out * k * k (PyTorch's _calculate_fan_in_and_fan_out).
            let receptive = w.shape[2] * w.shape[3]
            let bound = (6.0 / Double(w.shape[1] * receptive + w.shape[0] * receptive)).squareRoot()
            try conv.weight.value.updateInPlace { p in for i in 0..<p.count { p[i] = Float((rng.nextDouble() * 2 - 1) * bound) } }
            try conv.bias?.value.updateInPlace { p in for i in 0..<p.count { p[i] = 0 } }
        }
    }
}

/// Seconds on a monotonic clock.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
