import CKernels
import Testing
@testable import VisionCore

/// conv2dFusedMaxPool (a stem's conv, epilogue and max pooling in one pass where the row kernels take the conv):
/// the bits of maxPool2d(conv2dFused(...)) on every kernel level, and the reference ops' values.
@Suite struct ConvMaxPoolTests {
    /// (input, weight, conv stride, conv padding, pool kernel, pool stride, pool padding): ResNet's stem on a small
    /// odd map; 40 output channels (a wide block and a narrow one); a pool of 2 without padding and one of 3 at
    /// stride 1; a batch of 3 whose pieces cross images; a map whose conv rows end mid-tile.
    static let cases: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int), (Int, Int), (Int, Int))] = [
        ([1, 3, 37, 41], [64, 3, 7, 7], (2, 2), (3, 3), (3, 3), (2, 2), (1, 1)),
        ([2, 3, 20, 18], [40, 3, 3, 3], (2, 2), (1, 1), (2, 2), (2, 2), (0, 0)),
        ([3, 2, 15, 13], [24, 2, 3, 3], (1, 1), (1, 1), (3, 3), (1, 1), (1, 1)),
        ([1, 4, 11, 30], [16, 4, 5, 5], (1, 1), (2, 2), (4, 4), (3, 2), (2, 1)),
    ]

    static func epilogue(_ channels: Int, _ activation: UnaryOp?, seed: UInt64) throws -> ConvEpilogue {
        let scale = try randomTensor([channels], seed: seed).toArray(Float.self)
        let shift = try randomTensor([channels], seed: seed + 1).toArray(Float.self)
        return ConvEpilogue(scale: scale, shift: shift, activation: activation)
    }

    /// The epilogue by the tensor ops: conv * scale + shift, then the activation.
    static func referenceEpilogue(_ conv: Tensor, _ epi: ConvEpilogue) throws -> Tensor {
        let c = conv.shape[1]
        let affine = try add(try mul(conv, try Tensor(epi.scale!, shape: [1, c, 1, 1])), try Tensor(epi.shift!, shape: [1, c, 1, 1]))
        return try epi.activation.map { try unary($0, affine) } ?? affine
    }

    @Test func fusedPoolHasTheBitsOfTheTwoOps() throws {
        defer { _ = vck_conv_gemm_set_isa(0) }
        var levels = 0
        for level: Int32 in [4, 3, 1] where vck_conv_gemm_set_isa(level) == 0 {
            for (index, (xs, ws, stride, padding, pk, ps, pp)) in Self.cases.enumerated() {
                let x = try randomTensor(xs, seed: UInt64(10 + index)), w = try randomTensor(ws, seed: UInt64(20 + index), scale: 0.2)
                for activation: UnaryOp? in [.relu, nil, .silu] {
                    let epi = try Self.epilogue(ws[0], activation, seed: UInt64(30 + index))
                    let fused = try conv2dFusedMaxPool(x, weight: w, stride: stride, padding: padding, epilogue: epi,
                                                       poolKernel: pk, poolStride: ps, poolPadding: pp)
                    let conv = try conv2dFused(x, weight: w, stride: stride, padding: padding, epilogue: epi)
                    let twoOps = try maxPool2d(conv, kernelSize: pk, stride: ps, padding: pp)
                    let label = "ISA \(level) case \(index) \(activation.map { "\($0)" } ?? "none")"
                    #expect(fused.shape == twoOps.shape, "\(label)")
                    #expect(try fused.toArray(Float.self) == twoOps.toArray(Float.self), "\(label)")
                    // Against the reference ops (float sums of up to 147 products).
                    let reference = try maxPool2dReference(
                        try Self.referenceEpilogue(try conv2dReference(x, weight: w, stride: stride, padding: padding), epi),
                        kernelSize: pk, stride: ps, padding: pp)
                    #expect(try maxRelativeError(fused, reference) < 1e-5, "\(label) reference")
                }
            }
            levels += 1
        }
        #expect(levels >= 1)
    }

    @Test func aNaNInTheWindowWinsAsInMaxPool() throws {
        // One input NaN spreads through the conv to a patch of outputs, which the pooling keeps as NaN.
        var values = try randomTensor([1, 3, 24, 24], seed: 5).toArray(Float.self)
        values[3 * 24 + 10] = .nan
        let x = try Tensor(values, shape: [1, 3, 24, 24]), w = try randomTensor([32, 3, 3, 3], seed: 6, scale: 0.2)
        let epi = try Self.epilogue(32, .relu, seed: 7)
        let fused = try conv2dFusedMaxPool(x, weight: w, stride: (2, 2), padding: (1, 1), epilogue: epi,
                                           poolKernel: (3, 3), poolStride: (2, 2), poolPadding: (1, 1))
        let twoOps = try maxPool2d(try conv2dFused(x, weight: w, stride: (2, 2), padding: (1, 1), epilogue: epi),
                                   kernelSize: (3, 3), stride: (2, 2), padding: (1, 1))
        let a = try fused.toArray(Float.self), b = try twoOps.toArray(Float.self)
        #expect(a.contains { $0.isNaN })
        #expect(zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }

    @Test func badPoolWindowsAreErrors() throws {
        let x = try randomTensor([1, 3, 16, 16], seed: 1), w = try randomTensor([16, 3, 3, 3], seed: 2)
        let epi = try Self.epilogue(16, .relu, seed: 3)
        // Padding over half the window, and a window larger than the padded map: max_pool2d's errors.
        #expect(throws: VisionError.self) {
            try conv2dFusedMaxPool(x, weight: w, stride: (2, 2), padding: (1, 1), epilogue: epi, poolKernel: (3, 3),
                                   poolStride: (2, 2), poolPadding: (2, 2))
        }
        #expect(throws: VisionError.self) {
            try conv2dFusedMaxPool(x, weight: w, stride: (2, 2), padding: (1, 1), epilogue: epi, poolKernel: (12, 12))
        }
    }
}
