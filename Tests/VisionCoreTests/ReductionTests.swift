import Testing
@testable import VisionCore

/// Shared helpers for the reduction/normalization/shape suites.
enum NormCheck {
    static func random(_ shape: [Int], seed: UInt64, scale: Float = 3) throws -> Tensor {
        try randomTensor(shape, seed: seed, scale: scale)
    }


    /// Non-contiguous variants of a tensor of shape `shape`: a permuted copy viewed back, and a strided slice.
    static func layouts(_ shape: [Int], seed: UInt64) throws -> [Tensor] {
        let base = try random(shape, seed: seed)
        var result = [base]
        if shape.count >= 2 {
            let r = shape.count
            var order = Array(0..<r); order.swapAt(0, r - 1)
            // Same logical tensor, transposed memory: permute a contiguous copy of the permuted tensor back.
            let t = try base.permute(order).contiguous().permute(order)
            result.append(t)
        }
        var wide = shape; wide[wide.count - 1] *= 2
        result.append(try random(wide, seed: seed + 1).slice(axis: -1, start: 0, end: Int.max, step: 2))
        return result
    }
}

@Suite struct ReductionTests {
    @Test func reductionsMatchReferenceOnAllAxisSets() throws {
        let axisSets: [[Int]] = [[], [0], [1], [2], [-1], [0, 1], [1, 2], [0, 2], [2, 0]]
        for x in try NormCheck.layouts([3, 17, 21], seed: 1) {
            for axes in axisSets {
                for keep in [false, true] {
                    for op in ReduceOp.allCases {
                        let fast = try reduce(op, x, axes: axes, keepDim: keep), ref = try reduceReference(op, x, axes: axes, keepDim: keep)
                        #expect(try maxRelativeError(fast, ref) < 2e-6, "\(op) axes \(axes) keep \(keep)")
                    }
                    let v = try variance(x, axes: axes, keepDim: keep), vr = try varianceReference(x, axes: axes, keepDim: keep)
                    #expect(try maxRelativeError(v, vr) < 2e-6, "var axes \(axes)")
                    let v0 = try variance(x, axes: axes, correction: 0, keepDim: keep)
                    #expect(try maxRelativeError(v0, try varianceReference(x, axes: axes, correction: 0, keepDim: keep)) < 2e-6)
                }
            }
        }
    }

    @Test func rowSumsOfEveryTailLength() throws {
        // Row tails of 1 to 15 values after whole vectors (read as the row's last 16 values, the rest masked),
        // rows shorter than a vector, and tails of a second 1024-value block.
        for n in Array(1...40) + [1030, 2049] {
            let x = try NormCheck.random([3, n], seed: UInt64(n))
            for op in [ReduceOp.reduceSum, .reduceMean] {
                let fast = try reduce(op, x, axes: [1], keepDim: false), ref = try reduceReference(op, x, axes: [1], keepDim: false)
                #expect(try maxRelativeError(fast, ref) < 2e-6, "\(op) n \(n)")
            }
        }
    }

    @Test func bigSumIsAccurate() throws {
        // 2^22 values of 0.1: naive float accumulation drifts by ~1e-2 relative; blocked Double stays near ulp.
        let x = try Tensor.full([1 << 22], value: 0.1)
        let s = try sum(x).item()
        let expected: Double = Double(Float(0.1)) * 4_194_304
        let relative: Double = abs(s - expected) / expected
        #expect(relative < 1e-6)
        let m = try mean(try x.reshape([64, 1 << 16]), axes: [0]).toArray(Float.self)
        #expect(m.allSatisfy { abs($0 - 0.1) < 1e-7 })
        // Variance of a large offset: the two-pass algorithm does not cancel catastrophically.
        let y = try add(try NormCheck.random([10_001], seed: 3, scale: 1), try Tensor.full([], value: 1000))
        #expect(try maxRelativeError(try variance(y), try varianceReference(y)) < 1e-4)
    }

    @Test func nanAndEmptyBehaviour() throws {
        let x = try Tensor([Float(1), .nan, 3, 7, 2, 9], shape: [2, 3])
        #expect(try amax(x, axes: [1]).toArray(Float.self)[0].isNaN)
        #expect(try amax(x, axes: [1]).toArray(Float.self)[1] == 9)
        #expect(try amin(x, axes: [0]).toArray(Float.self)[1].isNaN)
        #expect(try argmax(x, axis: 1).toArray(Int64.self) == [1, 2])
        #expect(try argmax(x).item() == 1)
        #expect(try argmin(x, axis: 0).toArray(Int64.self) == [0, 0, 0])
        #expect(try argmax(x, axis: 0, keepDim: true).shape == [1, 3])
        let ties = try Tensor([Float(5), 5, 1, 5], shape: [4])
        #expect(try argmax(ties).item() == 0)
        let empty = try Tensor.zeros([0, 4])
        #expect(try sum(empty, axes: [0]).toArray(Float.self) == [0, 0, 0, 0])
        #expect(try mean(empty, axes: [0]).toArray(Float.self).allSatisfy { $0.isNaN })
        #expect(throws: VisionError.self) { try amax(empty, axes: [0]) }
        #expect(throws: VisionError.self) { try argmax(empty, axis: 0) }
        #expect(throws: VisionError.self) { try sum(x, axes: [2]) }
        #expect(throws: VisionError.self) { try sum(x, axes: [1, -1]) }
        #expect(throws: VisionError.self) { try mean(try Tensor.zeros([3], dtype: .int32)) }
        #expect(throws: VisionError.self) { try variance(x, correction: -1) }
        // Zero-dimensional input: reducing "all" axes (or axis 0) gives the element back.
        let scalar = try Tensor([Float(4)], shape: [])
        #expect(try sum(scalar).item() == 4 && sum(scalar, axes: [0]).shape == [])
        #expect(try argmax(scalar).item() == 0)
        #expect(try variance(try Tensor([Float(2)], shape: [1])).toArray(Float.self)[0].isNaN)  // n - 1 = 0, as torch
    }

    @Test func argmaxMatchesReference() throws {
        for x in try NormCheck.layouts([5, 13, 7], seed: 9) {
            for axis in [0, 1, 2, -1] {
                #expect(try argmax(x, axis: axis).toArray(Int64.self) == argmaxReference(x, axis: axis).toArray(Int64.self))
            }
        }
    }

    @Test func integerReductions() throws {
        let x = try Tensor([Int32.max, Int32.max, -3, 4], shape: [2, 2])
        #expect(try sum(x, axes: [1]).toArray(Int64.self) == [2 * Int64(Int32.max), 1])
        #expect(try sum(x).dtype == .int64)
        #expect(try amax(x, axes: [0]).toArray(Int32.self) == [Int32.max, Int32.max])
        #expect(try amin(try Tensor([UInt8(3), 250, 7], shape: [3])).toArray(UInt8.self) == [3])
        #expect(try argmax(try Tensor([Int64(3), 9, 9], shape: [3])).item() == 1)
    }
}

@Suite struct SoftmaxTests {
    @Test func softmaxMatchesReferenceOnEveryAxis() throws {
        for x in try NormCheck.layouts([4, 19, 33], seed: 5) {
            for axis in [0, 1, 2, -1] {
                let s = try softmax(x, axis: axis), ls = try logSoftmax(x, axis: axis)
                #expect(try maxRelativeError(s, try softmaxReference(x, axis: axis)) < 2e-6, "softmax axis \(axis)")
                #expect(try maxRelativeError(ls, try softmaxReference(x, axis: axis, log: true)) < 4e-6, "logSoftmax axis \(axis)")
                // Properties: sums to one along the axis, and log_softmax = log(softmax).
                let sums = try sum(s, axes: [axis]).toArray(Float.self)
                #expect(sums.allSatisfy { abs($0 - 1) < 1e-5 })
                #expect(try maxRelativeError(try unary(.log, s), ls) < 1e-4)
            }
        }
    }

    @Test func stableForHugeLogits() throws {
        let x = try Tensor([Float(1000), 1001, -1000, 1002], shape: [1, 4])
        let s = try softmax(x, axis: 1).toArray(Float.self)
        #expect(s.allSatisfy { $0.isFinite } && abs(s.reduce(0, +) - 1) < 1e-6)
        let ls = try logSoftmax(x, axis: 1).toArray(Float.self)
        #expect(ls[2] < -1000 && ls[2].isFinite)
        #expect(try softmax(try Tensor([Float.nan, 1], shape: [2]), axis: 0).toArray(Float.self).allSatisfy { $0.isNaN })
        #expect(throws: VisionError.self) { try softmax(x, axis: 2) }
        #expect(throws: VisionError.self) { try softmax(try Tensor.zeros([2], dtype: .int64), axis: 0) }
    }

    @Test func imagenetLogitsRows() throws {
        let x = try NormCheck.random([64, 1000], seed: 11, scale: 5)
        #expect(try maxRelativeError(try softmax(x, axis: -1), try softmaxReference(x, axis: -1)) < 2e-6)
    }
}
