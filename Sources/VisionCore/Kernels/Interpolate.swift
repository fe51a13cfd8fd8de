/// Resizing of NCHW float tensors with the exact index arithmetic of PyTorch's `F.interpolate` (CPU, float32),
/// so that outputs agree bit for bit on the chosen source pixels and to float rounding on the blend weights.
/// C constants: VC_
public enum InterpolationMode: Int32, Sendable, CaseIterable {
    case interpNearest = 0, interpBilinear

    /// `.nearest` / `.bilinear` read better at Swift call sites than the C-constant case names.
    public static var nearest: InterpolationMode { .interpNearest }
    public static var bilinear: InterpolationMode { .interpBilinear }
}

/// The ratio input/output that maps output to input coordinates: from `scale` (1/scale, as torch does when
/// scale_factor is given and recompute_scale_factor is unset) or from the sizes. Torch rounds it to float.
private func sourceRatio(input: Int, output: Int, scale: Double?, alignCorners: Bool) -> Float {
    if alignCorners { return output > 1 ? Float(input - 1) / Float(output - 1) : 0 }
    if let scale, scale > 0 { return Float(1.0 / scale) }
    return Float(input) / Float(output)
}

/// Nearest: source = min(floor(dst * ratio), in - 1), in float as torch.
private func nearestIndices(input: Int, output: Int, scale: Double?) -> [Int] {
    let ratio = sourceRatio(input: input, output: output, scale: scale, alignCorners: false)
    return (0..<output).map { o in
        if output == input { return o }
        if output == 2 * input { return o >> 1 }  // torch's shortcut, exact whatever the float ratio says
        let f = (Float(o) * ratio).rounded(.down)
        return min(Int(f), input - 1)
    }
}

/// Bilinear taps along one axis: lower index, step to the upper one (0 at the border) and the two weights.
private func bilinearTaps(input: Int, output: Int, scale: Double?, alignCorners: Bool) -> [(Int, Int, Float, Float)] {
    let ratio = sourceRatio(input: input, output: output, scale: scale, alignCorners: alignCorners)
    return (0..<output).map { o in
        if output == input { return (o, 0, 1, 0) }
        var real: Float = alignCorners ? ratio * Float(o) : ratio * (Float(o) + 0.5) - 0.5
        if !alignCorners && real < 0 { real = 0 }  // torch clamps negative source coordinates to the first pixel
        let i0 = min(Int(real), input - 1)
        let step = i0 < input - 1 ? 1 : 0
        let l1 = min(max(real - Float(i0), 0), 1)
        return (i0, step, 1 - l1, l1)
    }
}

/// The output size and per-axis scale passed on to the index maps.
private func interpolationPlan(_ x: Tensor, size: (Int, Int)?, scaleFactor: (Double, Double)?, mode: InterpolationMode,
                               alignCorners: Bool?) throws -> (h: Int, w: Int, sh: Double?, sw: Double?) {
    try x.requireDType(.float32, "interpolate")
    guard x.rank == 4 else { throw VisionError.shapeMismatch("interpolate: input must be NCHW (4 dimensions), got \(x.shape)") }
    if mode == .interpNearest && alignCorners != nil {
        throw VisionError.invalidArgument("interpolate: align_corners can only be set with mode bilinear, not nearest")
    }
    let ih = x.shape[2], iw = x.shape[3]
    switch (size, scaleFactor) {
    case (let s?, nil):
        guard s.0 > 0, s.1 > 0 else { throw VisionError.invalidArgument("interpolate: size \(s) must be positive") }
        guard ih > 0, iw > 0 else { throw VisionError.invalidArgument("interpolate: input \(x.shape) has an empty spatial dimension") }
        _ = try Tensor.checkedCount([x.shape[0], x.shape[1], s.0, s.1])
        return (s.0, s.1, nil, nil)
    case (nil, let f?):
        guard f.0 > 0, f.1 > 0, f.0.isFinite, f.1.isFinite else {
            throw VisionError.invalidArgument("interpolate: scale_factor \(f) must be positive and finite")
        }
        let hD = (Double(ih) * f.0).rounded(.down), wD = (Double(iw) * f.1).rounded(.down)
        guard hD >= 1, wD >= 1, hD < Double(Limits.maxBytes), wD < Double(Limits.maxBytes), ih > 0, iw > 0 else {
            throw VisionError.invalidArgument("interpolate: scale_factor \(f) gives an empty or too large output for input \(x.shape)")
        }
        _ = try Tensor.checkedCount([x.shape[0], x.shape[1], Int(hD), Int(wD)])
        return (Int(hD), Int(wD), f.0, f.1)
    default:
        throw VisionError.invalidArgument("interpolate: give exactly one of size and scale_factor")
    }
}

/// Resizes the spatial dimensions of x [N, C, H, W] to `size`, or by `scaleFactor` (output = floor(in * scale)),
/// with PyTorch's semantics: nearest picks floor(dst * ratio); bilinear maps with align_corners (default false)
/// and clamps negative source coordinates; `alignCorners` must be nil for nearest (an error otherwise, as torch).
/// Differentiable with respect to `x` (see `interpolateBackward`).
public func interpolate(_ x: Tensor, size: (Int, Int)? = nil, scaleFactor: (Double, Double)? = nil,
                        mode: InterpolationMode = .nearest, alignCorners: Bool? = nil) throws -> Tensor {
    let plan = try interpolationPlan(x, size: size, scaleFactor: scaleFactor, mode: mode, alignCorners: alignCorners)
    let (n, c, ih, iw) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (oh, ow) = (plan.h, plan.w)
    let src = try x.contiguous().detach()
    let out = try Tensor.uninitialized([n, c, oh, ow], dtype: .float32)
    // An empty batch passes the size check whatever (oh, ow) are; the index maps below are oh + ow long. The
    // input is empty too, so its gradient is an empty tensor.
    if out.count == 0 {
        let inputShape = x.shape
        return recordGrad("interpolate", out, inputs: [x]) { _ in [try Tensor.zeros(inputShape)] }
    }
    let s = SendablePointer(src.pointer(Float.self)), d = SendablePointer(out.pointer(Float.self))
    let planes = n * c
    // Index maps and weights go to raw buffers before the threaded loops: reading Swift arrays captured by the
    // closure cost several ns per element here (measured), raw pointers keep the inner loops at load/store speed.
    switch mode {
    case .interpNearest:
        let ys = nearestIndices(input: ih, output: oh, scale: plan.sh), xs = nearestIndices(input: iw, output: ow, scale: plan.sw)
        let px = UnsafeMutablePointer<Int>.allocate(capacity: max(ow, 1))
        defer { px.deallocate() }
        for (i, v) in xs.enumerated() { px[i] = v }
        let xsp = SendablePointer(px)
        withExtendedLifetime(src) {
            parallelFor(planes * oh, minChunk: max(1, (1 << 15) / max(ow, 1))) { range in
                for r in range {
                    let pl = r / oh, oy = r % oh
                    let row = s.p + pl * ih * iw + ys[oy] * iw, orow = d.p + r * ow
                    for ox in 0..<ow { orow[ox] = row[xsp.p[ox]] }
                }
            }
        }
    case .interpBilinear:
        let ac = alignCorners ?? false
        let ty = bilinearTaps(input: ih, output: oh, scale: plan.sh, alignCorners: ac)
        let tx = bilinearTaps(input: iw, output: ow, scale: plan.sw, alignCorners: ac)
        let xi = UnsafeMutablePointer<Int>.allocate(capacity: 2 * max(ow, 1))
        let xw = UnsafeMutablePointer<Float>.allocate(capacity: 2 * max(ow, 1))
        defer { xi.deallocate(); xw.deallocate() }
        for (i, t) in tx.enumerated() { xi[2 * i] = t.0; xi[2 * i + 1] = t.0 + t.1; xw[2 * i] = t.2; xw[2 * i + 1] = t.3 }
        let xip = SendablePointer(xi), xwp = SendablePointer(xw)
        withExtendedLifetime(src) {
            parallelFor(planes * oh, minChunk: max(1, (1 << 14) / max(ow, 1))) { range in
                // Separable: each needed source row is blended horizontally once into a cached row
                // (t = w0λ * a + w1λ * b), then output rows blend two cached rows vertically with SIMD
                // (h0λ * t0 + h1λ * t1) - the same operations, in the same order, as torch's per-pixel formula.
                var slotA = UnsafeMutablePointer<Float>.allocate(capacity: ow + 16)
                var slotB = UnsafeMutablePointer<Float>.allocate(capacity: ow + 16)
                defer { slotA.deallocate(); slotB.deallocate() }
                var keyA = -1, keyB = -1
                let xi = xip.p, xw = xwp.p
                func horizontal(_ key: Int, into t: UnsafeMutablePointer<Float>) {
                    let row = s.p + key &* iw
                    for ox in 0..<ow {
                        t[ox] = xw[2 &* ox] * row[xi[2 &* ox]] + xw[2 &* ox &+ 1] * row[xi[2 &* ox &+ 1]]
                    }
                }
                for r in range {
                    let pl = r / oh, oy = r % oh
                    let (y0, dy, wy0, wy1) = ty[oy]
                    let k0 = pl &* ih &+ y0, k1 = k0 &+ dy
                    if keyA != k0 {
                        if keyB == k0 { swap(&slotA, &slotB); swap(&keyA, &keyB) } else {
                            if keyA == k1 { swap(&slotA, &slotB); swap(&keyA, &keyB) }
                            horizontal(k0, into: slotA); keyA = k0
                        }
                    }
                    if k1 != k0 && keyB != k1 { horizontal(k1, into: slotB); keyB = k1 }
                    let t0 = slotA, t1 = k1 == k0 ? slotA : slotB
                    let orow = d.p + r &* ow
                    let v0 = F16(repeating: wy0), v1 = F16(repeating: wy1)
                    var ox = 0
                    while ox &+ 16 <= ow {
                        storeF16(v0 * loadF16(t0 + ox) + v1 * loadF16(t1 + ox), orow + ox); ox &+= 16
                    }
                    while ox < ow { orow[ox] = wy0 * t0[ox] + wy1 * t1[ox]; ox &+= 1 }
                }
            }
        }
    }
    let inputShape = x.shape
    return recordGrad("interpolate", out, inputs: [x]) { g in
        [try interpolateBackward(g, inputShape: inputShape, plan: plan, mode: mode, alignCorners: alignCorners ?? false)]
    }
}

// MARK: - InterpolateBackward

/// The gradient of `interpolate` with respect to its input: the adjoint (transpose) of the forward's linear map,
/// built from the same index and weight maps so that it is PyTorch's upsample backward up to summation order.
/// Each output element's gradient is scatter-added to the source pixels it read, with the weights it read them
/// with; source pixels that no output read get 0. One task per channel plane, so no two threads add into the same
/// element.
func interpolateBackward(_ g: Tensor, inputShape: [Int], plan: (h: Int, w: Int, sh: Double?, sw: Double?),
                         mode: InterpolationMode, alignCorners: Bool) throws -> Tensor {
    let (n, c, ih, iw) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    let (oh, ow) = (plan.h, plan.w)
    let gx = try Tensor(zeros: inputShape, dtype: .float32)
    if gx.count == 0 || oh * ow == 0 { return gx }
    let gc = try g.contiguous()
    let gp = SendablePointer(gc.pointer(Float.self)), dp = SendablePointer(gx.pointer(Float.self))
    let planes = n * c, inPlane = ih * iw, outPlane = oh * ow
    let minChunk = max(1, (1 << 15) / max(outPlane, 1))
    switch mode {
    case .interpNearest:
        let ys = nearestIndices(input: ih, output: oh, scale: plan.sh), xs = nearestIndices(input: iw, output: ow, scale: plan.sw)
        let maps = UnsafeMutablePointer<Int>.allocate(capacity: oh + ow)
        defer { maps.deallocate() }
        for (i, v) in ys.enumerated() { maps[i] = v }
        for (i, v) in xs.enumerated() { maps[oh + i] = v }
        let mp = SendablePointer(maps)
        withExtendedLifetime(gc) {
            parallelFor(planes, minChunk: minChunk) { range in
                let yp = mp.p, xp = mp.p + oh
                for pl in range {
                    let src = gp.p + pl &* outPlane, dst = dp.p + pl &* inPlane
                    for oy in 0..<oh {
                        let row = dst + yp[oy] &* iw, grow = src + oy &* ow
                        for ox in 0..<ow { row[xp[ox]] += grow[ox] }
                    }
                }
            }
        }
    case .interpBilinear:
        let ty = bilinearTaps(input: ih, output: oh, scale: plan.sh, alignCorners: alignCorners)
        let tx = bilinearTaps(input: iw, output: ow, scale: plan.sw, alignCorners: alignCorners)
        // Row taps (y0, y1, wy0, wy1) and column taps (x0, x1, wx0, wx1) in raw buffers, as in the forward.
        let yi = UnsafeMutablePointer<Int>.allocate(capacity: 2 * oh), yw = UnsafeMutablePointer<Float>.allocate(capacity: 2 * oh)
        let xi = UnsafeMutablePointer<Int>.allocate(capacity: 2 * ow), xw = UnsafeMutablePointer<Float>.allocate(capacity: 2 * ow)
        defer { yi.deallocate(); yw.deallocate(); xi.deallocate(); xw.deallocate() }
        for (i, t) in ty.enumerated() { yi[2 * i] = t.0; yi[2 * i + 1] = t.0 + t.1; yw[2 * i] = t.2; yw[2 * i + 1] = t.3 }
        for (i, t) in tx.enumerated() { xi[2 * i] = t.0; xi[2 * i + 1] = t.0 + t.1; xw[2 * i] = t.2; xw[2 * i + 1] = t.3 }
        let yip = SendablePointer(yi), ywp = SendablePointer(yw), xip = SendablePointer(xi), xwp = SendablePointer(xw)
        withExtendedLifetime(gc) {
            parallelFor(planes, minChunk: minChunk) { range in
                // The map is separable, so its adjoint is too: each gradient row is first scattered horizontally
                // into a row of the input's width, which is then added to the (at most) two source rows with
                // the vertical weights. That is 2 * ow + 2 * iw operations per output row instead of 4 * ow
                // scattered ones, and the vertical part runs over contiguous rows.
                let t = UnsafeMutablePointer<Float>.allocate(capacity: iw)
                defer { t.deallocate() }
                let yi = yip.p, yw = ywp.p, xi = xip.p, xw = xwp.p
                for pl in range {
                    let src = gp.p + pl &* outPlane, dst = dp.p + pl &* inPlane
                    for oy in 0..<oh {
                        t.update(repeating: 0, count: iw)
                        let grow = src + oy &* ow
                        for ox in 0..<ow {
                            let v = grow[ox]
                            t[xi[2 &* ox]] += xw[2 &* ox] * v
                            t[xi[2 &* ox &+ 1]] += xw[2 &* ox &+ 1] * v
                        }
                        let r0 = dst + yi[2 &* oy] &* iw, r1 = dst + yi[2 &* oy &+ 1] &* iw
                        let w0 = yw[2 &* oy], w1 = yw[2 &* oy &+ 1]
                        for j in 0..<iw { r0[j] += w0 * t[j] }
                        for j in 0..<iw { r1[j] += w1 * t[j] }
                    }
                }
            }
        }
    }
    return gx
}

/// `interpolate` by the textbook definition in Double: nearest = floor(dst * ratio) clamped; bilinear blends the
/// four neighbours of the source coordinate (align_corners or half-pixel centres, negatives clamped to 0).
public func interpolateReference(_ x: Tensor, size: (Int, Int)? = nil, scaleFactor: (Double, Double)? = nil,
                                 mode: InterpolationMode = .nearest, alignCorners: Bool? = nil) throws -> Tensor {
    let plan = try interpolationPlan(x, size: size, scaleFactor: scaleFactor, mode: mode, alignCorners: alignCorners)
    let (n, c, ih, iw) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (oh, ow) = (plan.h, plan.w)
    let ac = alignCorners ?? false
    func ratio(_ i: Int, _ o: Int, _ s: Double?) -> Double {
        if ac { return o > 1 ? Double(i - 1) / Double(o - 1) : 0 }
        return s.map { 1 / $0 } ?? Double(i) / Double(o)
    }
    let rh = ratio(ih, oh, plan.sh), rw = ratio(iw, ow, plan.sw)
    func at(_ b: Int, _ y: Int, _ xx: Int) -> Double {
        Double(x.pointer(Float.self)[x.strides[0] * (b / c) + x.strides[1] * (b % c) + x.strides[2] * y + x.strides[3] * xx])
    }
    var values = [Float]()
    values.reserveCapacity(n * c * oh * ow)
    for b in 0..<(n * c) {
        for oy in 0..<oh {
            for ox in 0..<ow {
                if mode == .interpNearest {
                    func pick(_ o: Int, _ r: Double, _ len: Int, _ outLen: Int) -> Int {
                        if outLen == len { return o }
                        if outLen == 2 * len { return o / 2 }
                        return min(Int((Double(o) * r).rounded(.down)), len - 1)
                    }
                    let y = pick(oy, rh, ih, oh), xx = pick(ox, rw, iw, ow)
                    values.append(Float(at(b, y, xx)))
                } else {
                    func src(_ o: Int, _ r: Double, _ len: Int, _ outLen: Int) -> Double {
                        if len == outLen { return Double(o) }
                        return ac ? r * Double(o) : max(r * (Double(o) + 0.5) - 0.5, 0)
                    }
                    let sy = src(oy, rh, ih, oh), sx = src(ox, rw, iw, ow)
                    let y0 = min(Int(sy), ih - 1), x0 = min(Int(sx), iw - 1)
                    let y1 = min(y0 + 1, ih - 1), x1 = min(x0 + 1, iw - 1)
                    let ly = min(max(sy - Double(y0), 0), 1), lx = min(max(sx - Double(x0), 0), 1)
                    let v = (1 - ly) * ((1 - lx) * at(b, y0, x0) + lx * at(b, y0, x1)) + ly * ((1 - lx) * at(b, y1, x0) + lx * at(b, y1, x1))
                    values.append(Float(v))
                }
            }
        }
    }
    return try Tensor(values, shape: [n, c, oh, ow])
}
