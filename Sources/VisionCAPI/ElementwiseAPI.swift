import VisionCore

/// Broadcasting binary arithmetic: op is VC_ADD, VC_SUB, VC_MUL, VC_DIV, VC_MAXIMUM, VC_MINIMUM or VC_POW.
/// Both tensors must have the same dtype; DIV and POW need float32.
@c public func vc_binary(_ op: Int32, _ a: VCTensor?, _ b: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let o = BinaryOp(rawValue: op) else { throw VisionError.invalidArgument("unknown binary op \(op)") }
        try output(out) { try binary(o, try tensorArg(a, "a"), try tensorArg(b, "b")) }
    }
}

/// Broadcasting comparison giving a uint8 tensor of 0/1: op is VC_EQ, VC_NE, VC_LT, VC_LE, VC_GT or VC_GE.
@c public func vc_compare(_ op: Int32, _ a: VCTensor?, _ b: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let o = CompareOp(rawValue: op) else { throw VisionError.invalidArgument("unknown comparison \(op)") }
        try output(out) { try compare(o, try tensorArg(a, "a"), try tensorArg(b, "b")) }
    }
}

/// Element-wise function of a float32 tensor: op is one of VC_RELU ... VC_ABS; `parameter` is LeakyReLU's
/// negative slope and is ignored by the others.
@c public func vc_unary(_ op: Int32, _ x: VCTensor?, _ parameter: Float, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let o = UnaryOp(rawValue: op) else { throw VisionError.invalidArgument("unknown unary op \(op)") }
        try output(out) { try unary(o, try tensorArg(x, "x"), parameter: parameter) }
    }
}

/// PReLU with one weight per channel (dim 1) or one shared weight.
@c public func vc_prelu(_ x: VCTensor?, _ weight: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try prelu(try tensorArg(x, "x"), weight: try tensorArg(weight, "weight")) } }
}

/// Elements of `a` where `condition` (uint8) is non-zero, else of `b`, broadcast together.
@c public func vc_where(_ condition: VCTensor?, _ a: VCTensor?, _ b: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try whereSelect(try tensorArg(condition, "condition"), try tensorArg(a, "a"), try tensorArg(b, "b")) } }
}

/// Matrix product with torch.matmul semantics (1-D operands, broadcast batch dims).
@c public func vc_matmul(_ a: VCTensor?, _ b: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try matmul(try tensorArg(a, "a"), try tensorArg(b, "b")) } }
}

/// x @ weight^T + bias with weight [out_features, in_features]; bias may be NULL.
@c public func vc_linear(_ x: VCTensor?, _ weight: VCTensor?, _ bias: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out) { try linear(try tensorArg(x, "x"), weight: try tensorArg(weight, "weight"), bias: try optionalTensorArg(bias, "bias")) }
    }
}
