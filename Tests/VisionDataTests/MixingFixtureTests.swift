import Testing
import VisionCore
@testable import VisionData

/// CutMix, timm Mixup, Mixup, Cutout and VideoMix against their references run with the same random draws
/// (tools/fixtures/mixing.py records numpy's and torch's draws; ReplayDraws feeds them back and checks that
/// every draw is requested in the same order with the same arguments). Box placement must match exactly, so the
/// pasted pixels compare bit for bit; blends and targets are float32 with different operation grouping in
/// places (numpy float32 scalars), hence 1e-6.
@Suite struct MixingFixtureTests {
    let f: Fixture
    init() throws { f = try Fixture("mixing") }

    func round(_ key: String, _ r: Int) throws -> Tensor { try f[key].select(axis: 0, index: r) }

    @Test(arguments: ["timm_batch_mixup", "timm_batch_cutmix", "timm_batch_switch", "timm_batch_nocorrect",
                      "timm_batch_minmax", "timm_elem_switch", "timm_elem_cutmix_nocorrect", "timm_pair_switch",
                      "timm_pair_minmax"])
    func timmMixupMatchesTimm(_ name: String) throws {
        let c = try f.floats("\(name).config").map(Double.init)
        let k = Int(try f["timm.num_classes"].item())
        let mixup = try TimmMixup(mixupAlpha: c[0], cutmixAlpha: c[1], cutmixMinMax: c[6] != 0 ? (c[7], c[8]) : nil,
                                  prob: c[2], switchProb: c[3], mode: [.batch, .pair, .elem][Int(c[9])],
                                  correctLambda: c[4] != 0, labelSmoothing: c[5], numClasses: k)
        var draws = try f.draws(name)
        let rounds = try f["\(name).y"].shape[0]
        for r in 0..<rounds {
            let out = try mixup(try pattern([6, 2, 7, 9], round: r), labels: try round("\(name).y", r), draws: &draws)
            try expectClose(out.images, try round("\(name).mixed", r), "\(name) round \(r) images")
            try expectClose(out.targets, try round("\(name).targets", r), "\(name) round \(r) targets")
        }
        #expect(draws.mismatches.isEmpty, "\(draws.mismatches.prefix(3))")
        #expect(draws.exhausted, "\(name): \(draws.kinds.count - draws.position) recorded draws left unused")
    }

    @Test(arguments: ["official_cutmix", "official_cutmix_beta03"])
    func cutMixMatchesOfficialCode(_ name: String) throws {
        let c = try f.floats("\(name).config").map(Double.init)
        let cutmix = try CutMix(alpha: c[0], prob: c[1], numClasses: 7)
        var draws = try f.draws(name)
        let lams = try f.floats("\(name).lam")
        var mixedRounds = 0
        for r in 0..<lams.count {
            let out = try cutmix(try pattern([5, 2, 7, 9], round: r), labels: try round("\(name).y", r), draws: &draws)
            try expectClose(out.images, try round("\(name).mixed", r), rtol: 0, atol: 0, "\(name) round \(r) images")
            try expectClose(out.targets, try round("\(name).targets", r), "\(name) round \(r) targets")
            #expect(abs(out.lambdas[0] - Double(lams[r])) < 1e-6, "\(name) round \(r): λ \(out.lambdas[0]) vs \(lams[r])")
            if out.boxes[0] != nil { mixedRounds += 1 }
        }
        #expect(mixedRounds > 0, "the fixture should mix at least one batch")
        #expect(draws.mismatches.isEmpty, "\(draws.mismatches.prefix(3))")
        #expect(draws.exhausted)
    }

    @Test func cutMixMatchesReLabelDataAugment() throws {
        let c = try f.floats("relabel_cutmix.config").map(Double.init)
        var cutmix = try CutMix(alpha: c[0], prob: c[1], numClasses: 7, labelSmoothing: c[2])
        var draws = try f.draws("relabel_cutmix")
        let rounds = try f["relabel_cutmix.soft"].shape[0]
        for r in 0..<rounds {
            cutmix.enabled = r != rounds - 1     // the fixture's last round has `disable` set
            let out = try cutmix(try pattern([4, 2, 7, 9], round: r), labels: try round("relabel_cutmix.soft", r), draws: &draws)
            try expectClose(out.images, try round("relabel_cutmix.mixed", r), rtol: 0, atol: 0, "relabel round \(r) images")
            try expectClose(out.targets, try round("relabel_cutmix.targets", r), "relabel round \(r) targets")
        }
        #expect(draws.mismatches.isEmpty, "\(draws.mismatches.prefix(3))")
        #expect(draws.exhausted)
    }

    @Test func mixupMatchesReference() throws {
        let mixup = try Mixup(alpha: Double(try f.floats("mixup.config")[0]), numClasses: 7)
        var draws = try f.draws("mixup")
        for r in 0..<(try f["mixup.y"].shape[0]) {
            let out = try mixup(try pattern([5, 2, 7, 9], round: r), labels: try round("mixup.y", r), draws: &draws)
            try expectClose(out.images, try round("mixup.mixed", r), "mixup round \(r) images")
            try expectClose(out.targets, try round("mixup.targets", r), "mixup round \(r) targets")
        }
        #expect(draws.mismatches.isEmpty, "\(draws.mismatches.prefix(3))")
        #expect(draws.exhausted)
    }

    @Test(arguments: ["cutout_l5", "cutout_l4_h2"])
    func cutoutMatchesReference(_ name: String) throws {
        let c = try f.ints("\(name).config")
        let cutout = try Cutout(length: c[0], holes: c[1])
        let x = try pattern([6, 2, 7, 9], round: 0)
        var draws = try f.draws(name)
        let out = try cutout(x, labels: try Tensor([Int64](repeating: 3, count: 6), shape: [6]), numClasses: 5, draws: &draws)
        try expectClose(out.images, try f["\(name).mixed"], rtol: 0, atol: 0, name)
        #expect(draws.mismatches.isEmpty && draws.exhausted, "\(draws.mismatches.prefix(3))")
        // The per-image form draws the same way.
        var again = try f.draws(name)
        let single = try stack(try (0..<6).map { try cutout.apply(try x.select(axis: 0, index: $0), draws: &again) }, axis: 0)
        try expectClose(single, try f["\(name).mixed"], rtol: 0, atol: 0, "\(name) per image")
    }

    @Test(arguments: [VideoMix.Variant.spatial, .temporal, .spatioTemporal])
    func videoMixMatchesPythonTranscription(_ variant: VideoMix.Variant) throws {
        let name = ["spatial": "videomix_spatial", "temporal": "videomix_temporal",
                    "spatioTemporal": "videomix_spatio_temporal"][variant.rawValue]!
        let c = try f.floats("\(name).config").map(Double.init)
        let vm = try VideoMix(variant: variant, alpha: c[0], prob: c[1], numClasses: 7)
        var draws = try f.draws(name)
        let lams = try f.floats("\(name).lam"), cuboids = try f.ints("\(name).cuboid")
        for r in 0..<lams.count {
            let out = try vm(try pattern([4, 1, 5, 6, 7], round: r), labels: try round("\(name).y", r), draws: &draws)
            try expectClose(out.clips, try round("\(name).mixed", r), rtol: 0, atol: 0, "\(name) round \(r) clips")
            try expectClose(out.targets, try round("\(name).targets", r), "\(name) round \(r) targets")
            #expect(abs(out.lambda - Double(lams[r])) < 1e-6)
            let b = out.cuboid ?? Cuboid(t0: 0, t1: 5, top: 0, bottom: 6, left: 0, right: 7)
            #expect([b.t0, b.t1, b.top, b.bottom, b.left, b.right] == Array(cuboids[(6 * r)..<(6 * r + 6)]), "\(name) round \(r)")
        }
        #expect(draws.mismatches.isEmpty, "\(draws.mismatches.prefix(3))")
        #expect(draws.exhausted)
    }

    /// The worked examples of reference/seeds_classification.md 8.3 (computed there from the official rand_bbox).
    @Test func officialRandBBoxWorkedExamples() throws {
        var d1 = ReplayDraws(kinds: [2, 2], values: [0, 0], ints: [112, 112], args: [0, 224, 0, 224], perms: [])
        let (b1, l1) = CutMix.randBBox(dim2: 224, dim3: 224, lambda: 0.6, draws: &d1)
        #expect(b1 == MixBox(top: 42, bottom: 182, left: 42, right: 182))
        #expect(l1 == 0.609375)
        var d2 = ReplayDraws(kinds: [2, 2], values: [0, 0], ints: [10, 200], args: [0, 224, 0, 224], perms: [])
        let (b2, l2) = CutMix.randBBox(dim2: 224, dim3: 224, lambda: 0.6, draws: &d2)
        #expect(b2 == MixBox(top: 0, bottom: 80, left: 130, right: 224))
        #expect(abs(l2 - 0.8501276) < 1e-7)
        #expect(d1.mismatches.isEmpty && d2.mismatches.isEmpty)
    }
}
