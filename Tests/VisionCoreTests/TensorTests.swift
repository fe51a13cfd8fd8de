import Testing
@testable import VisionCore

@Suite struct TensorTests {
    @Test func viewsShareStorageAndCopyOnWrite() throws {
        let t = try Tensor((0..<24).map { Float($0) }, shape: [2, 3, 4])
        let p = try t.permute([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(!p.isContiguous)
        let c = try p.contiguous().toArray(Float.self)
        #expect(c[0..<6] == [0, 4, 8, 12, 16, 20])
        var copy = t
        try copy.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 100 }
        #expect(try t.toArray(Float.self)[0] == 0)
        #expect(try copy.toArray(Float.self)[0] == 100)
    }
}
