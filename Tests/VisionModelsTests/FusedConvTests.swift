import Testing
import VisionCore
@testable import VisionModels

/// The fused EXTD conv kernels against VisionCore's reference conv2d followed by the activation and skip, on
/// sizes that hit every border case (width 1, widths below and around the 8-lane step, a single row).
@Suite struct FusedConvTests {
    func random(_ shape: [Int], _ seed: UInt64) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try Tensor.normal(shape, rng: &rng)
    }

    /// conv2dReference, then bias is already in; PReLU with `slope`, then + residual.
    func expected(_ x: Tensor, _ w: Tensor, _ b: Tensor, groups: Int, padding: Int, slope: Float?, residual: Tensor?) throws -> [Float] {
        var y = try conv2dReference(x, weight: w, bias: b, padding: (padding, padding), groups: groups).toArray(Float.self)
        if let slope { y = y.map { $0 >= 0 ? $0 : $0 * slope } }
        if let residual { y = zip(y, try residual.toArray(Float.self)).map { $0 + $1 } }
        return y
    }

    @Test(arguments: [(1, 1), (1, 7), (3, 8), (2, 9), (5, 10), (4, 17), (6, 33)])
    func depthwiseMatchesReference(_ size: (Int, Int)) throws {
        let (h, w) = size, c = 3
        let x = try random([2, c, h, w], 1), wt = try random([c, 1, 3, 3], 2), b = try random([c], 3)
        for act in [Activation.none, .prelu(0.25)] {
            let got = try Depthwise3x3(weight: wt, bias: b, activation: act)(x).toArray(Float.self)
            let slope: Float? = if case .prelu(let a) = act { a } else { nil }
            let want = try expected(x, wt, b, groups: c, padding: 1, slope: slope, residual: nil)
            #expect(worstMismatch(got, want, rtol: 1e-5, atol: 1e-5) == nil, "\(h)x\(w) \(act)")
        }
    }

    @Test(arguments: [(1, 1), (3, 5), (7, 9), (40, 41)])
    func pointwiseMatchesReference(_ size: (Int, Int)) throws {
        let (h, w) = size, k = 5, m = 6
        let x = try random([2, k, h, w], 4), wt = try random([m, k, 1, 1], 5), b = try random([m], 6)
        let skip = try random([2, m, h, w], 7)
        let conv = try PointwiseConv(weight: wt, bias: try b.toArray(Float.self), activation: .prelu(0.1))
        let got = try conv(x, residual: skip).toArray(Float.self)
        let want = try expected(x, wt, b, groups: 1, padding: 0, slope: 0.1, residual: skip)
        #expect(worstMismatch(got, want, rtol: 1e-5, atol: 1e-5) == nil, "\(h)x\(w)")
        #expect(throws: VisionError.self) { try conv(try random([1, k + 1, h, w], 8)) }
    }
}
