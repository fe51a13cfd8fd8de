import Testing
import VisionCore

/// Reads golden fixtures from Tests/VisionCoreTests/Fixtures (written by tools/gen_fixtures.py).
struct NNFixture {
    static let directory: String = {
        let file = "\(#filePath)"
        let dir = String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)])
        return String(dir[..<(dir.lastIndex(of: "/") ?? dir.endIndex)]) + "/VisionCoreTests/Fixtures"
    }()

    let file: SafetensorsFile
    init(_ name: String) throws { file = try Safetensors.load(path: "\(NNFixture.directory)/\(name).safetensors") }
    subscript(_ key: String) -> Tensor { get throws { try file.tensor(key) } }
}

/// Passes when |a - b| <= atol + rtol * |b| elementwise.
func expectNear(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6, _ what: String = "",
                sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(a.shape == b.shape, "\(what): shape \(a.shape) vs \(b.shape)", sourceLocation: sourceLocation)
    guard a.shape == b.shape else { return }
    let x = try a.to(.float32).toArray(Float.self), y = try b.to(.float32).toArray(Float.self)
    let bad = zip(x, y).enumerated().first { !(abs($0.element.0 - $0.element.1) <= atol + rtol * abs($0.element.1)) }
    #expect(bad == nil, "\(what): element \(bad?.offset ?? -1) is \(bad?.element.0 ?? 0), expected \(bad?.element.1 ?? 0)",
            sourceLocation: sourceLocation)
}
