import Testing
@testable import VisionCore

/// conv2d, conv_transpose2d and pooling against PyTorch's outputs (tools/fixtures/conv.py). Tolerance: 1e-5
/// relative + 1e-5 absolute (the summation order differs from PyTorch's); max pooling must be exact.
@Suite struct ConvFixtureTests {
    let f: Fixture
    init() throws { f = try Fixture("conv") }

    func pair(_ key: String) throws -> (Int, Int) {
        let v = try f.ints(key)
        guard v.count == 2 else { throw VisionError.format("fixture \(key) has \(v.count) values, expected 2") }
        return (v[0], v[1])
    }

    func optionalTensor(_ key: String) throws -> Tensor? {
        f.file.names.contains(key) ? try f[key] : nil
    }

    @Test func conv2dMatchesTorch() throws {
        let cases = f.cases("conv2d_")
        #expect(cases.count >= 6)
        for c in cases {
            let y = try conv2d(try f["\(c).x"], weight: try f["\(c).weight"], bias: try optionalTensor("\(c).bias"),
                               stride: try pair("\(c).stride"), padding: try pair("\(c).padding"),
                               dilation: try pair("\(c).dilation"), groups: try f.int("\(c).groups"))
            try expectClose(y, try f["\(c).out"], rtol: 1e-5, atol: 1e-5, c)
        }
    }

    @Test func convTranspose2dMatchesTorch() throws {
        let cases = f.cases("convt_")
        #expect(cases.count >= 3)
        for c in cases {
            let y = try convTranspose2d(try f["\(c).x"], weight: try f["\(c).weight"], bias: try optionalTensor("\(c).bias"),
                                        stride: try pair("\(c).stride"), padding: try pair("\(c).padding"),
                                        outputPadding: try pair("\(c).output_padding"), groups: try f.int("\(c).groups"),
                                        dilation: try pair("\(c).dilation"))
            try expectClose(y, try f["\(c).out"], rtol: 1e-5, atol: 1e-5, c)
        }
    }

    @Test func maxPoolMatchesTorch() throws {
        let cases = f.cases("maxpool_")
        #expect(cases.count >= 3)
        for c in cases {
            let y = try maxPool2d(try f["\(c).x"], kernelSize: try pair("\(c).kernel"), stride: try pair("\(c).stride"),
                                  padding: try pair("\(c).padding"), dilation: try pair("\(c).dilation"),
                                  ceilMode: try f.int("\(c).ceil") != 0)
            try expectClose(y, try f["\(c).out"], rtol: 0, atol: 0, c)
        }
    }

    @Test func avgPoolMatchesTorch() throws {
        let cases = f.cases("avgpool_")
        #expect(cases.count >= 3)
        for c in cases {
            let y = try avgPool2d(try f["\(c).x"], kernelSize: try pair("\(c).kernel"), stride: try pair("\(c).stride"),
                                  padding: try pair("\(c).padding"), ceilMode: try f.int("\(c).ceil") != 0,
                                  countIncludePad: try f.int("\(c).include_pad") != 0)
            try expectClose(y, try f["\(c).out"], rtol: 1e-5, atol: 1e-5, c)
        }
    }

    @Test func adaptiveAvgPoolMatchesTorch() throws {
        let cases = f.cases("adaptive_")
        #expect(cases.count >= 4)
        for c in cases {
            let y = try adaptiveAvgPool2d(try f["\(c).x"], outputSize: try pair("\(c).size"))
            try expectClose(y, try f["\(c).out"], rtol: 1e-5, atol: 1e-5, c)
        }
    }
}
