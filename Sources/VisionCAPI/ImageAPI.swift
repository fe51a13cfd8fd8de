import VisionCore

/// Loads a PNG, JPEG or BMP file into a uint8 [H, W, channels] tensor; channels is 1 (grey), 2 (grey + alpha),
/// 3 (RGB) or 4 (RGBA), converted from whatever the file holds. Errors: VC_IO_ERROR when the file cannot be
/// read, VC_FORMAT_ERROR for corrupt or unsupported data or a zero or over-limit size (32768 per side),
/// VC_OUT_OF_MEMORY above 2^28 pixels or for files above 1 GiB.
@c public func vc_image_load(_ path: UnsafePointer<CChar>?, _ channels: Int32,
                             _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi { try output(out) { try loadImage(path: try stringArg(path, "path"), channels: Int(channels)) } }
}

/// Decodes a PNG, JPEG or BMP image from nbytes bytes at data into a uint8 [H, W, channels] tensor (channels
/// as in vc_image_load; the same errors except VC_IO_ERROR).
@c public func vc_image_decode(_ data: UnsafeRawPointer?, _ nbytes: UInt, _ channels: Int32,
                               _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard nbytes <= UInt(ImageLimits.maxFileBytes) else {
            throw VisionError.outOfMemory("\(nbytes) bytes of encoded data exceed the limit of \(ImageLimits.maxFileBytes)")
        }
        if nbytes > 0 && data == nil { throw VisionError.invalidArgument("data is NULL") }
        try output(out) { try decodeImage(UnsafeRawBufferPointer(start: data, count: Int(nbytes)), channels: Int(channels)) }
    }
}

/// Encodes a uint8 [H, W, C] (or [H, W]) image as VC_IMAGE_PNG or VC_IMAGE_JPEG (quality 1..100, used by
/// JPEG only) into a new uint8 [nbytes] tensor holding the file's bytes.
@c public func vc_image_encode(_ image: VCTensor?, _ format: Int32, _ quality: Int32,
                               _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let f = ImageFormat(rawValue: format) else { throw VisionError.invalidArgument("unknown image format \(format)") }
        try output(out) {
            let bytes = try encodeImage(try tensorArg(image, "image"), format: f, quality: Int(quality))
            return try Tensor(bytes, shape: [bytes.count])
        }
    }
}

/// Saves a uint8 [H, W, C] (or [H, W]) image, C in 1..4, as PNG or JPEG according to the extension of path
/// (.png, .jpg or .jpeg, any case; another extension is VC_INVALID_ARGUMENT). quality (1..100) applies to JPEG.
@c public func vc_image_save(_ image: VCTensor?, _ path: UnsafePointer<CChar>?, _ quality: Int32) -> Int32 {
    capi { try saveImage(try tensorArg(image, "image"), path: try stringArg(path, "path"), quality: Int(quality)) }
}

/// Converts a uint8 [H, W, C] (or [H, W]) image to a float32 [C, H, W] tensor: value / 255, then
/// (value - mean[c]) / std[c]. n is the number of values in mean and in std: C, 1 (shared by all channels) or
/// 0 (no normalisation; mean and std may then be NULL).
@c public func vc_image_to_tensor(_ image: VCTensor?, _ mean: UnsafePointer<Float>?, _ std: UnsafePointer<Float>?,
                                  _ n: Int32, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard n >= 0, n <= 4 else { throw VisionError.invalidArgument("n must be in 0...4, got \(n)") }
        var m = [Float](), s = [Float]()
        if n > 0 {
            guard let mean, let std else { throw VisionError.invalidArgument("mean or std is NULL with n = \(n)") }
            m = Array(UnsafeBufferPointer(start: mean, count: Int(n)))
            s = Array(UnsafeBufferPointer(start: std, count: Int(n)))
        }
        try output(out) { try imageToTensor(try tensorArg(image, "image"), mean: m, std: s) }
    }
}

/// Resizes a uint8 [H, W, C] image (result uint8 [out_h, out_w, C]) or a float32 [C, H, W] / [N, C, H, W]
/// tensor (each plane resized) with filter VC_RESIZE_BILINEAR, VC_RESIZE_BICUBIC, VC_RESIZE_BOX,
/// VC_RESIZE_CATMULL_ROM, VC_RESIZE_MITCHELL or VC_RESIZE_BSPLINE. Cubic overshoot is clamped: to 0..255 for
/// uint8 and to each input plane's range for float32.
@c public func vc_image_resize(_ image: VCTensor?, _ out_h: Int64, _ out_w: Int64, _ filter: Int32,
                               _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        guard let f = ResizeFilter(rawValue: filter) else { throw VisionError.invalidArgument("unknown resize filter \(filter)") }
        guard out_h > 0, out_w > 0, out_h <= Int64(ImageLimits.maxSide), out_w <= Int64(ImageLimits.maxSide) else {
            throw VisionError.invalidArgument("output size \(out_h) x \(out_w) must be in 1...\(ImageLimits.maxSide)")
        }
        try output(out) { try resizeImage(try tensorArg(image, "image"), height: Int(out_h), width: Int(out_w), filter: f) }
    }
}
