import Dispatch
import VisionCore

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
