import Testing
import VisionCore

/// ||a - b|| / ||b|| over all elements (infinite when the shapes differ).
func relativeL2(_ a: Tensor, _ b: Tensor) throws -> Double {
    guard a.shape == b.shape else { return .infinity }
    let x = try a.contiguous().toArray(Float.self), y = try b.contiguous().toArray(Float.self)
    var num = 0.0, den = 0.0
    for i in x.indices {
        let d = Double(x[i]) - Double(y[i])
        num += d * d
        den += Double(y[i]) * Double(y[i])
    }
    return (num / max(den, 1e-30)).squareRoot()
}
