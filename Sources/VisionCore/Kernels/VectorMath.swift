/// SIMD16 transcendental functions for the float kernels. Swift's libm calls are scalar; these are polynomial
/// approximations (Cephes exp, Eigen-style rational tanh and erf) accurate to a few float ulps, checked in tests
/// against libm through the reference kernels.
typealias F16 = SIMD16<Float>

@inline(__always) func vmadd(_ a: F16, _ b: F16, _ c: F16) -> F16 {
    #if VC_FMA
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

/// Keeps NaN lanes of `x` in the result (min/max clamping would otherwise replace them).
@inline(__always) func keepNaN(_ r: F16, _ x: F16) -> F16 { r.replacing(with: x, where: x .!= x) }

@inline(__always) func vexp(_ xIn: F16) -> F16 {
    var x = xIn.clamped(lowerBound: F16(repeating: -87.33654), upperBound: F16(repeating: 88.3762626647949))
    let fx = (x * 1.44269504088896341 + 0.5).rounded(.down)
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
    let bits = (SIMD16<Int32>(fx) &+ 127) &<< 23
    let r = y * unsafeBitCast(bits, to: F16.self)
    return keepNaN(r, xIn)
}

@inline(__always) func vtanh(_ xIn: F16) -> F16 {
    let x = xIn.clamped(lowerBound: F16(repeating: -7.90531110763549805), upperBound: F16(repeating: 7.90531110763549805))
    let x2 = x * x
    var p = vmadd(x2, F16(repeating: -2.76076847742355e-16), F16(repeating: 2.00018790482477e-13))
    p = vmadd(x2, p, F16(repeating: -8.60467152213735e-11))
    p = vmadd(x2, p, F16(repeating: 5.12229709037114e-08))
    p = vmadd(x2, p, F16(repeating: 1.48572235717979e-05))
    p = vmadd(x2, p, F16(repeating: 6.37261928875436e-04))
    p = vmadd(x2, p, F16(repeating: 4.89352455891786e-03))
    p = x * p
    var q = vmadd(x2, F16(repeating: 1.19825839466702e-06), F16(repeating: 1.18534705686654e-04))
    q = vmadd(x2, q, F16(repeating: 2.26843463243900e-03))
    q = vmadd(x2, q, F16(repeating: 4.89352518554385e-03))
    let r = (p / q).replacing(with: xIn, where: (xIn .< 0.0004) .& (xIn .> -0.0004))
    return keepNaN(r, xIn)
}

@inline(__always) func verf(_ xIn: F16) -> F16 {
    let x = xIn.clamped(lowerBound: F16(repeating: -4), upperBound: F16(repeating: 4))
    let x2 = x * x
    var p = vmadd(x2, F16(repeating: -2.72614225801306e-10), F16(repeating: 2.77068142495902e-08))
    p = vmadd(x2, p, F16(repeating: -2.10102402082508e-06))
    p = vmadd(x2, p, F16(repeating: -5.69250639462346e-05))
    p = vmadd(x2, p, F16(repeating: -7.34990630326855e-04))
    p = vmadd(x2, p, F16(repeating: -2.95459980854025e-03))
    p = vmadd(x2, p, F16(repeating: -1.60960333262415e-02))
    p = x * p
    var q = vmadd(x2, F16(repeating: -1.45660718464996e-05), F16(repeating: -2.13374055278905e-04))
    q = vmadd(x2, q, F16(repeating: -1.68282697438203e-03))
    q = vmadd(x2, q, F16(repeating: -7.37332916720468e-03))
    q = vmadd(x2, q, F16(repeating: -1.42647390514189e-02))
    return keepNaN(p / q, xIn)
}

@inline(__always) func vsigmoid(_ x: F16) -> F16 { 1 / (1 + vexp(-x)) }
