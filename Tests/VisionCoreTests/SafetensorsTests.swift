import Testing
@testable import VisionCore

@Suite struct SafetensorsTests {
    /// A file written by the reference `safetensors` library decodes to the values torch wrote.
    @Test func readsTheReferenceWriter() throws {
        let f = try Fixture("safetensors_format")
        #expect(f.file.metadata.contains { $0 == ("format", "pt") })
        let x = try f["f32"]
        #expect(x.shape == [3, 5])
        try expectClose(try f["f16"], x, rtol: 1e-3, atol: 1e-3, "f16")
        try expectClose(try f["bf16"], x, rtol: 1e-2, atol: 1e-2, "bf16")
        try expectClose(try f["f16_special"], try f["f16_special_f32"], rtol: 0, atol: 0, "f16 specials")
        #expect(try f["i64"].toArray(Int64.self) == (-3..<9).map { Int64($0) })
        #expect(try f["i32"].toArray(Int32.self) == [Int32.min, Int32.max])
        #expect(try f["u8"].toArray(UInt8.self) == stride(from: 0, to: 256, by: 17).map { UInt8($0) })
        #expect(try f["scalar"].shape == [] && f["scalar"].item() == 2.5)
        #expect(try f["empty"].shape == [0, 3])
        #expect(f.file.entries.first { $0.name == "bf16" }?.stored == .BF16)
    }

    /// The writer rounds float32 to F16 and BF16 exactly as torch does.
    @Test func writerRoundsLikeTorch() throws {
        let f = try Fixture("safetensors_format")
        let src = try f["round_src"]
        let bytes = try Safetensors.encode([("h", src), ("b", src)], storeAs: ["h": .F16, "b": .BF16])
        let back = try bytes.withUnsafeBytes { try Safetensors.decode($0) }
        try expectClose(try back.tensor("h"), try f["round_f16"], rtol: 0, atol: 0, "f16 rounding")
        try expectClose(try back.tensor("b"), try f["round_bf16"], rtol: 0, atol: 0, "bf16 rounding")
    }

    @Test func roundTripsEveryDtypeAndMetadata() throws {
        var rng = RandomGenerator(seed: 3)
        let a = try Tensor.normal([4, 6], rng: &rng).transpose(0, 1)  // non-contiguous input
        let tensors: [(String, Tensor)] = [("a", a), ("b", try Tensor([Int64(-5), 7], shape: [2])),
                                          ("c", try Tensor([Int32(1)], shape: [1, 1])), ("d", try Tensor([UInt8(9)], shape: []))]
        let bytes = try Safetensors.encode(tensors, metadata: [("epoch", "3"), ("quote\"d", "é\n")])
        let back = try bytes.withUnsafeBytes { try Safetensors.decode($0) }
        #expect(back.names == ["a", "b", "c", "d"])
        #expect(try back.tensor("a").toArray(Float.self) == a.contiguous().toArray(Float.self))
        #expect(try back.tensor("b").toArray(Int64.self) == [-5, 7])
        #expect(back.metadata.count == 2 && back.metadata[1] == ("quote\"d", "é\n"))
        #expect(throws: VisionError.self) { try Safetensors.encode([("x", a), ("x", a)]) }
    }

    /// Every truncation and a few hundred seeded bit flips of a valid file give an error or a valid file.
    @Test func malformedFilesNeverCrash() throws {
        let good = try FileIO.read("\(Fixture.directory)/safetensors_format.safetensors")
        for n in 0..<good.count {
            #expect(throws: VisionError.self) { try Array(good[..<n]).withUnsafeBytes { try Safetensors.decode($0) } }
        }
        var rng = RandomGenerator(seed: 11)
        for _ in 0..<400 {
            var bad = good
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(bad.count))
                bad[i] ^= UInt8(1 << (rng.next() % 8))
            }
            _ = try? bad.withUnsafeBytes { try Safetensors.decode($0) }
        }
    }

    static func file(header: String, data: [UInt8]) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
    }

    @Test(arguments: [
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, "needs 8 bytes"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 6, "overlaps"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9, "cover"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,400]}}", 4, "outside"),
        ("{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "unsupported dtype"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "invalid dimension"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "duplicate"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "JSON"),
        ("[1, 2]", 0, "JSON object"),
        ("{\"__metadata__\":{\"k\":1}}", 0, "not a string"),
        ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "too large"),
    ])
    func rejectsInconsistentHeaders(header: String, dataBytes: Int, message: String) throws {
        let bytes = Self.file(header: header, data: [UInt8](repeating: 0, count: dataBytes))
        do {
            _ = try bytes.withUnsafeBytes { try Safetensors.decode($0) }
            Issue.record("accepted a bad header: \(header)")
        } catch let e as VisionError {
            #expect(e.message.contains(message), "\(e.message)")
        }
    }

    @Test func rejectsLyingHeaderLengthAndMissingFiles() throws {
        var bytes = Self.file(header: "{}", data: [])
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(1 << 40).littleEndian, as: UInt64.self) }
        #expect(throws: VisionError.self) { try bytes.withUnsafeBytes { try Safetensors.decode($0) } }
        #expect(throws: VisionError.self) { try Safetensors.load(path: "/nonexistent/x.safetensors") }
        let deep = String(repeating: "[", count: 10_000)
        #expect(throws: VisionError.self) { try JSONValue.parse(deep) }
    }

    @Test func atomicSaveReplacesWholeFile() throws {
        let path = "/tmp/vc-test-\(UInt64.random(in: 0..<UInt64.max)).safetensors"
        try Safetensors.save([("x", try Tensor.ones([3]))], path: path)
        try Safetensors.save([("y", try Tensor.zeros([2]))], path: path)
        let back = try Safetensors.load(path: path)
        #expect(back.names == ["y"])
    }
}
