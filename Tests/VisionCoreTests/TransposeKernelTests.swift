import CKernels
import Testing

/// vck_transpose (16 x 16 register tiles on AVX-512, 8 x 8 on AVX2, blocked scalar loops elsewhere) against the
/// index definition, for whole tiles, ragged edges on both sides and row strides wider than the rows.
@Suite struct TransposeKernelTests {
    @Test(arguments: [(1, 1), (8, 8), (16, 16), (17, 33), (5, 40), (48, 56), (64, 7), (49, 16), (8, 49)])
    func matchesTheDefinition(_ size: (Int, Int)) {
        let (rows, cols) = size, ss = cols + 3, ds = rows + 5
        let src = (0..<(rows * ss)).map { Float($0) * 0.5 - 7 }
        // Entries past `rows` in each destination row are left as they were.
        var expected = [Float](repeating: -1, count: cols * ds)
        for j in 0..<cols { for i in 0..<rows { expected[j * ds + i] = src[i * ss + j] } }
        defer { _ = vck_transpose_set_isa(0) }
        var tested = 0
        for level: Int32 in [4, 3, 1] where vck_transpose_set_isa(level) == 0 {
            var dst = [Float](repeating: -1, count: cols * ds)
            vck_transpose(src, rows, cols, ss, &dst, ds)
            #expect(dst == expected, "level \(level), \(rows) x \(cols)")
            tested += 1
        }
        #expect(tested >= 1)
        #expect(vck_transpose_set_isa(2) == -1)
    }
}
