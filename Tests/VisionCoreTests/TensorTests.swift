import Testing
@testable import VisionCore

@Suite struct TensorTests {
    static func iota(_ shape: [Int]) throws -> Tensor {
        try Tensor((0..<shape.reduce(1, *)).map { Float($0) }, shape: shape)
    }

    @Test func viewsShareStorageAndCopyOnWrite() throws {
        let t = try Self.iota([2, 3, 4])
        let p = try t.permute([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(!p.isContiguous)
        #expect(p.storage === t.storage)
        let c = try p.contiguous().toArray(Float.self)
        #expect(c[0..<6] == [0, 4, 8, 12, 16, 20])
        var copy = t
        try copy.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 100 }
        #expect(try t.toArray(Float.self)[0] == 0)
        #expect(try copy.toArray(Float.self)[0] == 100)
    }

    @Test func reshapeViewsWhenPossibleAndCopiesOtherwise() throws {
        let t = try Self.iota([2, 3, 4])
        let r = try t.reshape([6, -1])
        #expect(r.shape == [6, 4] && r.storage === t.storage)
        let tr = try t.transpose(1, 2)                     // [2, 4, 3], not contiguous
        #expect(throws: VisionError.self) { try tr.view([2, 12]) }
        let merged = try tr.reshape([2, 12])
        #expect(merged.storage !== t.storage)
        #expect(try merged.toArray(Float.self)[0..<4] == [0, 4, 8, 1])
        // A view over non-contiguous but compatible strides: splitting the leading dim of a transposed tensor.
        let v = try tr.view([1, 2, 4, 3])
        #expect(v.storage === t.storage)
        #expect(throws: VisionError.self) { try t.reshape([5, -1]) }
        #expect(throws: VisionError.self) { try t.reshape([-1, -1]) }
    }

    @Test func sliceSelectExpandSqueeze() throws {
        let t = try Self.iota([4, 5])
        #expect(try t.slice(axis: 1, start: 1, end: 5, step: 2).contiguous().toArray(Float.self) == [1, 3, 6, 8, 11, 13, 16, 18])
        #expect(try t.slice(axis: 0, start: -2).shape == [2, 5])
        #expect(try t.slice(axis: 0, start: 10).shape == [0, 5])
        #expect(try t.select(axis: 1, index: -1).toArray(Float.self) == [4, 9, 14, 19])
        #expect(throws: VisionError.self) { try t.select(axis: 0, index: 4) }
        #expect(throws: VisionError.self) { try t.slice(axis: 0, step: 0) }
        let col = try Tensor([Float(1), 2, 3], shape: [3, 1])
        let e = try col.expand([2, 3, 4])
        #expect(e.strides == [0, 1, 0])
        #expect(try e.contiguous().toArray(Float.self)[0..<5] == [1, 1, 1, 1, 2])
        #expect(throws: VisionError.self) { try col.expand([2, 1]) }
        #expect(try col.unsqueeze(axis: 0).shape == [1, 3, 1])
        #expect(try col.squeeze().shape == [3])
        #expect(try col.squeeze(axis: 0).shape == [3, 1])
        #expect(try Self.iota([2, 3, 4]).flatten(start: 1).shape == [2, 12])
        #expect(throws: VisionError.self) { try t.permute([0, 0]) }
        #expect(throws: VisionError.self) { try t.transpose(0, 2) }
    }

    @Test func factoriesAndConversions() throws {
        #expect(try Tensor.arange(end: 5).toArray(Float.self) == [0, 1, 2, 3, 4])
        #expect(try Tensor.arange(start: 1, end: 2, step: 0.25, dtype: .float32).count == 4)
        #expect(try Tensor.full([2], value: 300, dtype: .uint8).toArray(UInt8.self) == [255, 255])
        #expect(try Tensor.ones([2, 2], dtype: .int64).toArray(Int64.self) == [1, 1, 1, 1])
        #expect(try Tensor([Float(-1.7), .nan, 3e10], shape: [3]).to(.int32).toArray(Int32.self) == [-1, 0, Int32.max])
        #expect(throws: VisionError.self) { try Tensor.zeros([-1]) }
        #expect(throws: VisionError.self) { try Tensor.zeros([1 << 40, 1 << 40]) }
        #expect(throws: VisionError.self) { try Tensor.zeros([Int](repeating: 1, count: 17)) }
        #expect(throws: VisionError.self) { try Tensor([Float(1)], shape: [2]) }
        #expect(throws: VisionError.self) { try Tensor.arange(end: 1, step: 0) }
        #expect(try Tensor.zeros([0, 3]).count == 0)
        #expect(try Tensor.zeros([]).count == 1)
    }

    @Test func seededRandomIsReproducibleAndWellDistributed() throws {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let x = try Tensor.normal([10_000], rng: &a), y = try Tensor.normal([10_000], rng: &b), z = try Tensor.normal([10_000], rng: &c)
        #expect(try x.toArray(Float.self) == y.toArray(Float.self))
        #expect(try x.toArray(Float.self) != z.toArray(Float.self))
        let v = try x.toArray(Float.self).map(Double.init)
        let mean = v.reduce(0, +) / Double(v.count), varc = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)
        #expect(abs(mean) < 0.05 && abs(varc - 1) < 0.05)
        var r = RandomGenerator(seed: 7)
        let u = try Tensor.uniform([10_000], low: -2, high: 3, rng: &r).toArray(Float.self)
        #expect(u.allSatisfy { $0 >= -2 && $0 < 3 })
    }
}

@Suite struct BlockCacheTests {
    @Test func sizeClassesCoverTheRequestWithBoundedWaste() {
        for n in [1, 63, 64, 4097, 1 << 18, (1 << 18) + 1, 3_000_000, 64 << 20, (64 << 20) + 1] {
            let c = BlockCache.sizeClass(n)
            #expect(c >= n && Double(c) <= Double(n) * 1.125 + 64, "\(n) -> \(c)")
        }
    }

    @Test func largeBlocksAreReusedAndZeroedOnRequest() throws {
        var t: Tensor? = try Tensor.full([1 << 20], value: 7)
        let address = t!.storage.base
        t = nil
        let z = try Tensor.zeros([1 << 20])
        // The freed block is the natural candidate for the next allocation of its class; zeros must be zeros.
        #expect(try z.toArray(Float.self).allSatisfy { $0 == 0 })
        _ = address
        BlockCache.shared.trim()
    }

    /// Blocks that can hold a huge page start on one, so that the whole of each 2 MB inside them can be one.
    @Test func hugeBlocksStartOnAHugePageBoundary() throws {
        for count in [1 << 19, 3 << 19, 5 << 20] {
            let t = try Tensor.uninitialized([count])
            #expect(Int(bitPattern: t.storage.base) % BlockCache.hugePage == 0, "\(count) floats")
        }
        let small = try Tensor.uninitialized([1 << 17])
        #expect(Int(bitPattern: small.storage.base) % 64 == 0)
    }
}
