import Testing
import VisionCore
import VisionData

/// The Swift snippets of docs/data.md, run as written (the ImageFolder one on a tree the test writes), so the
/// documentation cannot drift from the API.
@Suite struct DocsSnippetTests {
    @Test(.enabled(if: FashionMNIST.isAvailable(split: .train)))
    func datasetAndLoaderSnippets() throws {
        let train = try FashionMNIST(split: .train)          // /usr/share/datasets/fashion-mnist (Debian's package)
        let example = try train.example(at: 0)               // input float32 [1, 28, 28] in [0, 1], label 9 ("Ankle boot")
        print(FashionMNIST.classNames[example.label], example.input.shape)

        let loader = try DataLoader(train, batchSize: 128, shuffle: true, dropLast: true, seed: 42, workers: 2,
                                    transform: Compose([try RandomHorizontalFlip(),
                                                        try Normalize(mean: [0.2860], std: [0.3530])]))
        let cutmix = try CutMix(alpha: 1, prob: 0.5, numClasses: 10)
        var mixing = RandomGenerator(seed: 7)
        var seen = 0
        for epoch in 0..<2 {
            try loader.forEachBatch(epoch: epoch) { batch in
                let mixed = try cutmix(batch.inputs, labels: batch.labels, draws: &mixing)
                // mixed.images [128, 1, 28, 28] and mixed.targets [128, 10] go to the model and a soft-target loss
                #expect(mixed.images.shape == [128, 1, 28, 28] && mixed.targets.shape == [128, 10])
                seen += 1
            }
        }
        #expect(example.label == 9 && seen == 2 * (60_000 / 128))
    }

    @Test func mixingSnippets() throws {
        var rng = RandomGenerator(seed: 0)
        let images = try Tensor.uniform([8, 3, 32, 32], rng: &rng)
        let labels = try Tensor((0..<8).map { Int64($0 % 10) }, shape: [8])

        let official = try CutMix(alpha: 1, prob: 1, numClasses: 10)      // clovaai/CutMix-PyTorch
        let timm = try TimmMixup(mixupAlpha: 0.8, cutmixAlpha: 1, mode: .elem, labelSmoothing: 0.1, numClasses: 10)
        let cutout = try Cutout(length: 16)
        let a = try official(images, labels: labels, draws: &rng)         // a.targets rows sum to 1
        let b = try timm(images, labels: labels, draws: &rng)
        let c = try cutout(images, labels: labels, numClasses: 10, draws: &rng)
        print(a.lambdas[0], a.boxes[0]!, b.targets.shape, c.boxes[0]!)

        let clips = try Tensor.uniform([4, 3, 8, 32, 32], rng: &rng)     // [N, C, T, H, W]
        let videomix = try VideoMix(variant: .spatioTemporal, alpha: 1, numClasses: 10)
        let v = try videomix(clips, labels: try Tensor([Int64(1), 2, 3, 4], shape: [4]), draws: &rng)
        print(v.lambda, v.cuboid!)                                           // λ_M = voxels kept / all voxels
        #expect(b.targets.shape == [8, 10] && v.clips.shape == clips.shape)
    }

    @Test func reLabelSnippet() throws {
        let folder = try TemporaryFolder()
        let root = folder.path
        var rng = RandomGenerator(seed: 0)
        for (k, cls) in ["n01", "n02"].enumerated() {
            folder.makeFolder("train/\(cls)")
            folder.makeFolder("relabel/\(cls)")
            let image = try Tensor.uniform([40, 50, 3], high: 255, rng: &rng).to(.uint8)
            try saveImage(image, path: "\(root)/train/\(cls)/img\(k).JPEG")
            let logits = try Tensor.normal([1000, 15, 15], rng: &rng)
            try LabelMaps.save(try LabelMaps.fromDenseLogits(logits, k: 5), path: "\(root)/relabel/\(cls)/img\(k).safetensors")
        }

        let data = try ImageFolder(root: root + "/train", labelMapRoot: root + "/relabel")
        let transform = Compose([try RandomResizedCrop(size: 224), try RandomHorizontalFlip(),
                                 try ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4),
                                 try Normalize(mean: Normalize.imagenet.mean, std: Normalize.imagenet.std)])
        let relabelLoader = try DataLoader(data, batchSize: 2, shuffle: true, seed: 0, workers: 2, transform: transform)
        let relabel = try ReLabelCutMix(pooling: try LabelPooling(numClasses: 1000),
                                        cutmix: try CutMix(alpha: 1, prob: 1, numClasses: 1000))
        try relabelLoader.forEachBatch(epoch: 0) { batch in
            let mixed = try relabel(batch, draws: &rng)          // pooled soft targets, then CutMix: [2, 1000]
            print(mixed.targets.shape)
            #expect(mixed.targets.shape == [2, 1000] && mixed.images.shape == [2, 3, 224, 224])
        }
    }
}
