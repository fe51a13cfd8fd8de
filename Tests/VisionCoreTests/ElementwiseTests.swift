import Testing
@testable import VisionCore

/// Fast element-wise kernels against their reference versions, on odd sizes, broadcasts and strided views.
@Suite struct ElementwiseTests {
    static func random(_ shape: [Int], seed: UInt64, scale: Float = 4) throws -> Tensor {
        try randomTensor(shape, seed: seed, scale: scale)
    }


    @Test(arguments: BinaryOp.allCases)
    func binaryMatchesReference(op: BinaryOp) throws {
        // The last two: rows long enough to be cut into segments over the threads (flat, and a broadcast row).
        let shapes: [([Int], [Int])] = [([37], [37]), ([3, 1, 17], [5, 1]), ([1], [2, 19]), ([4, 33], [33]), ([2, 3, 5], []),
                                        ([300_001], [300_001]), ([1, 200_003], [200_003])]
        for (i, (sa, sb)) in shapes.enumerated() {
            var a = try Self.random(sa, seed: UInt64(i)), b = try Self.random(sb, seed: UInt64(100 + i))
            if op == .pow { a = try unary(.abs, a) ; b = try binary(.mul, b, try Tensor.full([], value: 0.3)) }
            let fast = try binary(op, a, b), ref = try binaryReference(op, a, b)
            #expect(try maxRelativeError(fast, ref) < 1e-6, "\(op) \(sa) \(sb)")
        }
        // A transposed (non-contiguous) operand.
        let a = try Self.random([7, 9], seed: 7).transpose(0, 1), b = try Self.random([9, 7], seed: 8)
        #expect(try maxRelativeError(try binary(op == .pow ? .add : op, a, b), try binaryReference(op == .pow ? .add : op, a, b)) < 1e-6)
    }

    @Test func integerArithmeticWrapsInsteadOfTrapping() throws {
        let a = try Tensor([Int32.max, 5], shape: [2]), b = try Tensor([Int32(1), 3], shape: [2])
        #expect(try binary(.add, a, b).toArray(Int32.self) == [Int32.min, 8])
        #expect(throws: VisionError.self) { try binary(.div, a, b) }
        #expect(throws: VisionError.self) { try binary(.add, a, try Tensor([Float(1)], shape: [1])) }
    }

    @Test(arguments: UnaryOp.allCases)
    func unaryMatchesReference(op: UnaryOp) throws {
        for n in [1, 15, 16, 17, 1000, 70_001] {
            var x = try Self.random([n], seed: UInt64(n), scale: 6)
            if op == .log || op == .sqrt { x = try unary(.abs, x) }
            let fast = try unary(op, x, parameter: 0.1), ref = try unaryReference(op, x, parameter: 0.1)
            #expect(try maxRelativeError(fast, ref) < 2e-6, "\(op) n=\(n)")
        }
        let special = try Tensor([Float.nan, .infinity, -.infinity, 0, -0.0, 100, -100], shape: [7])
        let fast = try unary(op, special, parameter: 0.1).toArray(Float.self)
        let ref = try unaryReference(op, special, parameter: 0.1).toArray(Float.self)
        for (u, v) in zip(fast, ref) {
            #expect((u.isNaN && v.isNaN) || abs(u - v) <= 1e-6 * max(1, abs(v)) || u == v, "\(op): \(fast) vs \(ref)")
        }
    }

    @Test func comparisonsAndWhere() throws {
        let a = try Tensor([Float(1), 2, .nan], shape: [3]), b = try Tensor([Float(2)], shape: [1])
        #expect(try compare(.lt, a, b).toArray(UInt8.self) == [1, 0, 0])
        #expect(try compare(.ne, a, b).toArray(UInt8.self) == [1, 0, 1])
        let w = try whereSelect(try compare(.ge, a, b), a, b)
        #expect(try w.toArray(Float.self) == [2, 2, 2])
    }

    @Test func matmulMatchesReference() throws {
        for (sa, sb) in [([5, 7], [7, 3]), ([2, 1, 4, 6], [3, 6, 5]), ([1, 1], [1, 9]), ([3, 0], [0, 2])] {
            let a = try Self.random(sa, seed: 1, scale: 1), b = try Self.random(sb, seed: 2, scale: 1)
            #expect(try maxRelativeError(try matmul(a, b), try matmulReference(a, b)) < 1e-5)
        }
        let a = try Self.random([6, 4], seed: 3, scale: 1).transpose(0, 1), b = try Self.random([5, 6], seed: 4, scale: 1).transpose(0, 1)
        #expect(try maxRelativeError(try matmul(a, b), try matmulReference(a, b)) < 1e-5)
        // One row (the sgemv path), with each operand plain or transposed.
        let row = try Self.random([1, 6], seed: 5, scale: 1), rowT = try Self.random([6, 1], seed: 6, scale: 1).transpose(0, 1)
        let m = try Self.random([6, 9], seed: 7, scale: 1), mT = try Self.random([9, 6], seed: 8, scale: 1).transpose(0, 1)
        for (x, y) in [(row, m), (row, mT), (rowT, m), (rowT, mT)] {
            #expect(try maxRelativeError(try matmul(x, y), try matmulReference(x, y)) < 1e-5)
        }
        #expect(throws: VisionError.self) { try matmul(try Tensor.zeros([2, 3]), try Tensor.zeros([2, 3])) }
    }

    /// Products large enough to be cut into row blocks (m >= n) or column blocks over the threads, with each
    /// operand plain or transposed, and a broadcast batch of two (sums of 150+ products: float rounding ~1e-5).
    @Test func largeProductsSplitOverThreadsMatchTheReference() throws {
        for (m, k, n) in [(203, 150, 61), (57, 170, 211)] {
            let a = try Self.random([m, k], seed: 9, scale: 1), aT = try Self.random([k, m], seed: 10, scale: 1).transpose(0, 1)
            let b = try Self.random([k, n], seed: 11, scale: 1), bT = try Self.random([n, k], seed: 12, scale: 1).transpose(0, 1)
            for (x, y) in [(a, b), (aT, b), (a, bT), (aT, bT)] {
                let error = try maxRelativeError(try matmul(x, y), try matmulReference(x, y))
                #expect(error < 5e-5, "\(m)x\(k)x\(n): \(error)")
            }
            let batch = try Self.random([2, m, k], seed: 13, scale: 1)
            let error = try maxRelativeError(try matmul(batch, b), try matmulReference(batch, b))
            #expect(error < 5e-5, "batch \(m)x\(k)x\(n): \(error)")
        }
    }
}
