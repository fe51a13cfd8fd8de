import VisionCore

/// Reads `n` tensor handles from a C array.
private func tensorsArg(_ tensors: UnsafeMutablePointer<VCTensor?>?, _ n: Int32) throws -> [Tensor] {
    guard n >= 1, n <= 1 << 16 else { throw VisionError.invalidArgument("tensor count \(n) must be in 1...65536") }
    guard let tensors else { throw VisionError.invalidArgument("tensors is NULL") }
    return try (0..<Int(n)).map { try tensorArg(tensors[$0], "tensors[\($0)]") }
}

private func axisArg(_ a: Int64) throws -> Int {
    guard a >= -Int64(Limits.maxRank) - 1, a <= Int64(Limits.maxRank) else { throw VisionError.invalidArgument("axis \(a) is out of range") }
    return Int(a)
}

/// Pads (negative amounts crop) the trailing dims of x; `pads` holds `npads` (even) values in torch order: last
/// dim first, (left, right, top, bottom, ...). mode is VC_PAD_CONSTANT (filled with `value`, converted to x's
/// dtype), VC_PAD_REFLECT (pads below the dim size) or VC_PAD_REPLICATE.
@c public func vc_pad(_ x: VCTensor?, _ pads: UnsafePointer<Int64>?, _ npads: Int32, _ mode: Int32, _ value: Double,
                      _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let m = PadMode(rawValue: mode) else { throw VisionError.invalidArgument("unknown pad mode \(mode)") }
        guard npads >= 0, npads <= 2 * Int32(Limits.maxRank) else { throw VisionError.invalidArgument("npads \(npads) is out of range") }
        let p = npads == 0 ? [] : try intsArg(pads, Int(npads), "pads")
        let padding: Padding = m == .padConstant ? .constant(value) : (m == .padReflect ? .reflect : .replicate)
        try output(out) { try pad(try tensorArg(x, "x"), pads: p, mode: padding) }
    }
}

/// Concatenates the `n` tensors of the array `tensors` (same dtype; same shape except along `axis`).
@c public func vc_concat(_ tensors: UnsafeMutablePointer<VCTensor?>?, _ n: Int32, _ axis: Int64,
                         _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try concat(try tensorsArg(tensors, n), axis: try axisArg(axis)) } }
}

/// Stacks the `n` tensors of the array `tensors` (same shape and dtype) along a new dimension `axis`.
@c public func vc_stack(_ tensors: UnsafeMutablePointer<VCTensor?>?, _ n: Int32, _ axis: Int64,
                        _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try stack(try tensorsArg(tensors, n), axis: try axisArg(axis)) } }
}

/// Splits x along `axis` into `nsizes` pieces of the given sizes (non-negative, summing to the dim). The new
/// handles go to outs[0 .. nsizes-1]; `capacity` is the length of `outs` and must be >= nsizes. On failure every
/// entry of outs is NULL.
@c public func vc_split(_ x: VCTensor?, _ sizes: UnsafePointer<Int64>?, _ nsizes: Int32, _ axis: Int64,
                        _ outs: UnsafeMutablePointer<VCTensor?>?, _ capacity: Int32) -> Int32 {
    capi {
        guard let outs else { throw VisionError.invalidArgument("outs is NULL") }
        guard capacity >= 0 else { throw VisionError.invalidArgument("capacity \(capacity) is negative") }
        for i in 0..<Int(capacity) { outs[i] = nil }
        guard nsizes >= 1, nsizes <= 1 << 20 else { throw VisionError.invalidArgument("nsizes \(nsizes) must be in 1...2^20") }
        guard capacity >= nsizes else { throw VisionError.invalidArgument("capacity \(capacity) is below nsizes \(nsizes)") }
        let s = try intsArg(sizes, Int(nsizes), "sizes")
        let pieces = try split(try tensorArg(x, "x"), sizes: s, axis: try axisArg(axis))
        for (i, p) in pieces.enumerated() { outs[i] = makeHandle(p) }
    }
}

/// torch.gather: out[..., j, ...] = x[..., index[..., j, ...], ...] along `axis`; index is int64 (or int32) of
/// x's rank; every index must be in [0, x.shape[axis]).
@c public func vc_gather(_ x: VCTensor?, _ axis: Int64, _ index: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try gather(try tensorArg(x, "x"), axis: try axisArg(axis), index: try tensorArg(index, "index")) } }
}

/// torch.index_select: the slices of x at the positions of the 1-D int64 (or int32) `index` along `axis`.
@c public func vc_index_select(_ x: VCTensor?, _ axis: Int64, _ index: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try indexSelect(try tensorArg(x, "x"), axis: try axisArg(axis), index: try tensorArg(index, "index")) } }
}

/// torch.topk along `axis`: the k largest (largest 1) or smallest (0) values and their int64 indices. NaN ranks
/// above every number; ties keep the lower index first; results are always sorted (`sorted` must be 0 or 1).
@c public func vc_topk(_ x: VCTensor?, _ k: Int64, _ axis: Int64, _ largest: Int32, _ sorted: Int32,
                       _ out_values: UnsafeMutablePointer<VCTensor?>?, _ out_indices: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let out_values, let out_indices else { throw VisionError.invalidArgument("out_values or out_indices is NULL") }
        out_values.pointee = nil; out_indices.pointee = nil
        guard largest == 0 || largest == 1, sorted == 0 || sorted == 1 else {
            throw VisionError.invalidArgument("largest and sorted must be 0 or 1, got \(largest), \(sorted)")
        }
        guard k >= 0, k <= Int64(Limits.maxBytes) else { throw VisionError.invalidArgument("k = \(k) is out of range") }
        let r = try topk(try tensorArg(x, "x"), k: Int(k), axis: try axisArg(axis), largest: largest == 1, sorted: sorted == 1)
        out_values.pointee = makeHandle(r.values)
        out_indices.pointee = makeHandle(r.indices)
    }
}
