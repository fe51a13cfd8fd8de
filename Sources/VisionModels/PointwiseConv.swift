import CBLAS
import Dispatch
import VisionCore

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
