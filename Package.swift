// swift-tools-version:6.0
import PackageDescription

// Opt-in vector ISA for root builds (reference/toolchain.md section 6): the default build is portable SSE2 code
// with mul+add; VISIONCORE_MARCH=x86-64-v3 (set by scripts/build.sh) enables AVX2/FMA code generation.
let tune: [SwiftSetting] = Context.environment["VISIONCORE_MARCH"].map {
    [.unsafeFlags(["-Xcc", "-march=\($0)"]), .define("VC_FMA")]
} ?? []

let package = Package(
    name: "VisionCore",
    products: [
        // libvisioncore.so: the C ABI (build with scripts/build.sh for the self-contained, static-stdlib variant).
        .library(name: "visioncore", type: .dynamic, targets: ["VisionCAPI"]),
        // Swift clients link the modules directly (never dlopen the .so, which carries its own runtime).
        .library(name: "VisionCoreKit", targets: ["VisionCore", "VisionNN", "VisionOptim", "VisionTrain", "VisionModels", "VisionData"]),
        .executable(name: "vc", targets: ["vc"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // gzip decompression of IDX datasets (Fashion-MNIST ships as .gz).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CStb", linkerSettings: [.linkedLibrary("m")]),
        // -O3 lets the C loops vectorize; target_clones in the sources pick AVX-512 / AVX2 / baseline at load time.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])], linkerSettings: [.linkedLibrary("m")]),
        .target(name: "VisionCore", dependencies: ["CBLAS", "CStb", "CKernels"], swiftSettings: tune,
                linkerSettings: [.linkedLibrary("m")]),
        .target(name: "VisionOptim", dependencies: ["VisionCore"], swiftSettings: tune),
        // ClassifierTraining (vc train) builds registry models and reads VisionData datasets.
        .target(name: "VisionTrain", dependencies: ["VisionCore", "VisionNN", "VisionOptim", "VisionModels", "VisionData"],
                swiftSettings: tune),
        .target(name: "VisionNN", dependencies: ["VisionCore"], swiftSettings: tune),
        // Model families (EXTD, ResNet, ReXNet, PiT) on top of VisionCore's kernels and VisionNN's modules.
        .target(name: "VisionModels", dependencies: ["VisionCore", "VisionNN", "CBLAS"], swiftSettings: tune),
        // Datasets, loader, transforms and the mixing augmentations (CutMix, Mixup, Cutout, LabelPooling, VideoMix).
        .target(name: "VisionData", dependencies: ["VisionCore", "CZlib"], swiftSettings: tune),
        .target(name: "VisionCAPI", dependencies: ["VisionCore", "VisionNN", "VisionOptim", "VisionTrain", "VisionModels",
                                                "VisionData"],
                swiftSettings: tune),
        .executableTarget(name: "vc", dependencies: ["VisionCore", "VisionNN", "VisionOptim", "VisionTrain", "VisionModels", "VisionData", "CBLAS",
                                                 .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: tune),
        .executableTarget(name: "KernelBench", dependencies: ["VisionCore", "CBLAS"], path: "Benchmarks/KernelBench",
                          swiftSettings: tune),
        .executableTarget(name: "TrainBench", dependencies: ["VisionCore", "VisionNN", "VisionOptim", "VisionModels"],
                          path: "Benchmarks/TrainBench", swiftSettings: tune),
        .executableTarget(name: "OptimBench", dependencies: ["VisionCore", "VisionOptim"], path: "Benchmarks/OptimBench",
                          swiftSettings: tune),
        .executableTarget(name: "EXTDBench", dependencies: ["VisionCore", "VisionModels"], path: "Benchmarks/EXTDBench",
                          swiftSettings: tune),
        .executableTarget(name: "ClassifierBench", dependencies: ["VisionCore", "VisionNN", "VisionModels", "CBLAS"],
                          path: "Benchmarks/ClassifierBench", swiftSettings: tune),
        // Fashion-MNIST training (the vc train recipe) against PyTorch's (tools/bench_fashion_torch.py), per epoch.
        .executableTarget(name: "FashionBench", dependencies: ["VisionCore", "VisionData", "VisionModels", "VisionTrain"],
                          path: "Benchmarks/FashionBench", swiftSettings: tune),
        // Tests read their golden files from Tests/VisionCoreTests/Fixtures through #filePath.
        .testTarget(name: "VisionCoreTests", dependencies: ["VisionCore", "CKernels"], exclude: ["Fixtures"]),
        // Reads its fixtures (optim.safetensors) from Tests/VisionCoreTests/Fixtures.
        .testTarget(name: "VisionOptimTests", dependencies: ["VisionOptim", "VisionNN", "VisionCore"]),
        .testTarget(name: "VisionTrainTests", dependencies: ["VisionTrain", "VisionOptim", "VisionNN", "VisionCore", "VisionModels", "VisionData"]),
        .testTarget(name: "VisionNNTests", dependencies: ["VisionNN", "VisionCore"]),
        // Reads Tests/VisionCoreTests/Fixtures/extd.safetensors and data/ through #filePath.
        .testTarget(name: "VisionModelsTests", dependencies: ["VisionCore", "VisionNN", "VisionOptim", "VisionModels"]),
        // Reads mixing/data_transforms/relabel/fashion_mnist.safetensors from Tests/VisionCoreTests/Fixtures (#filePath).
        .testTarget(name: "VisionDataTests", dependencies: ["VisionData", "VisionCore"]),
    ]
)
