// Bilinear sampling of an image at arbitrary normalized locations (torch.nn.functional.grid_sample with
// mode="bilinear", padding_mode="zeros"), used by spatial transformers and deformable attention.
//
// Semantics, identical to PyTorch's:
// - `grid[n, h, w] = (x, y)` in [-1, 1] addresses input `n`; x indexes the width and y the height.
// - `alignCorners == true`: -1 and 1 are the centres of the corner pixels, `ix = (x + 1) / 2 * (W - 1)`.
//   `alignCorners == false`: -1 and 1 are the outer edges of the corner pixels, `ix = ((x + 1) * W - 1) / 2`.
// - The four neighbouring pixels are blended with bilinear weights; a neighbour outside the image contributes
//   zero (so values fade to 0 over the last half pixel outside the image, and far-away locations give 0).

/// One output location's in-bounds neighbours: element offsets within a channel plane and their weights.
/// Out-of-bounds neighbours are dropped rather than given weight 0, so that they are never read (PyTorch masks
/// them the same way, which matters when the input holds Inf or NaN).
struct BilinearTaps {
    var offsets: (Int, Int, Int, Int) = (0, 0, 0, 0)
    var weights: (Float, Float, Float, Float) = (0, 0, 0, 0)
    var count = 0
    /// True when a coordinate is NaN or infinite: PyTorch's CPU kernel then yields NaN for every channel.
    var poisoned = false

    @inline(__always) mutating func append(_ offset: Int, _ weight: Float) {
        switch count {
        case 0: offsets.0 = offset; weights.0 = weight
        case 1: offsets.1 = offset; weights.1 = weight
        case 2: offsets.2 = offset; weights.2 = weight
        default: offsets.3 = offset; weights.3 = weight
        }
        count &+= 1
    }
}

/// Maps a normalized coordinate to a pixel coordinate, in Float and in the same operation order as PyTorch so
/// that locations exactly on a pixel boundary land on the same side.
@inline(__always) func unnormalizeGridCoordinate(_ v: Float, size: Int, alignCorners: Bool) -> Float {
    alignCorners ? ((v + 1) / 2) * Float(size - 1) : ((v + 1) * Float(size) - 1) / 2
}

/// The in-bounds bilinear neighbours of pixel location (ix, iy) in an h x w plane.
@inline(__always) func bilinearTaps(ix: Float, iy: Float, h: Int, w: Int) -> BilinearTaps {
    var taps = BilinearTaps()
    guard ix.isFinite, iy.isFinite else { taps.poisoned = true; return taps }
    // Beyond this range no neighbour can be inside any image the library can allocate; the check also keeps
    // the Float-to-Int conversions below from trapping on huge finite coordinates.
    let bound = Float(1 << 40)
    guard abs(ix) < bound, abs(iy) < bound else { return taps }
    let fx = ix.rounded(.down), fy = iy.rounded(.down)
    let x0 = Int(fx), y0 = Int(fy)
    let tx = ix - fx, ty = iy - fy
    let wx = (1 - tx, tx), wy = (1 - ty, ty)
    if y0 >= 0 && y0 < h {
        if x0 >= 0 && x0 < w { taps.append(y0 &* w &+ x0, wx.0 * wy.0) }
        if x0 + 1 >= 0 && x0 + 1 < w { taps.append(y0 &* w &+ x0 &+ 1, wx.1 * wy.0) }
    }
    if y0 + 1 >= 0 && y0 + 1 < h {
        if x0 >= 0 && x0 < w { taps.append((y0 &+ 1) &* w &+ x0, wx.0 * wy.1) }
        if x0 + 1 >= 0 && x0 + 1 < w { taps.append((y0 &+ 1) &* w &+ x0 &+ 1, wx.1 * wy.1) }
    }
    return taps
}

/// Validates grid_sample's arguments and returns (N, C, H, W, Ho, Wo).
private func checkGridSample(_ x: Tensor, _ grid: Tensor) throws -> (Int, Int, Int, Int, Int, Int) {
    try x.requireDType(.float32, "grid_sample")
    try grid.requireDType(.float32, "grid_sample")
    try x.requireRank(4, "grid_sample", "input")
    try grid.requireRank(4, "grid_sample", "grid")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    guard grid.shape[0] == n, grid.shape[3] == 2 else {
        throw VisionError.shapeMismatch("grid_sample: grid must have shape [N, Ho, Wo, 2] with N = \(n) for input \(x.shape), got \(grid.shape)")
    }
    guard h > 0, w > 0 else {
        throw VisionError.invalidArgument("grid_sample: input \(x.shape) has an empty spatial dimension")
    }
    return (n, c, h, w, grid.shape[1], grid.shape[2])
}

/// Samples `x` [N, C, H, W] at the locations in `grid` [N, Ho, Wo, 2] with bilinear interpolation and zero
/// padding; the result has shape [N, C, Ho, Wo]. Both tensors must be float32.
///
/// Edge cases: a grid coordinate that is NaN or infinite (or becomes infinite when scaled to pixels) gives NaN
/// in every channel, as PyTorch does; large finite coordinates far outside [-1, 1] give 0. Inf or NaN in the
/// input propagate from every in-bounds neighbour, even one whose weight is 0. Empty N, C, Ho or Wo give an
/// empty result; an input with H or W equal to 0 is an error.
///
/// Differentiable with respect to both `x` and `grid` (see `gridSampleBackward`).
public func gridSample(_ x: Tensor, grid: Tensor, alignCorners: Bool) throws -> Tensor {
    let (n, c, h, w, ho, wo) = try checkGridSample(x, grid)
    let out = try Tensor.uninitialized([n, c, ho, wo], dtype: .float32)
    // Detached copies of the data the backward reads; the graph itself keeps x and grid's states.
    let xc = try x.contiguous().detach(), gc = try grid.contiguous().detach()
    let (needX, needGrid) = (x.requiresGrad, grid.requiresGrad)
    let recorded = recordGrad("gridSample", out, inputs: [x, grid]) { g in
        try gridSampleBackward(g, x: xc, grid: gc, alignCorners: alignCorners, wantInput: needX, wantGrid: needGrid)
    }
    if out.count == 0 { return recorded }
    let px = SendablePointer(xc.pointer(Float.self)), pg = SendablePointer(gc.pointer(Float.self))
    let po = SendablePointer(out.pointer(Float.self))
    let plane = h * w, outPlane = ho * wo
    // One task per output row: its taps are computed once and reused for all C channels, which is where the
    // time goes for feature maps with many channels.
    parallelFor(n * ho, minChunk: max(1, 4096 / max(wo * c, 1))) { rows in
        var taps = [BilinearTaps](repeating: BilinearTaps(), count: wo)
        for row in rows {
            let b = row / ho, oy = row % ho
            let g = pg.p + (b * outPlane + oy * wo) * 2
            for ox in 0..<wo {
                let ix = unnormalizeGridCoordinate(g[2 * ox], size: w, alignCorners: alignCorners)
                let iy = unnormalizeGridCoordinate(g[2 * ox + 1], size: h, alignCorners: alignCorners)
                taps[ox] = bilinearTaps(ix: ix, iy: iy, h: h, w: w)
            }
            taps.withUnsafeBufferPointer { t in
                for ch in 0..<c {
                    let src = UnsafePointer(px.p + (b * c + ch) * plane)
                    let dst = po.p + (b * c + ch) * outPlane + oy * wo
                    for ox in 0..<wo {
                        let tp = t[ox]
                        var s: Float = 0
                        switch tp.count {
                        case 4:
                            s = tp.weights.0 * src[tp.offsets.0] + tp.weights.1 * src[tp.offsets.1]
                                + tp.weights.2 * src[tp.offsets.2] + tp.weights.3 * src[tp.offsets.3]
                        case 3:
                            s = tp.weights.0 * src[tp.offsets.0] + tp.weights.1 * src[tp.offsets.1]
                                + tp.weights.2 * src[tp.offsets.2]
                        case 2: s = tp.weights.0 * src[tp.offsets.0] + tp.weights.1 * src[tp.offsets.1]
                        case 1: s = tp.weights.0 * src[tp.offsets.0]
                        default: s = tp.poisoned ? .nan : 0
                        }
                        dst[ox] = s
                    }
                }
            }
        }
    }
    return recorded
}

// MARK: - GridSampleBackward

/// Gradients of `gridSample` with respect to the input and the grid (each computed only when asked for; nil
/// otherwise), with PyTorch's semantics for zero padding:
/// - input: each output element's gradient is scatter-added to its in-bounds neighbours with their bilinear
///   weights (the adjoint of the forward); neighbours outside the image receive nothing.
/// - grid: the output is sum_k v_k * w_k(ix, iy) with v_k = 0 outside the image, so d out / d ix is
///   (v_ne - v_nw) * (1 - ty) + (v_se - v_sw) * ty, likewise for iy, summed over channels against the output's
///   gradient and scaled by d ix / d x = (W - 1) / 2 (align_corners) or W / 2 (and H for y). At integer pixel
///   coordinates the result is the one-sided derivative from above, as PyTorch's (floor picks the upper cell).
/// A non-finite grid location gives NaN in both of its grid gradients and nothing to the input (its output is
/// NaN whatever the input, as PyTorch).
func gridSampleBackward(_ g: Tensor, x: Tensor, grid: Tensor, alignCorners: Bool,
                        wantInput needX: Bool, wantGrid needGrid: Bool) throws -> [Tensor?] {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (ho, wo) = (grid.shape[1], grid.shape[2])
    let gx: Tensor? = needX ? try Tensor(zeros: x.shape, dtype: .float32) : nil
    let gg: Tensor? = needGrid ? try Tensor(zeros: grid.shape, dtype: .float32) : nil
    let locations = n * ho * wo
    if locations == 0 { return [gx, gg] }
    let gc = try g.contiguous()
    let pgo = SendablePointer(gc.pointer(Float.self)), px = SendablePointer(x.pointer(Float.self))
    let pg = SendablePointer(grid.pointer(Float.self))
    let plane = h * w, outPlane = ho * wo
    if let gg {
        // One task per output row: the row's derivative terms are accumulated over channels in two row-long
        // buffers, reading each channel plane of the gradient contiguously; rows write disjoint grid entries.
        let pgg = SendablePointer(gg.pointer(Float.self))
        let scaleX: Float = alignCorners ? Float(w - 1) / 2 : Float(w) / 2
        let scaleY: Float = alignCorners ? Float(h - 1) / 2 : Float(h) / 2
        withExtendedLifetime((gc, x, grid)) {
            parallelFor(n * ho, minChunk: max(1, 4096 / max(wo * max(c, 1), 1))) { rows in
                let cell = UnsafeMutablePointer<GridCell>.allocate(capacity: wo)
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: 2 * wo)
                defer { cell.deallocate(); acc.deallocate() }
                for row in rows {
                    let b = row / ho, oy = row % ho
                    let gr = pg.p + (b &* outPlane &+ oy &* wo) &* 2
                    for ox in 0..<wo {
                        cell[ox] = GridCell(ix: unnormalizeGridCoordinate(gr[2 &* ox], size: w, alignCorners: alignCorners),
                                            iy: unnormalizeGridCoordinate(gr[2 &* ox &+ 1], size: h, alignCorners: alignCorners),
                                            h: h, w: w)
                    }
                    acc.update(repeating: 0, count: 2 * wo)
                    for ch in 0..<c {
                        let src = UnsafePointer(px.p + (b &* c &+ ch) &* plane)
                        let go = pgo.p + ((b &* c &+ ch) &* outPlane &+ oy &* wo)
                        for ox in 0..<wo {
                            let cl = cell[ox]
                            guard cl.any else { continue }
                            let v = go[ox]
                            let nw = cl.nw ? src[cl.offset] : 0, ne = cl.ne ? src[cl.offset &+ 1] : 0
                            let sw = cl.sw ? src[cl.offset &+ w] : 0, se = cl.se ? src[cl.offset &+ w &+ 1] : 0
                            acc[2 &* ox] += v * ((ne - nw) * (1 - cl.ty) + (se - sw) * cl.ty)
                            acc[2 &* ox &+ 1] += v * ((sw - nw) * (1 - cl.tx) + (se - ne) * cl.tx)
                        }
                    }
                    let dst = pgg.p + (b &* outPlane &+ oy &* wo) &* 2
                    for ox in 0..<wo {
                        if cell[ox].poisoned {
                            dst[2 &* ox] = .nan; dst[2 &* ox &+ 1] = .nan
                        } else {
                            dst[2 &* ox] = acc[2 &* ox] * scaleX; dst[2 &* ox &+ 1] = acc[2 &* ox &+ 1] * scaleY
                        }
                    }
                }
            }
        }
    }
    if let gx, c > 0 {
        // Taps of every location computed once (in parallel over rows), then one task per (batch, channel)
        // plane scatters into its own plane of the input gradient, so no two threads add into one element.
        let taps = UnsafeMutablePointer<BilinearTaps>.allocate(capacity: locations)
        defer { taps.deallocate() }
        let pt = SendablePointer(taps)
        withExtendedLifetime(grid) {
            parallelFor(n * ho, minChunk: max(1, 4096 / max(wo, 1))) { rows in
                for row in rows {
                    let gr = pg.p + row &* wo &* 2
                    for ox in 0..<wo {
                        let ix = unnormalizeGridCoordinate(gr[2 &* ox], size: w, alignCorners: alignCorners)
                        let iy = unnormalizeGridCoordinate(gr[2 &* ox &+ 1], size: h, alignCorners: alignCorners)
                        (pt.p + (row &* wo &+ ox)).initialize(to: bilinearTaps(ix: ix, iy: iy, h: h, w: w))
                    }
                }
            }
        }
        let pgx = SendablePointer(gx.pointer(Float.self))
        withExtendedLifetime(gc) {
            parallelFor(n * c, minChunk: max(1, 4096 / max(outPlane, 1))) { planes in
                for pl in planes {
                    let b = pl / max(c, 1)
                    let dst = pgx.p + pl &* plane, go = pgo.p + pl &* outPlane
                    let t = pt.p + b &* outPlane
                    for o in 0..<outPlane {
                        let tp = t[o], v = go[o]
                        if tp.count > 0 { dst[tp.offsets.0] += tp.weights.0 * v }
                        if tp.count > 1 { dst[tp.offsets.1] += tp.weights.1 * v }
                        if tp.count > 2 { dst[tp.offsets.2] += tp.weights.2 * v }
                        if tp.count > 3 { dst[tp.offsets.3] += tp.weights.3 * v }
                    }
                }
            }
        }
    }
    return [gx, gg]
}

/// The cell of the pixel grid that a location falls in, for the grid gradient: the offset of its top-left
/// corner, which of its four corners lie inside the image, and the fractional position inside the cell.
struct GridCell {
    var offset = 0
    var tx: Float = 0, ty: Float = 0
    var nw = false, ne = false, sw = false, se = false
    var poisoned = false
    var any: Bool { nw || ne || sw || se }

    @inline(__always) init(ix: Float, iy: Float, h: Int, w: Int) {
        guard ix.isFinite, iy.isFinite else { poisoned = true; return }
        // Same bound as `bilinearTaps`: no corner can be inside beyond it, and Int conversion stays safe.
        let bound = Float(1 << 40)
        guard abs(ix) < bound, abs(iy) < bound else { return }
        let fx = ix.rounded(.down), fy = iy.rounded(.down)
        let x0 = Int(fx), y0 = Int(fy)
        tx = ix - fx; ty = iy - fy
        let x0in = x0 >= 0 && x0 < w, x1in = x0 + 1 >= 0 && x0 + 1 < w
        let y0in = y0 >= 0 && y0 < h, y1in = y0 + 1 >= 0 && y0 + 1 < h
        nw = y0in && x0in; ne = y0in && x1in; sw = y1in && x0in; se = y1in && x1in
        // Wrapping: the offset may point outside the plane when the top-left corner is outside; only the
        // in-bounds corners are ever read through it.
        offset = y0 &* w &+ x0
    }
}

/// grid_sample by the definition, one output element at a time in Double with explicit bounds checks on each
/// of the four neighbours (for tests). Same semantics and edge cases as `gridSample`.
public func gridSampleReference(_ x: Tensor, grid: Tensor, alignCorners: Bool) throws -> Tensor {
    let (n, c, h, w, ho, wo) = try checkGridSample(x, grid)
    let out = try Tensor.uninitialized([n, c, ho, wo], dtype: .float32)
    let xs = try x.toArray(Float.self), gs = try grid.toArray(Float.self)
    let po = out.pointer(Float.self)
    func pixel(_ b: Int, _ ch: Int, _ yy: Int, _ xx: Int) -> Double? {
        guard yy >= 0, yy < h, xx >= 0, xx < w else { return nil }
        return Double(xs[((b * c + ch) * h + yy) * w + xx])
    }
    for b in 0..<n {
        for ch in 0..<c {
            for oy in 0..<ho {
                for ox in 0..<wo {
                    let gi = ((b * ho + oy) * wo + ox) * 2
                    let ix = Double(unnormalizeGridCoordinate(gs[gi], size: w, alignCorners: alignCorners))
                    let iy = Double(unnormalizeGridCoordinate(gs[gi + 1], size: h, alignCorners: alignCorners))
                    var value = 0.0
                    if !ix.isFinite || !iy.isFinite {
                        value = .nan
                    } else if abs(ix) < 1e12, abs(iy) < 1e12 {
                        let x0 = Int(ix.rounded(.down)), y0 = Int(iy.rounded(.down))
                        let tx = ix - Double(x0), ty = iy - Double(y0)
                        for (dy, wy) in [(0, 1 - ty), (1, ty)] {
                            for (dx, wx) in [(0, 1 - tx), (1, tx)] {
                                if let v = pixel(b, ch, y0 + dy, x0 + dx) { value += wy * wx * v }
                            }
                        }
                    }
                    po[((b * c + ch) * ho + oy) * wo + ox] = Float(value)
                }
            }
        }
    }
    return out
}
