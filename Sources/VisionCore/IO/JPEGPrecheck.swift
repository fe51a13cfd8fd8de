// A structural check of JPEG streams before they reach stb_image 2.27 (the version Debian ships), whose decoder
// has two memory-safety bugs on malformed input, both found by fuzzing (Tests/VisionCoreTests/ImageIOTests and
// an ASan build of stb):
// - a DHT segment whose 16 code-length counts sum to more than 256 overflows the Huffman table arrays (a heap
//   write; stb 2.28 added the same check);
// - a scan that uses a Huffman table no DHT segment defined reads the table's uninitialised memory, and the
//   garbage code lengths index far outside the table.
// The check walks the marker segments the way stb reads them (bytes past the end read as 0) and refuses such
// streams; everything else is left to stb. Well-formed JPEGs always define the tables their scans use.

/// The reason a JPEG stream must not be handed to stb_image, or nil when it passes the check.
func jpegPrecheckFailure(_ d: UnsafeRawBufferPointer) -> String? {
    let n = d.count
    @inline(__always) func at(_ i: Int) -> Int { i >= 0 && i < n ? Int(d[i]) : 0 }
    guard n >= 2, at(0) == 0xFF, at(1) == 0xD8 else { return nil }
    var dcDefined = [false, false, false, false], acDefined = [false, false, false, false]
    var progressive = false
    var pos = 2
    while pos < n {
        guard at(pos) == 0xFF else { pos += 1; continue }
        while pos < n && at(pos) == 0xFF { pos += 1 }   // fill bytes
        if pos >= n { break }
        let marker = at(pos)
        pos += 1
        if marker == 0xD9 { break }                                    // EOI
        if marker == 0x00 || marker == 0x01 || (0xD0...0xD7).contains(marker) { continue } // no length
        let length = at(pos) << 8 | at(pos + 1)
        switch marker {
        case 0xC4:  // DHT: one or more tables
            var p = pos + 2, left = length - 2
            while left > 0 {
                let q = at(p), tableClass = q >> 4, id = q & 15
                // stb refuses these itself, before touching any table.
                if tableClass > 1 || id > 3 { return nil }
                var codes = 0
                for i in 1...16 { codes += at(p + i) }
                if codes > 256 { return "Huffman table with \(codes) codes (at most 256)" }
                if tableClass == 0 { dcDefined[id] = true } else { acDefined[id] = true }
                p += 17 + codes
                left -= 17 + codes
            }
        case 0xC2:
            progressive = true
        case 0xDA:  // SOS: check the tables of each component, then skip the entropy-coded data
            let components = at(pos + 2)
            let spectralStart = at(pos + 3 + 2 * components)
            for i in 0..<components {
                let t = at(pos + 4 + 2 * i), dc = t >> 4, ac = t & 15
                if dc > 3 || ac > 3 { return nil }   // stb refuses
                // Baseline scans decode with both tables; progressive DC scans only with the DC table and
                // progressive AC scans only with the AC table.
                if (!progressive || spectralStart == 0) && !dcDefined[dc] { return "scan uses undefined DC Huffman table \(dc)" }
                if (!progressive || spectralStart != 0) && !acDefined[ac] { return "scan uses undefined AC Huffman table \(ac)" }
            }
            pos += length
            // Entropy-coded data ends at the first marker other than a stuffed 0xFF00 or a restart marker.
            while pos + 1 < n && !(at(pos) == 0xFF && at(pos + 1) != 0 && !(0xD0...0xD7).contains(at(pos + 1))) { pos += 1 }
            continue
        default:
            break
        }
        if length < 2 { return nil }   // stb refuses a segment shorter than its own length field
        pos += length
    }
    return nil
}
