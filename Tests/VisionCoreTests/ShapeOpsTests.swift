import Testing
@testable import VisionCore

/// pad / concat / stack / split / gather / indexSelect / topk on all dtypes, strided inputs and bad indices.
@Suite struct ShapeOpsTests {
    @Test(arguments: DType.allCases)
    func padMatchesReference(dtype: DType) throws {
        for x0 in try NormCheck.layouts([2, 3, 5, 6], seed: 31) {
            let x = try x0.to(dtype)
            let cases: [([Int], Padding)] = [([1, 2], .constant(7)), ([2, 1, 0, 3], .constant(-1)), ([-1, 2, 1, -2], .constant(0)),
                                             ([3, 4, 2, 1], .reflect), ([-1, 2], .reflect), ([1, 5, 2, 0, 1, 1], .replicate),
                                             ([0, 0, 0, 0, 1, 1, 1, 0], .constant(2))]
            for (pads, mode) in cases {
                let fast = try pad(x, pads: pads, mode: mode), ref = try padReference(x, pads: pads, mode: mode)
                #expect(fast.shape == ref.shape && fast.dtype == dtype)
                #expect(try fast.to(.float32).toArray(Float.self) == ref.to(.float32).toArray(Float.self), "\(pads) \(mode)")
            }
        }
        let x = try Tensor.zeros([2, 3], dtype: dtype)
        #expect(throws: VisionError.self) { try pad(x, pads: [3, 0], mode: .reflect) }
        #expect(throws: VisionError.self) { try pad(x, pads: [1]) }
        #expect(throws: VisionError.self) { try pad(x, pads: [-2, -2]) }
        #expect(throws: VisionError.self) { try pad(x, pads: [1, 1, 1, 1, 1, 1]) }
        #expect(throws: VisionError.self) { try pad(x, pads: [Int.max, 1]) }
        #expect(throws: VisionError.self) { try pad(x, pads: [Int.min, 0]) }
        #expect(throws: VisionError.self) { try padReference(x, pads: [1, 1, 1, 1, 1, 1]) }
        #expect(throws: VisionError.self) { try pad(try Tensor.zeros([2, 0], dtype: dtype), pads: [1, 1], mode: .reflect) }
        #expect(try pad(try Tensor.zeros([2, 0], dtype: dtype), pads: [1, 1], mode: .constant(3)).to(.float32).toArray(Float.self) == [3, 3, 3, 3])
    }

    @Test(arguments: DType.allCases)
    func concatSplitStackRoundTrip(dtype: DType) throws {
        let x = try NormCheck.layouts([4, 9, 5], seed: 41)[1].to(dtype)
        for axis in [0, 1, 2, -1] {
            let pieces = try split(x, chunkSize: 2, axis: axis)
            let back = try concat(pieces, axis: axis)
            #expect(try back.to(.float32).toArray(Float.self) == x.to(.float32).toArray(Float.self))
            let uneven = try split(x, sizes: [1, 0, x.shape[(axis + 3) % 3] - 1], axis: axis)
            #expect(uneven[1].shape[(axis + 3) % 3] == 0)
            #expect(try concat(uneven, axis: axis).to(.float32).toArray(Float.self) == x.to(.float32).toArray(Float.self))
        }
        let s = try stack([x, x, x], axis: 1)
        #expect(s.shape == [4, 3, 9, 5])
        #expect(try s.select(axis: 1, index: 2).contiguous().to(.float32).toArray(Float.self) == x.to(.float32).toArray(Float.self))
        #expect(try stack([x], axis: -1).shape == [4, 9, 5, 1])
        #expect(throws: VisionError.self) { try concat([x, try Tensor.zeros([4, 9, 5], dtype: dtype == .float32 ? .int32 : .float32)], axis: 0) }
        #expect(throws: VisionError.self) { try concat([x, try Tensor.zeros([4, 8, 5], dtype: dtype)], axis: 0) }
        #expect(throws: VisionError.self) { try concat([], axis: 0) }
        #expect(throws: VisionError.self) { try stack([x, try Tensor.zeros([4, 9], dtype: dtype)], axis: 0) }
        #expect(throws: VisionError.self) { try split(x, sizes: [1, 2], axis: 0) }
        #expect(throws: VisionError.self) { try split(x, chunkSize: 0, axis: 0) }
    }

    @Test(arguments: DType.allCases)
    func gatherAndIndexSelect(dtype: DType) throws {
        let x = try Tensor((0..<12).map { Float($0) }, shape: [3, 4]).to(dtype)
        let idx = try Tensor([Int64(3), 0, 1, 1, 2, 2], shape: [3, 2])
        #expect(try gather(x, axis: 1, index: idx).to(.float32).toArray(Float.self) == [3, 0, 5, 5, 10, 10])
        let idx0 = try Tensor([Int64(2), 0, 1], shape: [1, 3])
        #expect(try gather(x, axis: 0, index: idx0).to(.float32).toArray(Float.self) == [8, 1, 6])
        let t = try x.transpose(0, 1)  // non-contiguous [4, 3]
        #expect(try gather(t, axis: 0, index: try Tensor([Int64(3), 1], shape: [1, 2])).to(.float32).toArray(Float.self) == [3, 5])
        let sel = try indexSelect(x, axis: 1, index: try Tensor([Int64(3), 3, 0], shape: [3]))
        #expect(sel.shape == [3, 3])
        #expect(try sel.to(.float32).toArray(Float.self) == [3, 3, 0, 7, 7, 4, 11, 11, 8])
        #expect(try indexSelect(t, axis: 0, index: try Tensor([Int32(1)], shape: [1])).to(.float32).toArray(Float.self) == [1, 5, 9])
        #expect(throws: VisionError.invalidArgument("gather: index 4 at position 0 is out of range for dimension 1 of size 4")) {
            try gather(x, axis: 1, index: try Tensor([Int64(4)], shape: [1, 1]))
        }
        #expect(throws: VisionError.self) { try gather(x, axis: 1, index: try Tensor([Int64(-1)], shape: [1, 1])) }
        #expect(throws: VisionError.self) { try gather(x, axis: 1, index: try Tensor([Int64(0)], shape: [1])) }
        #expect(throws: VisionError.self) { try gather(x, axis: 1, index: try Tensor([Float(0)], shape: [1, 1])) }
        #expect(throws: VisionError.self) { try indexSelect(x, axis: 0, index: try Tensor([Int64(3)], shape: [1])) }
        #expect(throws: VisionError.self) { try indexSelect(x, axis: 0, index: try Tensor([Int64.min], shape: [1])) }
    }

    @Test func topkOrdersAndTies() throws {
        let x = try Tensor([Float(1), .nan, 3, 3, 1, -2], shape: [6])
        let (v, i) = try topk(x, k: 3)
        let vv = try v.toArray(Float.self)
        #expect(vv[0].isNaN && vv[1] == 3 && vv[2] == 3)
        #expect(try i.toArray(Int64.self) == [1, 2, 3])
        let (sv, si) = try topk(x, k: 3, largest: false)
        #expect(try sv.toArray(Float.self) == [-2, 1, 1])
        #expect(try si.toArray(Int64.self) == [5, 0, 4])
        // Along a middle axis of a strided tensor, against a full sort.
        let y = try NormCheck.layouts([3, 40, 5], seed: 51)[1]
        for k in [0, 1, 4, 40] {
            let (tv, ti) = try topk(y, k: k, axis: 1)
            #expect(tv.shape == [3, k, 5] && ti.dtype == .int64)
            let gathered = try gather(y, axis: 1, index: ti)
            #expect(try gathered.toArray(Float.self) == tv.toArray(Float.self))
            if k > 1 {
                let d = try sub(try tv.slice(axis: 1, start: 0, end: k - 1), try tv.slice(axis: 1, start: 1))
                #expect(try amin(d).item() >= 0)
            }
        }
        let ints = try Tensor([Int32(4), 9, 1, 9], shape: [4])
        #expect(try topk(ints, k: 2).values.toArray(Int32.self) == [9, 9])
        #expect(throws: VisionError.self) { try topk(x, k: 7) }
        #expect(throws: VisionError.self) { try topk(x, k: -1) }
        #expect(throws: VisionError.self) { try topk(x, k: 1, axis: 1) }
    }
}
