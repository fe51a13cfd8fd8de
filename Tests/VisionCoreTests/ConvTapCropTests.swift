import Testing
@testable import VisionCore

/// Convolutions whose border taps only ever read padding (a 3x3 kernel on a 1x1 map) run without them: the
/// outputs and all gradients equal the Double reference and finite sums, and the crop is found only where it holds
/// (at both ends, or at one end where the stride leaves the outputs unchanged).
@Suite struct ConvTapCropTests {
    @Test func findsOnlyTheTapsThatNeverReadTheInput() throws {
        func crop(_ xs: [Int], _ ws: [Int], stride: Int = 1, padding: Int = 1, dilation: Int = 1) throws -> [Int]? {
            unreachableTaps(try Tensor.zeros(xs), try Tensor.zeros(ws), stride: (stride, stride),
                            padding: (padding, padding), dilation: (dilation, dilation)).map { [$0.top, $0.bottom, $0.left, $0.right] }
        }
        #expect(try crop([2, 4, 1, 1], [3, 4, 3, 3]) == [1, 1, 1, 1])
        #expect(try crop([2, 4, 1, 3], [3, 4, 3, 3]) == [1, 1, 0, 0])
        #expect(try crop([2, 4, 1, 1], [3, 4, 5, 5], padding: 2) == [2, 2, 2, 2])
        #expect(try crop([2, 4, 2, 2], [3, 4, 3, 3]) == nil)        // every tap meets some input on 2x2
        // Stride 2 on 2x2: tap 0 reads only padding; the 2x2 kernel at padding 0 has the same single output.
        #expect(try crop([2, 4, 2, 2], [3, 4, 3, 3], stride: 2) == [1, 0, 1, 0])
        // Stride 2 on 3x3: tap 0 reads padding for output 0 only, tap 2 meets the input: nothing goes.
        #expect(try crop([2, 4, 3, 3], [3, 4, 3, 3], stride: 2) == nil)
        #expect(try crop([2, 4, 7, 7], [3, 4, 3, 3]) == nil)
        #expect(try crop([4, 1, 1], [3, 4, 3, 3]) == [1, 1, 1, 1])        // unbatched input
        #expect(try crop([2, 4, 1, 1], [3, 4, 3, 3], dilation: 1 << 40) == nil)
    }

    @Test(arguments: [([3, 6, 1, 1], [5, 6, 3, 3], (1, 1), 1), ([2, 4, 1, 2], [6, 4, 3, 3], (1, 1), 1),
                      ([2, 4, 1, 1], [3, 4, 5, 5], (2, 2), 1), ([3, 5, 2, 2], [4, 5, 3, 3], (1, 1), 2),
                      ([2, 3, 2, 4], [4, 3, 3, 3], (1, 1), 2)])
    func matchesTheReferenceWithGradients(_ xs: [Int], _ ws: [Int], _ padding: (Int, Int), _ stride: Int) throws {
        let x = try randomTensor(xs, seed: 11).requiringGrad(), w = try randomTensor(ws, seed: 12).requiringGrad()
        let b = try randomTensor([ws[0]], seed: 13).requiringGrad()
        let s = (stride, stride)
        #expect(unreachableTaps(x, w, stride: s, padding: padding, dilation: (1, 1)) != nil)
        let y = try conv2d(x, weight: w, bias: b, stride: s, padding: padding)
        try expectClose(y, try conv2dReference(x.detach(), weight: w.detach(), bias: b.detach(), stride: s, padding: padding), "forward")
        let fused = try conv2dFused(x, weight: w, stride: s, padding: padding, epilogue: ConvEpilogue(shift: try b.toArray(Float.self)))
        try expectClose(fused, y, "fused")
        // Loss Σ y * r: dL/dW[co][ci][ky][kx] = Σ r[n][co][oy][ox] x[n][ci][oy s + ky - p][ox s + kx - p] (zero on
        // the cropped taps), dL/dx likewise, dL/db = Σ r.
        let r = try randomTensor(y.shape, seed: 14)
        try sum(try mul(y, r)).backward()
        let xs4 = try x.toArray(Float.self), ws4 = try w.toArray(Float.self), rs = try r.toArray(Float.self)
        let (n, ci, h, wd) = (xs[0], xs[1], xs[2], xs[3]), (co, kh, kw) = (ws[0], ws[2], ws[3])
        let (oh, ow) = (y.shape[2], y.shape[3])
        var gw = [Double](repeating: 0, count: ws4.count), gx = [Double](repeating: 0, count: xs4.count)
        for b0 in 0..<n { for o in 0..<co { for oy in 0..<oh { for ox in 0..<ow {
            let rv = Double(rs[((b0 * co + o) * oh + oy) * ow + ox])
            for c in 0..<ci { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * stride + ky - padding.0, ix = ox * stride + kx - padding.1
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                let xi = ((b0 * ci + c) * h + iy) * wd + ix, wi = ((o * ci + c) * kh + ky) * kw + kx
                gw[wi] += rv * Double(xs4[xi])
                gx[xi] += rv * Double(ws4[wi])
            } } }
        } } } }
        try expectClose(try #require(w.grad), try Tensor(gw.map { Float($0) }, shape: ws), "weight gradient")
        try expectClose(try #require(x.grad), try Tensor(gx.map { Float($0) }, shape: xs), "input gradient")
        try expectClose(try #require(b.grad), try sum(r, axes: [0, 2, 3]), "bias gradient")
    }
}
