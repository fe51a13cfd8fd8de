import Testing
@testable import VisionCore

/// Fast pooling kernels against their Double references (odd sizes, ceil mode, padding, dilation, strided views),
/// PyTorch's output-size rules, NaN handling and the errors of malformed arguments.
@Suite struct PoolingTests {
    static func random(_ shape: [Int], seed: UInt64) throws -> Tensor { try randomTensor(shape, seed: seed) }


    struct Case: CustomTestStringConvertible, Sendable {
        var shape = [1, 3, 7, 9], k = (3, 3), stride: (Int, Int)? = nil, padding = (0, 0), dilation = (1, 1)
        var ceil = false
        var testDescription: String { "\(shape) k\(k) s\(String(describing: stride)) p\(padding) d\(dilation) ceil \(ceil)" }
    }

    static let cases: [Case] = [
        Case(),
        Case(shape: [3, 7, 7, 9], k: (2, 2)),                              // 16 planes at a time, and 5
        Case(k: (3, 3), stride: (2, 2), padding: (1, 1)),
        Case(k: (3, 3), stride: (2, 2), padding: (1, 1), ceil: true),
        Case(shape: [2, 9, 7, 9], k: (3, 3), stride: (2, 2), padding: (1, 1), ceil: true),
        Case(shape: [2, 17, 8, 11], k: (2, 3), stride: (2, 2), ceil: true),
        Case(shape: [1, 5, 9, 7], k: (3, 2), stride: (3, 3), padding: (1, 1), ceil: true),
        Case(shape: [1, 2, 2, 2], k: (3, 3), stride: (2, 2), ceil: true),  // a window larger than the input
        Case(shape: [1, 20, 2, 2], k: (3, 3), stride: (2, 2), ceil: true),
        Case(shape: [1, 3, 13, 37], k: (5, 4), stride: (1, 3), padding: (2, 2)),
        Case(shape: [3, 7, 9], k: (2, 2), stride: (1, 1)),                 // unbatched
        Case(shape: [1, 16, 40, 41], k: (4, 4), stride: (4, 4), padding: (2, 1), ceil: true),  // large planes, row by row
    ]

    static let dilatedCases: [Case] = [
        Case(k: (3, 3), padding: (1, 1), dilation: (2, 2)),
        Case(shape: [2, 9, 10, 12], k: (2, 3), stride: (2, 1), padding: (1, 1), dilation: (3, 2), ceil: true),
    ]

    @Test(arguments: cases + dilatedCases)
    func maxPoolMatchesReference(c: Case) throws {
        let x = try Self.random(c.shape, seed: 1)
        let fast = try maxPool2d(x, kernelSize: c.k, stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceil)
        let ref = try maxPool2dReference(x, kernelSize: c.k, stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceil)
        #expect(try maxRelativeError(fast, ref) == 0)
    }

    /// Max pooling's gradient against the index definition (each output's gradient to the first maximum of its
    /// in-bounds window, the first NaN if any), on values with ties (rounded to halves), -inf and NaN.
    @Test(arguments: cases + dilatedCases)
    func maxPoolGradientGoesToTheFirstMaximum(c: Case) throws {
        var values = try Self.random(c.shape, seed: 3).toArray(Float.self).map { ($0 * 2).rounded() / 2 }
        for i in stride(from: 5, to: values.count, by: 23) { values[i] = -.infinity }
        for i in stride(from: 11, to: values.count, by: 97) { values[i] = .nan }
        let x = try Tensor(values, shape: c.shape).requiringGrad()
        let y = try maxPool2d(x, kernelSize: c.k, stride: c.stride, padding: c.padding, dilation: c.dilation, ceilMode: c.ceil)
        let r = try Self.random(y.shape, seed: 4)
        try sum(try mul(y, r)).backward()
        // The reference: planes of h x w, windows scanned row by row.
        let (h, w) = (c.shape[c.shape.count - 2], c.shape[c.shape.count - 1])
        let (oh, ow) = (y.shape[y.rank - 2], y.shape[y.rank - 1]), planes = values.count / (h * w)
        let s = c.stride ?? c.k, rs = try r.toArray(Float.self)
        var expected = [Float](repeating: 0, count: values.count)
        for p in 0..<planes {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var at = -1
                    scan: for ky in 0..<c.k.0 {
                        let iy = oy * s.0 - c.padding.0 + ky * c.dilation.0
                        guard iy >= 0, iy < h else { continue }
                        for kx in 0..<c.k.1 {
                            let ix = ox * s.1 - c.padding.1 + kx * c.dilation.1
                            guard ix >= 0, ix < w else { continue }
                            let i = p * h * w + iy * w + ix
                            if at < 0 || values[i] > values[at] { at = i }
                            if values[i].isNaN { at = i; break scan }
                        }
                    }
                    if at >= 0 { expected[at] += rs[(p * oh + oy) * ow + ox] }
                }
            }
        }
        let got = try #require(x.grad).toArray(Float.self)
        #expect(got == expected, "\(c.testDescription)")
    }

    /// Windows with nothing above -inf: the gradient goes to the window's first in-bounds element.
    @Test(arguments: [1, 17])
    func maxPoolGradientOfAllMinusInfinityWindows(planes: Int) throws {
        let x = try Tensor.full([1, planes, 3, 4], value: -.infinity).requiringGrad()
        let y = try maxPool2d(x, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1))
        try sum(y).backward()
        // Outputs (0, 0), (0, 1), (1, 0), (1, 1) start at input (0, 0), (0, 1), (1, 0), (1, 1).
        let plane: [Float] = [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
        #expect(try #require(x.grad).toArray(Float.self) == Array([[Float]](repeating: plane, count: planes).joined()))
    }

    @Test(arguments: cases, [true, false])
    func avgPoolMatchesReference(c: Case, includePad: Bool) throws {
        let x = try Self.random(c.shape, seed: 2)
        let fast = try avgPool2d(x, kernelSize: c.k, stride: c.stride, padding: c.padding, ceilMode: c.ceil, countIncludePad: includePad)
        let ref = try avgPool2dReference(x, kernelSize: c.k, stride: c.stride, padding: c.padding, ceilMode: c.ceil, countIncludePad: includePad)
        #expect(try maxRelativeError(fast, ref) < 1e-5)
    }

    @Test func outputSizesFollowPyTorch() throws {
        let x = try Tensor.zeros([1, 1, 7, 9])
        // floor((7 + 2 - 3) / 2) + 1 = 4; ceil gives 4 as well; 9 -> 5 either way.
        #expect(try maxPool2d(x, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1)).shape == [1, 1, 4, 5])
        // 7 with k2 s2: floor 3, ceil 4 (the last window starts at 6, inside the input).
        #expect(try maxPool2d(x, kernelSize: (2, 2), stride: (2, 2), ceilMode: true).shape == [1, 1, 4, 5])
        // 6 with k2 s2 p1 ceil: ceil((6 + 2 - 2) / 2) + 1 = 4, last window starts at 6 = H + pad - 1... kept;
        // 5 with k2 s2 p1 ceil: 3 + 1 = 4 would start at 6 >= 5 + 1, so it is dropped.
        #expect(try avgPool2d(try Tensor.zeros([1, 6, 5]), kernelSize: (2, 2), stride: (2, 2), padding: (1, 1), ceilMode: true).shape == [1, 4, 3])
        #expect(try avgPool2d(try Tensor.zeros([1, 1, 2, 2]), kernelSize: (3, 3), stride: (2, 2), ceilMode: true).shape == [1, 1, 1, 1])
    }

    @Test func maxPoolPropagatesNaNAndPadsWithMinusInfinity() throws {
        var values = [Float](repeating: -5, count: 16)
        values[5] = .nan
        let x = try Tensor(values, shape: [1, 1, 4, 4])
        let y = try maxPool2d(x, kernelSize: (2, 2), stride: (2, 2)).toArray(Float.self)
        #expect(y[0].isNaN && y[1] == -5 && y[2] == -5 && y[3] == -5)
        // Every element is negative: padding must not contribute a 0.
        let z = try maxPool2d(try Tensor.full([1, 1, 3, 3], value: -2), kernelSize: (3, 3), stride: (1, 1), padding: (1, 1))
        #expect(try z.toArray(Float.self).allSatisfy { $0 == -2 })
    }

    @Test func avgPoolDivisors() throws {
        let x = try Tensor.ones([1, 1, 3, 3])
        let incl = try avgPool2d(x, kernelSize: (3, 3), stride: (1, 1), padding: (1, 1), countIncludePad: true).toArray(Float.self)
        #expect(abs(incl[0] - 4.0 / 9) < 1e-6 && abs(incl[4] - 1) < 1e-6)
        let excl = try avgPool2d(x, kernelSize: (3, 3), stride: (1, 1), padding: (1, 1), countIncludePad: false).toArray(Float.self)
        #expect(excl.allSatisfy { abs($0 - 1) < 1e-6 })
    }

    @Test func poolingAcceptsNonContiguousInput() throws {
        let x = try Self.random([2, 9, 3, 7], seed: 3).permute([0, 2, 1, 3])
        #expect(!x.isContiguous)
        #expect(try maxRelativeError(try maxPool2d(x, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1)),
                                          try maxPool2dReference(x, kernelSize: (3, 3), stride: (2, 2), padding: (1, 1))) == 0)
        #expect(try maxRelativeError(try avgPool2d(x, kernelSize: (2, 3), ceilMode: true),
                                          try avgPool2dReference(x, kernelSize: (2, 3), ceilMode: true)) < 1e-5)
        #expect(try maxRelativeError(try adaptiveAvgPool2d(x, outputSize: (4, 3)),
                                          try adaptiveAvgPool2dReference(x, outputSize: (4, 3))) < 1e-5)
    }

    @Test(arguments: [(1, 1), (7, 9), (3, 4), (5, 2), (4, 7), (9, 13), (14, 20)])
    func adaptiveAvgPoolMatchesReference(size: (Int, Int)) throws {
        let x = try Self.random([3, 5, 7, 9], seed: 4)
        #expect(try maxRelativeError(try adaptiveAvgPool2d(x, outputSize: size),
                                          try adaptiveAvgPool2dReference(x, outputSize: size)) < 1e-5)
    }

    @Test func adaptiveWindowsOverlapWhenSizesDoNotDivide() throws {
        // 5 -> 3: [0, 2), [1, 4), [3, 5)
        #expect(AdaptiveGeometry.windows(input: 5, output: 3) == [0..<2, 1..<4, 3..<5])
        #expect(AdaptiveGeometry.windows(input: 4, output: 2) == [0..<2, 2..<4])
        let y = try adaptiveAvgPool2d(try Tensor([Float(1), 2, 3, 4, 5], shape: [1, 1, 5]), outputSize: (1, 3))
        #expect(try y.toArray(Float.self) == [1.5, 3, 4.5])
    }

    @Test func poolingRejectsBadArguments() throws {
        let x = try Tensor.zeros([1, 2, 6, 6])
        #expect(throws: VisionError.self) { try maxPool2d(try Tensor.zeros([6, 6]), kernelSize: (2, 2)) }
        #expect(throws: VisionError.self) { try maxPool2d(x, kernelSize: (0, 2)) }
        #expect(throws: VisionError.self) { try maxPool2d(x, kernelSize: (2, 2), stride: (0, 1)) }
        #expect(throws: VisionError.self) { try maxPool2d(x, kernelSize: (2, 2), padding: (2, 0)) }
        #expect(throws: VisionError.self) { try maxPool2d(x, kernelSize: (2, 2), padding: (-1, 0)) }
        #expect(throws: VisionError.self) { try maxPool2d(x, kernelSize: (2, 2), dilation: (0, 1)) }
        #expect(throws: VisionError.self) { try maxPool2d(x, kernelSize: (7, 7)) }
        #expect(throws: VisionError.self) { try maxPool2d(x, kernelSize: (Int.max, 2), padding: (Int.max / 2, 0)) }
        #expect(throws: VisionError.self) { try maxPool2d(try Tensor.zeros([1, 2, 0, 6]), kernelSize: (1, 1)) }
        #expect(throws: VisionError.self) { try avgPool2d(x, kernelSize: (3, 3), padding: (2, 2)) }
        #expect(throws: VisionError.self) { try avgPool2d(try Tensor.zeros([1, 2, 6, 6], dtype: .uint8), kernelSize: (2, 2)) }
        #expect(throws: VisionError.self) { try adaptiveAvgPool2d(x, outputSize: (0, 2)) }
        #expect(throws: VisionError.self) { try adaptiveAvgPool2d(try Tensor.zeros([1, 0, 6, 6]), outputSize: (2, 2)) }
        #expect(throws: VisionError.self) { try adaptiveAvgPool2d(x, outputSize: (1 << 40, 1 << 40)) }
        #expect(throws: VisionError.self) { try adaptiveAvgPool2d(try Tensor.zeros([0, 2, 3, 3]), outputSize: (1 << 40, 1)) }
        #expect(try adaptiveAvgPool2d(try Tensor.zeros([0, 2, 3, 3]), outputSize: (4, 5)).shape == [0, 2, 4, 5])
        #expect(try maxPool2d(try Tensor.zeros([0, 2, 6, 6]), kernelSize: (2, 2)).shape == [0, 2, 3, 3])
    }
}
