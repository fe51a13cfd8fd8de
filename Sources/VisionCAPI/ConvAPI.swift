import VisionCore

/// Reads a (height, width) pair from a C array of two int64 values.
func pairArg(_ p: UnsafePointer<Int64>?, _ name: String) throws -> (Int, Int) {
    let v = try intsArg(p, 2, name)
    return (v[0], v[1])
}

/// Reads a C boolean passed as int32: 0 or 1 (anything else is more likely garbage than intent).
func boolArg(_ v: Int32, _ name: String) throws -> Bool {
    guard v == 0 || v == 1 else { throw VisionError.invalidArgument("\(name) must be 0 or 1, got \(v)") }
    return v == 1
}

/// 2-D convolution (torch.nn.functional.conv2d): x is float32 [N, Cin, H, W] or [Cin, H, W], weight
/// [Cout, Cin/groups, kh, kw], bias [Cout] or NULL. stride, padding and dilation each point to two int64 values
/// (height, width); stride and dilation must be positive, padding non-negative, groups must divide Cin and Cout.
/// Output [N, Cout, Ho, Wo] with Ho = (H + 2*padding[0] - dilation[0]*(kh-1) - 1) / stride[0] + 1.
@c public func vc_conv2d(_ x: VCTensor?, _ weight: VCTensor?, _ bias: VCTensor?, _ stride: UnsafePointer<Int64>?,
                         _ padding: UnsafePointer<Int64>?, _ dilation: UnsafePointer<Int64>?, _ groups: Int64,
                         _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            try conv2d(try tensorArg(x, "x"), weight: try tensorArg(weight, "weight"),
                       bias: try optionalTensorArg(bias, "bias"), stride: try pairArg(stride, "stride"),
                       padding: try pairArg(padding, "padding"), dilation: try pairArg(dilation, "dilation"),
                       groups: Int(groups))
        }
    }
}

/// 2-D transposed convolution (torch.nn.functional.conv_transpose2d): x float32 [N, Cin, H, W] or [Cin, H, W],
/// weight [Cin, Cout/groups, kh, kw], bias [Cout] or NULL. stride, padding, output_padding and dilation each
/// point to two int64 values (height, width); output_padding must be smaller than the stride or the dilation.
/// Output height (H-1)*stride[0] - 2*padding[0] + dilation[0]*(kh-1) + output_padding[0] + 1.
@c public func vc_conv_transpose2d(_ x: VCTensor?, _ weight: VCTensor?, _ bias: VCTensor?,
                                   _ stride: UnsafePointer<Int64>?, _ padding: UnsafePointer<Int64>?,
                                   _ output_padding: UnsafePointer<Int64>?, _ groups: Int64,
                                   _ dilation: UnsafePointer<Int64>?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            try convTranspose2d(try tensorArg(x, "x"), weight: try tensorArg(weight, "weight"),
                                bias: try optionalTensorArg(bias, "bias"), stride: try pairArg(stride, "stride"),
                                padding: try pairArg(padding, "padding"),
                                outputPadding: try pairArg(output_padding, "output_padding"), groups: Int(groups),
                                dilation: try pairArg(dilation, "dilation"))
        }
    }
}

/// 2-D max pooling (torch.nn.functional.max_pool2d) of a float32 [N, C, H, W] or [C, H, W] tensor.
/// kernel_size, padding and dilation point to two int64 values (height, width); stride too, or NULL for
/// stride = kernel_size. Padding (at most half the kernel) counts as -inf; NaN propagates. ceil_mode is 0 or 1:
/// with 1 the output size rounds up, keeping a last window only if it starts inside the input or left padding.
@c public func vc_max_pool2d(_ x: VCTensor?, _ kernel_size: UnsafePointer<Int64>?, _ stride: UnsafePointer<Int64>?,
                             _ padding: UnsafePointer<Int64>?, _ dilation: UnsafePointer<Int64>?, _ ceil_mode: Int32,
                             _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            try maxPool2d(try tensorArg(x, "x"), kernelSize: try pairArg(kernel_size, "kernel_size"),
                          stride: stride == nil ? nil : try pairArg(stride, "stride"),
                          padding: try pairArg(padding, "padding"), dilation: try pairArg(dilation, "dilation"),
                          ceilMode: try boolArg(ceil_mode, "ceil_mode"))
        }
    }
}

/// 2-D average pooling (torch.nn.functional.avg_pool2d) of a float32 [N, C, H, W] or [C, H, W] tensor.
/// kernel_size and padding point to two int64 values (height, width); stride too, or NULL for
/// stride = kernel_size. ceil_mode and count_include_pad are 0 or 1: with count_include_pad = 1 the divisor
/// counts the zero padding inside each window, with 0 only the input elements.
@c public func vc_avg_pool2d(_ x: VCTensor?, _ kernel_size: UnsafePointer<Int64>?, _ stride: UnsafePointer<Int64>?,
                             _ padding: UnsafePointer<Int64>?, _ ceil_mode: Int32, _ count_include_pad: Int32,
                             _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) {
            try avgPool2d(try tensorArg(x, "x"), kernelSize: try pairArg(kernel_size, "kernel_size"),
                          stride: stride == nil ? nil : try pairArg(stride, "stride"),
                          padding: try pairArg(padding, "padding"), ceilMode: try boolArg(ceil_mode, "ceil_mode"),
                          countIncludePad: try boolArg(count_include_pad, "count_include_pad"))
        }
    }
}

/// Adaptive average pooling (torch.nn.functional.adaptive_avg_pool2d) of a float32 [N, C, H, W] or [C, H, W]
/// tensor to out_h x out_w (both positive): output cell i along an axis of size n averages input elements
/// floor(i*n/out) up to ceil((i+1)*n/out), so windows overlap when the sizes do not divide.
@c public func vc_adaptive_avg_pool2d(_ x: VCTensor?, _ out_h: Int64, _ out_w: Int64,
                                      _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) { try adaptiveAvgPool2d(try tensorArg(x, "x"), outputSize: (Int(out_h), Int(out_w))) }
    }
}
