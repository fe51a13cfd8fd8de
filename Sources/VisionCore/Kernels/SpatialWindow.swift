/// Shared machinery of the 2-D sliding-window ops (convolution, transposed convolution, pooling): overflow-safe
/// argument checks and output-size arithmetic with PyTorch's rules, and a padded, stride-phase-split scratch copy
/// of one input plane that lets the SIMD kernels read every tap of consecutive outputs with contiguous loads.

import Synchronization

typealias F8 = SIMD8<Float>

/// `c + a * b` on 8 lanes: a fused multiply-add only where the build enables FMA (toolchain.md section 6: without
/// it, `addingProduct` becomes a libm call per lane).
@inline(__always) func vmadd(_ a: F8, _ b: F8, _ c: F8) -> F8 {
    #if VC_FMA
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

/// The hyper-parameters of a 2-D window along height and width, as validated integers.
struct Window2d: CustomStringConvertible {
    var kernel: (Int, Int)
    var stride: (Int, Int)
    var padding: (Int, Int)
    var dilation: (Int, Int)

    var description: String {
        "kernel \(kernel), stride \(stride), padding \(padding), dilation \(dilation)"
    }

    /// Extent of the dilated kernel, (k - 1) * d + 1, per axis (validated not to overflow by `validate`).
    var span: (Int, Int) { ((kernel.0 - 1) &* dilation.0 &+ 1, (kernel.1 - 1) &* dilation.1 &+ 1) }

    /// Refuses non-positive kernels, strides and dilations, negative padding, and values so large that the size
    /// arithmetic could overflow (user values arrive from C as arbitrary int64).
    func validate(_ op: String) throws {
        let limit = 1 << 32
        for (name, v) in [("kernel size", kernel), ("stride", stride), ("dilation", dilation)] {
            guard v.0 >= 1, v.1 >= 1 else {
                throw VisionError.invalidArgument("\(op): \(name) must be positive, got \(v)")
            }
            guard v.0 <= limit, v.1 <= limit else {
                throw VisionError.invalidArgument("\(op): \(name) \(v) is too large")
            }
        }
        guard padding.0 >= 0, padding.1 >= 0 else {
            throw VisionError.invalidArgument("\(op): padding must be non-negative, got \(padding)")
        }
        guard padding.0 <= limit, padding.1 <= limit else {
            throw VisionError.invalidArgument("\(op): padding \(padding) is too large")
        }
        // kernel and dilation are at most 2^32 each, so (k - 1) * d can reach 2^64: check it.
        for (k, d) in [(kernel.0, dilation.0), (kernel.1, dilation.1)] {
            let (m, o) = (k - 1).multipliedReportingOverflow(by: d)
            guard !o, m <= Limits.maxBytes else {
                throw VisionError.invalidArgument("\(op): dilated kernel \(kernel) with dilation \(dilation) is too large")
            }
        }
    }

    /// Output size of a convolution along one axis (floor mode); throws when the dilated kernel is larger than the
    /// padded input. Inputs are validated, so no intermediate can overflow.
    static func convOutput(_ op: String, input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int,
                           shapes: @autoclosure () -> String) throws -> Int {
        let padded = input + 2 * padding
        let span = (kernel - 1) * dilation + 1
        guard span <= padded else {
            throw VisionError.shapeMismatch("\(op): dilated kernel size \(span) is larger than the padded input size \(padded) (\(shapes()))")
        }
        return (padded - span) / stride + 1
    }

    /// Output size of a pooling window along one axis with PyTorch's rule for ceil mode: rounding up may add one
    /// more window, but only if that window starts inside the input or the left padding.
    static func poolOutput(_ op: String, input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int,
                           ceilMode: Bool, shapes: @autoclosure () -> String) throws -> Int {
        // Floor division of a possibly negative numerator (a ceil-mode window may start inside the input and
        // still reach past the padded input, which PyTorch allows).
        let numerator = input + 2 * padding - ((kernel - 1) * dilation + 1) + (ceilMode ? stride - 1 : 0)
        let q = numerator / stride, floorQ = (numerator % stride != 0 && numerator < 0) ? q - 1 : q
        var out = floorQ + 1
        if ceilMode && out >= 1 && (out - 1) * stride >= input + padding { out -= 1 }
        guard out >= 1 else {
            throw VisionError.shapeMismatch("\(op): output size is \(out) for input size \(input) (\(shapes())); the window does not fit")
        }
        return out
    }
}

/// Reads a (height, width) pair that must both be positive, for messages naming `what`.
func positivePair(_ p: (Int, Int), _ what: String, _ op: String) throws -> (Int, Int) {
    guard p.0 >= 1, p.1 >= 1 else { throw VisionError.invalidArgument("\(op): \(what) must be positive, got \(p)") }
    return p
}

/// Layout of a scratch copy of one H x W plane, padded with a fill value and split by the column stride into
/// `phases` sub-planes: padded column x lives in phase x % s at column x / s. Output column `ox` of a window tap
/// at padded column offset `t` (= kx * dilation) then reads phase t % s, column ox + t / s: for 16 consecutive
/// outputs that is one contiguous load, whatever the stride. Rows are not split (row access is a pointer offset).
/// Each phase row carries 16 floats of slack so that the last vector of a row may read past the valid columns.
struct PhasePlaneLayout {
    let rows: Int
    let phases: Int
    let width: Int
    let padTop: Int
    let padLeft: Int
    let inputHeight: Int
    let inputWidth: Int

    /// Floats between consecutive padded rows.
    var rowStride: Int { phases * width }
    /// Floats in the whole scratch plane.
    var count: Int { rows * rowStride }

    /// Largest scratch plane, in floats (256 MiB): beyond it callers fall back to another kernel or refuse.
    static let maxCount = 1 << 26

    /// A layout covering every row and column read by `outH` x `outW` outputs of `window` over an H x W input
    /// (in ceil mode windows may reach past the padded input; those cells hold the fill value too). Nil when the
    /// plane would exceed `maxCount` floats (huge padding or strides).
    init?(height: Int, width inputWidth: Int, window w: Window2d, outH: Int, outW: Int) {
        // Validated windows keep every term below 2^40, so these sums cannot overflow.
        let span = w.span
        rows = max(height + 2 * w.padding.0, (outH - 1) * w.stride.0 + span.0)
        let cols = max(inputWidth + 2 * w.padding.1, (outW - 1) * w.stride.1 + span.1)
        phases = w.stride.1
        width = (cols + phases - 1) / phases + 16
        let (rowStride, o1) = phases.multipliedReportingOverflow(by: width)
        let (total, o2) = rows.multipliedReportingOverflow(by: rowStride)
        if o1 || o2 || total > PhasePlaneLayout.maxCount { return nil }
        padTop = w.padding.0
        padLeft = w.padding.1
        inputHeight = height
        self.inputWidth = inputWidth
    }

    /// Offset, within a padded row, of the first output's read for a tap at padded column offset `t`.
    @inline(__always) func tapOffset(_ t: Int) -> Int { (t % phases) &* width &+ t / phases }

    /// Fills `dst` (`count` floats) from the contiguous plane `src` of inputHeight x inputWidth, padding with `fill`.
    func fill(_ dst: UnsafeMutablePointer<Float>, from src: UnsafePointer<Float>, fill value: Float) {
        let rs = rowStride
        for r in 0..<rows {
            let row = dst + r &* rs
            let iy = r &- padTop
            if iy < 0 || iy >= inputHeight {
                row.update(repeating: value, count: rs)
                continue
            }
            let s = src + iy &* inputWidth
            if phases == 1 {
                // Only the borders need the fill value: the input row covers the rest.
                row.update(repeating: value, count: padLeft)
                (row + padLeft).update(from: s, count: inputWidth)
                (row + (padLeft &+ inputWidth)).update(repeating: value, count: rs &- padLeft &- inputWidth)
                continue
            }
            row.update(repeating: value, count: rs)
            if phases == 2 {
                splitPairs(row, s)
            } else {
                // One strided gather per phase: input columns ix0, ix0 + s, ... land contiguously.
                for q in 0..<phases {
                    let ix0 = (q - padLeft % phases + phases) % phases
                    if ix0 >= inputWidth { continue }
                    let d = row + (q &* width &+ (ix0 &+ padLeft) / phases)
                    let n = (inputWidth - 1 - ix0) / phases + 1
                    for j in 0..<n { d[j] = s[ix0 &+ j &* phases] }
                }
            }
        }
    }

    /// Stride-2 split of one input row: 16 inputs at a time are de-interleaved into 8 even and 8 odd columns.
    @inline(__always)
    private func splitPairs(_ row: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>) {
        // Input column ix goes to phase (ix + padLeft) % 2, column (ix + padLeft) / 2.
        let first = padLeft & 1
        let even = row + (first &* width &+ padLeft / 2)         // destination of ix = 0, 2, 4, ...
        let odd = row + ((first ^ 1) &* width &+ (padLeft + 1) / 2)  // destination of ix = 1, 3, 5, ...
        var ix = 0
        while ix + 16 <= inputWidth {
            let v = UnsafeRawPointer(s + ix).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(even + ix / 2).storeBytes(of: v.evenHalf, as: F8.self)
            UnsafeMutableRawPointer(odd + ix / 2).storeBytes(of: v.oddHalf, as: F8.self)
            ix &+= 16
        }
        while ix < inputWidth {
            if ix & 1 == 0 { even[ix / 2] = s[ix] } else { odd[ix / 2] = s[ix] }
            ix &+= 1
        }
    }
}

/// The shared counter from which the threads of `forEachWorkItem` claim their next item.
private final class WorkCounter: @unchecked Sendable {
    let next = Atomic<Int>(0)
}

/// Runs `body(item, scratch)` for every item in 0..<n on up to `Threading.threadCount` threads (fewer when there
/// are under `minItemsPerThread` items per thread). Threads claim runs of items from a shared counter, so
/// a thread that the OS delays (other work on the machine) does not hold the others up, and each thread owns one
/// scratch buffer of `scratch` floats for all its items.
func forEachWorkItem(_ n: Int, scratch: Int, minItemsPerThread: Int = 1, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
    if n <= 0 { return }
    let threads = min(Threading.threadCount, max(1, n / max(minItemsPerThread, 1)))
    if threads <= 1 {
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: max(scratch, 1))
        defer { buf.deallocate() }
        for i in 0..<n { body(i, buf) }
        return
    }
    let counter = WorkCounter()
    // Claims of about an eighth of a thread's share: few trips to the shared counter's cache line when items
    // are small, and still enough claims left at the end to even out a late thread.
    let step = max(1, n / (threads * 8))
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        SpinPool.shared.run(threads) { _ in
            let buf = UnsafeMutablePointer<Float>.allocate(capacity: max(scratch, 1))
            defer { buf.deallocate() }
            while true {
                let first = counter.next.add(step, ordering: .relaxed).oldValue
                if first >= n { break }
                for i in first..<min(first + step, n) { box.value(i, buf) }
            }
        }
    }
}

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}

@inline(__always) func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
}

/// Stores 16 accumulated outputs at `o`, or only the first `n` of them at the end of a row. The partial store
/// goes through memory: lane extracts make LLVM split the accumulators into narrow pieces in the hot loop.
@inline(__always) func store16(_ a0: F8, _ a1: F8, _ o: UnsafeMutablePointer<Float>, _ n: Int) {
    if n >= 16 {
        store8(a0, o); store8(a1, o + 8)
    } else {
        var lanes = (a0, a1)
        withUnsafeBytes(of: &lanes) { raw in
            for i in 0..<min(n, 16) { o[i] = raw.load(fromByteOffset: i &* 4, as: Float.self) }
        }
    }
}
