#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// The source of every random decision in VisionData. Each augmentation asks for exactly the draws its reference
/// implementation makes (numpy's `rand`/`beta`/`randint`, torch's `randperm`/`uniform_`/`randint`), in the same
/// order, so a test can replay a reference's recorded draws and compare decisions one for one.
///
/// `RandomGenerator` (VisionCore's seeded xoshiro256**) conforms; training code passes one of those. The stream
/// of a `RandomGenerator` differs from numpy's and torch's, so results match the references only statistically
/// unless the draws are replayed.
public protocol RandomDraws {
    /// A uniform sample in [0, 1) (numpy `rand()`).
    mutating func uniform() -> Double
    /// A uniform integer in `low..<high` (numpy `randint(low, high)`, torch `randint(low, high)`); callers
    /// guarantee `low < high`.
    mutating func integer(_ low: Int, _ high: Int) -> Int
    /// A Beta(a, b) sample (numpy `beta(a, b)`); callers guarantee a, b > 0 and finite.
    mutating func beta(_ a: Double, _ b: Double) -> Double
    /// A random permutation of 0..<n (torch `randperm(n)`).
    mutating func permutation(_ n: Int) -> [Int]
}

extension RandomDraws {
    /// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b), computed from log-gamma samples so that tiny
    /// shapes (where both gammas underflow to 0) still give a sample in [0, 1] instead of 0/0.
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        let lx = logGammaSample(a), ly = logGammaSample(b)
        // 1 / (1 + Y/X); exp overflow to +inf gives 0 and underflow gives 1, both correct limits.
        return 1 / (1 + exp(ly - lx))
    }

    /// Fisher–Yates from the end, one `integer` draw per position.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<max(n, 0))
        var i = p.count - 1
        while i > 0 {
            p.swapAt(i, integer(0, i + 1))
            i -= 1
        }
        return p
    }

    /// A standard normal sample (Box–Muller in double precision, one sample per call).
    public mutating func normal() -> Double {
        let u1 = 1 - uniform()           // in (0, 1]: log stays finite
        let u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// log of a Gamma(shape, 1) sample: Marsaglia & Tsang (2000) for shape >= 1, and for shape < 1 their boost
    /// Gamma(a) = Gamma(a + 1) * U^(1/a), added in log space (U^(1/a) underflows for a of 0.01 and below).
    public mutating func logGammaSample(_ shape: Double) -> Double {
        if shape < 1 {
            let u = 1 - uniform()        // in (0, 1]
            return logGammaSample(shape + 1) + log(u) / shape
        }
        let d = shape - 1.0 / 3.0, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = normal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = uniform()
            if u < 1 - 0.0331 * (x * x) * (x * x) { return log(d * v) }
            if log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return log(d * v) }
        }
    }
}

extension RandomGenerator: RandomDraws {
    /// 53 random bits (VisionCore's `nextDouble`).
    public mutating func uniform() -> Double { nextDouble() }

    /// Unbiased: Lemire's multiply-and-reject on 64 random bits.
    public mutating func integer(_ low: Int, _ high: Int) -> Int {
        let n = UInt64(bitPattern: Int64(high &- low))
        if n <= 1 { return low }
        var m = next().multipliedFullWidth(by: n)
        if m.low < n {
            let threshold = (0 &- n) % n
            while m.low < threshold { m = next().multipliedFullWidth(by: n) }
        }
        return low &+ Int(truncatingIfNeeded: m.high)
    }
}

extension RandomGenerator {
    /// The generator of one (seed, epoch, index) triple: a splitmix64-style hash of the three, so the draws of a
    /// sample depend only on what it is and when, never on which thread loads it or in which order.
    public static func derived(seed: UInt64, epoch: Int, index: Int) -> RandomGenerator {
        func mix(_ z0: UInt64) -> UInt64 {
            var z = z0 &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let h = mix(mix(mix(seed) ^ UInt64(bitPattern: Int64(epoch))) ^ UInt64(bitPattern: Int64(index)))
        return RandomGenerator(seed: h)
    }
}
