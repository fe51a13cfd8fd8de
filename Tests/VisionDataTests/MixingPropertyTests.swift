#if canImport(Glibc)
import Glibc
#endif
import Testing
import VisionCore
@testable import VisionData

/// Distributional checks of the samplers (their streams differ from numpy's, so only statistics can be
/// compared) and invariants of the mixing methods on seeded random batches. Seeds are fixed, so the statistical
/// bounds (5 standard errors) are deterministic checks, not flaky ones.
@Suite struct MixingPropertyTests {
    @Test(arguments: [(1.0, 1.0), (0.2, 0.2), (0.4, 0.4), (2.0, 5.0), (0.05, 0.05), (30.0, 30.0)])
    func betaMomentsMatch(_ ab: (Double, Double)) {
        let (a, b) = ab
        var rng = RandomGenerator(seed: 42)
        let n = 100_000
        var s = 0.0, s2 = 0.0, outside = 0
        for _ in 0..<n {
            let v = rng.beta(a, b)
            if !(v >= 0 && v <= 1) { outside += 1 }
            s += v; s2 += v * v
        }
        let mean = s / Double(n), variance = s2 / Double(n) - mean * mean
        let m = a / (a + b), v = a * b / ((a + b) * (a + b) * (a + b + 1))
        #expect(outside == 0)
        #expect(abs(mean - m) < 5 * (v / Double(n)).squareRoot(), "Beta(\(a), \(b)) mean \(mean), expected \(m)")
        // 3% of the variance is several standard errors of the sample variance, sqrt((μ4 − σ⁴) / n), here.
        #expect(abs(variance - v) < 0.03 * v + 1e-9, "Beta(\(a), \(b)) variance \(variance), expected \(v)")
    }

    /// Kolmogorov–Smirnov against closed-form CDFs: Beta(1, 1) is uniform, Beta(1/2, 1/2) is the arcsine law.
    @Test func betaKolmogorovSmirnov() {
        for (a, cdf) in [(1.0, { (x: Double) in x }), (0.5, { (x: Double) in 2 / Double.pi * asin(x.squareRoot()) })] {
            var rng = RandomGenerator(seed: 7)
            let n = 20_000
            let xs = (0..<n).map { _ in rng.beta(a, a) }.sorted()
            var d = 0.0
            for (i, x) in xs.enumerated() {
                d = max(d, abs(cdf(x) - Double(i) / Double(n)), abs(cdf(x) - Double(i + 1) / Double(n)))
            }
            #expect(d < 1.63 / Double(n).squareRoot(), "Beta(\(a), \(a)): KS distance \(d) (1% critical value \(1.63 / Double(n).squareRoot()))")
        }
    }

    @Test func gammaMeanEqualsShape() {
        var rng = RandomGenerator(seed: 3)
        for shape in [0.3, 1.0, 4.5] {
            let n = 50_000
            let mean = (0..<n).reduce(0.0) { acc, _ in acc + exp(rng.logGammaSample(shape)) } / Double(n)
            #expect(abs(mean - shape) < 5 * (shape / Double(n)).squareRoot(), "Gamma(\(shape)) mean \(mean)")
        }
    }

    @Test func integerIsUniformAndInRange() {
        var rng = RandomGenerator(seed: 11)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 {
            let v = rng.integer(-3, 4)
            #expect(v >= -3 && v < 4)
            if v >= -3 && v < 4 { counts[v + 3] += 1 }
        }
        let chi2 = counts.reduce(0.0) { $0 + pow(Double($1) - 10_000, 2) / 10_000 }
        #expect(chi2 < 22.5, "chi-square \(chi2) over 6 degrees of freedom (0.1% critical value 22.46)")
        #expect(rng.integer(5, 6) == 5)
        let p = rng.permutation(50)
        #expect(p.sorted() == Array(0..<50) && p != Array(0..<50))
    }

    /// Clips whose voxels all differ between samples, so a voxel taken from the partner is visible.
    func distinctClips(_ n: Int, _ t: Int, _ h: Int, _ w: Int, seed: UInt64) throws -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return try Tensor.uniform([n, 2, t, h, w], low: 0, high: 1, rng: &rng)
    }

    @Test(arguments: VideoMix.Variant.allCases)
    func videoMixFractionBoundsAndLabels(_ variant: VideoMix.Variant) throws {
        let (n, t, h, w) = (6, 8, 9, 10)
        let vm = try VideoMix(variant: variant, alpha: 1, numClasses: 5, labelSmoothing: 0.1)
        var mixedBatches = 0
        for seed in 0..<40 as Range<UInt64> {
            var rng = RandomGenerator(seed: seed)
            let x = try distinctClips(n, t, h, w, seed: seed + 1000)
            let labels = try Tensor((0..<n).map { Int64($0 % 5) }, shape: [n])
            let out = try vm(x, labels: labels, draws: &rng)
            let b = try #require(out.cuboid)
            #expect(0 <= b.t0 && b.t0 <= b.t1 && b.t1 <= t && 0 <= b.top && b.top <= b.bottom && b.bottom <= h
                    && 0 <= b.left && b.left <= b.right && b.right <= w, "cuboid \(b) outside \(t)x\(h)x\(w)")
            switch variant {
            case .spatial: #expect(b.t0 == 0 && b.t1 == t)
            case .temporal: #expect(b.top == 0 && b.bottom == h && b.left == 0 && b.right == w)
            case .spatioTemporal: break
            }
            let xs = try x.toArray(Float.self), ys = try out.clips.toArray(Float.self)
            let per = 2 * t * h * w
            for i in 0..<n where out.partners[i] != i {
                let changed = (0..<per).filter { xs[i * per + $0] != ys[i * per + $0] }.count
                #expect(abs(Double(changed) / Double(per) - (1 - out.lambda)) < 1e-12, "sample \(i): \(changed) of \(per) voxels changed, λ \(out.lambda)")
            }
            let rows = try out.targets.toArray(Float.self)
            for i in 0..<n {
                let row = rows[(5 * i)..<(5 * i + 5)]
                #expect(abs(row.reduce(0, +) - 1) < 1e-5)
                let own = Double(row[row.startIndex + i % 5]), other = Double(row[row.startIndex + out.partners[i] % 5])
                if i % 5 != out.partners[i] % 5 {
                    #expect(abs(own - (out.lambda * 0.9 + 0.02)) < 1e-5 && abs(other - ((1 - out.lambda) * 0.9 + 0.02)) < 1e-5)
                }
            }
            if out.lambda < 1 { mixedBatches += 1 }
        }
        #expect(mixedBatches > 20)
    }

    @Test func cutMixPastesExactlyTheLostArea() throws {
        let cutmix = try CutMix(alpha: 1, numClasses: 3)
        for seed in 0..<30 as Range<UInt64> {
            var rng = RandomGenerator(seed: seed)
            var xr = RandomGenerator(seed: seed + 99)
            let x = try Tensor.uniform([4, 3, 13, 8], rng: &xr)
            let out = try cutmix(x, labels: try Tensor([Int32(0), 1, 2, 0], shape: [4]), draws: &rng)
            let box = try #require(out.boxes[0])
            #expect(box.top >= 0 && box.bottom <= 13 && box.left >= 0 && box.right <= 8)
            #expect(out.lambdas[0] == 1 - Double(box.area) / 104)
            let a = try x.toArray(Float.self), b = try out.images.toArray(Float.self)
            for i in 0..<4 where out.partners[i] != i {
                let changed = (0..<(3 * 104)).filter { a[i * 312 + $0] != b[i * 312 + $0] }.count
                #expect(changed == 3 * box.area)
            }
        }
    }

    @Test func timmPairModeMixesSymmetrically() throws {
        let m = try TimmMixup(mixupAlpha: 1, cutmixAlpha: 1, mode: .pair, labelSmoothing: 0, numClasses: 4)
        var rng = RandomGenerator(seed: 5)
        var xr = RandomGenerator(seed: 6)
        let x = try Tensor.uniform([6, 1, 5, 5], rng: &xr)
        let out = try m(x, labels: try Tensor([Int64(0), 1, 2, 3, 0, 1], shape: [6]), draws: &rng)
        for i in 0..<3 {
            #expect(out.lambdas[i] == out.lambdas[5 - i])
            #expect(out.boxes[i] == out.boxes[5 - i])
        }
        let rows = try out.targets.toArray(Float.self)
        for i in 0..<6 { #expect(abs(rows[(4 * i)..<(4 * i + 4)].reduce(0, +) - 1) < 1e-6) }
    }

    @Test func mixingRejectsBadInput() throws {
        let x4 = try Tensor.zeros([4, 1, 4, 4]), labels4 = try Tensor([Int64(0), 1, 0, 1], shape: [4])
        var rng = RandomGenerator(seed: 1)
        func rejects(_ what: String, _ body: () throws -> Void) {
            #expect(throws: VisionError.self, "\(what)") { try body() }
        }
        rejects("CutMix alpha 0") { _ = try CutMix(alpha: 0, numClasses: 2) }
        rejects("CutMix alpha NaN") { _ = try CutMix(alpha: .nan, numClasses: 2) }
        rejects("Mixup alpha -1") { _ = try Mixup(alpha: -1, numClasses: 2) }
        rejects("VideoMix alpha 0") { _ = try VideoMix(alpha: 0, numClasses: 2) }
        rejects("timm both alphas 0") { _ = try TimmMixup(mixupAlpha: 0, cutmixAlpha: 0, numClasses: 2) }
        rejects("timm negative alpha") { _ = try TimmMixup(mixupAlpha: -0.1, numClasses: 2) }
        rejects("timm minmax reversed") { _ = try TimmMixup(cutmixMinMax: (0.8, 0.2), numClasses: 2) }
        rejects("prob 1.5") { _ = try CutMix(prob: 1.5, numClasses: 2) }
        rejects("smoothing 1") { _ = try CutMix(numClasses: 2, labelSmoothing: 1) }
        rejects("Cutout length 0") { _ = try Cutout(length: 0) }
        let timm = try TimmMixup(numClasses: 2)
        rejects("timm odd batch") {
            _ = try timm(try Tensor.zeros([3, 1, 4, 4]), labels: try Tensor([Int64(0), 1, 0], shape: [3]), draws: &rng)
        }
        let pair = try TimmMixup(mode: .pair, numClasses: 2)
        rejects("timm pair odd batch") {
            _ = try pair(try Tensor.zeros([5, 1, 4, 4]), labels: try Tensor([Int64](repeating: 0, count: 5), shape: [5]), draws: &rng)
        }
        let cutmix = try CutMix(numClasses: 2)
        rejects("CutMix batch of 1") { _ = try cutmix(try Tensor.zeros([1, 1, 4, 4]), labels: try Tensor([Int64(0)], shape: [1]), draws: &rng) }
        rejects("CutMix rank 3") { _ = try cutmix(try Tensor.zeros([4, 4, 4]), labels: labels4, draws: &rng) }
        rejects("CutMix uint8") { _ = try cutmix(try Tensor.zeros([4, 1, 4, 4], dtype: .uint8), labels: labels4, draws: &rng) }
        rejects("label out of range") { _ = try cutmix(x4, labels: try Tensor([Int64(0), 2, 0, 1], shape: [4]), draws: &rng) }
        rejects("label count") { _ = try cutmix(x4, labels: try Tensor([Int64(0), 1], shape: [2]), draws: &rng) }
        rejects("soft target width") { _ = try cutmix(x4, labels: try Tensor.zeros([4, 3]), draws: &rng) }
        let minmax = try TimmMixup(mixupAlpha: 0, cutmixMinMax: (0.5, 0.6), numClasses: 2)
        rejects("minmax empty range on a 4x4 image") { _ = try minmax(x4, labels: labels4, draws: &rng) }
        let vm = try VideoMix(numClasses: 2)
        rejects("VideoMix rank 4") { _ = try vm(x4, labels: labels4, draws: &rng) }
        struct BadPermutation: RandomDraws {
            mutating func uniform() -> Double { 0 }
            mutating func integer(_ low: Int, _ high: Int) -> Int { low }
            mutating func permutation(_ n: Int) -> [Int] { Array(repeating: 0, count: n) }
        }
        var bad = BadPermutation()
        rejects("draws returning a non-permutation") { _ = try cutmix(x4, labels: labels4, draws: &bad) }
        struct NaNBeta: RandomDraws {
            mutating func uniform() -> Double { 0 }
            mutating func integer(_ low: Int, _ high: Int) -> Int { low }
            mutating func beta(_ a: Double, _ b: Double) -> Double { .nan }
        }
        var nan = NaNBeta()
        rejects("CutMix NaN beta") { _ = try cutmix(x4, labels: labels4, draws: &nan) }
        rejects("timm elem NaN beta") { _ = try TimmMixup(mode: .elem, numClasses: 2)(x4, labels: labels4, draws: &nan) }
        rejects("VideoMix NaN beta") {
            _ = try vm(try Tensor.zeros([2, 1, 2, 2, 2]), labels: try Tensor([Int64(0), 1], shape: [2]), draws: &nan)
        }
        rejects("empty images") { _ = try cutmix(try Tensor.zeros([4, 1, 0, 4]), labels: labels4, draws: &rng) }
        // The public box helpers clamp λ instead of trapping on NaN or values outside [0, 1].
        for lam in [Double.nan, -3, 7, .infinity] {
            let (box, _) = CutMix.randBBox(dim2: 5, dim3: 6, lambda: lam, draws: &rng)
            #expect(box.top >= 0 && box.bottom <= 5 && box.left >= 0 && box.right <= 6)
            let (c, _) = VideoMix.cuboid(frames: 3, height: 4, width: 5, lambda: lam, variant: .spatioTemporal, draws: &rng)
            #expect(c.t1 <= 3 && c.bottom <= 4 && c.right <= 5)
            _ = try timm.bboxAndLambda(height: 4, width: 4, ratio: lam, lambda: 0.5, draws: &rng)
        }
    }
}
