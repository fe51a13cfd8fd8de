#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// Creates a zero-filled tensor of the given dtype (VC_FLOAT32, VC_INT32, VC_INT64, VC_UINT8) and shape.
@c public func vc_tensor_create(_ dtype: Int32, _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                                _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try Tensor(zeros: try shapeArg(shape, ndim), dtype: try dtypeArg(dtype)) } }
}

/// Creates a tensor holding a copy of `nbytes` bytes at `data` (row-major); `nbytes` must equal
/// numel * dtype size.
@c public func vc_tensor_from_buffer(_ dtype: Int32, _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                                     _ data: UnsafeRawPointer?, _ nbytes: UInt, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            let t = try dtypeArg(dtype), s = try shapeArg(shape, ndim)
            let n = try Tensor.checkedCount(s) * t.size
            guard nbytes == UInt(n) else { throw VisionError.shapeMismatch("buffer has \(nbytes) bytes; shape \(s) of \(t) needs \(n)") }
            if n == 0 { return try Tensor(zeros: s, dtype: t) }
            guard let data else { throw VisionError.invalidArgument("data is NULL") }
            return try Tensor(copying: data, shape: s, dtype: t)
        }
    }
}

/// Releases a tensor. NULL is a no-op; a pointer that is not a live tensor is reported, not freed.
@c public func vc_tensor_free(_ tensor: VCTensor?) -> Int32 {
    capi { guard releaseHandle(tensor) else { throw HandleError(message: "tensor is not a live vc_tensor (double free?)") } }
}

/// Writes the number of dimensions to *out_ndim.
@c public func vc_tensor_ndim(_ tensor: VCTensor?, _ out_ndim: UnsafeMutablePointer<Int32>?) -> Int32 {
    capi {
        let t = try tensorArg(tensor)
        guard let out_ndim else { throw VisionError.invalidArgument("out_ndim is NULL") }
        out_ndim.pointee = Int32(t.rank)
    }
}

/// Copies the shape into out_shape, which has room for `capacity` dims (at least the tensor's ndim).
@c public func vc_tensor_shape(_ tensor: VCTensor?, _ out_shape: UnsafeMutablePointer<Int64>?, _ capacity: Int32) -> Int32 {
    capi {
        let t = try tensorArg(tensor)
        guard capacity >= t.rank else { throw VisionError.invalidArgument("capacity \(capacity) is below ndim \(t.rank)") }
        if t.rank == 0 { return }
        guard let out_shape else { throw VisionError.invalidArgument("out_shape is NULL") }
        for (i, d) in t.shape.enumerated() { out_shape[i] = Int64(d) }
    }
}

/// Writes the dtype code to *out_dtype.
@c public func vc_tensor_dtype(_ tensor: VCTensor?, _ out_dtype: UnsafeMutablePointer<Int32>?) -> Int32 {
    capi {
        let t = try tensorArg(tensor)
        guard let out_dtype else { throw VisionError.invalidArgument("out_dtype is NULL") }
        out_dtype.pointee = t.dtype.rawValue
    }
}

/// Writes the number of elements to *out_numel.
@c public func vc_tensor_numel(_ tensor: VCTensor?, _ out_numel: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let t = try tensorArg(tensor)
        guard let out_numel else { throw VisionError.invalidArgument("out_numel is NULL") }
        out_numel.pointee = Int64(t.count)
    }
}

/// Gives a pointer to the tensor's row-major elements (the tensor is made contiguous and unshared first).
/// The pointer stays valid until the tensor is freed or passed as the target of another call.
@c public func vc_tensor_data(_ tensor: VCTensor?, _ out_data: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    capi {
        let box = try tensorBox(tensor)
        guard let out_data else { throw VisionError.invalidArgument("out_data is NULL") }
        try box.tensor.makeUniqueContiguous()
        out_data.pointee = box.tensor.storage.base + box.tensor.offset * box.tensor.dtype.size
    }
}

/// Copies the tensor's elements (row-major) into `buffer`, which must hold exactly `nbytes` = numel * dtype size.
@c public func vc_tensor_copy_to(_ tensor: VCTensor?, _ buffer: UnsafeMutableRawPointer?, _ nbytes: UInt) -> Int32 {
    capi {
        let t = try tensorArg(tensor).contiguous()
        guard nbytes == UInt(t.byteCount) else { throw VisionError.shapeMismatch("buffer has \(nbytes) bytes; the tensor has \(t.byteCount)") }
        if nbytes == 0 { return }
        guard let buffer else { throw VisionError.invalidArgument("buffer is NULL") }
        memcpy(buffer, t.storage.base + t.offset * t.dtype.size, t.byteCount)
    }
}

/// A tensor with the same elements and a new shape (one dim may be -1).
@c public func vc_tensor_reshape(_ tensor: VCTensor?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                                 _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try tensorArg(tensor).reshape(try shapeArg(shape, ndim)) } }
}

/// A tensor with dimensions reordered: output dim i is input dim perm[i].
@c public func vc_tensor_permute(_ tensor: VCTensor?, _ perm: UnsafePointer<Int64>?, _ ndim: Int32,
                                 _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try tensorArg(tensor).permute(try shapeArg(perm, ndim, "perm")).contiguous() } }
}

/// Elements start, start+step, ... below end along `axis` (Python slice semantics; step > 0).
@c public func vc_tensor_slice(_ tensor: VCTensor?, _ axis: Int64, _ start: Int64, _ end: Int64, _ step: Int64,
                               _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try tensorArg(tensor).slice(axis: Int(axis), start: Int(start), end: Int(end), step: Int(step)).contiguous() } }
}

/// A copy converted to another dtype (float to integer truncates toward zero and saturates; NaN becomes 0).
@c public func vc_tensor_to_dtype(_ tensor: VCTensor?, _ dtype: Int32, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try tensorArg(tensor).to(try dtypeArg(dtype)) } }
}

/// A float32 tensor of uniform samples in [low, high) from a generator seeded with `seed`.
@c public func vc_tensor_rand_uniform(_ shape: UnsafePointer<Int64>?, _ ndim: Int32, _ low: Float, _ high: Float,
                                      _ seed: UInt64, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        var rng = RandomGenerator(seed: seed)
        try output(out) { try Tensor.uniform(try shapeArg(shape, ndim), low: low, high: high, rng: &rng) }
    }
}

/// A float32 tensor of normal samples from a generator seeded with `seed`.
@c public func vc_tensor_rand_normal(_ shape: UnsafePointer<Int64>?, _ ndim: Int32, _ mean: Float, _ std: Float,
                                     _ seed: UInt64, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        var rng = RandomGenerator(seed: seed)
        try output(out) { try Tensor.normal(try shapeArg(shape, ndim), mean: mean, std: std, rng: &rng) }
    }
}
