import VisionCore

/// Reads an optional axis list: naxes 0 means every axis (axes may then be NULL).
private func axesArg(_ axes: UnsafePointer<Int64>?, _ naxes: Int32) throws -> [Int] {
    try shapeArg(axes, naxes, "axes")
}

/// Reduces x over `naxes` axes listed in `axes` (negative axes count from the end; naxes 0 = all axes, and
/// `axes` may then be NULL). op is VC_REDUCE_SUM, VC_REDUCE_MEAN, VC_REDUCE_MAX or VC_REDUCE_MIN; keepdim 1 keeps
/// reduced axes as size 1. SUM of an integer tensor gives int64; MEAN needs float32; MAX/MIN keep the dtype,
/// let NaN win, and fail on an empty reduced dimension.
@c public func vc_reduce(_ op: Int32, _ x: VCTensor?, _ axes: UnsafePointer<Int64>?, _ naxes: Int32, _ keepdim: Int32,
                         _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let o = ReduceOp(rawValue: op) else { throw VisionError.invalidArgument("unknown reduce op \(op)") }
        try output(out) { try reduce(o, try tensorArg(x, "x"), axes: try axesArg(axes, naxes), keepDim: try boolArg(keepdim, "keepdim")) }
    }
}

/// Variance of float32 x over `axes` (naxes 0 = all): sum of squared deviations / max(0, n - correction)
/// (correction 1 = unbiased, as torch.var; 0 = biased).
@c public func vc_var(_ x: VCTensor?, _ axes: UnsafePointer<Int64>?, _ naxes: Int32, _ correction: Int64, _ keepdim: Int32,
                      _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard correction >= 0, correction <= Int64(Int32.max) else { throw VisionError.invalidArgument("correction \(correction) is out of range") }
        try output(out) {
            try variance(try tensorArg(x, "x"), axes: try axesArg(axes, naxes), correction: Int(correction), keepDim: try boolArg(keepdim, "keepdim"))
        }
    }
}

/// Int64 indices of the maximum along `axis`, or of the flattened tensor when axis is INT64_MIN (then keepdim 1
/// gives all-ones dims). First occurrence wins; NaN counts as the maximum (torch.argmax).
@c public func vc_argmax(_ x: VCTensor?, _ axis: Int64, _ keepdim: Int32, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            try argmax(try tensorArg(x, "x"), axis: axis == Int64.min ? nil : Int(axis), keepDim: try boolArg(keepdim, "keepdim"))
        }
    }
}

/// Int64 indices of the minimum along `axis` (INT64_MIN = flattened); first occurrence; NaN counts as the minimum.
@c public func vc_argmin(_ x: VCTensor?, _ axis: Int64, _ keepdim: Int32, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            try argmin(try tensorArg(x, "x"), axis: axis == Int64.min ? nil : Int(axis), keepDim: try boolArg(keepdim, "keepdim"))
        }
    }
}

/// Softmax of float32 x along `axis` (numerically stable: the row maximum is subtracted first).
@c public func vc_softmax(_ x: VCTensor?, _ axis: Int64, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try softmax(try tensorArg(x, "x"), axis: Int(axis)) } }
}

/// log(softmax(x)) along `axis`, computed as x - max - log(sum(exp(x - max))).
@c public func vc_log_softmax(_ x: VCTensor?, _ axis: Int64, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try logSoftmax(try tensorArg(x, "x"), axis: Int(axis)) } }
}

/// Inference batch norm of x [N, C, ...] with running_mean / running_var [C]; weight and bias [C] may be NULL
/// (1 and 0). eps >= 0.
@c public func vc_batch_norm(_ x: VCTensor?, _ running_mean: VCTensor?, _ running_var: VCTensor?, _ weight: VCTensor?,
                             _ bias: VCTensor?, _ eps: Double, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            try batchNorm(try tensorArg(x, "x"), runningMean: try tensorArg(running_mean, "running_mean"),
                          runningVar: try tensorArg(running_var, "running_var"), weight: try optionalTensorArg(weight, "weight"),
                          bias: try optionalTensorArg(bias, "bias"), eps: eps)
        }
    }
}

/// Layer norm over the trailing `n` dims `normalized_shape` of x (biased variance); weight and bias have shape
/// normalized_shape and may be NULL.
@c public func vc_layer_norm(_ x: VCTensor?, _ normalized_shape: UnsafePointer<Int64>?, _ n: Int32, _ weight: VCTensor?,
                             _ bias: VCTensor?, _ eps: Double, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            try layerNorm(try tensorArg(x, "x"), normalizedShape: try shapeArg(normalized_shape, n, "normalized_shape"),
                          weight: try optionalTensorArg(weight, "weight"), bias: try optionalTensorArg(bias, "bias"), eps: eps)
        }
    }
}

/// Group norm of x [N, C, ...] with `num_groups` dividing C; weight and bias [C] may be NULL.
@c public func vc_group_norm(_ x: VCTensor?, _ num_groups: Int64, _ weight: VCTensor?, _ bias: VCTensor?, _ eps: Double,
                             _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard num_groups >= 1, num_groups <= Int64(Int32.max) else { throw VisionError.invalidArgument("num_groups \(num_groups) is out of range") }
        try output(out) {
            try groupNorm(try tensorArg(x, "x"), numGroups: Int(num_groups), weight: try optionalTensorArg(weight, "weight"),
                          bias: try optionalTensorArg(bias, "bias"), eps: eps)
        }
    }
}

/// Resizes x [N, C, H, W] as torch's F.interpolate. Either out_h and out_w are both > 0 (size), or both are 0 and
/// scale_h, scale_w > 0 give scale_factor (output = floor(in * scale), source ratio 1/scale). mode is
/// VC_INTERP_NEAREST or VC_INTERP_BILINEAR; align_corners is -1 (unset, required for nearest), 0 or 1.
@c public func vc_interpolate(_ x: VCTensor?, _ out_h: Int64, _ out_w: Int64, _ scale_h: Double, _ scale_w: Double,
                              _ mode: Int32, _ align_corners: Int32, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let m = InterpolationMode(rawValue: mode) else { throw VisionError.invalidArgument("unknown interpolation mode \(mode)") }
        guard align_corners >= -1, align_corners <= 1 else {
            throw VisionError.invalidArgument("align_corners must be -1 (unset), 0 or 1, got \(align_corners)")
        }
        let ac: Bool? = align_corners < 0 ? nil : align_corners == 1
        let size: (Int, Int)?, scale: (Double, Double)?
        if out_h == 0 && out_w == 0 {
            size = nil; scale = (scale_h, scale_w)
        } else {
            guard out_h > 0, out_w > 0, out_h <= Int64(Limits.maxBytes), out_w <= Int64(Limits.maxBytes) else {
                throw VisionError.invalidArgument("output size (\(out_h), \(out_w)) must be positive, or both 0 to use the scales")
            }
            size = (Int(out_h), Int(out_w)); scale = nil
        }
        try output(out) { try interpolate(try tensorArg(x, "x"), size: size, scaleFactor: scale, mode: m, alignCorners: ac) }
    }
}
