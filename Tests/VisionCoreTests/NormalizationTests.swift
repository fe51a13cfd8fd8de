import Testing
@testable import VisionCore

/// Batch/layer/group norm fast kernels against the Double references, on odd sizes and strided inputs.
@Suite struct NormalizationTests {
    @Test func batchNormMatchesReference() throws {
        for shape in [[2, 5], [3, 7, 17], [2, 5, 9, 11], [1, 3, 2, 3, 5]] {
            let c = shape[1]
            let mean = try NormCheck.random([c], seed: 2), w = try NormCheck.random([c], seed: 3), b = try NormCheck.random([c], seed: 4)
            let v = try unary(.abs, try NormCheck.random([c], seed: 5))
            for x in try NormCheck.layouts(shape, seed: 1) {
                let fast = try batchNorm(x, runningMean: mean, runningVar: v, weight: w, bias: b, eps: 1e-3)
                let ref = try batchNormReference(x, runningMean: mean, runningVar: v, weight: w, bias: b, eps: 1e-3)
                #expect(try maxRelativeError(fast, ref) < 1e-5, "batchNorm \(shape)")
                let plain = try batchNorm(x, runningMean: mean, runningVar: v)
                #expect(try maxRelativeError(plain, try batchNormReference(x, runningMean: mean, runningVar: v)) < 1e-5)
            }
        }
        let x = try Tensor.zeros([2, 3, 4])
        #expect(throws: VisionError.self) { try batchNorm(x, runningMean: try Tensor.zeros([4]), runningVar: try Tensor.ones([3])) }
        #expect(throws: VisionError.self) { try batchNorm(try Tensor.zeros([3]), runningMean: try Tensor.zeros([3]), runningVar: try Tensor.ones([3])) }
        #expect(throws: VisionError.self) { try batchNorm(x, runningMean: try Tensor.zeros([3]), runningVar: try Tensor.ones([3]), eps: -1) }
    }

    @Test func layerNormMatchesReference() throws {
        for (shape, normalized) in [([4, 37], [37]), ([2, 3, 5, 7], [5, 7]), ([3, 16], [3, 16]), ([2, 197, 64], [64])] {
            let w = try NormCheck.random(normalized, seed: 7), b = try NormCheck.random(normalized, seed: 8)
            for x in try NormCheck.layouts(shape, seed: 6) {
                let fast = try layerNorm(x, normalizedShape: normalized, weight: w, bias: b)
                #expect(try maxRelativeError(fast, try layerNormReference(x, normalizedShape: normalized, weight: w, bias: b)) < 1e-5)
                let bare = try layerNorm(x, normalizedShape: normalized, eps: 1e-6)
                #expect(try maxRelativeError(bare, try layerNormReference(x, normalizedShape: normalized, eps: 1e-6)) < 1e-5)
                // Properties: each row has mean 0 and (biased) variance 1 without affine parameters.
                let axes = Array((shape.count - normalized.count)..<shape.count)
                #expect(try amax(try unary(.abs, try mean(bare, axes: axes))).item() < 1e-5)
                #expect(abs(try mean(try variance(bare, axes: axes, correction: 0)).item() - 1) < 1e-4)
            }
        }
        let x = try Tensor.zeros([2, 3])
        #expect(throws: VisionError.self) { try layerNorm(x, normalizedShape: [2]) }
        #expect(throws: VisionError.self) { try layerNorm(x, normalizedShape: []) }
        #expect(throws: VisionError.self) { try layerNorm(x, normalizedShape: [3], weight: try Tensor.ones([4])) }
    }

    @Test func groupNormMatchesReference() throws {
        for (shape, groups) in [([2, 6, 5, 7], 3), ([1, 4, 9], 1), ([3, 8, 3, 3], 8), ([2, 6], 2)] {
            let c = shape[1]
            let w = try NormCheck.random([c], seed: 12), b = try NormCheck.random([c], seed: 13)
            for x in try NormCheck.layouts(shape, seed: 11) {
                let fast = try groupNorm(x, numGroups: groups, weight: w, bias: b)
                #expect(try maxRelativeError(fast, try groupNormReference(x, numGroups: groups, weight: w, bias: b)) < 1e-5, "\(shape) g\(groups)")
                let bare = try groupNorm(x, numGroups: groups)
                #expect(try maxRelativeError(bare, try groupNormReference(x, numGroups: groups)) < 1e-5)
            }
        }
        #expect(throws: VisionError.self) { try groupNorm(try Tensor.zeros([2, 6, 3]), numGroups: 4) }
        #expect(throws: VisionError.self) { try groupNorm(try Tensor.zeros([2, 6, 3]), numGroups: 0) }
        #expect(throws: VisionError.self) { try groupNorm(try Tensor.zeros([2, 6, 3]), numGroups: 3, weight: try Tensor.ones([3])) }
    }

    @Test func constantInputGivesBias() throws {
        // Zero variance: the output is the bias (no NaN from 0/0 thanks to eps). The folded x * a + (b - m * a)
        // form (also torch's) loses about ulp(m * rstd) = ulp(5 * 316) here, hence the tolerance.
        let x = try Tensor.full([2, 4, 3], value: 5)
        let y = try groupNorm(x, numGroups: 2, weight: try Tensor.ones([4]), bias: try Tensor.full([4], value: 0.5))
        #expect(try y.toArray(Float.self).allSatisfy { abs($0 - 0.5) < 1e-3 })
    }
}
