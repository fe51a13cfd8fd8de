import Testing
import VisionCore
@testable import VisionData

/// Golden fixtures written by tools/gen_fixtures.py (tools/fixtures/NAME.py) into
/// Tests/VisionCoreTests/Fixtures/NAME.safetensors, the one fixture folder of the package.
struct Fixture {
    static let directory: String = {
        let file = "\(#filePath)"
        let dir = String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)])
        return String(dir[..<(dir.lastIndex(of: "/") ?? dir.endIndex)]) + "/VisionCoreTests/Fixtures"
    }()

    let file: SafetensorsFile

    init(_ name: String) throws {
        file = try Safetensors.load(path: "\(Fixture.directory)/\(name).safetensors")
    }

    subscript(_ key: String) -> Tensor {
        get throws { try file.tensor(key) }
    }

    func int(_ key: String) throws -> Int { Int(try self[key].item()) }
    func floats(_ key: String) throws -> [Float] { try self[key].toArray(Float.self) }
    func ints(_ key: String) throws -> [Int] { try self[key].to(.int64).toArray(Int64.self).map(Int.init) }

    /// The recorded draws of case `prefix` (see tools/fixtures/mixing.py for the layout).
    func draws(_ prefix: String) throws -> ReplayDraws {
        try ReplayDraws(kinds: ints("\(prefix).draw_kinds"), values: floats("\(prefix).draw_values").map(Double.init),
                        ints: ints("\(prefix).draw_ints"), args: floats("\(prefix).draw_args").map(Double.init),
                        perms: ints("\(prefix).perms"))
    }
}

/// Replays draws recorded from a reference implementation, checking that each call has the recorded kind and
/// arguments; any difference (or running out of draws) is collected in `mismatches`, which tests expect empty.
struct ReplayDraws: RandomDraws {
    enum Kind: Int { case uniform = 0, beta = 1, integer = 2, permutation = 3 }
    let kinds: [Int], values: [Double], ints: [Int], args: [Double], perms: [Int]
    var position = 0, permPosition = 0
    var mismatches: [String] = []

    init(kinds: [Int], values: [Double], ints: [Int], args: [Double], perms: [Int]) {
        self.kinds = kinds; self.values = values; self.ints = ints; self.args = args; self.perms = perms
    }

    var exhausted: Bool { position == kinds.count }

    private mutating func next(_ kind: Kind, _ a: Double = 0, _ b: Double = 0) -> Int? {
        guard position < kinds.count else { mismatches.append("draw \(position): \(kind) requested after the last recorded draw"); return nil }
        let p = position
        position += 1
        guard kinds[p] == kind.rawValue else {
            mismatches.append("draw \(p): \(kind) requested, reference drew kind \(kinds[p])")
            return nil
        }
        if kind == .beta || kind == .integer {
            let (ra, rb) = (args[2 * p], args[2 * p + 1])
            if abs(ra - a) > 1e-6 * max(1, abs(a)) || abs(rb - b) > 1e-6 * max(1, abs(b)) {
                mismatches.append("draw \(p): \(kind)(\(a), \(b)) requested, reference drew \(kind)(\(ra), \(rb))")
            }
        }
        return p
    }

    mutating func uniform() -> Double { next(.uniform).map { values[$0] } ?? 0.5 }
    mutating func beta(_ a: Double, _ b: Double) -> Double { next(.beta, a, b).map { values[$0] } ?? 0.5 }
    mutating func integer(_ low: Int, _ high: Int) -> Int {
        next(.integer, Double(low), Double(high)).map { ints[$0] } ?? low
    }
    mutating func permutation(_ n: Int) -> [Int] {
        guard let p = next(.permutation) else { return Array(0..<n) }
        if ints[p] != n { mismatches.append("draw \(p): randperm(\(n)) requested, reference drew randperm(\(ints[p]))") }
        let m = ints[p]
        defer { permPosition += m }
        return Array(perms[permPosition..<(permPosition + m)])
    }
}

/// Passes when |a - b| <= atol + rtol * |b| for every element (NaN matches NaN).
func expectClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6, _ what: String = "",
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

/// The fixture inputs of tools/fixtures/mixing.py: x.flat[i] = ((i + 37 r) % 101) / 8 - 6.
func pattern(_ shape: [Int], round r: Int) throws -> Tensor {
    let n = shape.reduce(1, *)
    return try Tensor((0..<n).map { Float((($0 + 37 * r) % 101)) / 8 - 6 }, shape: shape)
}

#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary folder, removed (with everything in it) when the value is released.
final class TemporaryFolder {
    let path: String

    init() throws {
        var template = Array("/tmp/visiondata-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw VisionError.io("mkdtemp failed") }
        path = String(cString: p)
    }

    deinit { TemporaryFolder.remove(path) }

    static func remove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) {
            var names: [String] = []
            while let e = readdir(dir) {
                let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if n != "." && n != ".." { names.append(n) }
            }
            closedir(dir)
            for n in names { remove("\(path)/\(n)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    func makeFolder(_ relative: String) {
        var p = path
        for part in relative.split(separator: "/") { p += "/\(part)"; mkdir(p, 0o755) }
    }

    func write(_ relative: String, _ bytes: [UInt8]) throws {
        let full = "\(path)/\(relative)"
        try bytes.withUnsafeBytes { try FileIO.writeAtomically(full, $0) }
    }
}

func thrownMessage(_ body: () throws -> Void) -> String? {
    do { try body() } catch { return "\(error)" }
    return nil
}
