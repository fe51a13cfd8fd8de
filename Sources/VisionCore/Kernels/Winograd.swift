import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// False when the environment sets VISIONCORE_NO_WINOGRAD: every convolution then runs on the direct conv GEMM
/// (a diagnostic switch; the two differ in rounding only).
let winogradEnabled = getenv("VISIONCORE_NO_WINOGRAD") == nil

/// Whether conv2d runs by Winograd's F(2x2, 3x3) (winograd.c): 3x3 kernels at stride and dilation 1, ungrouped,
/// with enough channels and outputs that its 16 GEMMs (4 multiply-adds per output and channel pair instead of 9)
/// outweigh its transforms. Measured against the direct conv GEMM (2 threads):
/// - below 196 outputs per channel (a 7x7 map at batch 1) the weights' transform, 16 floats per filter written
///   anew on every call, costs more than Winograd saves (resnet50's 512-channel 7x7 convs: 2.3 ms against 1.5);
/// - on maps narrower than 8 the transforms run on rows of a few tiles, which pays only with 64 input channels
///   or more (Fashion-MNIST's 7x7 maps, batch 256: 32 -> 32 channels 2.9 ms against 2.6, 64 -> 32 4.2 against
///   4.6), and on maps of 1 or 2 pixels a 2x2 tile wastes most of its outputs (2x2, 128 channels: 2.9 against 2.2).
func winogradApplies(_ g: ConvGeometry) -> Bool {
    let w = g.window, side = min(g.outHeight, g.outWidth)
    return winogradEnabled && w.kernel == (3, 3) && w.stride == (1, 1) && w.dilation == (1, 1) && g.groups == 1
        && g.inChannels >= 16 && g.outChannels >= 16 && g.batch * g.outHeight * g.outWidth >= 196
        && (side >= 8 || (side >= 4 && g.inChannels >= 64))
}

/// Conv2d of contiguous NCHW `x` with OIHW 3x3 weights `w`, the epilogue fused, by Winograd's F(2x2, 3x3): chunks
/// of 2x2 output tiles and parts of the output channels run on the threads, each chunk's transformed inputs, and
/// each block of the part's transformed weights (or, with many chunks, of one shared transform) and GEMM results,
/// sized to stay in L2 (winograd.c).
/// `transposedWeights`: `w` is [Cout of g's input][Cin of g's output][3][3], the weights of the conv whose input
/// gradient this conv computes (read transposed and rotated by 180 degrees, with no flipped copy).
func winogradConv(_ g: ConvGeometry, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                  transposedWeights: Bool = false, _ epi: EpiloguePointers, _ out: UnsafeMutablePointer<Float>) throws {
    let cin = g.inChannels, cout = g.outChannels
    let threads = Threading.threadCount
    var job = vck_winograd(x: x, cin: cin, h: g.height, w: g.width, ph: g.window.padding.0, pw: g.window.padding.1,
                           weights: w, transposed: transposedWeights ? 1 : 0, u: nil, v: nil, cout: cout, oh: g.outHeight,
                           ow: g.outWidth, y: out, scale: epi.scale, shift: epi.shift, residual: epi.cResidual,
                           activation: epi.cActivation, parameter: epi.parameter,
                           residual_after: epi.residualAfter ? 1 : 0)
    // Chunks of tiles whose V (16 cin floats per tile) stays in L2, of equal sizes rounded to 8 tiles (whole AVX2
    // vectors, whole transposed blocks; rounding to 16 split 128-channel 28x28 maps into 112 + 84 tiles, one
    // thread's work 1.14x the other's, and cost 1.08x the time of 104 + 92): within
    // about 256 KB while that leaves a chunk 64 tiles or more, else within about 1 MB. Every chunk reads the
    // weights' transform (16 floats per filter) again, or makes it again, which costs more than L2 saves below
    // 64 tiles (32 multiply-adds per byte of it). On 2 threads (Zen 3, 512 KB of L2 per core), resnet50's
    // 64-channel 56x56 convs ran 1.25x as fast in chunks of 64 tiles as of 208 (in the network: 0.78x the time);
    // its 128-channel 28x28 ones as fast in chunks of 32 as of 112, its 256-channel 14x14 ones 0.8x as fast in
    // 4 chunks of 16 tiles as in one of 49.
    // Every part of the output channels transforms the chunk's input again, so parts only where there are fewer
    // chunks than threads (resnet50's 14x14 convs at batch 1: one chunk of 49 tiles, two halves).
    let tiles = g.batch * ((g.outHeight + 1) / 2) * ((g.outWidth + 1) / 2)
    let fit = 4096 / cin >= 64 ? 4096 / cin : max(16, 16_384 / cin)
    var chunks = (tiles + fit - 1) / fit
    let chunk = ((tiles + chunks - 1) / chunks + 7) / 8 * 8
    chunks = (tiles + chunk - 1) / chunk
    let parts = chunks >= threads ? 1 : min((threads + chunks - 1) / chunks, max(1, cout / 16))
    let rowsPerPart = ((cout + parts - 1) / parts + 7) / 8 * 8
    // One or two chunks transform their blocks of the weights themselves, in L2; more share one transform made
    // beforehand, which each would otherwise redo (ResNet-18 training at batch 8: 450 against 425 ms a step).
    let shared = chunks > 2 ? try Tensor.uninitialized([16 * cout * cin]) : nil
    if let shared {
        let pu = SendablePointer(shared.pointer(Float.self)), box = UncheckedBox(job)
        let blocks = min(cout, 4 * threads), per = (cout + blocks - 1) / blocks
        forEachWorkItem(blocks, scratch: 9 * cin) { item, buf in
            let o0 = item * per
            guard o0 < cout else { return }
            withUnsafePointer(to: box.value) { vck_winograd_weights($0, o0, min(cout, o0 + per), pu.p, buf) }
        }
        job.u = UnsafePointer(pu.p)
    }
    let failed = Atomic<Bool>(false)
    // One chunk split over the threads (resnet50's 14x14 convs at batch 1): its input transformed once, by all
    // threads over the channels, and the output channels taken in pieces (`Threading.forEachPiece`), rather than
    // each of `parts` fixed parts transforming the whole input again and the threads waiting for the slower one.
    let vFloats = chunks == 1 && parts > 1 ? withUnsafePointer(to: job) { vck_winograd_input_floats($0, tiles) } : 0
    if vFloats > 0 {
        // V and the threads' scratch from malloc, freed on return, like forEachWorkItem's scratch: as tensors they
        // stayed in the block cache in sizes of their own (resnet50's peak 118.7 -> 120.8 MB).
        let pv = SendablePointer(UnsafeMutablePointer<Float>.allocate(capacity: vFloats)), inputBox = UncheckedBox(job)
        defer { pv.p.deallocate() }
        let inputScratch = withUnsafePointer(to: job) { vck_winograd_scratch($0, tiles) }
        let blocks = min(cin, 4 * threads), per = (cin + blocks - 1) / blocks
        forEachWorkItem(blocks, scratch: inputScratch) { item, buf in
            let c0 = item * per
            guard c0 < cin else { return }
            withUnsafePointer(to: inputBox.value) { vck_winograd_input($0, tiles, c0, min(cin, c0 + per), pv.p, buf) }
        }
        job.v = UnsafePointer(pv.p)
        let scratch = withUnsafePointer(to: job) { vck_winograd_scratch($0, tiles) }
        let pb = SendablePointer(UnsafeMutablePointer<Float>.allocate(capacity: threads * scratch))
        defer { pb.p.deallocate() }
        let box = UncheckedBox(job)
        withExtendedLifetime(shared) {
            Threading.forEachPiece(of: cout, unit: 8) { channels, thread in
                let status = withUnsafePointer(to: box.value) {
                    vck_winograd_run($0, 0, tiles, channels.lowerBound, channels.upperBound, pb.p + thread * scratch)
                }
                if status != 0 { failed.store(true, ordering: .relaxed) }
            }
        }
    } else {
        let scratch = withUnsafePointer(to: job) { vck_winograd_scratch($0, chunk) }
        let box = UncheckedBox(job)
        withExtendedLifetime(shared) {
            forEachWorkItem(chunks * parts, scratch: scratch) { item, buf in
                let t0 = (item / parts) * chunk, co0 = (item % parts) * rowsPerPart
                guard co0 < cout else { return }
                let status = withUnsafePointer(to: box.value) {
                    vck_winograd_run($0, t0, min(tiles, t0 + chunk), co0, min(cout, co0 + rowsPerPart), buf)
                }
                if status != 0 {
                    failed.store(true, ordering: .relaxed)
                }
            }
        }
    }
    if failed.load(ordering: .relaxed) { throw VisionError.outOfMemory("conv2d: no memory for the Winograd GEMMs' scratch") }
    epi.finishDeferred(out, g.batch * cout * g.outHeight * g.outWidth)
}
