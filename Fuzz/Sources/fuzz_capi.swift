// bytes -> a short program of C-ABI calls on a pool of eight tensor handles: create, from_buffer, reshape,
// permute, slice, to_dtype, unary, binary, matmul, conv2d, queries, copy_to, free, the mixers (CutMix, Mixup,
// timm, Cutout, VideoMix) and a dataset + transform + loader over pool tensors, and calls with NULL and
// forged handles, all with fuzzed dtypes, shapes and parameters (ORT's OrtLibfuzzer drives its C API the same
// way). Oracle: every call returns a documented status, never VC_INTERNAL_ERROR; success gives a non-NULL handle
// and failure a NULL one plus a non-empty vc_last_error_message(); at the end every handle frees with VC_OK
// and no handle is left alive.
#if canImport(Glibc)
import Glibc
#endif
@testable import VisionCAPI

private let slots = 8
private var scratch: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }

extension FuzzInput {
    /// A dimension: mostly 0...5, sometimes negative or far too large (but never in the feasible-and-huge band
    /// between a few MB and Limits.maxBytes, where an allocation is legitimate and only exhausts the fuzzer).
    mutating func dim() -> Int64 {
        let k = int(0...19)
        if k < 14 { return Int64(k % 6) }
        return [-1, -3, 1 << 40, 1 << 62, Int64.max, Int64.min][k - 14]
    }

    mutating func dims(maxRank: Int = 4) -> [Int64] {
        let r = int(0...20)
        let rank = r < 19 ? r % (maxRank + 1) : (r == 19 ? 17 : 0)
        return (0..<rank).map { _ in dim() }
    }

    mutating func index() -> Int64 { [0, 1, 2, 3, -1, -2, 5, 100, Int64.max, Int64.min, 4, -100][int(0...11)] }
}

private func check(_ status: Int32, _ out: OpaquePointer?, _ what: String) {
    guard (0...9).contains(status) else { fuzzFail("\(what): undocumented status \(status)") }
    guard status != 9 else { fuzzFail("\(what): internal error: \(String(cString: vc_last_error_message()!))") }
    if status == 0 {
        guard out != nil else { fuzzFail("\(what): VC_OK with a NULL output") }
    } else {
        guard out == nil else { fuzzFail("\(what): failure \(status) with a non-NULL output") }
        guard let m = vc_last_error_message(), strlen(m) > 0 else { fuzzFail("\(what): failure \(status) without a message") }
    }
}

/// Runs `body` with a C array of `values` (a NULL pointer for an empty array, as C callers pass).
private func withArray<R>(_ values: [Int64], _ body: (UnsafePointer<Int64>?) -> R) -> R {
    values.isEmpty ? body(nil) : values.withUnsafeBufferPointer { body($0.baseAddress) }
}

private func elementCount(_ dims: [Int64]) -> Int? {
    var n = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (m, o) = n.multipliedReportingOverflow(by: Int(d))
        guard !o else { return nil }
        n = m
    }
    return n
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCAPI(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    var inp = FuzzInput(data, count)
    if vc_get_num_threads() != 1 { _ = vc_set_num_threads(1) }   // reproducible runs; the 2 cores run other work
    var pool = [OpaquePointer?](repeating: nil, count: slots)
    let baseline = liveHandleCount()
    var forged: Int = 0

    /// Stores a new output in a slot, freeing what was there.
    func put(_ slot: Int, _ h: OpaquePointer?) {
        guard let h else { return }
        if let old = pool[slot] { guard vc_tensor_free(old) == 0 else { fuzzFail("free of a live handle failed") } }
        pool[slot] = h
    }

    var steps = 0
    while !inp.isEmpty && steps < 24 {
        steps += 1
        let op = inp.int(0...15)
        let dst = inp.int(0...(slots - 1))
        let a = pool[inp.int(0...(slots - 1))], b = pool[inp.int(0...(slots - 1))]
        var out: OpaquePointer? = nil
        switch op {
        case 0:
            let dtype = Int32(inp.int(-1...4)), shape = inp.dims()
            let s = withArray(shape) { vc_tensor_create(dtype, $0, Int32(shape.count), &out) }
            check(s, out, "vc_tensor_create(\(dtype), \(shape))")
            put(dst, out)
        case 1:
            let dtype = Int32(inp.int(-1...4)), shape = inp.dims()
            let size = [4, 4, 8, 1][Int(max(0, min(dtype, 3)))]
            let exact = elementCount(shape).map { $0.multipliedReportingOverflow(by: size) }
            var nbytes = UInt(inp.int(0...64))
            if inp.bool(), let e = exact, !e.overflow, e.partialValue <= scratch.count { nbytes = UInt(e.partialValue) }
            if Int(nbytes) > scratch.count { nbytes = 0 }
            let useNull = inp.int(0...7) == 0
            let s = scratch.withUnsafeBytes { buf in
                withArray(shape) { vc_tensor_from_buffer(dtype, $0, Int32(shape.count), useNull ? nil : buf.baseAddress, nbytes, &out) }
            }
            check(s, out, "vc_tensor_from_buffer(\(dtype), \(shape), \(nbytes))")
            put(dst, out)
        case 2:
            var shape = inp.dims()
            if !shape.isEmpty && inp.bool() { shape[inp.int(0...(shape.count - 1))] = -1 }
            let s = withArray(shape) { vc_tensor_reshape(a, $0, Int32(shape.count), &out) }
            check(s, out, "vc_tensor_reshape(\(shape))")
            put(dst, out)
        case 3:
            let perm = (0..<inp.int(0...5)).map { _ in Int64(inp.int(-2...4)) }
            let s = withArray(perm) { vc_tensor_permute(a, $0, Int32(perm.count), &out) }
            check(s, out, "vc_tensor_permute(\(perm))")
            put(dst, out)
        case 4:
            let axis = inp.index(), start = inp.index(), end = inp.index(), step = inp.index()
            check(vc_tensor_slice(a, axis, start, end, step, &out), out, "vc_tensor_slice(\(axis), \(start), \(end), \(step))")
            put(dst, out)
        case 5:
            let u = Int32(inp.int(-1...15)), p = inp.float()
            check(vc_unary(u, a, p, &out), out, "vc_unary(\(u), \(p))")
            put(dst, out)
        case 6:
            let o = Int32(inp.int(-1...7))
            check(vc_binary(o, a, b, &out), out, "vc_binary(\(o))")
            put(dst, out)
        case 7:
            check(vc_matmul(a, b, &out), out, "vc_matmul")
            put(dst, out)
        case 8:
            let bias = inp.bool() ? pool[inp.int(0...(slots - 1))] : nil
            let stride = [inp.index(), inp.index()], pad = [inp.index(), inp.index()], dil = [inp.index(), inp.index()]
            let groups = inp.index()
            let nullArg = inp.int(0...7)
            let s = stride.withUnsafeBufferPointer { st in pad.withUnsafeBufferPointer { pd in dil.withUnsafeBufferPointer { dl in
                vc_conv2d(a, b, bias, nullArg == 1 ? nil : st.baseAddress, nullArg == 2 ? nil : pd.baseAddress,
                          nullArg == 3 ? nil : dl.baseAddress, groups, &out)
            } } }
            check(s, out, "vc_conv2d(stride \(stride), padding \(pad), dilation \(dil), groups \(groups))")
            put(dst, out)
        case 9:
            guard let h = pool[dst] else { continue }
            guard vc_tensor_free(h) == 0 else { fuzzFail("free of a live handle failed") }
            pool[dst] = nil
        case 10:
            let d = Int32(inp.int(-1...4))
            check(vc_tensor_to_dtype(a, d, &out), out, "vc_tensor_to_dtype(\(d))")
            put(dst, out)
        case 11:
            var ndim: Int32 = -1, numel: Int64 = -1, dtype: Int32 = -1
            let s1 = vc_tensor_ndim(a, &ndim), s2 = vc_tensor_numel(a, &numel), s3 = vc_tensor_dtype(a, &dtype)
            guard s1 == s2, s2 == s3, s1 == (a == nil ? 1 : 0) else { fuzzFail("queries disagree: \(s1) \(s2) \(s3)") }
            guard let _ = a else { continue }
            var shape = [Int64](repeating: -7, count: 17)
            let cap = Int32(inp.int(0...17))
            let s4 = vc_tensor_shape(a, &shape, cap)
            guard s4 == (cap >= ndim ? 0 : 1) else { fuzzFail("vc_tensor_shape(capacity \(cap), ndim \(ndim)) gave \(s4)") }
            if s4 == 0, elementCount(Array(shape[0..<Int(ndim)])) != Int(numel) { fuzzFail("shape and numel disagree") }
            let size = [4, 4, 8, 1][Int(dtype)]
            let bytes = Int(numel) * size
            guard bytes <= 1 << 22 else { continue }
            var buffer = [UInt8](repeating: 0, count: bytes + 8)
            let wrong = inp.int(0...3) == 0
            let s5 = buffer.withUnsafeMutableBytes { vc_tensor_copy_to(a, $0.baseAddress, UInt(wrong ? bytes + 1 : bytes)) }
            guard s5 == (wrong ? 2 : 0) else { fuzzFail("vc_tensor_copy_to gave \(s5)") }
            if wrong { continue }
            var p: UnsafeMutableRawPointer? = nil
            guard vc_tensor_data(a, &p) == 0, bytes == 0 || p != nil else { fuzzFail("vc_tensor_data failed") }
            if bytes > 0, memcmp(p!, buffer, bytes) != 0 { fuzzFail("vc_tensor_data and vc_tensor_copy_to disagree") }
        case 12:
            // A forged pointer (a stack address) and NULL are refused without being dereferenced.
            let s = withUnsafeMutablePointer(to: &forged) { f -> Int32 in
                let fake = OpaquePointer(f)
                guard vc_tensor_free(fake) == 8 else { fuzzFail("free of a forged handle was not VC_INVALID_HANDLE") }
                return vc_unary(0, fake, 0, &out)
            }
            guard s == 8, out == nil else { fuzzFail("a forged handle gave status \(s)") }
            guard vc_tensor_free(nil) == 0 else { fuzzFail("free(NULL) failed") }
            check(vc_unary(0, nil, 0, &out), out, "vc_unary(NULL)")
        case 14:
            // A mixer with fuzzed options applied to pool tensors (images a, labels b).
            let alpha = [1.0, 0.4, 0, -1, .nan, 1e-3, 1e6][inp.int(0...6)], prob = [1.0, 0.5, 0, 2][inp.int(0...3)]
            let k: Int64 = [10, 1, 0, -1, 1 << 40, 3][inp.int(0...5)], eps = [0, 0.1, 1, -0.5][inp.int(0...3)]
            let seed = UInt64(inp.int(0...255))
            var mixer: OpaquePointer? = nil
            let s: Int32
            switch inp.int(0...4) {
            case 0: s = vc_mixer_cutmix(alpha, prob, k, eps, seed, &mixer)
            case 1: s = vc_mixer_mixup(alpha, prob, k, eps, seed, &mixer)
            case 2:
                let mn = [0, 0.2, 0.5, -1][inp.int(0...3)], mx = [0, 0.8, 0.1, 2][inp.int(0...3)]
                s = vc_mixer_timm(alpha, [1.0, 0, 0.5][inp.int(0...2)], mn, mx, prob, [0.5, 0, 1, 3][inp.int(0...3)],
                                  Int32(inp.int(-1...3)), Int32(inp.int(-1...2)), eps, k, seed, &mixer)
            case 3: s = vc_mixer_cutout(inp.index(), inp.index(), k, eps, seed, &mixer)
            default: s = vc_mixer_videomix(Int32(inp.int(-1...3)), alpha, prob, k, eps, seed, &mixer)
            }
            check(s, mixer, "vc_mixer_* (alpha \(alpha), prob \(prob), k \(k), eps \(eps))")
            guard let m = mixer else { continue }
            if inp.bool() { _ = vc_mixer_set_enabled(m, Int32(inp.int(-1...2))) }
            var targets: OpaquePointer? = nil, lambdas: OpaquePointer? = nil, boxes: OpaquePointer? = nil
            let optional = inp.bool()
            let s2 = optional ? vc_mixer_apply(m, a, b, &out, &targets, &lambdas, &boxes) : vc_mixer_apply(m, a, b, &out, &targets, nil, nil)
            check(s2, out, "vc_mixer_apply")
            guard (targets == nil) == (out == nil), (lambdas != nil) == (optional && out != nil), (boxes != nil) == (lambdas != nil) else {
                fuzzFail("vc_mixer_apply: outputs disagree with the status \(s2)")
            }
            for h in [targets, lambdas, boxes] where h != nil { guard vc_tensor_free(h) == 0 else { fuzzFail("free of a mixer output failed") } }
            put(dst, out)
            guard vc_mixer_free(m) == 0 else { fuzzFail("vc_mixer_free of a live mixer failed") }
        case 15:
            // A dataset of pool tensors (inputs a, labels b), a fuzzed transform and loader, one batch.
            var ds: OpaquePointer? = nil, tf: OpaquePointer? = nil, loader: OpaquePointer? = nil, labels: OpaquePointer? = nil
            check(vc_dataset_from_tensors(a, b, &ds), ds, "vc_dataset_from_tensors")
            guard let d = ds else { continue }
            if inp.bool() {
                check(vc_transform_create(&tf), tf, "vc_transform_create")
                for _ in 0..<inp.int(0...3) {
                    switch inp.int(0...3) {
                    case 0: _ = vc_transform_add_horizontal_flip(tf, [0.5, 1, -1, .nan][inp.int(0...3)])
                    case 1: _ = vc_transform_add_resize(tf, inp.index(), inp.index())
                    case 2: _ = vc_transform_add_random_resized_crop(tf, inp.index(), inp.index(), 0.08, [1, 0.01, .infinity][inp.int(0...2)], 0.75, 1.33)
                    default:
                        // The buffers hold 4 values: larger counts would read past them (the caller's contract), so
                        // only counts the API rejects before reading (0, above 4096) go beyond.
                        let v: [Float] = [0.5, 0.5, 0.5, 0.5], n: Int64 = [0, 1, 3, 4, 5000][inp.int(0...4)]
                        _ = v.withUnsafeBufferPointer { vc_transform_add_normalize(tf, $0.baseAddress, $0.baseAddress, n) }
                    }
                }
            }
            let s = vc_loader_create(d, tf, inp.index(), Int32(inp.int(-1...2)), Int32(inp.int(0...1)), UInt64(inp.int(0...9)),
                                     Int32(inp.int(-1...3)), &loader)
            check(s, loader, "vc_loader_create")
            if let l = loader {
                let s2 = vc_loader_batch(l, inp.index(), inp.index(), &out, &labels)
                check(s2, out, "vc_loader_batch")
                if labels != nil { guard vc_tensor_free(labels) == 0 else { fuzzFail("free of batch labels failed") } }
                put(dst, out)
                guard vc_loader_free(l) == 0 else { fuzzFail("vc_loader_free failed") }
            }
            guard vc_transform_free(tf) == 0, vc_dataset_free(d) == 0 else { fuzzFail("freeing a transform or dataset failed") }
        default:
            // NULL output pointers.
            guard vc_tensor_create(0, nil, 0, nil) != 0, vc_matmul(a, b, nil) != 0 else { fuzzFail("NULL out accepted") }
        }
    }
    for h in pool where h != nil {
        guard vc_tensor_free(h) == 0 else { fuzzFail("final free of a live handle failed") }
    }
    guard liveHandleCount() == baseline else { fuzzFail("\(liveHandleCount() - baseline) handles leaked") }
    return 0
}
