import VisionCore

// timm's evaluation preprocessing, `create_transform(**resolve_data_config({}, model=m))` with crop_mode "center":
//   scale_size = floor(img_size / crop_pct)
//   Resize(scale_size, interpolation)   shorter side -> scale_size, longer -> int(scale_size * long / short)
//                                       (non-square inputs: timm's ResizeKeepRatio instead)
//   CenterCrop(img_size)                offsets int(round((h - crop_h) / 2.0)), Python rounding half to even
//   ToTensor(); Normalize(mean, std)    (x / 255 - mean) / std in float32
// The resize is PIL's (resizeImagePIL), so the crop is bit-exact and the tensor equals timm's up to the last bit.

extension ResampleMode {
    var pilFilter: PILResampleFilter { self == .bilinear ? .bilinear : .bicubic }
}

/// The size (height, width) that timm's eval transform resizes an `h` x `w` image to before the center crop.
public func evalResizeSize(height h: Int, width w: Int, config: PretrainedConfig) throws -> (Int, Int) {
    let (th, tw) = try targetSize(config)
    guard config.cropPct.isFinite, config.cropPct > 0 else {
        throw VisionError.invalidArgument("eval_transform: crop_pct must be positive, got \(config.cropPct)")
    }
    let sh = Int((Double(th) / config.cropPct).rounded(.down)), sw = Int((Double(tw) / config.cropPct).rounded(.down))
    guard sh >= 1, sw >= 1, sh <= ImageLimits.maxSide, sw <= ImageLimits.maxSide else {
        throw VisionError.invalidArgument("eval_transform: scale size \(sh) x \(sw) (input size / crop_pct \(config.cropPct)) is out of range")
    }
    let rh: Int, rw: Int
    if sh == sw {
        // torchvision's Resize(int): int(size * long / short), a true division of exact integers.
        let short = min(h, w), long = max(h, w)
        let newLong = Int(Double(sh * long) / Double(short))
        (rh, rw) = w <= h ? (newLong, sh) : (sh, newLong)
    } else {
        // timm's ResizeKeepRatio (longest = 0): ratio = min(h / sh, w / sw), sizes round(x / ratio) half to even.
        let ratio = min(Double(h) / Double(sh), Double(w) / Double(sw))
        rh = Int((Double(h) / ratio).rounded(.toNearestOrEven))
        rw = Int((Double(w) / ratio).rounded(.toNearestOrEven))
    }
    guard rh >= 1, rw >= 1, rh <= ImageLimits.maxSide, rw <= ImageLimits.maxSide, rh * rw <= ImageLimits.maxPixels else {
        throw VisionError.invalidArgument("eval_transform: image \(h) x \(w) would be resized to \(rh) x \(rw), beyond the image limits")
    }
    return (rh, rw)
}

private func targetSize(_ config: PretrainedConfig) throws -> (Int, Int) {
    guard config.inputSize.count == 3, config.inputSize.allSatisfy({ $0 >= 1 && $0 <= ImageLimits.maxSide }) else {
        throw VisionError.invalidArgument("eval_transform: input size must be [channels, height, width], got \(config.inputSize)")
    }
    return (config.inputSize[1], config.inputSize[2])
}

/// Crops `image` (uint8 [H, W, C]) to `ch` x `cw` around its center as torchvision's CenterCrop: zero padding
/// first when the crop is larger than the image, then offsets int(round((H - ch) / 2.0)) with ties to even.
func centerCropHWC(_ image: Tensor, height ch: Int, width cw: Int) throws -> Tensor {
    var img = try image.contiguous()
    var h = img.shape[0], w = img.shape[1]
    let c = img.shape[2]
    if ch > h || cw > w {
        let left = cw > w ? (cw - w) / 2 : 0, top = ch > h ? (ch - h) / 2 : 0
        let right = cw > w ? (cw - w + 1) / 2 : 0, bottom = ch > h ? (ch - h + 1) / 2 : 0
        let padded = try Tensor(zeros: [h + top + bottom, w + left + right, c], dtype: .uint8)
        let pw = w + left + right
        withExtendedLifetime((img, padded)) {
            let s = img.pointer(UInt8.self), d = padded.pointer(UInt8.self)
            for y in 0..<h {
                (d + ((y + top) * pw + left) * c).update(from: s + y * w * c, count: w * c)
            }
        }
        img = padded
        (h, w) = (img.shape[0], img.shape[1])
    }
    let top = Int((Double(h - ch) / 2.0).rounded(.toNearestOrEven))
    let left = Int((Double(w - cw) / 2.0).rounded(.toNearestOrEven))
    return try img.slice(axis: 0, start: top, end: top + ch, step: 1)
        .slice(axis: 1, start: left, end: left + cw, step: 1).contiguous()
}

/// timm's eval transform of a uint8 [H, W, C] image for a model with pretrained config `config`: resize (PIL's
/// antialiased bilinear/bicubic, bit-exact), center crop to the config's input size, x / 255, normalize by
/// mean/std. Returns float32 [1, C, height, width], ready for the model.
///
/// Errors: `.dtypeMismatch` unless uint8; `.shapeMismatch` when the image is not [H, W, C] or [H, W] or its
/// channel count differs from the config's (timm converts photos to RGB first: load with `channels: 3`);
/// `.invalidArgument` for an empty image or a config whose sizes, crop_pct, mean or std are invalid.
public func evalTransform(_ image: Tensor, config: PretrainedConfig) throws -> Tensor {
    guard image.dtype == .uint8 else {
        throw VisionError.dtypeMismatch("eval_transform: the image must be uint8 [H, W, C] pixels, got \(image.dtype)")
    }
    guard image.rank == 3 || image.rank == 2 else {
        throw VisionError.shapeMismatch("eval_transform: image must be uint8 [H, W, C], got shape \(image.shape)")
    }
    let hwc = image.rank == 2 ? try image.unsqueeze(axis: 2) : image
    let (th, tw) = try targetSize(config)
    let channels = config.inputSize[0]
    guard hwc.shape[2] == channels else {
        throw VisionError.shapeMismatch("eval_transform: the model takes \(channels)-channel images, the image \(image.shape) has \(hwc.shape[2]) channels")
    }
    guard config.mean.count == channels, config.std.count == channels,
          config.std.allSatisfy({ $0.isFinite && $0 > 0 }), config.mean.allSatisfy(\.isFinite) else {
        throw VisionError.invalidArgument("eval_transform: mean \(config.mean) and std \(config.std) need \(channels) finite values (std > 0)")
    }
    guard hwc.shape[0] > 0, hwc.shape[1] > 0 else { throw VisionError.invalidArgument("eval_transform: image \(image.shape) is empty") }
    let (rh, rw) = try evalResizeSize(height: hwc.shape[0], width: hwc.shape[1], config: config)
    // torchvision's F.resize returns the image itself when the size does not change; PIL would copy it.
    let resized = (rh, rw) == (hwc.shape[0], hwc.shape[1])
        ? hwc : try resizeImagePIL(hwc, height: rh, width: rw, filter: config.interpolation.pilFilter)
    let crop = try centerCropHWC(resized, height: th, width: tw)

    let out = try Tensor.uninitialized([1, channels, th, tw], dtype: .float32)
    withExtendedLifetime((crop, out)) {
        let s = crop.pointer(UInt8.self), d = out.pointer(Float.self)
        let plane = th * tw
        for ch in 0..<channels {
            // ToTensor divides by 255, Normalize subtracts then divides: three float32 roundings, kept as is.
            let m = config.mean[ch], sd = config.std[ch]
            for i in 0..<plane { d[ch * plane + i] = (Float(s[i * channels + ch]) / 255 - m) / sd }
        }
    }
    return out
}

/// `evalTransform` of an image file (PNG, JPEG or BMP), decoded to the config's channel count (grey and RGBA
/// photos are converted, as timm's loader converts to RGB).
public func evalTransform(path: String, config: PretrainedConfig) throws -> Tensor {
    guard let channels = config.inputSize.first, (1...4).contains(channels) else {
        throw VisionError.invalidArgument("eval_transform: input size \(config.inputSize) does not name 1 to 4 image channels")
    }
    return try evalTransform(try loadImage(path: path, channels: channels), config: config)
}
