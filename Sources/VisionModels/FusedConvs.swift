import CBLAS
import Dispatch
import VisionCore

// The two conv kernels EXTD spends its time in, each with its epilogue fused (BatchNorm is already folded in).
//
// EXTD spends most of its time in 1x1 convs with few input channels (K = 32...256) over large maps (76,800
// pixels at 640x480). As separate passes, each conv writes its output to memory, then the bias / PReLU / skip
// pass reads and writes it again. Here the GEMM runs on column tiles that fit in L2, and the epilogue runs on
// each tile right after its GEMM, while it is still in cache: one trip to memory per activation instead of three.

/// out[M, HW] = act(W[M, K] x X[K, HW] + bias) (+ residual) per image, for a 1x1, stride-1, unpadded, ungrouped
/// conv on NCHW float32 data.
struct PointwiseConv: Sendable {
    let weight: Tensor       // [M, K], contiguous
    let bias: [Float]        // [M]
    let activation: Activation
    var outChannels: Int { weight.shape[0] }
    var inChannels: Int { weight.shape[1] }

    init(weight: Tensor, bias: [Float]?, activation: Activation) throws {
        guard weight.rank == 4, weight.shape[2] == 1, weight.shape[3] == 1 else {
            throw VisionError.shapeMismatch("pointwise conv: weight must be [M, K, 1, 1], got \(weight.shape)")
        }
        self.weight = try weight.reshape([weight.shape[0], weight.shape[1]]).contiguous()
        self.bias = bias ?? [Float](repeating: 0, count: weight.shape[0])
        self.activation = activation
    }

    func callAsFunction(_ x: Tensor, residual: Tensor? = nil) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == inChannels, x.dtype == .float32 else {
            throw VisionError.shapeMismatch("pointwise conv: input \(x.dtype) \(x.shape) does not fit weight [\(outChannels), \(inChannels), 1, 1]")
        }
        let n = x.shape[0], h = x.shape[2], w = x.shape[3], hw = h * w, m = outChannels, k = inChannels
        if let residual, residual.shape != [n, m, h, w] {
            throw VisionError.shapeMismatch("pointwise conv: residual \(residual.shape) must be [\(n), \(m), \(h), \(w)]")
        }
        // Every element is written below (bias fill, then GEMM with beta = 1), so no zero-fill pass.
        var out = try Tensor.uninitialized([n, m, h, w])
        if out.count == 0 { return out }
        let xc = try x.contiguous(), rc = try residual?.contiguous()
        // Columns per tile: the K x T input tile and the M x T output tile together in about 256 KB (half of a
        // share of L2), a multiple of 16 for the vector epilogue.
        let tile = min(hw, max(64, (65_536 / (k + m)) / 16 * 16))
        let tiles = (hw + tile - 1) / tile, items = n * tiles
        let slope: Float, clamp: Bool
        switch activation {
        case .none: slope = 1; clamp = false
        case .relu: slope = 0; clamp = true
        case .prelu(let a): slope = a; clamp = true
        }
        try out.withUnsafeMutableBufferPointer(as: Float.self) { ob in
            guard let ob = ob.baseAddress else { return }
            let po = MutablePointerBox(ob), px = MutablePointerBox(xc.pointer(Float.self))
            let pw = MutablePointerBox(weight.pointer(Float.self))
            let pr = rc.map { MutablePointerBox($0.pointer(Float.self)) }
            let bias = self.bias
            let threads = min(Threading.threadCount, max(1, items / 4))
            withExtendedLifetime((xc, rc, weight)) {
                let run: @Sendable (Int) -> Void = { item in
                    let b = item / tiles, p0 = (item % tiles) * tile, cols = min(tile, hw - p0)
                    let c = po.value + b * m * hw + p0
                    // The bias seeds the tile and the GEMM accumulates onto it (beta = 1): OpenBLAS would
                    // otherwise make a separate pass to zero C for beta = 0.
                    for row in 0..<m { (c + row * hw).update(repeating: bias[row], count: cols) }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(cols), blasint(k),
                                1, pw.value, blasint(k), px.value + b * k * hw + p0, blasint(hw), 1, c, blasint(hw))
                    guard clamp || pr != nil else { return }
                    let r = pr.map { $0.value + b * m * hw + p0 }
                    for row in 0..<m { tileEpilogue(c + row * hw, cols, slope, clamp, r.map { $0 + row * hw }) }
                }
                let previous = openblas_get_num_threads()
                // BLAS inside the tiles runs on one thread: the tiles themselves are spread over the threads.
                openblas_set_num_threads(1)
                forEachItem(items, threads: threads, run)
                openblas_set_num_threads(previous)
            }
        }
        return out
    }
}

/// v = v >= 0 ? v : v * slope (when clamping), then v += r, over `n` floats of one output row segment.
@inline(__always)
func tileEpilogue(_ o: UnsafeMutablePointer<Float>, _ n: Int, _ slope: Float, _ clamp: Bool,
                  _ r: UnsafeMutablePointer<Float>?) {
    if let r {
        if clamp {
            for j in 0..<n { let v = o[j]; o[j] = (v >= 0 ? v : v * slope) + r[j] }
        } else {
            for j in 0..<n { o[j] += r[j] }
        }
    } else if clamp {
        for j in 0..<n { let v = o[j]; o[j] = v >= 0 ? v : v * slope }
    }
}

// MARK: - depthwise 3x3

// EXTD's stride-1 depthwise 3x3 convs (every block and every upsampling step) with BatchNorm folded and PReLU
// fused. VisionCore's general depthwise kernel first copies each plane into a padded scratch plane, and the
// activation would then be another pass over the output; here the taps read the unpadded plane directly (the
// border columns are computed apart), and each output row gets its bias and PReLU while it is still in L1.

/// A stride-1, padding-1, 3x3 depthwise conv with per-channel bias and a fused activation.
struct Depthwise3x3: Sendable {
    let weights: [Float]   // [C * 9]
    let bias: [Float]      // [C]
    let activation: Activation
    var channels: Int { bias.count }

    init(weight: Tensor, bias: Tensor?, activation: Activation) throws {
        guard weight.rank == 4, weight.shape[1] == 1, weight.shape[2] == 3, weight.shape[3] == 3 else {
            throw VisionError.shapeMismatch("depthwise 3x3: weight must be [C, 1, 3, 3], got \(weight.shape)")
        }
        weights = try weight.toArray(Float.self)
        self.bias = try bias?.toArray(Float.self) ?? [Float](repeating: 0, count: weight.shape[0])
        self.activation = activation
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == channels, x.dtype == .float32 else {
            throw VisionError.shapeMismatch("depthwise 3x3: input \(x.dtype) \(x.shape) does not fit \(channels) channels")
        }
        let n = x.shape[0], h = x.shape[2], w = x.shape[3], planes = n * channels
        var out = try Tensor.uninitialized(x.shape)
        if out.count == 0 { return out }
        let xc = try x.contiguous()
        let slope: Float, clamp: Bool
        switch activation {
        case .none: slope = 1; clamp = false
        case .relu: slope = 0; clamp = true
        case .prelu(let a): slope = a; clamp = true
        }
        try out.withUnsafeMutableBufferPointer(as: Float.self) { ob in
            guard let ob = ob.baseAddress else { return }
            let po = MutablePointerBox(ob), px = MutablePointerBox(xc.pointer(Float.self))
            let wts = weights, bs = bias, c = channels
            let threads = min(Threading.threadCount, max(1, planes * h * w / 32_768))
            withExtendedLifetime(xc) {
                // Work items are runs of planes of about 32K outputs (one plane each on the large scales).
                let per = max(1, 32_768 / max(h * w, 1)), items = (planes + per - 1) / per
                let run: @Sendable (Int) -> Void = { item in
                    wts.withUnsafeBufferPointer { wp in
                        guard let wb = wp.baseAddress else { return }
                        for plane in (item * per)..<min(planes, (item + 1) * per) {
                            let ch = plane % c
                            depthwisePlane(px.value + plane * h * w, po.value + plane * h * w, h, w, wb + 9 * ch,
                                           bs[ch], slope, clamp)
                        }
                    }
                }
                forEachItem(items, threads: threads, run)
            }
        }
        return out
    }
}

private typealias F8 = SIMD8<Float>

@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inline(__always) private func madd(_ a: F8, _ b: F8, _ c: F8) -> F8 {
    #if VC_FMA
    return c.addingProduct(a, b)
    #else
    return c + a * b  // without FMA code generation, addingProduct becomes a libm call per lane
    #endif
}

/// One H x W plane: out = act(bias + sum of the 3x3 taps over the zero-padded input).
@inline(__always)
private func depthwisePlane(_ x: UnsafeMutablePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ h: Int, _ w: Int,
                            _ k: UnsafePointer<Float>, _ bias: Float, _ slope: Float, _ clamp: Bool) {
    let k00 = F8(repeating: k[0]), k01 = F8(repeating: k[1]), k02 = F8(repeating: k[2])
    let k10 = F8(repeating: k[3]), k11 = F8(repeating: k[4]), k12 = F8(repeating: k[5])
    let k20 = F8(repeating: k[6]), k21 = F8(repeating: k[7]), k22 = F8(repeating: k[8])
    let vb = F8(repeating: bias)
    for y in 0..<h {
        let r1 = UnsafePointer(x + y &* w)
        let r0: UnsafePointer<Float>? = y > 0 ? r1 - w : nil
        let r2: UnsafePointer<Float>? = y + 1 < h ? r1 + w : nil
        let orow = o + y &* w
        // Interior columns 1 ..< w-1, eight at a time: every tap column exists.
        var i = 1
        while i &+ 8 <= w &- 1 {
            var a = madd(load8(r1 + (i &- 1)), k10, vb)
            a = madd(load8(r1 + i), k11, a)
            a = madd(load8(r1 + (i &+ 1)), k12, a)
            if let r0 {
                a = madd(load8(r0 + (i &- 1)), k00, a)
                a = madd(load8(r0 + i), k01, a)
                a = madd(load8(r0 + (i &+ 1)), k02, a)
            }
            if let r2 {
                a = madd(load8(r2 + (i &- 1)), k20, a)
                a = madd(load8(r2 + i), k21, a)
                a = madd(load8(r2 + (i &+ 1)), k22, a)
            }
            UnsafeMutableRawPointer(orow + i).storeBytes(of: a, as: F8.self)
            i &+= 8
        }
        // The remaining columns (including both borders) one at a time, with missing taps as zeros.
        @inline(__always) func row(_ r: UnsafePointer<Float>?, _ j: Int, _ kr: Int) -> Float {
            guard let r else { return 0 }
            var s = r[j] * k[kr + 1]
            if j > 0 { s += r[j - 1] * k[kr] }
            if j + 1 < w { s += r[j + 1] * k[kr + 2] }
            return s
        }
        @inline(__always) func scalar(_ j: Int) { orow[j] = bias + row(r0, j, 0) + row(r1, j, 3) + row(r2, j, 6) }
        scalar(0)
        if w > 1 {
            var j = max(i, 1)
            while j < w { scalar(j); j += 1 }
        }
        if clamp {
            for j in 0..<w { let v = orow[j]; orow[j] = v >= 0 ? v : v * slope }
        }
    }
}
