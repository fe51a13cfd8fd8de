import Testing
import VisionCore
@testable import VisionNN

/// Layers and losses against PyTorch (tools/fixtures/nn.py). Tolerances: 1e-5 relative for layer outputs,
/// 1e-4 for gradients and batch-norm statistics.
@Suite struct LayerParityTests {
    let f: NNFixture
    init() throws { f = try NNFixture("nn") }

    @Test func batchNormTrainsAndEvaluatesLikePyTorch() throws {
        let bn = try BatchNorm2d(3)
        try bn.loadStateDict([("weight", try f["bn.weight"]), ("bias", try f["bn.bias"])], strict: false)
        let x1 = try f["bn.x1"].requiringGrad()
        let y1 = try bn(x1)
        try expectNear(y1, try f["bn.y1"], rtol: 1e-5, atol: 1e-5, "train output")
        try sum(try mul(y1, try f["bn.gw"])).backward()
        try expectNear(try #require(x1.grad), try f["bn.gx1"], rtol: 1e-4, atol: 1e-5, "input gradient")
        try expectNear(try #require(bn.weight?.grad), try f["bn.gweight"], rtol: 1e-4, atol: 1e-5, "weight gradient")
        try expectNear(try bn(try f["bn.x2"]), try f["bn.y2"], rtol: 1e-5, atol: 1e-5, "second step")
        try expectNear(bn.runningMean.value, try f["bn.running_mean"], rtol: 1e-5, atol: 1e-6, "running mean")
        try expectNear(bn.runningVar.value, try f["bn.running_var"], rtol: 1e-5, atol: 1e-6, "running var")
        #expect(try bn.numBatchesTracked.value.item() == 2)
        bn.eval()
        try expectNear(try bn(try f["bn.x3"]), try f["bn.y3"], rtol: 1e-5, atol: 1e-5, "eval output")
    }

    @Test func attentionMlpAndSqueezeExcite() throws {
        var rng = RandomGenerator(seed: 5)
        let attn = try MultiheadSelfAttention(dim: 8, heads: 2, rng: &rng)
        try attn.loadStateDict(try ["qkv.weight", "qkv.bias", "proj.weight", "proj.bias"].map { ($0, try f["attn.\($0)"]) })
        try expectNear(try attn(try f["attn.x"]), try f["attn.y"], rtol: 1e-5, atol: 1e-5, "attention")
        let mlp = try Mlp(inFeatures: 8, hiddenFeatures: 16, rng: &rng)
        try mlp.loadStateDict(try ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"].map { ($0, try f["mlp.\($0)"]) })
        try expectNear(try mlp(try f["attn.x"]), try f["mlp.y"], rtol: 1e-5, atol: 1e-5, "mlp")
        let se = try SqueezeExcite(channels: 6, reducedChannels: 2, rng: &rng)
        try se.loadStateDict(try ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"].map { ($0, try f["se.\($0)"]) })
        try expectNear(try se(try f["se.x"]), try f["se.y"], rtol: 1e-5, atol: 1e-6, "squeeze-excite")
    }

    /// Value and the gradient of sum(loss * linspace(0.5, 1.5)) with respect to the first argument.
    func check(_ name: String, _ x: Tensor, _ fn: (Tensor) throws -> Tensor) throws {
        let leaf = try x.requiringGrad()
        let v = try fn(leaf)
        let n = v.count
        let weights = try Tensor((0..<n).map { n == 1 ? 0.5 : 0.5 + Float($0) / Float(n - 1) }, shape: v.shape)
        try sum(try mul(v, weights)).backward()
        try expectNear(v, try f["loss.\(name)"], rtol: 1e-5, atol: 1e-6, name)
        try expectNear(try #require(leaf.grad), try f["loss.\(name)_grad"], rtol: 1e-4, atol: 1e-6, "\(name) gradient")
    }

    @Test func lossesMatchPyTorch() throws {
        let logits = try f["loss.logits"], target = try f["loss.target"]
        try check("ce", logits) { try Loss.crossEntropy($0, target: target) }
        try check("ce_ls", logits) { try Loss.crossEntropy($0, target: target, labelSmoothing: 0.1) }
        try check("ce_sum", logits) { try Loss.crossEntropy($0, target: target, reduction: .sum) }
        try check("ce_none", logits) { try Loss.crossEntropy($0, target: target, reduction: .none) }
        try check("ce_soft", try f["loss.soft_logits"]) {
            try Loss.crossEntropy($0, softTarget: try f["loss.soft_target"], labelSmoothing: 0.2)
        }
        let xb = try f["loss.bce_x"], tb = try f["loss.bce_t"], y = try f["loss.reg_y"]
        try check("bce", xb) { try Loss.bceWithLogits($0, target: tb, posWeight: try f["loss.bce_pw"]) }
        try check("focal", xb) { try Loss.sigmoidFocal($0, target: tb, reduction: .mean) }
        try check("l1", xb) { try Loss.l1($0, target: y) }
        try check("mse", xb) { try Loss.mse($0, target: y) }
        try check("smooth_l1", xb) { try Loss.smoothL1($0, target: y, beta: 0.7) }
        try check("giou", try f["loss.box1"]) { try Loss.generalizedBoxIoU($0, try f["loss.box2"]) }
    }

    @Test func lossesRejectBadInput() throws {
        let logits = try f["loss.logits"]
        #expect(throws: VisionError.self) { try Loss.crossEntropy(logits, target: try Tensor([Int64(7)], shape: [1])) }
        #expect(throws: VisionError.self) { try Loss.crossEntropy(logits, target: try Tensor.full([6, 2], value: 9, dtype: .int64)) }
        #expect(throws: VisionError.self) { try Loss.crossEntropy(logits, target: try Tensor.zeros([6, 2])) }
        #expect(throws: VisionError.self) { try Loss.mse(logits, target: try Tensor.zeros([2])) }
        #expect(throws: VisionError.self) { try Loss.smoothL1(logits, target: logits, beta: -1) }
    }
}
