// The approximations behind VisionCore's transcendental activations, shared by activations.c (the element-wise
// loops) and conv_gemm.c (a convolution's epilogue applies them to its tiles in registers): constants, the scalar
// versions, and the AVX-512 and AVX2+FMA vector versions (each within a few float ulps, with the same special
// values). Private to CKernels.
#ifndef VISIONCORE_ACTIVATION_MATH_H
#define VISIONCORE_ACTIVATION_MATH_H
#include <math.h>
#include <stddef.h>

#include "cpu.h"

#define INLINE static inline __attribute__((always_inline))

// Constants shared by every variant.
#define EXP_LO -87.33654f
#define EXP_HI 88.37626f
#define EXP_OVERFLOW 88.72284f  /* above it, exp overflows float: the exp activation returns +inf */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO 2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f
#define TANH_CLAMP 7.90531110763549805f
#define TANH_SMALL 0.0004f
#define TANH_A13 -2.76076847742355e-16f
#define TANH_A11 2.00018790482477e-13f
#define TANH_A9 -8.60467152213735e-11f
#define TANH_A7 5.12229709037114e-08f
#define TANH_A5 1.48572235717979e-05f
#define TANH_A3 6.37261928875436e-04f
#define TANH_A1 4.89352455891786e-03f
#define TANH_B6 1.19825839466702e-06f
#define TANH_B4 1.18534705686654e-04f
#define TANH_B2 2.26843463243900e-03f
#define TANH_B0 4.89352518554385e-03f
#define ERF_CLAMP 4.0f
#define ERF_A13 -2.72614225801306e-10f
#define ERF_A11 2.77068142495902e-08f
#define ERF_A9 -2.10102402082508e-06f
#define ERF_A7 -5.69250639462346e-05f
#define ERF_A5 -7.34990630326855e-04f
#define ERF_A3 -2.95459980854025e-03f
#define ERF_A1 -1.60960333262415e-02f
#define ERF_B8 -1.45660718464996e-05f
#define ERF_B6 -2.13374055278905e-04f
#define ERF_B4 -1.68282697438203e-03f
#define ERF_B2 -7.37332916720468e-03f
#define ERF_B0 -1.42647390514189e-02f
#define SQRT1_2 0.70710678118654752f
#define GELU_K 0.79788456080286536f
#define GELU_C 0.044715f

// MARK: portable scalar definitions (the fallback loops and the gradients)

INLINE float exp_approx(float x0) {
  float x = x0 < EXP_LO ? EXP_LO : x0;
  x = x > EXP_HI ? EXP_HI : x;
  // n = floor(x * log2(e) + 0.5), by truncation and a correction (t is within [-126, 128] after the clamp), so that
  // baseline SSE2 vectorizes it without a floorf call.
  float t = x * LOG2E + 0.5f;
  float n = (float)(int)t;
  n = n > t ? n - 1.0f : n;
  x = x - n * LN2_HI + n * LN2_LO;
  float z = x * x;
  float y = EXP_P0;
  y = y * x + EXP_P1;
  y = y * x + EXP_P2;
  y = y * x + EXP_P3;
  y = y * x + EXP_P4;
  y = y * x + EXP_P5;
  y = y * z + x + 1.0f;
  union { float f; unsigned u; } scale = { .f = n + (12582912.0f + 127.0f) };
  scale.u <<= 23;
  float out = y * scale.f;
  return x0 != x0 ? x0 : out;
}

INLINE float tanh_approx(float x0) {
  float x = x0 < -TANH_CLAMP ? -TANH_CLAMP : x0;
  x = x > TANH_CLAMP ? TANH_CLAMP : x;
  float x2 = x * x;
  float p = x2 * TANH_A13 + TANH_A11;
  p = x2 * p + TANH_A9;
  p = x2 * p + TANH_A7;
  p = x2 * p + TANH_A5;
  p = x2 * p + TANH_A3;
  p = x2 * p + TANH_A1;
  p = x * p;
  float q = x2 * TANH_B6 + TANH_B4;
  q = x2 * q + TANH_B2;
  q = x2 * q + TANH_B0;
  float r = p / q;
  r = (x0 < TANH_SMALL && x0 > -TANH_SMALL) ? x0 : r;
  // Saturate exactly: the rational form stops a few ulps short of +-1, which 1 + tanh(x) would magnify.
  r = x0 >= TANH_CLAMP ? 1.0f : r;
  r = x0 <= -TANH_CLAMP ? -1.0f : r;
  return x0 != x0 ? x0 : r;
}

INLINE float erf_approx(float x0) {
  float x = x0 < -ERF_CLAMP ? -ERF_CLAMP : x0;
  x = x > ERF_CLAMP ? ERF_CLAMP : x;
  float x2 = x * x;
  float p = x2 * ERF_A13 + ERF_A11;
  p = x2 * p + ERF_A9;
  p = x2 * p + ERF_A7;
  p = x2 * p + ERF_A5;
  p = x2 * p + ERF_A3;
  p = x2 * p + ERF_A1;
  p = x * p;
  float q = x2 * ERF_B8 + ERF_B6;
  q = x2 * q + ERF_B4;
  q = x2 * q + ERF_B2;
  q = x2 * q + ERF_B0;
  float r = p / q;
  return x0 != x0 ? x0 : r;
}

// exp as an activation: +inf above the float range (the internal exp_approx saturates instead, which keeps
// sigmoid's reciprocal finite).
// Between EXP_HI and the overflow point, exp(x) = 2 exp(x - ln 2) keeps the polynomial's 2^n in range.
INLINE float exp_full(float x) {
  float high = x > EXP_HI ? 2.0f : 1.0f;
  float y = high * exp_approx(x > EXP_HI ? x - 0.69314718056f : x);
  return x > EXP_OVERFLOW ? INFINITY : y;
}

INLINE float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

INLINE float silu_s(float x) { return x == -INFINITY ? NAN : x * sigmoid_approx(x); } /* -inf * 0 = NaN, as PyTorch */
INLINE float gelu_erf_s(float x) { return 0.5f * x * (1.0f + erf_approx(x * SQRT1_2)); }
// 0.5 * (1 + tanh(u)) = sigmoid(2u): one exp instead of a rational tanh, and no cancellation for large negative x.
// -inf gives NaN as PyTorch's 0.5 * x * (1 + tanh) does (-inf * 0).
INLINE float gelu_tanh_s(float x) {
  return x == -INFINITY ? NAN : x * sigmoid_approx(x * (2.0f * GELU_K + 2.0f * GELU_K * GELU_C * x * x));
}

#ifdef VCK_X86
// MARK: AVX-512

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq"), always_inline)) static inline
#define F512 __attribute__((target("avx512f,avx512vl,avx512dq"))) static
#define S16(c) _mm512_set1_ps(c)

// p / q as p * rcp14(q) with one Newton correction of the quotient: within an ulp of the division.
T512 __m512 div512(__m512 p, __m512 q) {
  __m512 r = _mm512_rcp14_ps(q);
  __m512 y = _mm512_mul_ps(p, r);
  return _mm512_fmadd_ps(_mm512_fnmadd_ps(q, y, p), r, y);
}

T512 __m512 rcp512(__m512 q) {
  __m512 r = _mm512_rcp14_ps(q);
  return _mm512_fmadd_ps(_mm512_fnmadd_ps(q, r, S16(1.0f)), r, r);
}

T512 __m512 exp512(__m512 x0) {
  // max/min return their second operand when one is NaN: a NaN input flows through to the result.
  __m512 x = _mm512_min_ps(S16(EXP_HI), _mm512_max_ps(S16(EXP_LO), x0));
  __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, S16(LOG2E), S16(0.5f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  x = _mm512_fmadd_ps(n, S16(LN2_LO), _mm512_fnmadd_ps(n, S16(LN2_HI), x));
  __m512 z = _mm512_mul_ps(x, x);
  __m512 y = _mm512_fmadd_ps(S16(EXP_P0), x, S16(EXP_P1));
  y = _mm512_fmadd_ps(y, x, S16(EXP_P2));
  y = _mm512_fmadd_ps(y, x, S16(EXP_P3));
  y = _mm512_fmadd_ps(y, x, S16(EXP_P4));
  y = _mm512_fmadd_ps(y, x, S16(EXP_P5));
  y = _mm512_add_ps(_mm512_fmadd_ps(y, z, x), S16(1.0f));
  return _mm512_scalef_ps(y, n);  // exactly y * 2^n: n is an integer in [-126, 127] (or NaN)
}

T512 __m512 tanh512(__m512 x0) {
  __m512 ax = _mm512_abs_ps(x0);
  __m512 x = _mm512_min_ps(S16(TANH_CLAMP), _mm512_max_ps(S16(-TANH_CLAMP), x0));  // NaN flows through
  __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_fmadd_ps(x2, S16(TANH_A13), S16(TANH_A11));
  p = _mm512_fmadd_ps(x2, p, S16(TANH_A9));
  p = _mm512_fmadd_ps(x2, p, S16(TANH_A7));
  p = _mm512_fmadd_ps(x2, p, S16(TANH_A5));
  p = _mm512_fmadd_ps(x2, p, S16(TANH_A3));
  p = _mm512_fmadd_ps(x2, p, S16(TANH_A1));
  p = _mm512_mul_ps(x, p);
  __m512 q = _mm512_fmadd_ps(x2, S16(TANH_B6), S16(TANH_B4));
  q = _mm512_fmadd_ps(x2, q, S16(TANH_B2));
  q = _mm512_fmadd_ps(x2, q, S16(TANH_B0));
  __m512 r = div512(p, q);
  r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(ax, S16(TANH_SMALL), _CMP_LT_OQ), x0);
  // Saturate exactly: the rational form stops a few ulps short of +-1, which 1 + tanh(x) would magnify.
  // copysign(1, x0) = (x0 & sign bit) | 1.0f in one ternary-logic instruction.
  __m512 one = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(x0), _mm512_set1_epi32((int)0x80000000u),
                                                             _mm512_castps_si512(S16(1.0f)), 0xEA));
  return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(ax, S16(TANH_CLAMP), _CMP_GE_OQ), one);
}

T512 __m512 erf512(__m512 x0) {
  __m512 x = _mm512_min_ps(S16(ERF_CLAMP), _mm512_max_ps(S16(-ERF_CLAMP), x0));  // NaN flows through
  __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_fmadd_ps(x2, S16(ERF_A13), S16(ERF_A11));
  p = _mm512_fmadd_ps(x2, p, S16(ERF_A9));
  p = _mm512_fmadd_ps(x2, p, S16(ERF_A7));
  p = _mm512_fmadd_ps(x2, p, S16(ERF_A5));
  p = _mm512_fmadd_ps(x2, p, S16(ERF_A3));
  p = _mm512_fmadd_ps(x2, p, S16(ERF_A1));
  p = _mm512_mul_ps(x, p);
  __m512 q = _mm512_fmadd_ps(x2, S16(ERF_B8), S16(ERF_B6));
  q = _mm512_fmadd_ps(x2, q, S16(ERF_B4));
  q = _mm512_fmadd_ps(x2, q, S16(ERF_B2));
  q = _mm512_fmadd_ps(x2, q, S16(ERF_B0));
  return div512(p, q);
}

T512 __m512 exp_full512(__m512 x) {
  __mmask16 high = _mm512_cmp_ps_mask(x, S16(EXP_HI), _CMP_GT_OQ);
  __m512 y = exp512(_mm512_mask_sub_ps(x, high, x, S16(0.69314718056f)));
  y = _mm512_mask_add_ps(y, high, y, y);
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, S16(EXP_OVERFLOW), _CMP_GT_OQ), S16(INFINITY));
}

T512 __m512 sigmoid512(__m512 x) {
  __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return rcp512(_mm512_add_ps(S16(1.0f), e));
}

T512 __m512 silu512(__m512 x) {
  __m512 y = _mm512_mul_ps(x, sigmoid512(x));
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, S16(-INFINITY), _CMP_EQ_OQ), S16(NAN)); /* as PyTorch */
}

T512 __m512 gelu_erf512(__m512 x) {
  __m512 e = erf512(_mm512_mul_ps(x, S16(SQRT1_2)));
  return _mm512_mul_ps(_mm512_mul_ps(S16(0.5f), x), _mm512_add_ps(S16(1.0f), e));
}

T512 __m512 gelu_tanh512(__m512 x) {
  // x * sigmoid(2u) with 2u = x * (2k + 2kc * x^2) (see gelu_tanh_s).
  __m512 u2 = _mm512_mul_ps(x, _mm512_fmadd_ps(_mm512_mul_ps(x, x), S16(2.0f * GELU_K * GELU_C), S16(2.0f * GELU_K)));
  __m512 y = _mm512_mul_ps(x, sigmoid512(u2));
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, S16(-INFINITY), _CMP_EQ_OQ), S16(NAN));
}

// MARK: AVX2 + FMA

#define T256 __attribute__((target("avx2,fma"), always_inline)) static inline
#define F256 __attribute__((target("avx2,fma"))) static
#define S8(c) _mm256_set1_ps(c)

// rcp_ps is good to 12 bits: one Newton step on the reciprocal, then one correction of the quotient. (rcp_ps
// flushes results below 2^-126 to 0, so sigmoid(x < -87.3) gives 0 here instead of about 4e-39.)
T256 __m256 rcp_newton256(__m256 q) {
  __m256 r = _mm256_rcp_ps(q);
  return _mm256_fmadd_ps(_mm256_fnmadd_ps(q, r, S8(1.0f)), r, r);
}

T256 __m256 div256(__m256 p, __m256 q) {
  __m256 r = rcp_newton256(q);
  __m256 y = _mm256_mul_ps(p, r);
  return _mm256_fmadd_ps(_mm256_fnmadd_ps(q, y, p), r, y);
}

T256 __m256 rcp256(__m256 q) {
  __m256 r = rcp_newton256(q);
  return _mm256_fmadd_ps(_mm256_fnmadd_ps(q, r, S8(1.0f)), r, r);
}

T256 __m256 isnan256(__m256 x) { return _mm256_cmp_ps(x, x, _CMP_UNORD_Q); }

T256 __m256 exp256(__m256 x0) {
  __m256 x = _mm256_min_ps(S8(EXP_HI), _mm256_max_ps(S8(EXP_LO), x0));  // NaN flows through
  __m256 n = _mm256_round_ps(_mm256_fmadd_ps(x, S8(LOG2E), S8(0.5f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  x = _mm256_fmadd_ps(n, S8(LN2_LO), _mm256_fnmadd_ps(n, S8(LN2_HI), x));
  __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_fmadd_ps(S8(EXP_P0), x, S8(EXP_P1));
  y = _mm256_fmadd_ps(y, x, S8(EXP_P2));
  y = _mm256_fmadd_ps(y, x, S8(EXP_P3));
  y = _mm256_fmadd_ps(y, x, S8(EXP_P4));
  y = _mm256_fmadd_ps(y, x, S8(EXP_P5));
  y = _mm256_add_ps(_mm256_fmadd_ps(y, z, x), S8(1.0f));
  __m256i bits = _mm256_slli_epi32(_mm256_castps_si256(_mm256_add_ps(n, S8(12582912.0f + 127.0f))), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

T256 __m256 tanh256(__m256 x0) {
  __m256 x = _mm256_min_ps(_mm256_max_ps(x0, S8(-TANH_CLAMP)), S8(TANH_CLAMP));
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_fmadd_ps(x2, S8(TANH_A13), S8(TANH_A11));
  p = _mm256_fmadd_ps(x2, p, S8(TANH_A9));
  p = _mm256_fmadd_ps(x2, p, S8(TANH_A7));
  p = _mm256_fmadd_ps(x2, p, S8(TANH_A5));
  p = _mm256_fmadd_ps(x2, p, S8(TANH_A3));
  p = _mm256_fmadd_ps(x2, p, S8(TANH_A1));
  p = _mm256_mul_ps(x, p);
  __m256 q = _mm256_fmadd_ps(x2, S8(TANH_B6), S8(TANH_B4));
  q = _mm256_fmadd_ps(x2, q, S8(TANH_B2));
  q = _mm256_fmadd_ps(x2, q, S8(TANH_B0));
  __m256 r = div256(p, q);
  __m256 small = _mm256_and_ps(_mm256_cmp_ps(x0, S8(TANH_SMALL), _CMP_LT_OQ), _mm256_cmp_ps(x0, S8(-TANH_SMALL), _CMP_GT_OQ));
  r = _mm256_blendv_ps(r, x0, small);
  // Saturate exactly: the rational form stops a few ulps short of +-1, which 1 + tanh(x) would magnify.
  r = _mm256_blendv_ps(r, S8(1.0f), _mm256_cmp_ps(x0, S8(TANH_CLAMP), _CMP_GE_OQ));
  r = _mm256_blendv_ps(r, S8(-1.0f), _mm256_cmp_ps(x0, S8(-TANH_CLAMP), _CMP_LE_OQ));
  return _mm256_blendv_ps(r, x0, isnan256(x0));
}

T256 __m256 erf256(__m256 x0) {
  __m256 x = _mm256_min_ps(_mm256_max_ps(x0, S8(-ERF_CLAMP)), S8(ERF_CLAMP));
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_fmadd_ps(x2, S8(ERF_A13), S8(ERF_A11));
  p = _mm256_fmadd_ps(x2, p, S8(ERF_A9));
  p = _mm256_fmadd_ps(x2, p, S8(ERF_A7));
  p = _mm256_fmadd_ps(x2, p, S8(ERF_A5));
  p = _mm256_fmadd_ps(x2, p, S8(ERF_A3));
  p = _mm256_fmadd_ps(x2, p, S8(ERF_A1));
  p = _mm256_mul_ps(x, p);
  __m256 q = _mm256_fmadd_ps(x2, S8(ERF_B8), S8(ERF_B6));
  q = _mm256_fmadd_ps(x2, q, S8(ERF_B4));
  q = _mm256_fmadd_ps(x2, q, S8(ERF_B2));
  q = _mm256_fmadd_ps(x2, q, S8(ERF_B0));
  return _mm256_blendv_ps(div256(p, q), x0, isnan256(x0));
}

T256 __m256 exp_full256(__m256 x) {
  __m256 high = _mm256_cmp_ps(x, S8(EXP_HI), _CMP_GT_OQ);
  __m256 y = exp256(_mm256_sub_ps(x, _mm256_and_ps(high, S8(0.69314718056f))));
  y = _mm256_add_ps(y, _mm256_and_ps(high, y));
  return _mm256_blendv_ps(y, S8(INFINITY), _mm256_cmp_ps(x, S8(EXP_OVERFLOW), _CMP_GT_OQ));
}

T256 __m256 sigmoid256(__m256 x) {
  __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return rcp256(_mm256_add_ps(S8(1.0f), e));
}

T256 __m256 silu256(__m256 x) {
  __m256 y = _mm256_mul_ps(x, sigmoid256(x));
  return _mm256_blendv_ps(y, S8(NAN), _mm256_cmp_ps(x, S8(-INFINITY), _CMP_EQ_OQ)); /* as PyTorch */
}

T256 __m256 gelu_erf256(__m256 x) {
  __m256 e = erf256(_mm256_mul_ps(x, S8(SQRT1_2)));
  return _mm256_mul_ps(_mm256_mul_ps(S8(0.5f), x), _mm256_add_ps(S8(1.0f), e));
}

T256 __m256 gelu_tanh256(__m256 x) {
  __m256 u2 = _mm256_mul_ps(x, _mm256_fmadd_ps(_mm256_mul_ps(x, x), S8(2.0f * GELU_K * GELU_C), S8(2.0f * GELU_K)));
  __m256 y = _mm256_mul_ps(x, sigmoid256(u2));
  return _mm256_blendv_ps(y, S8(NAN), _mm256_cmp_ps(x, S8(-INFINITY), _CMP_EQ_OQ));
}
#endif  // VCK_X86
#endif  // VISIONCORE_ACTIVATION_MATH_H
