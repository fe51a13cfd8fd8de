import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// The validated shapes of one conv2d call (PyTorch semantics: NCHW input, OIHW weight [Cout, Cin/groups, kh, kw]).
struct ConvGeometry {
    let batch: Int, inChannels: Int, height: Int, width: Int
    let outChannels: Int, groups: Int
    let window: Window2d
    let outHeight: Int, outWidth: Int

    var inPerGroup: Int { inChannels / groups }
    var outPerGroup: Int { outChannels / groups }
    var kernelArea: Int { window.kernel.0 * window.kernel.1 }
    var outShape: [Int] { [batch, outChannels, outHeight, outWidth] }

    /// Checks every argument and throws `VisionError` naming the shapes; `x` must already be 4-D.
    init(_ op: String, x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
         dilation: (Int, Int), groups: Int) throws {
        try x.requireDType(.float32, op)
        try weight.requireDType(.float32, op)
        try bias?.requireDType(.float32, op)
        try weight.requireRank(4, op, "weight")
        // Built only for an error message: interpolating the shapes costs microseconds (dynamic casts) per call.
        func shapes() -> String { "input \(x.shape), weight \(weight.shape)" }
        guard groups >= 1 else { throw VisionError.invalidArgument("\(op): groups must be positive, got \(groups)") }
        batch = x.shape[0]; inChannels = x.shape[1]; height = x.shape[2]; width = x.shape[3]
        outChannels = weight.shape[0]
        self.groups = groups
        guard inChannels % groups == 0 else {
            throw VisionError.shapeMismatch("\(op): input channels \(inChannels) are not divisible by groups \(groups) (\(shapes()))")
        }
        guard outChannels >= 1, outChannels % groups == 0 else {
            throw VisionError.shapeMismatch("\(op): output channels \(outChannels) must be a positive multiple of groups \(groups) (\(shapes()))")
        }
        // Compared per group: weight.shape[1] * groups could overflow for absurd group counts.
        guard weight.shape[1] == inChannels / groups else {
            throw VisionError.shapeMismatch("\(op): weight has \(weight.shape[1]) input channels per group; input channels \(inChannels) / groups \(groups) = \(inChannels / groups) (\(shapes()))")
        }
        if let bias, bias.shape != [outChannels] {
            throw VisionError.shapeMismatch("\(op): bias \(bias.shape) must be [\(outChannels)] (\(shapes()))")
        }
        window = Window2d(kernel: (weight.shape[2], weight.shape[3]), stride: stride, padding: padding, dilation: dilation)
        try window.validate(op)
        outHeight = try Window2d.convOutput(op, input: height, kernel: window.kernel.0, stride: stride.0,
                                            padding: padding.0, dilation: dilation.0, shapes: shapes())
        outWidth = try Window2d.convOutput(op, input: width, kernel: window.kernel.1, stride: stride.1,
                                           padding: padding.1, dilation: dilation.1, shapes: shapes())
        _ = try Tensor.checkedCount(outShape)
    }
}

/// Kernel taps to drop at each end of each axis because no output ever reads them inside the input: `top` and
/// `bottom` rows, `left` and `right` columns.
struct TapCrop: Equatable {
    var top: Int, bottom: Int, left: Int, right: Int
}

/// The kernel rows and columns at each end that no output ever reads inside the input (`TapCrop`), e.g. the
/// border of a 3x3 kernel on a 1x1 map padded by 1, whose outputs see the input only through the centre tap, or
/// the first row and column of a 3x3 stride-2 kernel on a 2x2 map; nil when there are none, or when the shapes
/// are invalid (the convolution itself then reports them). A crop counts only when the convolution with the
/// remaining taps and its padding reduced by top (left) x dilation has the same outputs.
func unreachableTaps(_ x: Tensor, _ weight: Tensor, stride: (Int, Int), padding: (Int, Int),
                     dilation: (Int, Int)) -> TapCrop? {
    guard x.rank == 3 || x.rank == 4, weight.rank == 4 else { return nil }
    func ends(input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int) -> (Int, Int) {
        // Bounds far beyond any real window keep the arithmetic below from overflowing on absurd arguments.
        guard stride >= 1, dilation >= 1, padding >= 0, kernel >= 1, kernel <= 1 << 12, dilation <= 1 << 20,
              stride <= 1 << 20, padding <= 1 << 30, input <= 1 << 40,
              let output = try? Window2d.convOutput("conv2d", input: input, kernel: kernel, stride: stride,
                                                    padding: padding, dilation: dilation, shapes: ""),
              output >= 1 else { return (0, 0) }
        // Whether some output reads tap t inside [0, input): the first output at or past input 0 is inside.
        func reachable(_ t: Int) -> Bool {
            let first = max(0, (padding - t * dilation + stride - 1) / stride)
            return first < output && first * stride - padding + t * dilation < input
        }
        var loMax = 0, hiMax = 0
        while loMax < kernel - 1 && padding >= (loMax + 1) * dilation && !reachable(loMax) { loMax += 1 }
        while hiMax < kernel - 1 && !reachable(kernel - 1 - hiMax) { hiMax += 1 }
        // With lo taps off the front, hi off the back and padding - lo * dilation, the output count's numerator
        // changes by dilation * (hi - lo): it must stay in the floor's bucket [s q, s q + s - 1].
        let numerator = input + 2 * padding - dilation * (kernel - 1) - 1, r = numerator % stride
        var best = (0, 0)
        for lo in 0...loMax {
            let hi = min(hiMax, kernel - 1 - lo, lo + (stride - 1 - r) / dilation)
            if hi >= 0 && hi >= lo - r / dilation && lo + hi > best.0 + best.1 { best = (lo, hi) }
        }
        return best
    }
    let (h, w) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
    let (top, bottom) = ends(input: h, kernel: weight.shape[2], stride: stride.0, padding: padding.0, dilation: dilation.0)
    let (left, right) = ends(input: w, kernel: weight.shape[3], stride: stride.1, padding: padding.1, dilation: dilation.1)
    let crop = TapCrop(top: top, bottom: bottom, left: left, right: right)
    return crop == TapCrop(top: 0, bottom: 0, left: 0, right: 0) ? nil : crop
}

/// The same convolution without the kernel taps that only ever read padding (`unreachableTaps`): the weight
/// cropped (differentiable, `croppedTaps`) and the padding that keeps every output where it was; nil when no tap
/// can go (or the weight is not float32, which conv2d then reports).
func withoutUnreachableTaps(_ x: Tensor, _ weight: Tensor, stride: (Int, Int), padding: (Int, Int),
                            dilation: (Int, Int)) throws -> (weight: Tensor, padding: (Int, Int))? {
    guard weight.dtype == .float32,
          let crop = unreachableTaps(x, weight, stride: stride, padding: padding, dilation: dilation) else {
        return nil
    }
    return (try croppedTaps(weight, crop), (padding.0 - crop.top * dilation.0, padding.1 - crop.left * dilation.1))
}

/// weight[:, :, top ..< kh - bottom, left ..< kw - right], contiguous. Its gradient is written back in one pass,
/// the cropped taps as zeros (two chained slices would each zero-fill and scatter the whole weight).
private func croppedTaps(_ weight: Tensor, _ crop: TapCrop) throws -> Tensor {
    let (kh, kw) = (weight.shape[2], weight.shape[3])
    let (ih, iw) = (kh - crop.top - crop.bottom, kw - crop.left - crop.right), corner = crop.top * kw + crop.left
    let shape = weight.shape, planes = shape[0] * shape[1]
    // Planes are a few taps each: plain loops, not a memset and memcpy call per plane. `wide` is the kh x kw side.
    func copyTaps(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, fromWide: Bool) {
        let (srcPlane, dstPlane) = fromWide ? (kh * kw, ih * iw) : (ih * iw, kh * kw)
        let (srcRow, dstRow) = fromWide ? (kw, iw) : (iw, kw)
        let (srcAt, dstAt) = fromWide ? (corner, 0) : (0, corner)
        for plane in 0..<planes {
            let sp = src + (plane &* srcPlane &+ srcAt), d = dst + (plane &* dstPlane &+ dstAt)
            for r in 0..<ih {
                for c in 0..<iw { d[r &* dstRow &+ c] = sp[r &* srcRow &+ c] }
            }
        }
    }
    let wc = try weight.detach().contiguous()
    let inner = try Tensor.uninitialized([shape[0], shape[1], ih, iw])
    withExtendedLifetime(wc) { copyTaps(wc.pointer(Float.self), inner.pointer(Float.self), fromWide: true) }
    return recordGrad("croppedTaps", inner, inputs: [weight]) { g in
        let gc = try g.contiguous()
        let full = try Tensor.uninitialized(shape)
        withExtendedLifetime(gc) {
            full.pointer(Float.self).update(repeating: 0, count: full.count)
            copyTaps(gc.pointer(Float.self), full.pointer(Float.self), fromWide: false)
        }
        return [full]
    }
}

/// Accepts an unbatched [C, H, W] input as PyTorch does: runs `body` on [1, C, H, W] and drops the batch again.
func withBatchDimension(_ x: Tensor, _ op: String, _ body: (Tensor) throws -> Tensor) throws -> Tensor {
    switch x.rank {
    case 4: return try body(x)
    case 3: return try body(try x.unsqueeze(axis: 0)).squeeze(axis: 0)
    default:
        throw VisionError.shapeMismatch("\(op): input must be [N, C, H, W] or [C, H, W], got shape \(x.shape)")
    }
}

/// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d) of an NCHW (or CHW) float32 input with an
/// OIHW weight [Cout, Cin/groups, kh, kw], optional bias [Cout].
///
/// Kernels: a depthwise convolution (groups == Cin == Cout) uses a direct SIMD kernel; everything else is one
/// GEMM per image and group without im2col (`convGemm`: the taps read a zero-padded copy of the input at constant
/// offsets; a 1x1, stride-1, unpadded convolution reads the NCHW input in place).
/// Training on maps with fewer pixels than kernel taps runs the conv as a product with its dense matrix
/// (`denseConv`). Edge cases: an empty batch gives an empty output; NaN and Inf propagate as in a sum of products;
/// a kernel larger than the padded input, bad channel/group counts, non-positive stride or dilation and negative
/// padding throw.
/// Differentiable in x, weight and bias (see `conv2dBackward`).
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                   padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) throws -> Tensor {
    if let (inner, innerPadding) = try withoutUnreachableTaps(x, weight, stride: stride, padding: padding, dilation: dilation) {
        // Differentiable crop: the cropped taps' weight gradient is zero.
        return try conv2d(x, weight: inner, bias: bias, stride: stride, padding: innerPadding, dilation: dilation,
                          groups: groups)
    }
    if Autograd.isRecording && x.rank == 4 && (x.requiresGrad || weight.requiresGrad || bias?.requiresGrad == true) {
        let geo = try ConvGeometry("conv2d", x: x, weight: weight, bias: bias, stride: stride, padding: padding,
                                   dilation: dilation, groups: groups)
        if denseConvApplies(geo) { return try denseConv(x, weight: weight, bias: bias, geo) }
    }
    let y = try conv2dForward(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    let (xd, wd) = (x.detach(), weight.detach())
    // A network's input needs no gradient: its transposed convolution (as costly as the forward) is skipped.
    let inputGrad = x.requiresGrad
    return recordGrad("conv2d", y, inputs: [x, weight] + (bias.map { [$0] } ?? [])) { g in
        try conv2dBackward(g, xd, wd, hasBias: bias != nil, stride: stride, padding: padding, dilation: dilation,
                           groups: groups, inputGrad: inputGrad)
    }
}

/// conv2d followed by `epilogue` (scale and shift per channel, residual, activation) applied to each output tile
/// while it is in cache: the inference path of conv → BatchNorm → (+ shortcut) → activation. Not differentiable
/// (inference only; training composes conv2d, batchNorm and the activation).
///
/// When the epilogue holds the only reference to its residual's storage (the caller handed it over with
/// `consume` and kept no copy or view), the output may be written over the residual, which nothing else can
/// see: the result then shares the residual's memory instead of taking new.
public func conv2dFused(_ x: Tensor, weight: Tensor, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                        dilation: (Int, Int) = (1, 1), groups: Int = 1, epilogue: consuming ConvEpilogue) throws -> Tensor {
    if let (inner, innerPadding) = try withoutUnreachableTaps(x, weight.detach(), stride: stride, padding: padding,
                                                              dilation: dilation) {
        return try conv2dFused(x, weight: inner, stride: stride, padding: innerPadding, dilation: dilation,
                               groups: groups, epilogue: consume epilogue)
    }
    return try conv2dForward(x.detach(), weight: weight.detach(), bias: nil, stride: stride, padding: padding,
                             dilation: dilation, groups: groups, epilogue: consume epilogue)
}

/// The kernel that runs a forward convolution, in order of precedence.
private enum ConvKernel {
    case depthwise(PhasePlaneLayout), rows, winograd, pointwiseSmallMaps, gemm

    init(_ g: ConvGeometry) {
        let w = g.window
        if g.groups == g.inChannels && g.outChannels == g.inChannels && w.stride.1 <= 8,
           let layout = PhasePlaneLayout(height: g.height, width: g.width, window: w, outH: g.outHeight,
                                         outW: g.outWidth) {
            self = .depthwise(layout)
        } else if convRowsApplies(g) {
            self = .rows
        } else if winogradApplies(g) {
            self = .winograd
        } else if pointwiseSmallMapsApplies(g) {
            self = .pointwiseSmallMaps
        } else {
            self = .gemm
        }
    }

    /// Whether the epilogue reads each residual element before it writes the output element at the same place
    /// (per element or per register tile), so that the output may overwrite the residual; OpenBLAS's products
    /// (`pointwiseSmallMaps`) write the output before the residual joins.
    var overwritesResidualSafely: Bool {
        switch self {
        case .winograd, .gemm: return true
        case .depthwise, .rows, .pointwiseSmallMaps: return false
        }
    }
}

/// The residual as the output tensor when the output may be written over it: the epilogue holds the only
/// reference to its storage, it is contiguous float32 of the output's shape, and `kernel` reads each residual
/// element before writing there. In ResNet's blocks the last conv's output then lands on its shortcut: a map of
/// memory fewer (resnet50's peak 122.9 -> 119.1 MB), and no writes to memory that is cold in a network (on a
/// Zen 4, in-process with alternate forwards: its 16 convs with a residual 0.93-0.98x the time, the network 0.98-1.0x).
private func residualAsOutput(_ epilogue: inout ConvEpilogue?, _ g: ConvGeometry, _ kernel: ConvKernel) -> Tensor? {
    guard kernel.overwritesResidualSafely, epilogue?.residual?.ownsStorageAlone() == true,
          let residual = epilogue?.residual, residual.dtype == .float32, residual.isContiguous,
          residual.shape == g.outShape else { return nil }
    return residual
}

private func conv2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                           dilation: (Int, Int), groups: Int, epilogue: consuming ConvEpilogue? = nil) throws -> Tensor {
    try withBatchDimension(x, "conv2d") { x in
        let g = try ConvGeometry("conv2d", x: x, weight: weight, bias: bias, stride: stride, padding: padding,
                                 dilation: dilation, groups: groups)
        try epilogue?.validate(outShape: g.outShape)
        if stridedPointwise(g) {
            return try conv2dForward(try subsampled(try x.contiguous(), g), weight: weight, bias: bias, stride: (1, 1),
                                     padding: (0, 0), dilation: (1, 1), groups: groups, epilogue: copy epilogue)
        }
        let kernel = ConvKernel(g)
        let out = try residualAsOutput(&epilogue, g, kernel) ?? Tensor.uninitialized(g.outShape)
        if out.count == 0 { return out }
        let xc = try x.contiguous(), wc = try weight.contiguous(), bc = try bias?.contiguous()
        let rc = try epilogue?.residual?.contiguous()
        let shift = try epilogue?.shift ?? bc?.toArray(Float.self)
        let px = xc.pointer(Float.self), po = out.pointer(Float.self), pw = UnsafePointer(wc.pointer(Float.self))
        try withExtendedLifetime((xc, wc, rc)) {
            try shift.withOptionalBuffer { sh in
                try (epilogue?.scale).withOptionalBuffer { sc in
                    let epi = EpiloguePointers(scale: sc, shift: sh, residual: rc.map { UnsafePointer($0.pointer(Float.self)) },
                                               activation: epilogue?.activation, parameter: epilogue?.activationParameter ?? 0,
                                               residualAfter: epilogue?.residualAfterActivation ?? false)
                    switch kernel {
                    case .depthwise(let layout): depthwiseConv(g, layout, px, pw, epi, po)
                    case .rows: try convRows(g, px, pw, epi, po)
                    case .winograd: try winogradConv(g, px, pw, epi, po)
                    case .pointwiseSmallMaps: pointwiseSmallMapsConv(g, px, pw, epi, po)
                    case .gemm: try convGemm(g, px, pw, epi, po)
                    }
                }
            }
        }
        return out
    }
}

/// Whether a conv is 1x1, unpadded and strided (ResNet's downsampling shortcuts): it reads one input pixel in
/// sh * sw, so it runs as the stride-1 conv of those pixels (`subsampled`), whose GEMMs read contiguous rows,
/// instead of packing every stride phase of the input for the one phase it reads.
func stridedPointwise(_ g: ConvGeometry) -> Bool {
    let w = g.window
    return w.kernel == (1, 1) && w.padding == (0, 0) && w.stride != (1, 1)
}

/// The pixels of contiguous NCHW `x` that a `stridedPointwise` conv reads, as a contiguous [N, C, Ho, Wo] tensor.
func subsampled(_ x: Tensor, _ g: ConvGeometry) throws -> Tensor {
    let (oh, ow) = (g.outHeight, g.outWidth), planes = g.batch * g.inChannels
    let out = try Tensor.uninitialized([g.batch, g.inChannels, oh, ow])
    let src = SendablePointer(x.pointer(Float.self)), dst = SendablePointer(out.pointer(Float.self))
    let (h, w) = (g.height, g.width), (sh, sw) = g.window.stride
    // Items of about 64K output floats, so that small maps do not pay a fork per plane.
    let per = max(1, 65_536 / max(oh * ow, 1))
    withExtendedLifetime(x) {
        forEachWorkItem((planes + per - 1) / per, scratch: 0) { item, _ in
            let p0 = item * per, count = min(per, planes - p0)
            vck_subsample(src.p + p0 * h * w, count, h, w, sh, sw, oh, ow, dst.p + p0 * oh * ow)
        }
    }
    return out
}

extension Optional where Wrapped == [Float] {
    /// Runs `body` with the array's base address, or nil.
    func withOptionalBuffer<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        guard let a = self else { return try body(nil) }
        return try a.withUnsafeBufferPointer { try body($0.baseAddress) }
    }
}

/// Output pixels per GEMM tile: about 128K floats of column buffer (half of a 1 MB L2), a multiple of 16.
func gemmTileColumns(rows k: Int, columns n: Int) -> Int {
    let t = max(64, (131_072 / max(k, 1)) / 16 * 16)
    return min(t, n)
}

/// Fills `col` [channels * kh * kw, pixels.count] (row (c, ky, kx), column = output pixel) from `channels`
/// contiguous H x W planes. Zero padding is written explicitly; the valid column range of each kernel tap is
/// computed once per output row, so the inner copy has no bounds tests (a memcpy when the stride is 1).
func im2colTile(_ g: ConvGeometry, _ x: UnsafePointer<Float>, channels: Int, pixels: Range<Int>,
                _ col: UnsafeMutablePointer<Float>) {
    let w = g.window, h = g.height, wd = g.width, wo = g.outWidth, n = pixels.count
    let (sh, sw) = w.stride, (ph, pw) = w.padding, (dh, dw) = w.dilation
    var row = col
    for c in 0..<channels {
        let plane = x + c &* h &* wd
        for ky in 0..<w.kernel.0 {
            for kx in 0..<w.kernel.1 {
                // Output columns ox whose input column ox*sw - pw + kx*dw lies in [0, wd).
                let shift = kx &* dw &- pw
                let lo = shift >= 0 ? 0 : (-shift + sw - 1) / sw
                let hi = wd - 1 - shift < 0 ? 0 : min(wo, (wd - 1 - shift) / sw + 1)
                var p = pixels.lowerBound
                while p < pixels.upperBound {
                    let oy = p / wo, ox0 = p - oy &* wo
                    let ox1 = min(wo, ox0 &+ (pixels.upperBound - p))
                    let dst = row + (p - pixels.lowerBound)
                    let iy = oy &* sh &- ph &+ ky &* dh
                    if iy < 0 || iy >= h || lo >= hi {
                        dst.update(repeating: 0, count: ox1 - ox0)
                    } else {
                        let a = max(ox0, lo), b = min(ox1, hi)
                        if a >= b {
                            dst.update(repeating: 0, count: ox1 - ox0)
                        } else {
                            if a > ox0 { dst.update(repeating: 0, count: a - ox0) }
                            let src = plane + (iy &* wd &+ shift)
                            if sw == 1 {
                                (dst + (a - ox0)).update(from: src + a, count: b - a)
                            } else {
                                for ox in a..<b { dst[ox &- ox0] = src[ox &* sw] }
                            }
                            if ox1 > b { (dst + (b - ox0)).update(repeating: 0, count: ox1 - b) }
                        }
                    }
                    p &+= ox1 - ox0
                }
                row += n
            }
        }
    }
}

/// conv2d by its definition, in Double (for tests): seven nested loops, no layout tricks.
public func conv2dReference(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                            padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) throws -> Tensor {
    try withBatchDimension(x, "conv2d") { x in
        let g = try ConvGeometry("conv2d", x: x, weight: weight, bias: bias, stride: stride, padding: padding,
                                 dilation: dilation, groups: groups)
        let xs = try x.toArray(Float.self), ws = try weight.toArray(Float.self), bs = try bias?.toArray(Float.self)
        let (kh, kw) = g.window.kernel
        var result = [Float](repeating: 0, count: g.outShape.reduce(1, *))
        var i = 0
        for n in 0..<g.batch {
            for co in 0..<g.outChannels {
                let grp = co / g.outPerGroup
                for oy in 0..<g.outHeight {
                    for ox in 0..<g.outWidth {
                        var s = Double(bs?[co] ?? 0)
                        for ci in 0..<g.inPerGroup {
                            let c = grp * g.inPerGroup + ci
                            for ky in 0..<kh {
                                let iy = oy * stride.0 - padding.0 + ky * dilation.0
                                if iy < 0 || iy >= g.height { continue }
                                for kx in 0..<kw {
                                    let ix = ox * stride.1 - padding.1 + kx * dilation.1
                                    if ix < 0 || ix >= g.width { continue }
                                    let xv = xs[((n * g.inChannels + c) * g.height + iy) * g.width + ix]
                                    let wv = ws[((co * g.inPerGroup + ci) * kh + ky) * kw + kx]
                                    s += Double(xv) * Double(wv)
                                }
                            }
                        }
                        result[i] = Float(s)
                        i += 1
                    }
                }
            }
        }
        return try Tensor(result, shape: g.outShape)
    }
}

// MARK: backward

/// Gradients of conv2d: the input's by the transposed convolution of the output gradient (with the output
/// padding that restores the input size), the weight's by im2col of the input against the output gradient
/// (accumulated over images and pixel tiles), the bias's by summing the output gradient per channel.
func conv2dBackward(_ g: Tensor, _ x: Tensor, _ w: Tensor, hasBias: Bool, stride: (Int, Int), padding: (Int, Int),
                    dilation: (Int, Int), groups: Int, inputGrad: Bool = true) throws -> [Tensor?] {
    let x4 = x.rank == 3 ? try x.unsqueeze(axis: 0) : x, g4 = g.rank == 3 ? try g.unsqueeze(axis: 0) : g
    let geo = try ConvGeometry("conv2d", x: x4, weight: w, bias: nil, stride: stride, padding: padding,
                               dilation: dilation, groups: groups)
    let (kh, kw) = geo.window.kernel
    let extra = (geo.height - ((geo.outHeight - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + 1),
                 geo.width - ((geo.outWidth - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + 1))
    let gx: Tensor?
    let (p0, p1) = (dilation.0 * (kh - 1) - padding.0, dilation.1 * (kw - 1) - padding.1)
    if !inputGrad {
        gx = nil
    } else if stride == (1, 1),
              let gradGeo = try inputGradientWinograd(g4, w, padding: (p0, p1), dilation: dilation, groups: groups),
              gradGeo.outHeight == geo.height, gradGeo.outWidth == geo.width {
        // Stride-1 3x3: the same transposed convolution by Winograd, reading w transposed in place.
        let out = try Tensor.uninitialized(x4.shape), gc = try g4.contiguous(), wc = try w.contiguous()
        try withExtendedLifetime((gc, wc)) {
            try winogradConv(gradGeo, gc.pointer(Float.self), wc.pointer(Float.self), transposedWeights: true,
                             EpiloguePointers.none, out.pointer(Float.self))
        }
        gx = try out.reshape(x.shape)
    } else if stride == (1, 1) && p0 >= 0 && p1 >= 0 && geo.inPerGroup * groups == geo.inChannels {
        // Stride 1: the transposed convolution is a convolution of the output gradient with the flipped,
        // in/out-swapped weights, which runs on the forward GEMM (no col2im).
        gx = try conv2dForward(g4, weight: try flippedTransposedWeights(w.contiguous(), groups: groups), bias: nil,
                               stride: (1, 1), padding: (p0, p1), dilation: dilation, groups: groups).reshape(x.shape)
    } else {
        gx = try convTranspose2d(g4, weight: w, stride: stride, padding: padding, outputPadding: extra,
                                 groups: groups, dilation: dilation).reshape(x.shape)
    }
    let gw = try conv2dWeightGrad(geo, x4.contiguous(), g4.contiguous(), weightShape: w.shape)
    let gb = hasBias ? try sum(g4, axes: [0, 2, 3]) : nil
    return hasBias ? [gx, gw, gb] : [gx, gw]
}

/// The geometry of the conv that maps a stride-1 conv's output gradient `g` back to its input, when Winograd runs
/// it: 3x3 weights `w` [Cout, Cin, 3, 3], ungrouped, and a padding (p0, p1) that is not negative.
private func inputGradientWinograd(_ g: Tensor, _ w: Tensor, padding: (Int, Int), dilation: (Int, Int),
                                   groups: Int) throws -> ConvGeometry? {
    guard groups == 1, w.shape.count == 4, w.shape[2] == 3, w.shape[3] == 3, padding.0 >= 0, padding.1 >= 0,
          dilation == (1, 1) else { return nil }
    // The gradient conv's weight shape [Cin, Cout, 3, 3] (only its shape is read).
    let shape = try w.reshape([w.shape[1], w.shape[0], 3, 3])
    let geo = try ConvGeometry("conv2d", x: g, weight: shape, bias: nil, stride: (1, 1), padding: padding,
                               dilation: (1, 1), groups: 1)
    return winogradApplies(geo) ? geo : nil
}

/// W'[g * Cin/g + ci, co, ky, kx] = W[g * Cout/g + co, ci, kh-1-ky, kw-1-kx]: the weights of the convolution
/// that maps a stride-1 conv's output gradient back to its input.
private func flippedTransposedWeights(_ w: Tensor, groups: Int) throws -> Tensor {
    let (cout, cinPer, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    let coutPer = cout / groups, area = kh * kw
    let out = try Tensor.uninitialized([cinPer * groups, coutPer, kh, kw])
    let src = w.pointer(Float.self), dst = out.pointer(Float.self)
    withExtendedLifetime(w) {
        for g in 0..<groups {
            for co in 0..<coutPer {
                for ci in 0..<cinPer {
                    let from = src + ((g * coutPer + co) * cinPer + ci) * area
                    let to = dst + ((g * cinPer + ci) * coutPer + co) * area
                    for t in 0..<area { to[t] = from[area - 1 - t] }
                }
            }
        }
    }
    return out
}
