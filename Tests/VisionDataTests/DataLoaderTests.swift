import Testing
import VisionCore
@testable import VisionData

/// The loader's contract: every epoch visits each example once (a seeded permutation when shuffling), batches
/// are identical across runs and worker counts even with random transforms, `dropLast` and partial batches,
/// and failures surface as errors of the right batch.
@Suite struct DataLoaderTests {
    /// 23 random [3, 10, 12] images labelled by index.
    func dataset(count: Int = 23) throws -> TensorDataset {
        var rng = RandomGenerator(seed: 77)
        return try TensorDataset(inputs: try Tensor.uniform([count, 3, 10, 12], rng: &rng), labels: Array(0..<count))
    }

    func augment() throws -> Compose {
        Compose([try RandomResizedCrop(height: 8, width: 8, scale: (0.3, 1)), try RandomHorizontalFlip(),
                 try ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1),
                 try Normalize(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])])
    }

    func allBatches(_ loader: DataLoader, epoch: Int) throws -> [Batch] {
        var out: [Batch] = []
        try loader.forEachBatch(epoch: epoch) { out.append($0) }
        return out
    }

    @Test func batchCountsAndCoverage() throws {
        let ds = try dataset()
        for (dropLast, expected) in [(false, [5, 5, 5, 5, 3]), (true, [5, 5, 5, 5])] {
            let loader = try DataLoader(ds, batchSize: 5, shuffle: true, dropLast: dropLast, seed: 3)
            #expect(loader.batchCount == expected.count)
            let batches = try allBatches(loader, epoch: 0)
            #expect(batches.map { $0.indices.count } == expected)
            let seen = batches.flatMap(\.indices)
            #expect(Set(seen).count == seen.count && (dropLast ? seen.count == 20 : seen.sorted() == Array(0..<23)))
            for b in batches {
                #expect(b.inputs.shape == [b.indices.count, 3, 10, 12])
                #expect(try b.labels.toArray(Int64.self) == b.indices.map { Int64($0) })
            }
        }
        let plain = try DataLoader(ds, batchSize: 10)
        #expect(try allBatches(plain, epoch: 4).flatMap(\.indices) == Array(0..<23))
    }

    @Test func shuffleIsSeededPerEpoch() throws {
        let ds = try dataset()
        let a = try DataLoader(ds, batchSize: 4, shuffle: true, seed: 11)
        let b = try DataLoader(ds, batchSize: 4, shuffle: true, seed: 11)
        let c = try DataLoader(ds, batchSize: 4, shuffle: true, seed: 12)
        #expect(a.order(epoch: 0) == b.order(epoch: 0))
        #expect(a.order(epoch: 0) != a.order(epoch: 1))
        #expect(a.order(epoch: 0) != c.order(epoch: 0))
        #expect(a.order(epoch: 5).sorted() == Array(0..<23))
    }

    /// The property the loader exists for: worker count and timing never change a batch.
    @Test func batchesIdenticalAcrossWorkerCountsAndRuns() throws {
        let ds = try dataset()
        let t = try augment()
        var reference: [[Float]] = []
        for (run, workers) in [0, 1, 3, 8, 3].enumerated() {
            let loader = try DataLoader(ds, batchSize: 4, shuffle: true, dropLast: false, seed: 2024, workers: workers,
                                        prefetch: 1 + run % 3, transform: t)
            var flat: [[Float]] = []
            for epoch in 0..<2 {
                for b in try allBatches(loader, epoch: epoch) {
                    flat.append(try b.inputs.toArray(Float.self) + b.indices.map(Float.init) + b.cropBoxes.flatMap { c in [c!.i, c!.j, c!.h, c!.w].map(Float.init) })
                }
            }
            if reference.isEmpty { reference = flat } else { #expect(flat == reference, "workers \(workers) differ from workers 0") }
        }
        // A batch rebuilt on its own equals the one the iterator gave.
        let loader = try DataLoader(ds, batchSize: 4, shuffle: true, seed: 2024, workers: 2, transform: t)
        let third = try loader.batch(2, epoch: 1)
        #expect(try third.inputs.toArray(Float.self) == Array(reference[loader.batchCount + 2].prefix(third.inputs.count)))
        // The transform really is random: two epochs of the same example differ.
        #expect(reference[0] != reference[loader.batchCount])
    }

    @Test func abandonedIteratorDoesNotBlock() throws {
        let loader = try DataLoader(try dataset(count: 200), batchSize: 2, workers: 4, prefetch: 3, transform: try augment())
        for _ in 0..<5 {
            let it = loader.epoch(0)
            _ = try it.next()
        }
        #expect(try allBatches(loader, epoch: 1).count == 100)
    }

    struct FailingDataset: Dataset {
        let count = 10
        func example(at index: Int) throws -> Example {
            if index == 7 { throw VisionError.format("example 7 is corrupt") }
            return Example(input: try Tensor.full([2, 2], value: Double(index)), label: index)
        }
    }

    @Test func failuresSurfaceAtTheirBatch() throws {
        for workers in [0, 2] {
            let loader = try DataLoader(FailingDataset(), batchSize: 3, workers: workers)
            let it = loader.epoch(0)
            #expect(try it.next()?.indices == [0, 1, 2])
            #expect(try it.next()?.indices == [3, 4, 5])
            #expect(throws: VisionError.format("example 7 is corrupt")) { _ = try it.next() }
            #expect(try it.next()?.indices == [9])
            #expect(try it.next() == nil)
        }
    }

    struct RaggedDataset: Dataset {
        let count = 4
        func example(at index: Int) throws -> Example { Example(input: try Tensor.zeros([1, index + 1]), label: 0) }
    }

    @Test func loaderRejectsBadArguments() throws {
        let ds = try dataset()
        #expect(throws: VisionError.self) { _ = try DataLoader(ds, batchSize: 0) }
        #expect(throws: VisionError.self) { _ = try DataLoader(ds, batchSize: 2, workers: -1) }
        #expect(throws: VisionError.self) { _ = try DataLoader(ds, batchSize: 2, prefetch: 0) }
        #expect(throws: VisionError.self) { _ = try DataLoader(try TensorDataset(inputs: try Tensor.zeros([0, 2]), labels: []), batchSize: 2) }
        let ragged = try DataLoader(RaggedDataset(), batchSize: 2)
        #expect(thrownMessage { _ = try ragged.batch(0, epoch: 0) }?.contains("example 1") == true)
        #expect(throws: VisionError.self) { _ = try ragged.batch(2, epoch: 0) }
    }
}
