import Testing
import VisionCore
@testable import VisionModels

/// The WIDER FACE protocol against the official eval_tools/evaluation.py run on synthetic detections
/// (tools/fixtures/wider_eval.py), and its invariants on hand-made cases.
@Suite struct WiderFaceEvaluationTests {
    static let fixture = "\(Repo.root)/Tests/VisionCoreTests/Fixtures/wider_eval.safetensors"

    func rows(_ t: Tensor, _ width: Int) throws -> [[Double]] {
        let v = try t.toArray(Float.self).map(Double.init)
        return stride(from: 0, to: v.count, by: width).map { Array(v[$0..<($0 + width)]) }
    }

    @Test func matchesTheOfficialEvaluation() throws {
        let file = try Safetensors.load(path: Self.fixture)
        func entry(_ k: String) throws -> Tensor {
            guard let e = file.entries.first(where: { $0.name == k }) else { throw VisionError.invalidArgument("fixture lacks \(k)") }
            return e.tensor
        }
        var preds: [[[Double]]] = [], gts: [WiderFaceEvaluation.GroundTruth] = []
        var i = 0
        while file.entries.contains(where: { $0.name == "pred.\(i)" }) {
            preds.append(try rows(try entry("pred.\(i)"), 5))
            let keep = try WiderFaceEvaluation.settings.map { try entry("gt.\(i).keep.\($0)").toArray(Int64.self).map(Int.init) }
            gts.append(.init(boxes: try rows(try entry("gt.\(i).boxes"), 4), keep: keep))
            i += 1
        }
        #expect(i == 12)
        let result = try WiderFaceEvaluation.evaluate(predictions: preds, groundTruth: gts)
        let expected = try entry("ap").toArray(Float.self)
        for s in 0..<3 {
            #expect(abs(result.averagePrecision[s] - Double(expected[s])) < 1e-6, "AP \(WiderFaceEvaluation.settings[s])")
            let curve = try entry("curve.\(WiderFaceEvaluation.settings[s])").toArray(Float.self)
            for t in 0..<1000 {
                let (p, r) = result.curves[s][t]
                let (ep, er) = (Double(curve[2 * t]), Double(curve[2 * t + 1]))
                #expect(p.isNaN == ep.isNaN && (p.isNaN || abs(p - ep) < 1e-6), "precision \(s) \(t)")
                #expect(abs(r - er) < 1e-6, "recall \(s) \(t)")
            }
        }
    }

    @Test func perfectDetectionsGiveAPOne() throws {
        let gt = WiderFaceEvaluation.GroundTruth(boxes: [[10, 10, 50, 60], [100, 100, 30, 30]], keep: [[0, 1], [0, 1], [0, 1]])
        let pred = [[10.0, 10, 50, 60, 0.9], [100, 100, 30, 30, 0.8]]
        let r = try WiderFaceEvaluation.evaluate(predictions: [pred], groundTruth: [gt])
        #expect(r.averagePrecision.allSatisfy { abs($0 - 1) < 1e-12 })
    }

    @Test func aMatchOnANonCountingFaceIsNotAFalsePositive() throws {
        // Face 1 does not count in "easy": the detection on it is dropped from the proposals there.
        let gt = WiderFaceEvaluation.GroundTruth(boxes: [[10, 10, 50, 60], [100, 100, 8, 8]], keep: [[0], [0, 1], [0, 1]])
        let pred = [[100.0, 100, 8, 8, 0.95], [10, 10, 50, 60, 0.9]]
        let r = try WiderFaceEvaluation.evaluate(predictions: [pred], groundTruth: [gt])
        #expect(abs(r.averagePrecision[0] - 1) < 1e-12)
        #expect(abs(r.averagePrecision[2] - 1) < 1e-12)
    }

    @Test func badInputIsAnError() {
        let gt = WiderFaceEvaluation.GroundTruth(boxes: [[0, 0, 5, 5]], keep: [[0], [0], [3]])
        #expect(throws: VisionError.self) { try WiderFaceEvaluation.evaluate(predictions: [[]], groundTruth: [gt]) }
        let ok = WiderFaceEvaluation.GroundTruth(boxes: [[0, 0, 5, 5]], keep: [[0], [0], [0]])
        #expect(throws: VisionError.self) { try WiderFaceEvaluation.evaluate(predictions: [[[1, 2, 3]]], groundTruth: [ok]) }
        #expect(throws: VisionError.self) { try WiderFaceEvaluation.evaluate(predictions: [[[1, 2, 3, 4, .nan]]], groundTruth: [ok]) }
        #expect(throws: VisionError.self) { try WiderFaceEvaluation.evaluate(predictions: [], groundTruth: [ok]) }
    }
}
