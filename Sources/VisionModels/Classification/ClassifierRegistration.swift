#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// Models registered at run time, after the built-in `ClassifierRegistry.entries` (a user's own architecture, or
/// a test's tiny model): the CLI, the C API and Python look names up through `allNames` / `make`, so these work
/// everywhere the built-in ones do.
private final class RuntimeEntries: @unchecked Sendable {
    private var list: [ClassifierEntry] = []
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }

    func with<R>(_ body: (inout [ClassifierEntry]) throws -> R) rethrows -> R {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return try body(&list)
    }
}

private let runtimeEntries = RuntimeEntries()

extension ClassifierRegistry {
    /// Adds a model under a new name; a name already taken (built in or registered) is an error.
    public static func register(_ entry: ClassifierEntry) throws {
        guard !entry.name.isEmpty else { throw VisionError.invalidArgument("register: the model name is empty") }
        try runtimeEntries.with { list in
            guard !names.contains(entry.name), !list.contains(where: { $0.name == entry.name }) else {
                throw VisionError.invalidArgument("register: a model called '\(entry.name)' already exists")
            }
            list.append(entry)
        }
    }

    /// Removes a model added by `register` (built-in models stay); returns whether it was there.
    @discardableResult public static func unregister(_ name: String) -> Bool {
        runtimeEntries.with { list in
            guard let i = list.firstIndex(where: { $0.name == name }) else { return false }
            list.remove(at: i)
            return true
        }
    }

    /// Built-in names in registry order, then the registered ones.
    public static var allNames: [String] { names + runtimeEntries.with { $0.map(\.name) } }

    /// The entry called `name`, built in or registered.
    public static func lookup(_ name: String) throws -> ClassifierEntry {
        if let e = entries.first(where: { $0.name == name }) { return e }
        if let e = runtimeEntries.with({ $0.first(where: { $0.name == name }) }) { return e }
        let known = allNames
        throw VisionError.invalidArgument("unknown model '\(name)'; known models: \(known.isEmpty ? "(none)" : known.joined(separator: ", "))")
    }

    /// Largest `numClasses` and `inChans` accepted by `make` (far above any real model; they keep an absurd
    /// request from C or Python an error instead of a multi-gigabyte allocation).
    public static let maxClasses = 1 << 20, maxInChans = 1 << 12

    /// Builds `name` (built in or registered) as `create` does: freshly initialized weights seeded by
    /// `options.seed`, training mode. Invalid options (negative or absurd class or channel counts, rates
    /// outside [0, 1) or NaN) are `.invalidArgument` errors.
    public static func make(_ name: String, options: ClassifierOptions = ClassifierOptions()) throws -> ImageClassifier {
        let entry = try lookup(name)
        guard (0...maxClasses).contains(options.numClasses), (1...maxInChans).contains(options.inChans),
              options.dropPathRate >= 0, options.dropPathRate < 1,
              (options.dropRate ?? 0) >= 0, (options.dropRate ?? 0) < 1 else {
            throw VisionError.invalidArgument("create \(name): invalid options (num_classes \(options.numClasses) must be in 0...\(maxClasses), in_chans \(options.inChans) in 1...\(maxInChans), drop rates in [0, 1))")
        }
        if entries.contains(where: { $0.name == name }) { return try create(name, options: options) }
        return try entry.make(options)
    }
}
