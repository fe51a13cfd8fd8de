import Testing
@testable import VisionCore

/// Golden fixtures written by tools/gen_fixtures.py from the reference implementations (PyTorch, torchvision,
/// safetensors). `Fixture("conv")` reads Tests/VisionCoreTests/Fixtures/conv.safetensors.
struct Fixture {
    static let directory: String = {
        let file = "\(#filePath)"
        return String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)]) + "/Fixtures"
    }()

    let file: SafetensorsFile

    init(_ name: String) throws {
        file = try Safetensors.load(path: "\(Fixture.directory)/\(name).safetensors")
    }

    subscript(_ key: String) -> Tensor {
        get throws { try file.tensor(key) }
    }

    /// An integer parameter stored as an int64 tensor.
    func int(_ key: String) throws -> Int { Int(try self[key].item()) }

    /// Integer parameters stored as an int64 tensor.
    func ints(_ key: String) throws -> [Int] { try self[key].to(.int64).toArray(Int64.self).map(Int.init) }

    /// Names of the cases: the distinct prefixes before the first "." of the keys that start with `prefix`.
    func cases(_ prefix: String) -> [String] {
        var seen: [String] = []
        for n in file.names where n.hasPrefix(prefix) {
            let c = String(n.split(separator: ".").first ?? "")
            if !seen.contains(c) { seen.append(c) }
        }
        return seen
    }
}

/// Largest |a - b| / (atol/rtol + |b|) style comparison: passes when |a-b| <= atol + rtol*|b| for all elements.
func expectClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-5, atol: Float = 1e-5, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(a.shape == b.shape, "\(what): shape \(a.shape) vs \(b.shape)", sourceLocation: sourceLocation)
    guard a.shape == b.shape else { return }
    let x = try a.to(.float32).toArray(Float.self), y = try b.to(.float32).toArray(Float.self)
    var worst: Float = 0, worstIndex = -1
    for i in 0..<x.count {
        if x[i].isNaN && y[i].isNaN { continue }
        if x[i] == y[i] { continue }
        let excess = abs(x[i] - y[i]) - (atol + rtol * abs(y[i]))
        if !(excess <= 0) && (worstIndex < 0 || excess > worst || excess.isNaN) { worst = excess; worstIndex = i }
    }
    #expect(worstIndex < 0, "\(what): element \(worstIndex) is \(worstIndex >= 0 ? x[worstIndex] : 0), expected \(worstIndex >= 0 ? y[worstIndex] : 0)",
            sourceLocation: sourceLocation)
}

/// Normal samples with standard deviation `scale` from a generator seeded with `seed`.
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) throws -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return try Tensor.normal(shape, std: scale, rng: &rng)
}

/// max |a - b| / max(1, |b|) over the elements: relative for large values, absolute near zero. NaN matches NaN;
/// NaN against a number counts as an infinite error.
func maxRelativeError(_ a: Tensor, _ b: Tensor, sourceLocation: SourceLocation = #_sourceLocation) throws -> Float {
    #expect(a.shape == b.shape, sourceLocation: sourceLocation)
    let x = try a.toArray(Float.self), y = try b.toArray(Float.self)
    var worst: Float = 0
    for (u, v) in zip(x, y) {
        if (u.isNaN && v.isNaN) || u == v { continue }
        worst = max(worst, u.isNaN || v.isNaN ? .infinity : abs(u - v) / max(1, abs(v)))
    }
    return worst
}
