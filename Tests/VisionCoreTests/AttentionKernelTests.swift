import CKernels
import Foundation
import Testing

/// vck_attention (sixteen-query blocks of six-key and six-feature register tiles on AVX2, plain loops elsewhere)
/// against softmax(scale q k^T) v computed in double: key counts on and off the six-key panels and the 128-key
/// chunks, query counts on and off the blocks, head widths with every remainder of six, both memory layouts PiT
/// uses (for the input and the output), and scores far from zero.
@Suite struct AttentionKernelTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let n: Int, d: Int, m: Int, onColumns: Bool
        /// Every score near `offset` (a large negative one underflows exp unless the row maximum is subtracted,
        /// and one raised by the padded keys' zero scores would empty the sums).
        let offset: Float
        var testDescription: String { "n \(n), d \(d), m \(m), \(onColumns ? "columns" : "rows"), offset \(offset)" }
    }

    static let cases: [Case] = [
        Case(n: 1, d: 8, m: 1, onColumns: false, offset: 0),
        Case(n: 5, d: 20, m: 7, onColumns: true, offset: 0),
        Case(n: 9, d: 12, m: 4, onColumns: false, offset: 0),
        Case(n: 3, d: 7, m: 2, onColumns: false, offset: 0),
        Case(n: 33, d: 9, m: 17, onColumns: false, offset: 0),
        Case(n: 40, d: 29, m: 32, onColumns: true, offset: 0),
        Case(n: 16, d: 32, m: 6, onColumns: false, offset: 0),
        Case(n: 17, d: 32, m: 13, onColumns: true, offset: -150),
        Case(n: 50, d: 48, m: 50, onColumns: true, offset: 0),
        Case(n: 197, d: 32, m: 23, onColumns: false, offset: -150),
        Case(n: 203, d: 64, m: 12, onColumns: false, offset: 120),
    ]

    @Test(arguments: cases) func matchesSoftmaxAttentionInDouble(_ c: Case) {
        let (n, d, m) = (c.n, c.d, c.m)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(n * 131 + d * 7 + m)
        func noise() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
        // Token (query / key / value) i's feature f: rows layout [tokens, 3 heads' worth + slack], columns layout
        // [features, tokens + slack]; q, k and v are separate blocks of one buffer as in PiT's qkv.
        let tokens = max(n, m), width = 3 * d + 5, ld = tokens + 3
        let count = c.onColumns ? 3 * d * ld : tokens * width
        var qkv = [Float](repeating: .nan, count: count)
        func index(_ block: Int, _ token: Int, _ f: Int) -> Int {
            c.onColumns ? (block * d + f) * ld + token : token * width + block * d + f
        }
        // q . k = d * offset' + noise: q and k share a constant part whose product sums to the offset.
        let shift = (abs(c.offset) / Float(d)).squareRoot() * Float(d).squareRoot().squareRoot()
        for t in 0..<tokens {
            for f in 0..<d {
                qkv[index(0, t, f)] = shift + noise()
                qkv[index(1, t, f)] = (c.offset < 0 ? -shift : shift) + noise()
                qkv[index(2, t, f)] = noise()
            }
        }
        let scale = 1 / Float(d).squareRoot()
        var expected = [Double](repeating: 0, count: m * d)
        for i in 0..<m {
            let s = (0..<n).map { j in
                Double(scale) * (0..<d).reduce(0.0) { $0 + Double(qkv[index(0, i, $1)]) * Double(qkv[index(1, j, $1)]) }
            }
            let top = s.max()!, e = s.map { exp($0 - top) }, sum = e.reduce(0, +)
            for f in 0..<d {
                expected[i * d + f] = (0..<n).reduce(0.0) { $0 + e[$1] * Double(qkv[index(2, $1, f)]) } / sum
            }
        }
        let (ts, fs) = c.onColumns ? (1, ld) : (width, 1)
        // The output in the same layout as the input, with two floats of slack past each row that must stay as
        // they are: query i's feature f at out[f * (m + 2) + i] on columns, out[i * (d + 2) + f] on rows.
        let (ors, ofs) = c.onColumns ? (1, m + 2) : (d + 2, 1)
        func outIndex(_ i: Int, _ f: Int) -> Int { i * ors + f * ofs }
        defer { _ = vck_attention_set_isa(0) }
        var tested = 0
        for level: Int32 in [3, 1] where vck_attention_set_isa(level) == 0 {
            var scratch = [Float](repeating: .nan, count: vck_attention_scratch(n, d))
            var out = [Float](repeating: -7, count: (m + 2) * (d + 2))
            qkv.withUnsafeBufferPointer { p in
                let q = p.baseAddress!
                var keys = vck_attention_head(k: q + index(1, 0, 0), v: q + index(2, 0, 0), k_rs: ts, k_cs: fs,
                                              v_rs: ts, v_cs: fs, n: n, d: d, scale: scale)
                vck_attention_pack(&keys, &scratch)
                vck_attention_queries(&keys, q, ts, fs, m, &scratch, &out, ors, ofs)
            }
            // Scores of size |offset| carry float rounding of about |offset| * 2^-24 each into the exponentials.
            let tolerance = 2e-5 + 3e-6 * Double(abs(c.offset))
            var far = 0, touched = 0
            for i in 0..<m {
                for f in 0..<d where !(abs(Double(out[outIndex(i, f)]) - expected[i * d + f]) <= tolerance) { far += 1 }
            }
            // Nothing is written outside the m x d outputs.
            var written = Set<Int>()
            for i in 0..<m { for f in 0..<d { written.insert(outIndex(i, f)) } }
            for (j, value) in out.enumerated() where !written.contains(j) && value != -7 { touched += 1 }
            #expect(touched == 0, "level \(level): \(touched) floats written outside the outputs")
            #expect(far == 0, "level \(level): \(far) outputs further than \(tolerance) from the reference")
            tested += 1
        }
        #expect(tested >= 1)
    }
}
