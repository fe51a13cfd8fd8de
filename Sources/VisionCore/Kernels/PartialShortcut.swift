/// A partial shortcut for inference: `y` [N, C, ...] with `x` [N, Cx, ...] (Cx <= C, same other sizes) added to
/// its first Cx channels, the other channels unchanged — `y + pad(x, channels up to C)` without the padded copy
/// (ReXNet's blocks that widen their channels). Writes into `y`'s storage when nothing else shares it.
/// Not differentiable: training composes `pad` and `add`.
public func addingLeadingChannels(_ y: consuming Tensor, _ x: Tensor) throws -> Tensor {
    try y.requireDType(.float32, "addingLeadingChannels")
    try x.requireDType(.float32, "addingLeadingChannels")
    guard y.rank >= 2, x.rank == y.rank, x.shape[0] == y.shape[0], x.shape[1] <= y.shape[1],
          x.shape.dropFirst(2).elementsEqual(y.shape.dropFirst(2)) else {
        throw VisionError.shapeMismatch("addingLeadingChannels: x \(x.shape) must be y \(y.shape) with at most as many channels")
    }
    var out = consume y
    out.gradState = nil  // a plain value: no autograd history
    let xc = try x.detach().contiguous()
    let images = out.shape[0], plane = out.shape.dropFirst(2).reduce(1, *)
    let (xImage, yImage) = (x.shape[1] * plane, out.shape[1] * plane)
    guard images * xImage > 0 else { return out }
    // Pieces of 16K floats of each image, spread over the threads.
    let piece = 16_384, pieces = (xImage + piece - 1) / piece
    try out.withUnsafeMutableBufferPointer(as: Float.self) { o in
        let po = SendablePointer(o.baseAddress!), px = SendablePointer(xc.pointer(Float.self))
        withExtendedLifetime(xc) {
            parallelFor(images * pieces, minChunk: 4) { range in
                for item in range {
                    let n = item / pieces, i0 = (item % pieces) * piece
                    addInPlace(po.p + n * yImage + i0, px.p + n * xImage + i0, min(piece, xImage - i0))
                }
            }
        }
    }
    return out
}
