import Testing
import VisionCore
@testable import VisionNN

/// Dropout, DropPath and the initializers: properties against their definitions.
@Suite struct StochasticLayerTests {
    @Test func dropoutScalesKeptValuesAndIsIdentityInEval() throws {
        let d = try Dropout(p: 0.25, seed: 3)
        let x = try Tensor.ones([100_000])
        let y = try d(x).toArray(Float.self)
        let kept = y.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        #expect(abs(Double(kept.count) / 100_000 - 0.75) < 0.01)
        #expect(abs(y.reduce(0, +) / 100_000 - 1) < 0.02)          // unbiased in expectation
        d.eval()
        #expect(try d(x).toArray(Float.self) == x.toArray(Float.self))
        #expect(throws: VisionError.self) { try Dropout(p: 1) }
        // Gradients flow through the kept elements only, scaled like the values.
        d.train()
        let leaf = try Tensor.ones([1000]).requiringGrad()
        let out = try d(leaf)
        try sum(out).backward()
        #expect(try leaf.grad?.toArray(Float.self) == out.detach().toArray(Float.self))
    }

    @Test func dropPathDropsWholeSamples() throws {
        let dp = try DropPath(p: 0.5, seed: 4)
        let y = try dp(try Tensor.ones([64, 3, 2, 2]))
        for sample in try y.reshape([64, 12]).contiguous().toArray(Float.self).chunked(12) {
            #expect(sample.allSatisfy { $0 == 0 } || sample.allSatisfy { $0 == 2 })
        }
        dp.eval()
        #expect(try dp(try Tensor.ones([2, 3])).toArray(Float.self) == [1, 1, 1, 1, 1, 1])
    }

    @Test func initializersFollowTheirDistributions() throws {
        var rng = RandomGenerator(seed: 5)
        let w = try Init.kaimingUniform([64, 32, 3, 3], rng: &rng).toArray(Float.self)
        let bound = Float(1 / (32.0 * 9).squareRoot())
        #expect(w.allSatisfy { abs($0) <= bound })
        #expect(w.max()! > bound * 0.99 && w.min()! < -bound * 0.99)
        let n = try Init.kaimingNormal([256, 64, 3, 3], rng: &rng).toArray(Float.self)
        let std = (n.map { Double($0 * $0) }.reduce(0, +) / Double(n.count)).squareRoot()
        #expect(abs(std - (2.0 / (256 * 9)).squareRoot()) < 0.002)
        let t = try Init.truncNormal([10_000], std: 1, a: -1, b: 1.5, rng: &rng).toArray(Float.self)
        #expect(t.allSatisfy { $0 >= -1 && $0 <= 1.5 })
        var again = RandomGenerator(seed: 5)
        #expect(try Init.kaimingUniform([64, 32, 3, 3], rng: &again).toArray(Float.self) == w)
    }
}

extension Array {
    func chunked(_ n: Int) -> [[Element]] { stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) } }
}
