import Testing
@testable import VisionCore

/// Element-wise ops, activations, matmul and linear against PyTorch's outputs (tools/fixtures/elementwise.py).
/// Tolerances: 2e-6 relative + 1e-6 absolute for activations (float32 polynomial approximations vs torch's
/// vectorized libm), 1e-6 for exact arithmetic, 1e-5 for products (summation order).
@Suite struct ElementwiseFixtureTests {
    let f: Fixture
    init() throws { f = try Fixture("elementwise") }

    @Test func activationsMatchTorch() throws {
        let x = try f["act.x"]
        let cases: [(String, Tensor)] = [
            ("relu", try relu(x)), ("relu6", try relu6(x)), ("leaky_relu", try leakyRelu(x, negativeSlope: 0.1)),
            ("silu", try silu(x)), ("gelu", try gelu(x)), ("gelu_tanh", try gelu(x, approximate: "tanh")),
            ("sigmoid", try sigmoid(x)), ("tanh", try tanh(x)), ("hardswish", try hardSwish(x)),
            ("hardsigmoid", try hardSigmoid(x)), ("abs", try unary(.abs, x)), ("neg", try unary(.neg, x)),
            ("exp", try unary(.exp, try minimum(x, try Tensor.full([], value: 20)))),
        ]
        for (name, y) in cases { try expectClose(y, try f["act.\(name)"], rtol: 2e-6, atol: 1e-6, name) }
        try expectClose(try prelu(try f["prelu.x"], weight: try f["prelu.weight"]), try f["prelu.out"], rtol: 1e-6, atol: 0, "prelu")
    }

    @Test func broadcastArithmeticMatchesTorch() throws {
        let a = try f["bin.a"], b = try f["bin.b"]
        for op in BinaryOp.allCases where op != .pow {
            try expectClose(try binary(op, a, b), try f["bin.\(op)"], rtol: 1e-6, atol: 0, "\(op)")
        }
        let base = try add(try unary(.abs, a), try Tensor.full([], value: 0.1))
        try expectClose(try binary(.pow, base, b), try f["bin.pow"], rtol: 1e-6, atol: 0, "pow")
    }

    @Test func matmulAndLinearMatchTorch() throws {
        try expectClose(try matmul(try f["matmul.a"], try f["matmul.b"]), try f["matmul.out"], rtol: 1e-5, atol: 1e-5, "matmul")
        try expectClose(try linear(try f["linear.x"], weight: try f["linear.weight"], bias: try f["linear.bias"]),
                        try f["linear.out"], rtol: 1e-5, atol: 1e-5, "linear")
    }
}
