import Testing
import VisionCore
@testable import VisionData

/// IDX and gzip reading (round trips and every malformed-header path), Fashion-MNIST against records read by
/// an independent Python reader (tools/fixtures/fashion_mnist.py), TensorDataset and ImageFolder on a tree
/// written by the test (class order, recursion, grey/RGBA conversion, unreadable files).
@Suite struct DatasetTests {
    @Test func idxRoundTripsEveryWritableType() throws {
        var rng = RandomGenerator(seed: 1)
        let f = try Tensor.normal([3, 2, 5], rng: &rng)
        let u = try Tensor((0..<60).map { UInt8($0 * 4 % 256) }, shape: [3, 4, 5])
        let i = try Tensor((0..<6).map { Int32($0 * 1_000_003 - 2_000_000) }, shape: [6])
        for t in [f, u, i] {
            let back = try IDX.decode(try IDX.encode(t))
            #expect(back.dtype == t.dtype && back.shape == t.shape)
            try expectClose(back, t, rtol: 0, atol: 0, "IDX \(t.dtype)")
        }
        // The big-endian byte layout: 00 00 08 01, then the size 3.
        #expect(try IDX.encode(try Tensor([UInt8(7), 8, 9], shape: [3])) == [0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
        // int16 and float64 files (readable, not writable): values widen to int32 / float32.
        let shorts = try IDX.decode([0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01, 0x00])
        #expect(try shorts.toArray(Int32.self) == [-2, 256])
        let doubles = try IDX.decode([0, 0, 0x0E, 1, 0, 0, 0, 1] + withUnsafeBytes(of: (1.5).bitPattern.bigEndian) { Array($0) })
        #expect(try doubles.toArray(Float.self) == [1.5])
    }

    @Test func idxRejectsMalformedData() throws {
        let good = try IDX.encode(try Tensor([UInt8](repeating: 1, count: 12), shape: [3, 4]))
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("bad magic", [1, 0] + good.dropFirst(2)),
            ("unknown type", [0, 0, 0x0A] + good.dropFirst(3)),
            ("zero dimensions", [0, 0, 8, 0]),
            ("truncated sizes", Array(good.prefix(9))),
            ("truncated data", Array(good.dropLast())),
            ("trailing data", good + [0]),
            ("absurd sizes", [0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
        ]
        for (what, bytes) in cases {
            #expect(throws: VisionError.self, "\(what)") { _ = try IDX.decode(bytes) }
        }
        #expect(thrownMessage { _ = try IDX.decode(Array(good.dropLast()), what: "'x.idx'") }?.contains("truncated") == true)
        #expect(throws: VisionError.self) { _ = try IDX.encode(try Tensor([Int64(1)], shape: [1])) }
        #expect(throws: VisionError.self) { _ = try IDX.read(path: "/nonexistent/file.idx") }
    }

    @Test func gzipRoundTripsAndRejectsCorruptData() throws {
        let data: [UInt8] = (0..<100_000).map { (i: Int) -> UInt8 in UInt8((i * 7 + i / 13) % 251) }
        let gz = try Gzip.compress(data)
        #expect(Gzip.isGzip(gz) && gz.count < data.count)
        #expect(try Gzip.decompress(gz) == data)
        // Concatenated members are joined, as gzip -d does.
        #expect(try Gzip.decompress(try Gzip.compress([1, 2, 3]) + (try Gzip.compress([4, 5]))) == [1, 2, 3, 4, 5])
        #expect(thrownMessage { _ = try Gzip.decompress(Array(gz.prefix(gz.count / 2)), what: "'t.gz'") }?.contains("truncated") == true)
        var corrupt = gz
        corrupt[20] ^= 0xFF
        corrupt[21] ^= 0x5A
        #expect(throws: VisionError.self) { _ = try Gzip.decompress(corrupt) }
        // A small input that inflates past the limit is stopped, not inflated.
        let bomb = try Gzip.compress([UInt8](repeating: 0, count: 1 << 22))
        #expect(bomb.count < 10_000)
        #expect(throws: VisionError.outOfMemory("gzip: data inflates to more than 1000000 bytes")) {
            _ = try Gzip.decompress(bomb, maxOutputBytes: 1_000_000)
        }
        #expect(throws: VisionError.self) { _ = try Gzip.decompress([]) }
    }

    /// A Fashion-MNIST folder written by the test: 5 training and 3 test records, gzip-compressed like the
    /// real files.
    func writeTinyFashionMNIST(_ dir: TemporaryFolder) throws -> (Tensor, [Int]) {
        let images = try Tensor((0..<(5 * 784)).map { UInt8($0 % 256) }, shape: [5, 28, 28])
        let labels = [9, 0, 3, 3, 7]
        for (name, t) in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", try Tensor(labels.map { UInt8($0) }, shape: [5])),
                          ("t10k-images-idx3-ubyte", try images.slice(axis: 0, end: 3)), ("t10k-labels-idx1-ubyte", try Tensor([UInt8(1), 2, 3], shape: [3]))] {
            try dir.write("\(name).gz", try Gzip.compress(try IDX.encode(t.contiguous())))
        }
        return (images, labels)
    }

    @Test func fashionMNISTFromTinyIDXFiles() throws {
        let dir = try TemporaryFolder()
        let (images, labels) = try writeTinyFashionMNIST(dir)
        let train = try FashionMNIST(root: dir.path, split: .train)
        #expect(train.count == 5 && train.labels == labels)
        let e = try train.example(at: 1)
        #expect(e.input.shape == [1, 28, 28] && e.label == 0)
        let expected = try images.select(axis: 0, index: 1).toArray(UInt8.self).map { Float($0) / 255 }
        #expect(try e.input.toArray(Float.self) == expected)
        #expect(try FashionMNIST(root: dir.path, split: .test).count == 3)
        #expect(throws: VisionError.self) { _ = try train.example(at: 5) }
        // Mismatched counts, bad labels and missing files are errors that name the file.
        try dir.write("t10k-labels-idx1-ubyte.gz", try Gzip.compress(try IDX.encode(try Tensor([UInt8(1), 2], shape: [2]))))
        #expect(thrownMessage { _ = try FashionMNIST(root: dir.path, split: .test) }?.contains("t10k-labels") == true)
        try dir.write("t10k-labels-idx1-ubyte.gz", try Gzip.compress(try IDX.encode(try Tensor([UInt8(1), 2, 12], shape: [3]))))
        #expect(thrownMessage { _ = try FashionMNIST(root: dir.path, split: .test) }?.contains("label 12") == true)
        #expect(thrownMessage { _ = try FashionMNIST(root: dir.path + "/none", split: .train) }?.contains("dataset-fashion-mnist") == true)
    }

    /// Real records, compared with Python's reading of the same files, when Debian's package is installed.
    @Test(.enabled(if: FashionMNIST.isAvailable(split: .train) && FashionMNIST.isAvailable(split: .test)))
    func fashionMNISTRealRecords() throws {
        let f = try Fixture("fashion_mnist")
        for split in [FashionMNIST.Split.train, .test] {
            let ds = try FashionMNIST(split: split)
            let key = split.rawValue
            #expect(ds.count == (try f.int("\(key).count")))
            let picks = try f.ints("\(key).indices"), labels = try f.ints("\(key).labels")
            let images = try f["\(key).images"]
            for (k, index) in picks.enumerated() {
                #expect(ds.labels[index] == labels[k])
                #expect(try ds.images.select(axis: 0, index: index).toArray(UInt8.self)
                        == images.select(axis: 0, index: k).toArray(UInt8.self), "\(key) record \(index)")
            }
            var histogram = [Int](repeating: 0, count: 10)
            for l in ds.labels { histogram[l] += 1 }
            #expect(histogram == (try f.ints("\(key).histogram")))
        }
    }

    @Test func tensorDatasetSlicesExamples() throws {
        let x = try Tensor((0..<24).map { Float($0) }, shape: [4, 2, 3])
        let ds = try TensorDataset(inputs: x, labels: try Tensor([Int32(3), 1, 4, 1], shape: [4]))
        #expect(ds.count == 4)
        let e = try ds.example(at: 2)
        let values = try e.input.toArray(Float.self)
        #expect(e.label == 4 && e.input.shape == [2, 3] && values == (12..<18).map { Float($0) })
        #expect(throws: VisionError.self) { _ = try TensorDataset(inputs: x, labels: [1, 2]) }
        #expect(throws: VisionError.self) { _ = try ds.example(at: -1) }
    }

    @Test func imageFolderMatchesTorchvisionLayout() throws {
        let dir = try TemporaryFolder()
        for c in ["b", "a", "C", "a/nested"] { dir.makeFolder(c) }
        let rgb = try Tensor((0..<(4 * 5 * 3)).map { UInt8($0 * 3 % 256) }, shape: [4, 5, 3])
        let grey = try Tensor((0..<(4 * 5)).map { UInt8($0 * 11 % 256) }, shape: [4, 5, 1])
        let rgba = try Tensor((0..<(4 * 5 * 4)).map { UInt8($0 * 5 % 256) }, shape: [4, 5, 4])
        try saveImage(rgb, path: "\(dir.path)/b/z.png")
        try saveImage(rgb, path: "\(dir.path)/b/y.JPG")
        try saveImage(grey, path: "\(dir.path)/a/grey.png")
        try saveImage(rgba, path: "\(dir.path)/a/nested/rgba.png")
        try saveImage(rgb, path: "\(dir.path)/C/x.png")
        try dir.write("a/notes.txt", Array("not an image".utf8))
        let ds = try ImageFolder(root: dir.path)
        // Python's sorted(): "C" < "a" < "b"; files by folder path, then name; .txt is ignored.
        #expect(ds.classes == ["C", "a", "b"])
        #expect(ds.samples.map { String($0.path.dropFirst(dir.path.count + 1)) } == ["C/x.png", "a/grey.png", "a/nested/rgba.png", "b/y.JPG", "b/z.png"])
        #expect(ds.samples.map(\.label) == [0, 1, 1, 2, 2])
        let g = try ds.example(at: 1)
        #expect(g.input.shape == [3, 4, 5])
        // Grey replicated to RGB (imageToTensor scales by 1/255 as a multiply: 1-ulp tolerance).
        let greyv = try grey.toArray(UInt8.self).map { Float($0) / 255 }
        try expectClose(g.input, try Tensor(greyv + greyv + greyv, shape: [3, 4, 5]), rtol: 1e-7, atol: 0, "grey")
        let a = try ds.example(at: 2)
        let rgbaV = try rgba.toArray(UInt8.self)
        let expectedRGB = (0..<3).flatMap { c in (0..<20).map { Float(rgbaV[$0 * 4 + c]) / 255 } }
        try expectClose(a.input, try Tensor(expectedRGB, shape: [3, 4, 5]), rtol: 1e-7, atol: 0, "alpha dropped, RGB kept")
    }

    @Test func imageFolderUnreadableFiles() throws {
        let dir = try TemporaryFolder()
        dir.makeFolder("cat")
        dir.makeFolder("dog")
        try saveImage(try Tensor.zeros([3, 3, 3], dtype: .uint8), path: "\(dir.path)/cat/ok.png")
        try saveImage(try Tensor.zeros([3, 3, 3], dtype: .uint8), path: "\(dir.path)/dog/ok.png")
        try dir.write("dog/broken.png", [0x89, 0x50, 0x4E, 0x47, 1, 2, 3])
        let strict = try ImageFolder(root: dir.path)
        #expect(strict.count == 3)
        let message = thrownMessage { _ = try strict.example(at: 1) }
        #expect(message?.contains("broken.png") == true, "\(message ?? "no error")")
        let lenient = try ImageFolder(root: dir.path, unreadable: .skip)
        #expect(lenient.count == 2 && lenient.skipped.count == 1 && lenient.skipped[0].path.hasSuffix("dog/broken.png"))
        for i in 0..<lenient.count { _ = try lenient.example(at: i) }
        dir.makeFolder("empty")
        #expect(thrownMessage { _ = try ImageFolder(root: dir.path) }?.contains("empty") == true)
        #expect(throws: VisionError.self) { _ = try ImageFolder(root: dir.path + "/nothing") }
    }
}
