#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import VisionCore

/// A batch of collated examples.
public struct Batch: Sendable {
    /// The inputs stacked along a new first axis: [B, C, H, W] for images.
    public var inputs: Tensor
    /// The class labels, int64 [B].
    public var labels: Tensor
    /// The dataset index of each example.
    public var indices: [Int]
    /// Each example's crop (set by `RandomResizedCrop`).
    public var cropBoxes: [CropBox?]
    /// The examples' ReLabel label maps stacked [B, 2, k, S, S], when every example has one.
    public var labelMaps: Tensor?

    public init(inputs: Tensor, labels: Tensor, indices: [Int], cropBoxes: [CropBox?], labelMaps: Tensor? = nil) {
        self.inputs = inputs
        self.labels = labels
        self.indices = indices
        self.cropBoxes = cropBoxes
        self.labelMaps = labelMaps
    }
}

/// Batches of a dataset, loaded by worker threads ahead of the training loop (PyTorch's DataLoader).
///
/// Determinism: the example order of epoch e is a permutation drawn from a generator seeded by (seed, e) (the
/// identity without `shuffle`), and the transform of example `index` draws from
/// `RandomGenerator.derived(seed:epoch:index:)`. Nothing depends on threads or timing, so a run's batches are
/// identical for every `workers` count and across runs; `batch(_:epoch:)` rebuilds any batch on its own.
///
/// Workers: 0 loads each batch in the calling thread when it is asked for. With k >= 1, up to k batches are
/// built at once (one worker per batch, as PyTorch's workers do) and up to `prefetch` finished batches wait
/// ahead of the consumer; batches are handed out strictly in order. A failing example fails its batch: the
/// iterator throws that error when it reaches the batch.
public final class DataLoader: Sendable {
    public let dataset: any Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let seed: UInt64
    public let workers: Int
    public let prefetch: Int
    public let transform: (any Transform)?

    /// Errors: batchSize < 1, workers outside 0...256, prefetch < 1, an empty dataset.
    public init(_ dataset: any Dataset, batchSize: Int, shuffle: Bool = false, dropLast: Bool = false, seed: UInt64 = 0,
                workers: Int = 0, prefetch: Int = 2, transform: (any Transform)? = nil) throws {
        guard batchSize >= 1 else { throw VisionError.invalidArgument("DataLoader: batchSize must be >= 1, got \(batchSize)") }
        guard (0...256).contains(workers), prefetch >= 1 else {
            throw VisionError.invalidArgument("DataLoader: workers must be in 0...256 and prefetch >= 1, got \(workers), \(prefetch)")
        }
        guard dataset.count > 0 else { throw VisionError.invalidArgument("DataLoader: the dataset is empty") }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.seed = seed
        self.workers = workers
        self.prefetch = prefetch
        self.transform = transform
    }

    /// Batches per epoch: count / batchSize, rounded up unless `dropLast`.
    public var batchCount: Int { dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize }

    /// The dataset indices in the order epoch `epoch` visits them.
    public func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<dataset.count) }
        // index -1 keeps the shuffling stream apart from every example's stream.
        var rng = RandomGenerator.derived(seed: seed, epoch: epoch, index: -1)
        return rng.permutation(dataset.count)
    }

    /// Builds batch `b` of epoch `epoch` in the calling thread (what the workers run).
    public func batch(_ b: Int, epoch: Int) throws -> Batch {
        try batch(b, epoch: epoch, order: order(epoch: epoch))
    }

    func batch(_ b: Int, epoch: Int, order: [Int]) throws -> Batch {
        guard b >= 0, b < batchCount else {
            throw VisionError.invalidArgument("DataLoader: batch \(b) is outside 0..<\(batchCount)")
        }
        let indices = Array(order[(b * batchSize)..<min((b + 1) * batchSize, order.count)])
        var examples: [Example] = []
        examples.reserveCapacity(indices.count)
        for index in indices {
            var e = try dataset.example(at: index)
            if let transform {
                var rng = RandomGenerator.derived(seed: seed, epoch: epoch, index: index)
                e = try transform.apply(e, draws: &rng)
            }
            examples.append(e)
        }
        return try collate(examples, indices: indices)
    }

    /// Stacks examples; errors name the first example whose input shape differs.
    func collate(_ examples: [Example], indices: [Int]) throws -> Batch {
        let first = examples[0].input
        for (k, e) in examples.enumerated() where e.input.shape != first.shape || e.input.dtype != first.dtype {
            throw VisionError.shapeMismatch("DataLoader: example \(indices[k]) has input \(e.input.dtype) \(e.input.shape) but example \(indices[0]) has \(first.dtype) \(first.shape); add a transform that gives every example one size")
        }
        var maps: Tensor? = nil
        if examples.allSatisfy({ $0.labelMap != nil }) {
            let m = examples.map { $0.labelMap! }
            guard m.allSatisfy({ $0.shape == m[0].shape }) else {
                throw VisionError.shapeMismatch("DataLoader: the label maps of batch examples \(indices) differ in shape")
            }
            maps = try stack(m, axis: 0)
        }
        return Batch(inputs: try stack(examples.map(\.input), axis: 0),
                     labels: try Tensor(examples.map { Int64($0.label) }, shape: [examples.count]),
                     indices: indices, cropBoxes: examples.map(\.cropBox), labelMaps: maps)
    }

    /// The batches of one epoch, in order: `let it = loader.epoch(e); while let batch = try it.next() { ... }`.
    public func epoch(_ epoch: Int) -> EpochIterator { EpochIterator(loader: self, epoch: epoch) }

    /// Calls `body` with every batch of an epoch, in order.
    public func forEachBatch(epoch: Int, _ body: (Batch) throws -> Void) throws {
        let it = self.epoch(epoch)
        while let b = try it.next() { try body(b) }
    }
}

/// The batches of one epoch. Dropping the iterator before the end stops the scheduling of further batches
/// (batches already being built finish in the background and are discarded).
public final class EpochIterator {
    private let state: EpochState
    private let loader: DataLoader
    private var position = 0

    init(loader: DataLoader, epoch: Int) {
        self.loader = loader
        state = EpochState(loader: loader, epoch: epoch)
        state.schedule()
    }

    deinit { state.cancel() }

    /// The next batch, nil after the last. Throws the error of a batch that failed to load.
    public func next() throws -> Batch? {
        guard position < loader.batchCount else { return nil }
        let b = position
        position += 1
        if loader.workers == 0 { return try loader.batch(b, epoch: state.epoch, order: state.order) }
        return try state.take(b).get()
    }
}

/// Scheduling shared by an iterator and its jobs, under one mutex: jobs `0..<scheduled` have been started,
/// `results` holds the finished ones not yet taken, `taken` is the next batch the consumer wants.
private final class EpochState: @unchecked Sendable {
    let loader: DataLoader
    let epoch: Int
    let order: [Int]
    private var mutex = pthread_mutex_t()
    private var ready = pthread_cond_t()
    private var results: [Int: Result<Batch, Error>] = [:]
    private var scheduled = 0, running = 0, taken = 0
    private var cancelled = false

    init(loader: DataLoader, epoch: Int) {
        self.loader = loader
        self.epoch = epoch
        order = loader.order(epoch: epoch)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&ready, nil)
    }

    deinit {
        pthread_cond_destroy(&ready)
        pthread_mutex_destroy(&mutex)
    }

    /// Starts jobs while fewer than `workers` run and fewer than `workers + prefetch` batches are ahead of the
    /// consumer.
    func schedule() {
        guard loader.workers > 0 else { return }
        pthread_mutex_lock(&mutex)
        var start: [Int] = []
        while !cancelled, scheduled < loader.batchCount, running < loader.workers,
              scheduled - taken < loader.workers + loader.prefetch {
            start.append(scheduled)
            scheduled += 1
            running += 1
        }
        pthread_mutex_unlock(&mutex)
        for b in start {
            DispatchQueue.global().async { [self] in
                let r = Result { try self.loader.batch(b, epoch: self.epoch, order: self.order) }
                pthread_mutex_lock(&self.mutex)
                self.running -= 1
                if !self.cancelled { self.results[b] = r }
                pthread_cond_broadcast(&self.ready)
                pthread_mutex_unlock(&self.mutex)
                self.schedule()
            }
        }
    }

    /// Waits for batch `b` and removes it from the finished set.
    func take(_ b: Int) -> Result<Batch, Error> {
        pthread_mutex_lock(&mutex)
        taken = b + 1
        pthread_mutex_unlock(&mutex)
        schedule()      // batch b (and the ones behind it) may not have been started yet
        pthread_mutex_lock(&mutex)
        while results[b] == nil { pthread_cond_wait(&ready, &mutex) }
        let r = results.removeValue(forKey: b)!
        pthread_mutex_unlock(&mutex)
        return r
    }

    func cancel() {
        pthread_mutex_lock(&mutex)
        cancelled = true
        results.removeAll()
        pthread_mutex_unlock(&mutex)
    }
}
