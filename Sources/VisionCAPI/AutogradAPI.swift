import VisionCore

/// Makes `tensor` a leaf that requires gradients (1) or stops it requiring them (0). Only float32 tensors can
/// require gradients. The handle keeps its identity: ops on it afterwards are recorded for backward.
@c public func vc_tensor_set_requires_grad(_ tensor: VCTensor?, _ requires_grad: Int32) -> Int32 {
    capi {
        let box = try tensorBox(tensor)
        guard requires_grad == 0 || requires_grad == 1 else { throw VisionError.invalidArgument("requires_grad must be 0 or 1, got \(requires_grad)") }
        box.tensor = try box.tensor.detach().requiringGrad(requires_grad == 1)
    }
}

/// Writes 1 to *out_flag if gradients flow to `tensor` (a leaf requiring them or the result of an op on one).
@c public func vc_tensor_requires_grad(_ tensor: VCTensor?, _ out_flag: UnsafeMutablePointer<Int32>?) -> Int32 {
    capi {
        let t = try tensorArg(tensor)
        guard let out_flag else { throw VisionError.invalidArgument("out_flag is NULL") }
        out_flag.pointee = t.requiresGrad ? 1 : 0
    }
}

/// Gives a new handle to the accumulated gradient of `tensor`, or writes NULL to *out when it has none yet
/// (before backward, or for a tensor that does not require gradients).
@c public func vc_tensor_grad(_ tensor: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        let t = try tensorArg(tensor)
        guard let out else { throw VisionError.invalidArgument("out is NULL") }
        out.pointee = t.grad.map { makeHandle($0) }
    }
}

/// Clears the accumulated gradient of `tensor`.
@c public func vc_tensor_zero_grad(_ tensor: VCTensor?) -> Int32 {
    capi { try tensorArg(tensor).zeroGrad() }
}

/// Back-propagates from `tensor` into the leaves it depends on, adding to their gradients. `gradient` may be
/// NULL for a one-element tensor; otherwise it must have the tensor's shape.
@c public func vc_tensor_backward(_ tensor: VCTensor?, _ gradient: VCTensor?) -> Int32 {
    capi { try tensorArg(tensor).backward(try optionalTensorArg(gradient, "gradient")) }
}

/// A new handle to the same data, cut off from the autograd graph.
@c public func vc_tensor_detach(_ tensor: VCTensor?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try tensorArg(tensor).detach() } }
}

/// Turns gradient recording on (1) or off (0) for the calling thread (torch.set_grad_enabled); on by default.
@c public func vc_set_grad_enabled(_ enabled: Int32) -> Int32 {
    capi {
        guard enabled == 0 || enabled == 1 else { throw VisionError.invalidArgument("enabled must be 0 or 1, got \(enabled)") }
        Autograd.setEnabled(enabled == 1)
    }
}

/// Writes 1 to *out_flag when the calling thread records gradients.
@c public func vc_is_grad_enabled(_ out_flag: UnsafeMutablePointer<Int32>?) -> Int32 {
    capi {
        guard let out_flag else { throw VisionError.invalidArgument("out_flag is NULL") }
        out_flag.pointee = Autograd.isRecording ? 1 : 0
    }
}
