import Testing
@testable import VisionCore

/// Resizing against the Double reference (torch's definition) and known values.
@Suite struct InterpolateTests {
    // Bilinear tolerance 1e-5: the fast kernel does torch's index math and blend in float, the reference in Double.
    @Test func sizesMatchReference() throws {
        let sizes = [(7, 9), (14, 18), (3, 4), (1, 1), (5, 9), (20, 11)]
        for x in try NormCheck.layouts([2, 3, 5, 9], seed: 21) {
            for s in sizes {
                let n = try interpolate(x, size: s, mode: .nearest)
                #expect(try maxRelativeError(n, try interpolateReference(x, size: s, mode: .nearest)) == 0, "nearest \(s)")
                for ac in [false, true] {
                    let b = try interpolate(x, size: s, mode: .bilinear, alignCorners: ac)
                    let e = try maxRelativeError(b, try interpolateReference(x, size: s, mode: .bilinear, alignCorners: ac))
                    #expect(e < 1e-5, "bilinear \(s) ac \(ac): \(e)")
                }
            }
        }
    }

    @Test func scaleFactorsMatchReference() throws {
        let x = try NormCheck.random([1, 2, 6, 7], seed: 22)
        for f in [(2.0, 2.0), (0.5, 0.5), (1.7, 0.6), (3.0, 1.0)] {
            let n = try interpolate(x, scaleFactor: f, mode: .nearest)
            #expect(n.shape == [1, 2, Int((6 * f.0).rounded(.down)), Int((7 * f.1).rounded(.down))])
            #expect(try maxRelativeError(n, try interpolateReference(x, scaleFactor: f, mode: .nearest)) == 0, "nearest \(f)")
            let b = try interpolate(x, scaleFactor: f, mode: .bilinear)
            let e = try maxRelativeError(b, try interpolateReference(x, scaleFactor: f, mode: .bilinear))
            #expect(e < 1e-5, "bilinear \(f): \(e)")
        }
    }

    @Test func knownValues() throws {
        // torch: F.interpolate([[0, 1]], size=4, mode='linear') rows: [0, 0.25, 0.75, 1] (half-pixel, clamped).
        let x = try Tensor([Float(0), 1], shape: [1, 1, 1, 2])
        #expect(try interpolate(x, size: (1, 4), mode: .bilinear).toArray(Float.self) == [0, 0.25, 0.75, 1])
        #expect(try interpolate(x, size: (1, 3), mode: .bilinear, alignCorners: true).toArray(Float.self) == [0, 0.5, 1])
        #expect(try interpolate(x, size: (1, 4)).toArray(Float.self) == [0, 0, 1, 1])
    }

    @Test func badArguments() throws {
        let x = try Tensor.zeros([1, 1, 4, 4])
        #expect(throws: VisionError.self) { try interpolate(x, size: (2, 2), alignCorners: false) }
        #expect(throws: VisionError.self) { try interpolate(x) }
        #expect(throws: VisionError.self) { try interpolate(x, size: (2, 2), scaleFactor: (2, 2)) }
        #expect(throws: VisionError.self) { try interpolate(x, size: (0, 2)) }
        #expect(throws: VisionError.self) { try interpolate(x, scaleFactor: (0.1, 1)) }
        #expect(throws: VisionError.self) { try interpolate(x, scaleFactor: (.nan, 1)) }
        #expect(throws: VisionError.self) { try interpolate(x, scaleFactor: (1e30, 1)) }
        #expect(throws: VisionError.self) { try interpolate(try Tensor.zeros([4, 4]), size: (2, 2)) }
    }
}
