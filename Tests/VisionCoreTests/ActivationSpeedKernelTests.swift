import Foundation
import Testing
@testable import VisionCore
import CKernels

/// Every ISA variant of the transcendental activation kernels (AVX-512, AVX2+FMA, portable C where the CPU has
/// them; vck_activation_set_isa) against the Double reference: odd lengths (vector tails), in-place use, special
/// values, and softmax's vck_exp_shift_sum. The variant is the test thread's choice (vck_isa_choice): other tests
/// running meanwhile keep the CPU's best.
@Suite struct ActivationISAKernelTests {
    static let ops: [UnaryOp] = [.silu, .geluErf, .geluTanh, .sigmoid, .tanh, .exp]
    static let lengths = [1, 5, 8, 15, 16, 17, 31, 32, 33, 47, 1000, 4099]

    static func levels() -> [Int32] { [4, 3, 1].filter { vck_activation_set_isa($0) == 0 } }

    /// The kernel straight through CKernels, out of place and in place (src == dst).
    static func run(_ op: UnaryOp, _ x: [Float]) -> (out: [Float], inPlace: [Float]) {
        var out = [Float](repeating: .nan, count: x.count), inPlace = x
        x.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in
            _ = vck_activation(op.rawValue, s.baseAddress!, d.baseAddress!, x.count)
        } }
        inPlace.withUnsafeMutableBufferPointer { b in _ = vck_activation(op.rawValue, b.baseAddress!, b.baseAddress!, x.count) }
        return (out, inPlace)
    }

    @Test func everyVariantMatchesTheReference() throws {
        defer { _ = vck_activation_set_isa(0) }
        let levels = Self.levels()
        #expect(levels.contains(1))
        for level in levels {
            #expect(vck_activation_set_isa(level) == 0)
            for op in Self.ops {
                for n in Self.lengths {
                    let x = try randomTensor([n], seed: UInt64(n) &* 31 &+ UInt64(op.rawValue), scale: 6)
                    let xs = try x.toArray(Float.self)
                    let (out, inPlace) = Self.run(op, xs)
                    let ref = try unaryReference(op, x)
                    #expect(try maxRelativeError(try Tensor(out, shape: [n]), ref) < 2e-6, "ISA \(level) \(op) n=\(n)")
                    #expect(out.map(\.bitPattern) == inPlace.map(\.bitPattern), "ISA \(level) \(op) n=\(n) in place")
                }
                // The public op (multi-threaded split on large inputs) goes through the same kernels.
                let big = try randomTensor([70_001], seed: 5, scale: 6)
                #expect(try maxRelativeError(try unary(op, big), try unaryReference(op, big)) < 2e-6, "ISA \(level) \(op) unary")
            }
        }
    }

    @Test func everyVariantKeepsTheSpecialValues() throws {
        defer { _ = vck_activation_set_isa(0) }
        let special: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 100, -100, 1e-5, -1e-5, 3e-4, -3e-4, 7.9, -7.9,
                                8, -8, 4.5, -4.5, 87, -87, 89, -89, 1e30, -1e30]
        for level in Self.levels() {
            #expect(vck_activation_set_isa(level) == 0)
            for op in Self.ops {
                // Lengths 25 and 41 put the special values both in full vectors and in masked tails.
                for xs in [special, special + special.prefix(16)] {
                    let (out, inPlace) = Self.run(op, xs)
                    let ref = try unaryReference(op, try Tensor(xs, shape: [xs.count])).toArray(Float.self)
                    for (i, (u, v)) in zip(out, ref).enumerated() {
                        #expect((u.isNaN && v.isNaN) || abs(u - v) <= 1e-6 * max(1, abs(v)) || u == v,
                                "ISA \(level) \(op)(\(xs[i])) = \(u), reference \(v)")
                    }
                    #expect(out.map(\.bitPattern) == inPlace.map(\.bitPattern), "ISA \(level) \(op) specials in place")
                }
                let (out, _) = Self.run(op, [.nan, .infinity, -.infinity, -0.0])
                #expect(out[0].isNaN, "ISA \(level) \(op)(NaN)")
                switch op {
                case .silu: #expect(out[1] == .infinity && out[2].isNaN, "ISA \(level) silu(+-inf): \(out)")  // as PyTorch
                case .sigmoid: #expect(out[1] == 1 && out[2] >= 0 && out[2] < 1e-37, "ISA \(level) sigmoid(+-inf): \(out)")
                case .tanh: #expect(out[1] == 1 && out[2] == -1 && out[3].sign == .minus, "ISA \(level) tanh(+-inf, -0): \(out)")
                case .geluErf, .geluTanh: #expect(out[1] == .infinity, "ISA \(level) \(op)(+inf): \(out)")
                default:
                    #expect(out[1] == .infinity && out[2] >= 0 && out[2] < 1e-37, "ISA \(level) exp(+-inf): \(out)")
                    // Past the float range exp overflows to +inf, as PyTorch's; just below it, it stays finite.
                    let big = Self.run(op, [88.7, 88.8, 100, 1e30]).out
                    #expect(big[0].isFinite && big[0] > 3.3e38 && big[1...].allSatisfy { $0 == .infinity }, "ISA \(level) exp: \(big)")
                }
            }
        }
    }

    @Test func everyVariantOfExpShiftSum() throws {
        defer { _ = vck_activation_set_isa(0) }
        for level in Self.levels() {
            #expect(vck_activation_set_isa(level) == 0)
            for n in [0, 1, 7, 15, 16, 17, 33, 1024, 1031] {
                let xs = try randomTensor([max(n, 1)], seed: UInt64(1000 + n), scale: 3).toArray(Float.self).prefix(n).map { $0 }
                let shift: Float = n == 0 ? 0 : xs.max()!
                var out = [Float](repeating: .nan, count: n), inPlace = xs
                let sum = xs.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in
                    vck_exp_shift_sum(s.baseAddress ?? UnsafePointer(bitPattern: 64)!, d.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!, n, shift)
                } }
                let sumInPlace = inPlace.withUnsafeMutableBufferPointer { b in
                    vck_exp_shift_sum(b.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!, b.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!, n, shift)
                }
                var refSum = 0.0, worst: Double = 0
                for (u, x) in zip(out, xs) {
                    let e = Foundation.exp(Double(x) - Double(shift))
                    refSum += e
                    worst = max(worst, abs(Double(u) - e))
                }
                #expect(worst < 2e-7, "ISA \(level) n=\(n)")
                #expect(abs(Double(sum) - refSum) <= 1e-6 * max(1, refSum), "ISA \(level) n=\(n): \(sum) vs \(refSum)")
                #expect(sum == sumInPlace && out.map(\.bitPattern) == inPlace.map(\.bitPattern), "ISA \(level) n=\(n) in place")
            }
        }
    }

    /// The silu and gelu gradients (AVX-512 loops at level 4, target_clones loops otherwise) against Double; the
    /// approximations are within 1e-5 of the derivative there (the same before the AVX-512 loops).
    @Test func everyVariantOfTheTranscendentalGradients() throws {
        defer { _ = vck_activation_set_isa(0) }
        func derivative(_ op: UnaryOp, _ x: Double) -> Double {
            switch op {
            case .silu: let s = 1 / (1 + Foundation.exp(-x)); return s * (1 + x * (1 - s))
            case .geluErf: return 0.5 * (1 + erf(x / 2.0.squareRoot())) + x * Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
            default:
                let k = (2 / Double.pi).squareRoot(), t = Foundation.tanh(k * (x + 0.044715 * x * x * x))
                return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
            }
        }
        for level in Self.levels() {
            #expect(vck_activation_set_isa(level) == 0)
            for op in [UnaryOp.silu, .geluErf, .geluTanh] {
                for n in [1, 15, 16, 17, 33, 1000] {
                    let xs = try randomTensor([n], seed: UInt64(2000 + n), scale: 5).toArray(Float.self)
                    let gs = try randomTensor([n], seed: UInt64(3000 + n)).toArray(Float.self)
                    var out = [Float](repeating: .nan, count: n), inPlace = gs
                    xs.withUnsafeBufferPointer { x in gs.withUnsafeBufferPointer { g in out.withUnsafeMutableBufferPointer { d in
                        _ = vck_activation_grad(op.rawValue, g.baseAddress!, x.baseAddress!, nil, d.baseAddress!, n, 0)
                    } } }
                    xs.withUnsafeBufferPointer { x in inPlace.withUnsafeMutableBufferPointer { d in
                        _ = vck_activation_grad(op.rawValue, d.baseAddress!, x.baseAddress!, nil, d.baseAddress!, n, 0)
                    } }
                    var worst = 0.0
                    for i in 0..<n {
                        let r = Double(gs[i]) * derivative(op, Double(xs[i]))
                        worst = max(worst, abs(Double(out[i]) - r) / max(1, abs(r)))
                    }
                    #expect(worst < 2e-5, "ISA \(level) \(op)' n=\(n): \(worst)")
                    #expect(out.map(\.bitPattern) == inPlace.map(\.bitPattern), "ISA \(level) \(op)' n=\(n) in place")
                }
                let (nan, _) = (try { () -> ([Float], Int) in
                    var d: [Float] = [0, 0]
                    let x: [Float] = [.nan, 1], g: [Float] = [1, .nan]
                    _ = vck_activation_grad(op.rawValue, g, x, nil, &d, 2, 0)
                    return (d, 0)
                })()
                #expect(nan[0].isNaN && nan[1].isNaN, "ISA \(level) \(op)' NaN: \(nan)")
            }
        }
    }

    @Test func unknownLevelsAreRefused() {
        #expect(vck_activation_set_isa(2) == -1)
        #expect(vck_activation_set_isa(5) == -1)
        #expect(vck_activation_set_isa(0) == 0)
    }
}
