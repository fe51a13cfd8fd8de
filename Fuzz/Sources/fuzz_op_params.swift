// bytes -> one op with fuzzed parameters on tiny tensors: conv2d, conv_transpose2d, max/avg/adaptive pooling,
// interpolate, pad, topk, roi_align, grid_sample. Oracle (the library's "reference twin" rule, checked on
// arbitrary parameters instead of the tests' hand-picked ones): the fast op and its `...Reference` version
// either both throw a VisionError or both succeed with the same shape and values within tolerance (topk, which
// has no reference version, is checked against a sort). Nothing traps: every parameter reaches validation.
import VisionCore

extension FuzzInput {
    /// A small size or parameter, sometimes negative, zero or absurd.
    mutating func param(_ small: ClosedRange<Int>) -> Int {
        // The absurd values are ones a limit must refuse (or that cancel out, like padding and stride both 2^40);
        // merely large ones (2^20) would be legitimate gigabyte-sized requests.
        let k = int(0...16)
        if k < 12 { return small.lowerBound + k % (small.upperBound - small.lowerBound + 1) }
        return [-1, 0, 1 << 40, Int.max, Int.min][k - 12]
    }

    mutating func pair(_ small: ClosedRange<Int>) -> (Int, Int) { (param(small), param(small)) }

    /// A tensor of the given shape with values on a 1/32 grid in [-4, 4) (exact in float32 sums).
    mutating func tensor(_ shape: [Int]) throws -> Tensor {
        let n = shape.reduce(1, *)
        return try Tensor((0..<n).map { _ in Float(Int(byte()) - 128) / 32 }, shape: shape)
    }

    /// A coordinate: mostly ordinary, sometimes far outside, huge or not finite.
    mutating func coordinate(_ scale: Float) -> Float {
        let k = int(0...19)
        if k < 16 { return Float(Int(byte()) - 64) / 128 * scale }
        return [Float.nan, .infinity, -1e30, 3e9][k - 16]
    }
}

private func close(_ a: Tensor, _ b: Tensor, _ what: String, tol: Float = 1e-4) {
    guard a.shape == b.shape, a.dtype == b.dtype else { fuzzFail("\(what): fast \(a.dtype) \(a.shape) vs reference \(b.dtype) \(b.shape)") }
    if a.dtype != .float32 {
        guard (try? a.to(.int64).toArray(Int64.self)) == (try? b.to(.int64).toArray(Int64.self)) else { fuzzFail("\(what): values differ") }
        return
    }
    guard let x = try? a.toArray(Float.self), let y = try? b.toArray(Float.self) else { fuzzFail("\(what): unreadable result") }
    for (i, (u, v)) in zip(x, y).enumerated() {
        if u.isNaN && v.isNaN { continue }
        if u == v { continue }
        guard abs(u - v) <= tol * (1 + abs(v)) else { fuzzFail("\(what): element \(i) is \(u), reference \(v) (shape \(a.shape))") }
    }
}

/// Runs the fast op and its reference; both must throw (a VisionError) or both succeed and agree.
private func agree(_ what: String, tol: Float = 1e-4, _ fast: () throws -> Tensor, _ reference: () throws -> Tensor) {
    var f: Tensor? = nil, r: Tensor? = nil
    var fe: Error? = nil, re: Error? = nil
    do { f = try fast() } catch { fe = error }
    do { r = try reference() } catch { re = error }
    if let e = fe, !(e is VisionError) { fuzzFail("\(what): fast op threw a non-VisionError \(e)") }
    if let e = re, !(e is VisionError) { fuzzFail("\(what): reference threw a non-VisionError \(e)") }
    switch (f, r) {
    case let (f?, r?): close(f, r, what, tol: tol)
    case (nil, nil): return
    case (nil, _?): fuzzFail("\(what): fast op threw '\(fe!)' but the reference succeeded")
    case (_?, nil): fuzzFail("\(what): reference threw '\(re!)' but the fast op succeeded")
    }
}

private func checkTopk(_ x: Tensor, k: Int, axis: Int, largest: Bool, sorted: Bool) {
    let result: (values: Tensor, indices: Tensor)
    do { result = try topk(x, k: k, axis: axis, largest: largest, sorted: sorted) } catch is VisionError { return } catch {
        fuzzFail("topk threw a non-VisionError \(error)")
    }
    guard x.rank >= 1 else { return }
    let a = axis < 0 ? axis + x.rank : axis
    guard let xs = try? x.toArray(Float.self), let vs = try? result.values.toArray(Float.self),
          let ix = try? result.indices.toArray(Int64.self) else { fuzzFail("topk: unreadable result") }
    var expectShape = x.shape; expectShape[a] = k
    guard result.values.shape == expectShape, result.indices.shape == expectShape else { fuzzFail("topk: shape \(result.values.shape)") }
    let n = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *), outer = x.shape[..<a].reduce(1, *)
    for o in 0..<outer {
        for i in 0..<inner {
            let row = (0..<n).map { xs[(o * n + $0) * inner + i] }
            let want = Array((largest ? row.sorted(by: >) : row.sorted()).prefix(k))
            var got = (0..<k).map { vs[(o * k + $0) * inner + i] }
            for j in 0..<k {
                let idx = Int(ix[(o * k + j) * inner + i])
                guard idx >= 0, idx < n, row[idx] == got[j] else { fuzzFail("topk: index \(idx) does not hold value \(got[j])") }
            }
            if !sorted { got.sort(by: largest ? (>) : (<)) }
            guard got == want else { fuzzFail("topk: values \(got), expected \(want)") }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpParams(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    var inp = FuzzInput(data, count)
    if Threading.threadCount != 1 { try? Threading.setThreadCount(1) }   // reproducible runs
    do {
        switch inp.int(0...9) {
        case 0, 1:
            let transposed = inp.bool()
            let batch = inp.bool()
            let (n, cin, h, w) = (inp.int(0...2), inp.int(0...4), inp.int(0...7), inp.int(0...7))
            let (cout, cw, kh, kw) = (inp.int(0...4), inp.int(0...4), inp.int(0...4), inp.int(0...4))
            let x = try inp.tensor(batch ? [n, cin, h, w] : [cin, h, w])
            let wt = try inp.tensor(transposed ? [cin, cw, kh, kw] : [cout, cw, kh, kw])
            let bias = inp.bool() ? try inp.tensor([inp.int(0...8)]) : nil
            let stride = inp.pair(1...3), padding = inp.pair(0...3), dilation = inp.pair(1...3), groups = inp.param(1...4)
            if transposed {
                let outPad = inp.pair(0...2)
                agree("conv_transpose2d", { try convTranspose2d(x, weight: wt, bias: bias, stride: stride, padding: padding, outputPadding: outPad, groups: groups, dilation: dilation) },
                      { try convTranspose2dReference(x, weight: wt, bias: bias, stride: stride, padding: padding, outputPadding: outPad, groups: groups, dilation: dilation) })
            } else {
                agree("conv2d", { try conv2d(x, weight: wt, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups) },
                      { try conv2dReference(x, weight: wt, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups) })
            }
        case 2, 3, 4:
            let shape = inp.bool() ? [inp.int(0...2), inp.int(0...3), inp.int(0...9), inp.int(0...9)] : [inp.int(0...3), inp.int(0...9), inp.int(0...9)]
            let x = try inp.tensor(shape)
            let kernel = inp.pair(1...4), stride = inp.bool() ? inp.pair(1...3) : nil, padding = inp.pair(0...2)
            let ceil = inp.bool()
            switch inp.int(0...2) {
            case 0:
                let dilation = inp.pair(1...3)
                agree("max_pool2d", { try maxPool2d(x, kernelSize: kernel, stride: stride, padding: padding, dilation: dilation, ceilMode: ceil) },
                      { try maxPool2dReference(x, kernelSize: kernel, stride: stride, padding: padding, dilation: dilation, ceilMode: ceil) })
            case 1:
                let includePad = inp.bool()
                agree("avg_pool2d", { try avgPool2d(x, kernelSize: kernel, stride: stride, padding: padding, ceilMode: ceil, countIncludePad: includePad) },
                      { try avgPool2dReference(x, kernelSize: kernel, stride: stride, padding: padding, ceilMode: ceil, countIncludePad: includePad) })
            default:
                let size = inp.pair(1...11)
                agree("adaptive_avg_pool2d", { try adaptiveAvgPool2d(x, outputSize: size) }, { try adaptiveAvgPool2dReference(x, outputSize: size) })
            }
        case 5:
            let x = try inp.tensor([inp.int(0...2), inp.int(0...3), inp.int(0...6), inp.int(0...6)])
            let scales: [Double] = [0.5, 1, 1.5, 2, 0.3, 3.7, 0, -1, .nan, .infinity, 1e300, 1e-300]
            let size: (Int, Int)? = inp.int(0...2) != 0 ? inp.pair(1...12) : nil
            let scale: (Double, Double)? = inp.int(0...2) != 0 ? (inp.pick(scales), inp.pick(scales)) : nil
            let mode = inp.bool() ? InterpolationMode.bilinear : .nearest
            let align: Bool? = [nil, true, false][inp.int(0...2)]
            agree("interpolate", { try interpolate(x, size: size, scaleFactor: scale, mode: mode, alignCorners: align) },
                  { try interpolateReference(x, size: size, scaleFactor: scale, mode: mode, alignCorners: align) })
        case 6:
            let x = try inp.tensor((0..<inp.int(0...4)).map { _ in inp.int(0...4) })
            let pads = (0..<inp.int(0...9)).map { _ in inp.int(0...10) - 3 }
            let mode: Padding = [.constant(1.5), .reflect, .replicate][inp.int(0...2)]
            agree("pad \(pads) \(mode)", { try pad(x, pads: pads, mode: mode) }, { try padReference(x, pads: pads, mode: mode) })
        case 7:
            let x = try inp.tensor((0..<inp.int(0...3)).map { _ in inp.int(0...5) })
            checkTopk(x, k: inp.param(0...6), axis: inp.int(0...7) - 4, largest: inp.bool(), sorted: inp.bool())
        case 8:
            let x = try inp.tensor([inp.int(0...2), inp.int(0...3), inp.int(0...7), inp.int(0...7)])
            let k = inp.int(0...3)
            let boxes = try Tensor((0..<(k * 5)).map { i -> Float in i % 5 == 0 ? Float(inp.int(0...3)) - 0.5 * Float(inp.int(0...1)) : inp.coordinate(16) },
                                   shape: [k, 5])
            let size = inp.pair(1...4)
            let scale: Float = [1, 0.5, 0.25, 2, 0, -1, .nan, .infinity][inp.int(0...7)]
            let ratio = [-1, 0, 1, 2, 3, 1 << 14][inp.int(0...5)]
            let aligned = inp.bool()
            agree("roi_align", { try roiAlign(x, boxes: boxes, outputSize: size, spatialScale: scale, samplingRatio: ratio, aligned: aligned) },
                  { try roiAlignReference(x, boxes: boxes, outputSize: size, spatialScale: scale, samplingRatio: ratio, aligned: aligned) })
        default:
            let (n, c, h, w) = (inp.int(0...2), inp.int(0...3), inp.int(0...6), inp.int(0...6))
            let x = try inp.tensor([n, c, h, w])
            let (ho, wo) = (inp.int(0...4), inp.int(0...4))
            let gn = inp.int(0...7) == 0 ? inp.int(0...3) : n
            let grid = try Tensor((0..<(gn * ho * wo * 2)).map { _ in inp.coordinate(3) }, shape: [gn, ho, wo, 2])
            let align = inp.bool()
            agree("grid_sample", { try gridSample(x, grid: grid, alignCorners: align) }, { try gridSampleReference(x, grid: grid, alignCorners: align) })
        }
    } catch is VisionError {
        return 0   // building the inputs failed (not the op under test)
    } catch {
        fuzzFail("non-VisionError \(error)")
    }
    return 0
}
