#if canImport(Glibc)
import Glibc
#endif
import VisionCore
import VisionModels

/// Opaque C handle to a loaded EXTD face detector (`vc_face_detector *`). Read-only once created: one detector
/// may be used from several threads at once.
public typealias VCFaceDetector = OpaquePointer

final class FaceDetectorBox {
    let detector: FaceDetector
    init(_ detector: FaceDetector) { self.detector = detector }
}

/// Loads an EXTD face detector. `model_name` is "extd_32", "extd_48" or "extd_64"; `weights_path` is a
/// safetensors file with the official state-dict key names, or NULL for the bundled weights
/// (data/weights/extd/EXTD_NN.safetensors, looked for in $VISIONCORE_EXTD_WEIGHTS, above libvisioncore.so and
/// above the current directory). Weights of another variant fail with VC_ERR_FORMAT and a message naming the
/// missing and mis-shaped keys.
@c public func vc_face_detector_create(_ model_name: UnsafePointer<CChar>?, _ weights_path: UnsafePointer<CChar>?,
                                       _ out: UnsafeMutablePointer<VCFaceDetector?>?) -> Int32 {
    capi {
        guard let out else { throw VisionError.invalidArgument("out is NULL") }
        out.pointee = nil
        let name = try stringArg(model_name, "model_name")
        guard let variant = EXTDVariant(name: name) else {
            throw VisionError.invalidArgument("unknown face detector model '\(name)': use extd_32, extd_48 or extd_64")
        }
        let path = weights_path.map { String(cString: $0) }
        out.pointee = registerObject(FaceDetectorBox(try FaceDetector(variant: variant, weightsPath: path)))
    }
}

/// Releases a face detector (NULL is a no-op).
@c public func vc_face_detector_free(_ detector: VCFaceDetector?) -> Int32 {
    capi {
        guard releaseObject(detector, FaceDetectorBox.self) else {
            throw HandleError(message: "detector is not a live vc_face_detector")
        }
    }
}

/// Finds faces in a uint8 [H, W, 3] RGB image (as vc_image_load gives). Keeps detections scoring at least
/// `score_threshold`; `scale` <= 0 uses the official demo's scale sqrt(1700*1200/(H*W)), 1.0 runs the network
/// at the image's own size. *out_boxes receives float32 [K, 5] rows (x1, y1, x2, y2, score) in the image's
/// pixels, best first (K may be 0). Empty, over-limit or non-RGB images and NaN thresholds are errors.
@c public func vc_face_detector_detect(_ detector: VCFaceDetector?, _ image_hwc_uint8: VCTensor?,
                                       _ score_threshold: Float, _ scale: Float,
                                       _ out_boxes: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        try output(out_boxes) {
            let box = try object(detector, FaceDetectorBox.self, "detector", "vc_face_detector")
            let image = try tensorArg(image_hwc_uint8, "image")
            guard score_threshold.isFinite else {
                throw VisionError.invalidArgument("score_threshold must be finite, got \(score_threshold)")
            }
            guard !scale.isNaN else { throw VisionError.invalidArgument("scale is NaN") }
            return try box.detector.detect(image, scoreThreshold: score_threshold, scale: scale > 0 ? Double(scale) : nil)
        }
    }
}
