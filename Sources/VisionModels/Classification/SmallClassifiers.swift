import VisionCore

/// Small registry models for 28 x 28 grayscale data (Fashion-MNIST, `vc train`), built from the families'
/// config structs so they run the same code paths as the full models.
public enum SmallClassifiers {
    /// Fashion-MNIST's per-channel statistics over the training set (images in [0, 1]).
    public static let fashionMNISTMean: [Float] = [0.2860], fashionMNISTStd: [Float] = [0.3530]

    /// 1 x 28 x 28 input, no crop (the images are already aligned), Fashion-MNIST mean/std.
    public static let fashionConfig = PretrainedConfig(inputSize: [1, 28, 28], mean: fashionMNISTMean, std: fashionMNISTStd,
                                                      cropPct: 1, interpolation: .bilinear, numClasses: 10, classifier: "fc")

    /// `resnet_fmnist`: a ResNet-10 (one BasicBlock per stage) at half width, 32-64-128-256 planes: about 1.2 M
    /// parameters and ~4 M multiply-adds per 28 x 28 image, so an epoch of Fashion-MNIST fits in a minute on two
    /// cores. The timm stem (7 x 7 stride 2, max-pool) takes 28 x 28 to 7 x 7.
    public static let resnetFashion = ResNetConfig(block: .basic, layers: [1, 1, 1, 1], channels: [32, 64, 128, 256])

    public static let entries: [ClassifierEntry] = [
        ClassifierEntry(name: "resnet_fmnist", config: fashionConfig) { options in
            // in_chans and num_classes come from the options (vc train sets 1 and 10 for Fashion-MNIST).
            try ResNet(name: "resnet_fmnist", architecture: resnetFashion, config: fashionConfig, options: options)
        },
    ]
}
