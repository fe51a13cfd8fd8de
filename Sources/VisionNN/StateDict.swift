#if canImport(Glibc)
import Glibc
#endif
import VisionCore

extension Module {
    /// Parameters and buffers by dotted name, in PyTorch's state_dict order (each module's parameters, then its
    /// buffers, then its children's entries). The tensors share storage with the module.
    public func stateDict() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (prefix, m) in namedModules() {
            for (n, p) in m.ownParameters { out.append((join(prefix, n), p.value.detach())) }
            for (n, b) in m.ownBuffers { out.append((join(prefix, n), b.value)) }
        }
        return out
    }

    /// Copies `entries` into the module's parameters and buffers (in place, so optimizers and other holders of
    /// the tensors see the new values). A missing `num_batches_tracked` is tolerated (the counter keeps its value). Everything is checked before anything is written: a mismatch throws an
    /// error listing the missing keys, the unexpected ones (when `strict`) and every key whose shape differs,
    /// with both shapes, and leaves the module unchanged.
    public func loadStateDict(_ entries: [(String, Tensor)], strict: Bool = true) throws {
        var given: [String: Tensor] = [:]
        for (k, t) in entries { given[k] = t }
        var targets: [(String, Tensor, Tensor)] = []
        var missing: [String] = [], misShaped: [String] = []
        for (name, dst) in stateDict() {
            guard let src = given.removeValue(forKey: name) else {
                // Checkpoints saved without BatchNorm's counter (timm and converters often drop it) still load.
                if !name.hasSuffix("num_batches_tracked") { missing.append(name) }
                continue
            }
            if src.shape != dst.shape {
                misShaped.append("\(name): checkpoint \(src.shape), model \(dst.shape)")
            } else {
                targets.append((name, src, dst))
            }
        }
        let unexpected = strict ? given.keys.sorted() : []
        if !(strict ? missing : []).isEmpty || !unexpected.isEmpty || !misShaped.isEmpty {
            var parts: [String] = []
            if strict && !missing.isEmpty { parts.append("missing keys: \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { parts.append("unexpected keys: \(unexpected.joined(separator: ", "))") }
            if !misShaped.isEmpty { parts.append("shape mismatches: \(misShaped.joined(separator: "; "))") }
            throw VisionError.shapeMismatch("load_state_dict for \(type(of: self)): " + parts.joined(separator: "; "))
        }
        // Convert everything first, so that a failing conversion cannot leave the module half loaded.
        let converted = try targets.map { (name, src, dst) -> (Tensor, Tensor) in
            guard src.dtype == dst.dtype || (src.dtype != .uint8 && dst.dtype != .uint8) else {
                throw VisionError.dtypeMismatch("load_state_dict: \(name) is \(src.dtype) in the checkpoint, \(dst.dtype) in the model")
            }
            return (try src.to(dst.dtype).detach(), dst)
        }
        for (src, dst) in converted { copyInto(dst, from: src) }
    }

    /// Loads a safetensors file written by `save(path:)`, timm or a converter (same key names).
    public func load(path: String, strict: Bool = true) throws {
        let file = try Safetensors.load(path: path)
        try loadStateDict(file.entries.map { ($0.name, $0.tensor) }, strict: strict)
    }

    /// Writes the state dict to a safetensors file (atomically).
    public func save(path: String, metadata: [(String, String)] = []) throws {
        try Safetensors.save(stateDict(), metadata: metadata, path: path)
    }
}

/// Writes `src`'s elements into `dst`'s storage (same shape and dtype; `dst` contiguous, as module tensors are).
func copyInto(_ dst: Tensor, from src: Tensor) {
    let size = dst.dtype.size
    let d = dst.storage.base + dst.offset * size
    guard let c = try? src.contiguous() else { return }
    memcpy(d, c.storage.base + c.offset * size, c.byteCount)
}
