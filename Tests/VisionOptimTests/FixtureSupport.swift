import Testing
import VisionCore

/// Golden fixtures written by tools/gen_fixtures.py (tools/fixtures/optim.py), shared with VisionCoreTests:
/// `OptimFixture("optim")` reads Tests/VisionCoreTests/Fixtures/optim.safetensors, located through #filePath.
struct OptimFixture {
    static let directory: String = {
        let file = "\(#filePath)"
        let tests = file[..<(file.lastIndex(of: "/") ?? file.endIndex)]
        return String(tests[..<(tests.lastIndex(of: "/") ?? tests.endIndex)]) + "/VisionCoreTests/Fixtures"
    }()

    let file: SafetensorsFile

    init(_ name: String) throws {
        file = try Safetensors.load(path: "\(OptimFixture.directory)/\(name).safetensors")
    }

    subscript(_ key: String) -> Tensor {
        get throws { try file.tensor(key) }
    }

    /// Metadata string `key` (the generator writes the configurations there as JSON).
    func metadata(_ key: String) -> String? { file.metadata.first { $0.0 == key }?.1 }
}

/// max |a − b| / max(1, |b|) over all elements (relative for large values, absolute near zero).
func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    var worst: Float = 0
    for (x, y) in zip(a, b) where x != y {
        worst = max(worst, x.isNaN || y.isNaN ? .infinity : abs(x - y) / max(1, abs(y)))
    }
    return worst
}

/// Expects that `body` throws a `VisionError` whose message contains every one of `fragments`.
func expectError(_ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
    } catch let e as VisionError {
        for f in fragments {
            #expect(e.message.contains(f), "'\(e.message)' lacks '\(f)'", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}
