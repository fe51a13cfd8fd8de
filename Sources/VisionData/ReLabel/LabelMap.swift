import VisionCore

/// ReLabel label maps (Yun et al., CVPR 2021, naver-ai/relabel_imagenet): for each of S x S locations of an
/// image, the top-k classes of a strong classifier's dense (pre-pooling) logits. A map is a float32 tensor
/// [2, k, S, S] (the release: k = 5, S = 15): `[0]` holds the k scores, `[1]` their class indices stored as
/// floats (cast with truncation, as the reference's `.long()`), axes 2 and 3 the location (rows, columns — see
/// `LabelPooling.BoxConvention` for how the reference reads them).
///
/// Files are safetensors (the release's per-image `.pt` pickles are not read; convert them once with
/// `safetensors.torch.save_file({"label_map": torch.load(p).float()}, out)`):
/// - one image: a file with one entry named "label_map", [2, k, S, S] (`save` / `load`);
/// - many images: one entry per image named by its key — by convention the image's path below the dataset root
///   without extension, e.g. "n01440764/n01440764_10026" — each [2, k, S, S] (`saveAll` / `loadAll`).
/// Entries may be stored as F32 or F16 (F16 halves the size; scores lose about 3 decimal digits).
public enum LabelMaps {
    public static let entryName = "label_map"

    /// Checks that `map` is [2, k, S, S'] (k, S, S' >= 1) with finite scores and class indices in
    /// 0..<numClasses (when given; indices truncate toward zero first). `what` names the map in errors.
    public static func validate(_ map: Tensor, numClasses: Int? = nil, what: String = "label map") throws {
        guard map.dtype == .float32 else { throw VisionError.dtypeMismatch("ReLabel: \(what) must be float32, got \(map.dtype)") }
        guard map.rank == 4, map.shape[0] == 2, map.shape[1] >= 1, map.shape[2] >= 1, map.shape[3] >= 1 else {
            throw VisionError.shapeMismatch("ReLabel: \(what) must have shape [2, k, S, S] (top-k scores and class indices; the release uses [2, 5, 15, 15]), got \(map.shape)")
        }
        let v = try map.toArray(Float.self)
        let half = v.count / 2
        if let bad = v[..<half].firstIndex(where: { !$0.isFinite }) {
            throw VisionError.format("ReLabel: \(what) has a non-finite score at flat index \(bad)")
        }
        for (k, c) in v[half...].enumerated() {
            guard c.isFinite, c > -1, numClasses.map({ c < Float($0) }) ?? true else {
                throw VisionError.format("ReLabel: \(what) has class index \(c) at flat index \(half + k), outside 0..<\(numClasses.map(String.init) ?? "∞")")
            }
        }
    }

    /// Reads a one-image file: the entry "label_map", or the file's only entry. Errors: `.io`/`.format` from
    /// the file, a file with several entries but none named "label_map", and `validate`'s errors.
    public static func load(path: String, numClasses: Int? = nil) throws -> Tensor {
        let f = try Safetensors.load(path: path)
        guard let map = f[entryName] ?? (f.entries.count == 1 ? f.entries[0].tensor : nil) else {
            throw VisionError.format("ReLabel: '\(path)' has no '\(entryName)' entry (entries: \(f.names.prefix(8)))")
        }
        try validate(map, numClasses: numClasses, what: "'\(path)'")
        return map
    }

    /// Writes a one-image file atomically. `storeAs` .F16 halves the size.
    public static func save(_ map: Tensor, path: String, storeAs: SafetensorsDType = .F32) throws {
        try validate(map)
        try Safetensors.save([(entryName, map)], storeAs: [entryName: storeAs], path: path)
    }

    /// Reads every entry of a many-image file, in file order; each is validated.
    public static func loadAll(path: String, numClasses: Int? = nil) throws -> [(name: String, map: Tensor)] {
        let f = try Safetensors.load(path: path)
        return try f.entries.map { e in
            try validate(e.tensor, numClasses: numClasses, what: "entry '\(e.name)' of '\(path)'")
            return (e.name, e.tensor)
        }
    }

    /// Writes a many-image file atomically; names must be unique.
    public static func saveAll(_ maps: [(name: String, map: Tensor)], path: String, storeAs: SafetensorsDType = .F32) throws {
        for (n, m) in maps { try validate(m, what: "entry '\(n)'") }
        try Safetensors.save(maps.map { ($0.name, $0.map) }, storeAs: Dictionary(maps.map { ($0.name, storeAs) }, uniquingKeysWith: { a, _ in a }),
                             path: path)
    }

    /// The "machine annotator" step: the top-k classes of dense logits [K, S, S] (or a batch [N, K, S, S]) as
    /// a label map [2, k, S, S] (or [N, 2, k, S, S]), scores in descending order (ties: lower class first).
    /// The logits come from a classifier whose global pooling is removed and whose classifier is applied at
    /// every location (a 1 x 1 convolution with the FC weights).
    public static func fromDenseLogits(_ logits: Tensor, k: Int = 5) throws -> Tensor {
        guard logits.dtype == .float32, logits.rank == 3 || logits.rank == 4 else {
            throw VisionError.shapeMismatch("ReLabel: dense logits must be float32 [K, S, S] or [N, K, S, S], got \(logits.dtype) \(logits.shape)")
        }
        let classAxis = logits.rank - 3
        guard k >= 1, k <= logits.shape[classAxis] else {
            throw VisionError.invalidArgument("ReLabel: k must be in 1...\(logits.shape[classAxis]) for logits \(logits.shape), got \(k)")
        }
        let (values, indices) = try topk(logits, k: k, axis: classAxis)
        return try stack([values, try indices.to(.float32)], axis: classAxis)
    }

    /// The dense map [K, S, S] of one label map (zeros except the top-k scores, the reference's `scatter_`), or
    /// [N, K, S, S] of a batch [N, 2, k, S, S]. A class listed twice at one location keeps the later score.
    public static func dense(_ maps: Tensor, numClasses: Int) throws -> Tensor {
        guard numClasses >= 1 else { throw VisionError.invalidArgument("ReLabel: numClasses must be >= 1, got \(numClasses)") }
        let batched = maps.rank == 5
        let items = batched ? try (0..<maps.shape[0]).map { try maps.select(axis: 0, index: $0) } : [maps]
        guard !items.isEmpty else { throw VisionError.shapeMismatch("ReLabel: empty batch of label maps \(maps.shape)") }
        for (n, m) in items.enumerated() { try validate(m, numClasses: numClasses, what: batched ? "label map \(n) of the batch" : "label map") }
        let (k, s1, s2) = (items[0].shape[1], items[0].shape[2], items[0].shape[3])
        let plane = s1 * s2
        var out = [Float](repeating: 0, count: items.count * numClasses * plane)
        for (n, m) in items.enumerated() {
            let v = try m.toArray(Float.self)
            for r in 0..<k {
                for loc in 0..<plane {
                    let c = Int(v[(k + r) * plane + loc])
                    out[(n * numClasses + c) * plane + loc] = v[r * plane + loc]
                }
            }
        }
        return try Tensor(out, shape: batched ? [items.count, numClasses, s1, s2] : [numClasses, s1, s2])
    }
}
