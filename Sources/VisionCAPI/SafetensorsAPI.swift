#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// Opaque C handle to an ordered map of named tensors with string metadata (`vc_tensor_map *`): what a
/// safetensors file holds.
public typealias VCTensorMap = OpaquePointer

final class TensorMapBox {
    var file = SafetensorsFile()
    /// C strings handed out by vc_tensor_map_name / vc_tensor_map_metadata; freed with the map.
    var cStrings: [String: UnsafeMutablePointer<CChar>] = [:]

    func cString(_ s: String) -> UnsafePointer<CChar>? {
        if let p = cStrings[s] { return UnsafePointer(p) }
        guard let p = strdup(s) else { return nil }
        cStrings[s] = p
        return UnsafePointer(p)
    }

    deinit { for p in cStrings.values { free(p) } }
}

func mapArg(_ h: VCTensorMap?) throws -> TensorMapBox { try object(h, TensorMapBox.self, "map", "vc_tensor_map") }

/// Creates an empty tensor map.
@c public func vc_tensor_map_create(_ out: UnsafeMutablePointer<VCTensorMap?>?) -> Int32 {
    capi {
        guard let out else { throw VisionError.invalidArgument("out is NULL") }
        out.pointee = registerObject(TensorMapBox())
    }
}

/// Releases a tensor map (NULL is a no-op). Tensors taken from it stay valid.
@c public func vc_tensor_map_free(_ map: VCTensorMap?) -> Int32 {
    capi { guard releaseObject(map, TensorMapBox.self) else { throw HandleError(message: "map is not a live vc_tensor_map") } }
}

/// Reads and validates a safetensors file (F32, F16, BF16, I64, I32, U8; F16/BF16 load as float32).
@c public func vc_safetensors_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<VCTensorMap?>?) -> Int32 {
    capi {
        guard let out else { throw VisionError.invalidArgument("out is NULL") }
        out.pointee = nil
        let box = TensorMapBox()
        box.file = try Safetensors.load(path: try stringArg(path, "path"))
        out.pointee = registerObject(box)
    }
}

/// Writes a map to a safetensors file atomically (temporary file, fsync, rename).
@c public func vc_safetensors_save(_ map: VCTensorMap?, _ path: UnsafePointer<CChar>?) -> Int32 {
    capi {
        let box = try mapArg(map)
        try Safetensors.save(box.file.entries.map { ($0.name, $0.tensor) }, metadata: box.file.metadata,
                             storeAs: Dictionary(box.file.entries.map { ($0.name, $0.stored) }, uniquingKeysWith: { a, _ in a }),
                             path: try stringArg(path, "path"))
    }
}

/// Writes the number of tensors to *out_count.
@c public func vc_tensor_map_count(_ map: VCTensorMap?, _ out_count: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let box = try mapArg(map)
        guard let out_count else { throw VisionError.invalidArgument("out_count is NULL") }
        out_count.pointee = Int64(box.file.entries.count)
    }
}

/// Writes the name of tensor `index` (0-based, in file order) to *out_name; the string lives as long as the map.
@c public func vc_tensor_map_name(_ map: VCTensorMap?, _ index: Int64, _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capi {
        let box = try mapArg(map)
        guard let out_name else { throw VisionError.invalidArgument("out_name is NULL") }
        guard index >= 0, index < box.file.entries.count else {
            throw VisionError.invalidArgument("index \(index) is out of range for \(box.file.entries.count) tensors")
        }
        out_name.pointee = box.cString(box.file.entries[Int(index)].name)
    }
}

/// Gives a new tensor handle for the tensor called `name` (VC_INVALID_ARGUMENT if absent).
@c public func vc_tensor_map_get(_ map: VCTensorMap?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<VCTensor?>?) -> Int32 {
    capi {
        let box = try mapArg(map)
        let key = try stringArg(name, "name")
        try output(out) { try box.file.tensor(key) }
    }
}

/// Adds or replaces the tensor called `name` (a copy-on-write reference to `tensor`). `stored_dtype` picks the
/// file dtype: VC_STORE_NATIVE for the tensor's own, or VC_STORE_F16 / VC_STORE_BF16 for a float32 tensor.
@c public func vc_tensor_map_set(_ map: VCTensorMap?, _ name: UnsafePointer<CChar>?, _ tensor: VCTensor?, _ stored_dtype: Int32) -> Int32 {
    capi {
        let box = try mapArg(map)
        let key = try stringArg(name, "name")
        guard key != "__metadata__", !key.isEmpty else { throw VisionError.invalidArgument("'\(key)' is not a valid tensor name") }
        let t = try tensorArg(tensor)
        guard let s = StoredDType(rawValue: stored_dtype) else { throw VisionError.invalidArgument("unknown stored dtype \(stored_dtype)") }
        let stored = s.safetensors ?? SafetensorsDType(t.dtype)
        guard stored.tensorDType == t.dtype else { throw VisionError.dtypeMismatch("cannot store a \(t.dtype) tensor as \(stored)") }
        if let i = box.file.entries.firstIndex(where: { $0.name == key }) {
            box.file.entries[i] = (key, t, stored)
        } else {
            box.file.entries.append((key, t, stored))
        }
    }
}

/// How a tensor is stored in a safetensors file: as its own dtype, or a float32 tensor as F16 / BF16.
/// C constants: VC_
public enum StoredDType: Int32 {
    case storeNative = 0
    case storeF16 = 1
    case storeBf16 = 2

    var safetensors: SafetensorsDType? {
        switch self {
        case .storeNative: return nil
        case .storeF16: return .F16
        case .storeBf16: return .BF16
        }
    }
}

/// Writes how tensor `name` is (or will be) stored: VC_STORE_NATIVE, VC_STORE_F16 or VC_STORE_BF16.
@c public func vc_tensor_map_stored_dtype(_ map: VCTensorMap?, _ name: UnsafePointer<CChar>?, _ out_stored: UnsafeMutablePointer<Int32>?) -> Int32 {
    capi {
        let box = try mapArg(map)
        let key = try stringArg(name, "name")
        guard let out_stored else { throw VisionError.invalidArgument("out_stored is NULL") }
        guard let e = box.file.entries.first(where: { $0.name == key }) else { throw VisionError.invalidArgument("no tensor named '\(key)'") }
        out_stored.pointee = e.stored == .F16 ? StoredDType.storeF16.rawValue : e.stored == .BF16 ? StoredDType.storeBf16.rawValue : StoredDType.storeNative.rawValue
    }
}

/// Writes the number of metadata entries to *out_count.
@c public func vc_tensor_map_metadata_count(_ map: VCTensorMap?, _ out_count: UnsafeMutablePointer<Int64>?) -> Int32 {
    capi {
        let box = try mapArg(map)
        guard let out_count else { throw VisionError.invalidArgument("out_count is NULL") }
        out_count.pointee = Int64(box.file.metadata.count)
    }
}

/// Writes metadata entry `index`'s key and value; both strings live as long as the map.
@c public func vc_tensor_map_metadata(_ map: VCTensorMap?, _ index: Int64, _ out_key: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                      _ out_value: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    capi {
        let box = try mapArg(map)
        guard let out_key, let out_value else { throw VisionError.invalidArgument("out_key or out_value is NULL") }
        guard index >= 0, index < box.file.metadata.count else {
            throw VisionError.invalidArgument("index \(index) is out of range for \(box.file.metadata.count) metadata entries")
        }
        let (k, v) = box.file.metadata[Int(index)]
        out_key.pointee = box.cString(k)
        out_value.pointee = box.cString(v)
    }
}

/// Adds or replaces the metadata entry `key`.
@c public func vc_tensor_map_set_metadata(_ map: VCTensorMap?, _ key: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?) -> Int32 {
    capi {
        let box = try mapArg(map)
        let k = try stringArg(key, "key"), v = try stringArg(value, "value")
        if let i = box.file.metadata.firstIndex(where: { $0.0 == k }) { box.file.metadata[i].1 = v } else { box.file.metadata.append((k, v)) }
    }
}
