/// SIMD16 helpers for the Swift float kernels: select-based min/max/clamp/floor and a Cephes-style exp accurate to
/// a few float ulps (the activation loops themselves live in CKernels, which vectorizes them for the CPU at hand).
typealias F16 = SIMD16<Float>

@inline(__always) func vmadd(_ a: F16, _ b: F16, _ c: F16) -> F16 {
    #if VC_FMA
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

/// Lane-wise min/max/clamp through compare+select: the generic SIMD `clamped`/`pointwiseMin` are not
/// specialized into vector code by this toolchain and run ~50x slower.
@inline(__always) func vmax(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: a .< b) }
@inline(__always) func vmin(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: b .< a) }
@inline(__always) func vclamp(_ x: F16, _ lo: Float, _ hi: Float) -> F16 {
    x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
}

/// floor for |x| < 2^22 by the round-to-nearest magic number (SIMD `rounded(.down)` is scalarized here).
@inline(__always) func vfloor(_ x: F16) -> F16 {
    let r = (x + 12_582_912) - 12_582_912
    return r.replacing(with: r - 1, where: r .> x)
}

/// Keeps NaN lanes of `x` in the result (min/max clamping would otherwise replace them).
@inline(__always) func keepNaN(_ r: F16, _ x: F16) -> F16 { r.replacing(with: x, where: x .!= x) }

@inline(__always) func vexp(_ xIn: F16) -> F16 {
    var x = vclamp(xIn, -87.33654, 88.3762626647949)
    let fx = vfloor(x * 1.44269504088896341 + 0.5)
    x = x - fx * 0.693359375
    x = x + fx * 2.12194440e-4
    let z = x * x
    var y = F16(repeating: 1.9875691500E-4)
    y = vmadd(y, x, F16(repeating: 1.3981999507E-3))
    y = vmadd(y, x, F16(repeating: 8.3334519073E-3))
    y = vmadd(y, x, F16(repeating: 4.1665795894E-2))
    y = vmadd(y, x, F16(repeating: 1.6666665459E-1))
    y = vmadd(y, x, F16(repeating: 5.0000001201E-1))
    y = vmadd(y, z, x) + 1
    // 2^fx: adding 1.5 * 2^23 leaves the integer fx + 127 in the low mantissa bits; shifting them into the
    // exponent field drops the magic number's own bits.
    let bits = unsafeBitCast(fx + (12_582_912 + 127), to: SIMD16<UInt32>.self) &<< 23
    let r = y * unsafeBitCast(bits, to: F16.self)
    return keepNaN(r, xIn)
}

