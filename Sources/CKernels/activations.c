// Polynomial approximations (Cephes expf; rational tanh and erf in the style of Eigen/XLA) accurate to a few
// float ulps, with NaN propagation and saturation handled by selects so that the loops vectorize.
//
// The forward activations and softmax's exp come in three variants with the same formulas and the same special
// values: explicit AVX-512 (rcp14 + one Newton step instead of a division, scalef for 2^n, masked tails) and
// AVX2+FMA intrinsics, chosen once at run time, and a portable C loop (the only one off x86). All of them work
// directly on src and dst (no copy through a local buffer), in place (src == dst) included: each vector is read
// before the same elements are written. vck_activation_set_isa lets the tests run every variant on one machine.
#include "ckernels.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define VCK_X86 1
#include <immintrin.h>
#endif

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define INLINE static inline __attribute__((always_inline))

// Constants shared by every variant.
#define EXP_LO -87.33654f
#define EXP_HI 88.37626f
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

INLINE float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

INLINE float silu_s(float x) { return x == -INFINITY ? NAN : x * sigmoid_approx(x); } /* -inf * 0 = NaN, as PyTorch */
INLINE float gelu_erf_s(float x) { return 0.5f * x * (1.0f + erf_approx(x * SQRT1_2)); }
INLINE float gelu_tanh_s(float x) { return 0.5f * x * (1.0f + tanh_approx(GELU_K * (x + GELU_C * x * x * x))); }

typedef void (*map_fn)(const float *, float *, ptrdiff_t);
typedef float (*exp_sum_fn)(const float *, float *, ptrdiff_t, float);
typedef struct {
  map_fn silu, gelu_erf, gelu_tanh, sigmoid, tanh, exp;
  exp_sum_fn exp_shift_sum;
} act_kernels;

// Same-index element-wise loops: assume_safety lets them vectorize although src may equal dst.
#define PORTABLE_MAP(NAME, EXPR)                                          \
  static void NAME(const float *s, float *d, ptrdiff_t n) {              \
    _Pragma("clang loop vectorize(assume_safety)")                        \
    for (ptrdiff_t i = 0; i < n; i++) { float x = s[i]; d[i] = (EXPR); }  \
  }

PORTABLE_MAP(silu_c, silu_s(x))
PORTABLE_MAP(gelu_erf_c, gelu_erf_s(x))
PORTABLE_MAP(gelu_tanh_c, gelu_tanh_s(x))
PORTABLE_MAP(sigmoid_c, sigmoid_approx(x))
PORTABLE_MAP(tanh_c, tanh_approx(x))
PORTABLE_MAP(exp_c, exp_approx(x))

static float exp_shift_sum_c(const float *src, float *dst, ptrdiff_t n, float shift) {
  float lanes[16] = {0}, sum = 0.0f;
  ptrdiff_t i = 0;
  // Sixteen independent partial sums vectorize without reassociating a single float sum.
  for (; i + 16 <= n; i += 16) {
    _Pragma("clang loop vectorize(assume_safety)")
    for (int k = 0; k < 16; k++) {
      float e = exp_approx(src[i + k] - shift);
      dst[i + k] = e;
      lanes[k] += e;
    }
  }
  for (; i < n; i++) {
    float e = exp_approx(src[i] - shift);
    dst[i] = e;
    sum += e;
  }
  for (int k = 0; k < 16; k++) sum += lanes[k];
  return sum;
}

static const act_kernels act_portable = {silu_c, gelu_erf_c, gelu_tanh_c, sigmoid_c, tanh_c, exp_c, exp_shift_sum_c};

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
  // k * (x + c * x^3) as x * (k + k * c * x^2).
  __m512 t = tanh512(_mm512_mul_ps(x, _mm512_fmadd_ps(_mm512_mul_ps(x, x), S16(GELU_K * GELU_C), S16(GELU_K))));
  return _mm512_mul_ps(_mm512_mul_ps(S16(0.5f), x), _mm512_add_ps(S16(1.0f), t));
}

// Two vectors per step (independent chains), then one masked vector for whatever is left (masked-off lanes are
// neither read nor written, so no fault past the end).
#define MAP512(NAME, F)                                                               \
  F512 void NAME(const float *s, float *d, ptrdiff_t n) {                             \
    ptrdiff_t i = 0;                                                                  \
    for (; i + 32 <= n; i += 32) {                                                    \
      __m512 a = _mm512_loadu_ps(s + i), b = _mm512_loadu_ps(s + i + 16);             \
      _mm512_storeu_ps(d + i, F(a));                                                  \
      _mm512_storeu_ps(d + i + 16, F(b));                                             \
    }                                                                                 \
    for (; i < n; i += 16) {                                                          \
      __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1); \
      _mm512_mask_storeu_ps(d + i, m, F(_mm512_maskz_loadu_ps(m, s + i)));            \
    }                                                                                 \
  }

MAP512(silu_v4, silu512)
MAP512(gelu_erf_v4, gelu_erf512)
MAP512(gelu_tanh_v4, gelu_tanh512)
MAP512(sigmoid_v4, sigmoid512)
MAP512(tanh_v4, tanh512)
MAP512(exp_v4, exp512)

F512 float exp_shift_sum_v4(const float *src, float *dst, ptrdiff_t n, float shift) {
  __m512 sh = S16(shift), acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  ptrdiff_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 a = exp512(_mm512_sub_ps(_mm512_loadu_ps(src + i), sh));
    __m512 b = exp512(_mm512_sub_ps(_mm512_loadu_ps(src + i + 16), sh));
    _mm512_storeu_ps(dst + i, a);
    _mm512_storeu_ps(dst + i + 16, b);
    acc0 = _mm512_add_ps(acc0, a);
    acc1 = _mm512_add_ps(acc1, b);
  }
  for (; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
    __m512 a = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, src + i), sh));
    _mm512_mask_storeu_ps(dst + i, m, a);
    acc0 = _mm512_mask_add_ps(acc0, m, acc0, a);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static const act_kernels act_v4 = {silu_v4, gelu_erf_v4, gelu_tanh_v4, sigmoid_v4, tanh_v4, exp_v4, exp_shift_sum_v4};

// Gradients of the transcendental activations (same expressions as silu_grad etc. below), g * f'(x).
T512 __m512 silu_grad512(__m512 x) {
  __m512 sg = sigmoid512(x);
  return _mm512_mul_ps(sg, _mm512_fmadd_ps(x, _mm512_sub_ps(S16(1.0f), sg), S16(1.0f)));
}

T512 __m512 gelu_erf_grad512(__m512 x) {
  __m512 cdf = _mm512_mul_ps(S16(0.5f), _mm512_add_ps(S16(1.0f), erf512(_mm512_mul_ps(x, S16(SQRT1_2)))));
  __m512 pdf = exp512(_mm512_mul_ps(_mm512_mul_ps(S16(-0.5f), x), x));
  return _mm512_fmadd_ps(_mm512_mul_ps(x, S16(0.39894228040143268f)), pdf, cdf);
}

T512 __m512 gelu_tanh_grad512(__m512 x) {
  __m512 c = _mm512_mul_ps(_mm512_mul_ps(S16(GELU_C), x), x);
  __m512 t = tanh512(_mm512_mul_ps(S16(GELU_K), _mm512_fmadd_ps(c, x, x)));
  __m512 a = _mm512_mul_ps(S16(0.5f), _mm512_add_ps(S16(1.0f), t));
  __m512 b = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(S16(0.5f), x), _mm512_fnmadd_ps(t, t, S16(1.0f))), S16(GELU_K));
  return _mm512_fmadd_ps(b, _mm512_fmadd_ps(_mm512_mul_ps(S16(3.0f * GELU_C), x), x, S16(1.0f)), a);
}

#define GRAD512(NAME, F)                                                                  \
  F512 void NAME(const float *gs, const float *xs, float *d, ptrdiff_t n) {               \
    ptrdiff_t i = 0;                                                                      \
    for (; i + 32 <= n; i += 32) {                                                        \
      __m512 a = _mm512_loadu_ps(xs + i), b = _mm512_loadu_ps(xs + i + 16);               \
      __m512 ga = _mm512_loadu_ps(gs + i), gb = _mm512_loadu_ps(gs + i + 16);             \
      _mm512_storeu_ps(d + i, _mm512_mul_ps(ga, F(a)));                                   \
      _mm512_storeu_ps(d + i + 16, _mm512_mul_ps(gb, F(b)));                              \
    }                                                                                     \
    for (; i < n; i += 16) {                                                              \
      __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);   \
      __m512 v = F(_mm512_maskz_loadu_ps(m, xs + i));                                     \
      _mm512_mask_storeu_ps(d + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gs + i), v)); \
    }                                                                                     \
  }

GRAD512(silu_grad_v4, silu_grad512)
GRAD512(gelu_erf_grad_v4, gelu_erf_grad512)
GRAD512(gelu_tanh_grad_v4, gelu_tanh_grad512)

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
  __m256 t = tanh256(_mm256_mul_ps(x, _mm256_fmadd_ps(_mm256_mul_ps(x, x), S8(GELU_K * GELU_C), S8(GELU_K))));
  return _mm256_mul_ps(_mm256_mul_ps(S8(0.5f), x), _mm256_add_ps(S8(1.0f), t));
}

// Lanes [0, k) set: the mask of maskload / maskstore (masked-off lanes are neither read nor written).
T256 __m256i tail_mask256(ptrdiff_t k) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define MAP256(NAME, F)                                                           \
  F256 void NAME(const float *s, float *d, ptrdiff_t n) {                         \
    ptrdiff_t i = 0;                                                              \
    for (; i + 16 <= n; i += 16) {                                                \
      __m256 a = _mm256_loadu_ps(s + i), b = _mm256_loadu_ps(s + i + 8);          \
      _mm256_storeu_ps(d + i, F(a));                                              \
      _mm256_storeu_ps(d + i + 8, F(b));                                          \
    }                                                                             \
    for (; i < n; i += 8) {                                                       \
      __m256i m = tail_mask256(n - i);                                            \
      _mm256_maskstore_ps(d + i, m, F(_mm256_maskload_ps(s + i, m)));             \
    }                                                                             \
  }

MAP256(silu_v3, silu256)
MAP256(gelu_erf_v3, gelu_erf256)
MAP256(gelu_tanh_v3, gelu_tanh256)
MAP256(sigmoid_v3, sigmoid256)
MAP256(tanh_v3, tanh256)
MAP256(exp_v3, exp256)

F256 float exp_shift_sum_v3(const float *src, float *dst, ptrdiff_t n, float shift) {
  __m256 sh = S8(shift), acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  ptrdiff_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 a = exp256(_mm256_sub_ps(_mm256_loadu_ps(src + i), sh));
    __m256 b = exp256(_mm256_sub_ps(_mm256_loadu_ps(src + i + 8), sh));
    _mm256_storeu_ps(dst + i, a);
    _mm256_storeu_ps(dst + i + 8, b);
    acc0 = _mm256_add_ps(acc0, a);
    acc1 = _mm256_add_ps(acc1, b);
  }
  for (; i < n; i += 8) {
    __m256i m = tail_mask256(n - i);
    __m256 a = exp256(_mm256_sub_ps(_mm256_maskload_ps(src + i, m), sh));
    _mm256_maskstore_ps(dst + i, m, a);
    acc0 = _mm256_add_ps(acc0, _mm256_and_ps(a, _mm256_castsi256_ps(m)));
  }
  __m256 v = _mm256_add_ps(acc0, acc1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

static const act_kernels act_v3 = {silu_v3, gelu_erf_v3, gelu_tanh_v3, sigmoid_v3, tanh_v3, exp_v3, exp_shift_sum_v3};
#endif

// MARK: dispatch

static const act_kernels *current_act = NULL;

static const act_kernels *best_act(void) {
#ifdef VCK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return &act_v4;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &act_v3;
#endif
  return &act_portable;
}

static const act_kernels *act(void) {
  // Racing first calls store the same pointer.
  const act_kernels *k = __atomic_load_n(&current_act, __ATOMIC_ACQUIRE);
  if (!k) {
    k = best_act();
    __atomic_store_n(&current_act, k, __ATOMIC_RELEASE);
  }
  return k;
}

int vck_activation_set_isa(int level) {
  const act_kernels *best = best_act(), *k = NULL;
  if (level == 0) k = best;
  if (level == 1) k = &act_portable;
#ifdef VCK_X86
  if (level == 4 && best == &act_v4) k = &act_v4;
  if (level == 3 && best != &act_portable) k = &act_v3;
#endif
  if (!k) return -1;
  __atomic_store_n(&current_act, k, __ATOMIC_RELEASE);
  return 0;
}

int vck_activation(int op, const float *src, float *dst, ptrdiff_t n) {
  const act_kernels *k = act();
  switch (op) {
    case VCK_SILU: k->silu(src, dst, n); return 0;
    case VCK_GELU_ERF: k->gelu_erf(src, dst, n); return 0;
    case VCK_GELU_TANH: k->gelu_tanh(src, dst, n); return 0;
    case VCK_SIGMOID: k->sigmoid(src, dst, n); return 0;
    case VCK_TANH: k->tanh(src, dst, n); return 0;
    case VCK_EXP: k->exp(src, dst, n); return 0;
    default: return -1;
  }
}

float vck_exp_shift_sum(const float *src, float *dst, ptrdiff_t n, float shift) {
  return act()->exp_shift_sum(src, dst, n, shift);
}

// MARK: gradients

// Same-index element-wise loops straight on the arrays (assume_safety: dx may be g, x or y); without y, y reads 0.
#define GRAD_LOOP(NAME, EXPR)                                                                                  \
  CLONES static void NAME(const float *gs, const float *xs, const float *ys, float *d, ptrdiff_t n, float a) { \
    (void)a;                                                                                                  \
    if (ys) {                                                                                                 \
      _Pragma("clang loop vectorize(assume_safety)")                                                          \
      for (ptrdiff_t i = 0; i < n; i++) { float g = gs[i], x = xs[i], y = ys[i]; (void)y; d[i] = (EXPR); }    \
    } else {                                                                                                  \
      _Pragma("clang loop vectorize(assume_safety)")                                                          \
      for (ptrdiff_t i = 0; i < n; i++) { float g = gs[i], x = xs[i], y = 0.0f; (void)y; d[i] = (EXPR); }     \
    }                                                                                                         \
  }

INLINE float silu_grad(float x) { float s = sigmoid_approx(x); return s * (1.0f + x * (1.0f - s)); }
INLINE float gelu_erf_grad(float x) {
  return 0.5f * (1.0f + erf_approx(x * SQRT1_2)) + x * 0.39894228040143268f * exp_approx(-0.5f * x * x);
}
INLINE float gelu_tanh_grad(float x) {
  const float k = GELU_K;
  float t = tanh_approx(k * (x + GELU_C * x * x * x));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * GELU_C * x * x);
}

GRAD_LOOP(relu_grad_loop, x > 0.0f ? g : 0.0f)
GRAD_LOOP(relu6_grad_loop, (x > 0.0f && x < 6.0f) ? g : 0.0f)
GRAD_LOOP(leaky_relu_grad_loop, x > 0.0f ? g : g * a)
GRAD_LOOP(silu_grad_loop, g * silu_grad(x))
GRAD_LOOP(gelu_erf_grad_loop, g * gelu_erf_grad(x))
GRAD_LOOP(gelu_tanh_grad_loop, g * gelu_tanh_grad(x))
GRAD_LOOP(sigmoid_grad_loop, g * (y * (1.0f - y)))
GRAD_LOOP(tanh_grad_loop, g * (1.0f - y * y))
GRAD_LOOP(hard_swish_grad_loop, x <= -3.0f ? 0.0f : (x >= 3.0f ? g : g * ((2.0f * x + 3.0f) / 6.0f)))
GRAD_LOOP(hard_sigmoid_grad_loop, (x > -3.0f && x < 3.0f) ? g * (1.0f / 6.0f) : 0.0f)
GRAD_LOOP(exp_grad_loop, g * y)
GRAD_LOOP(log_grad_loop, g / x)
GRAD_LOOP(sqrt_grad_loop, g * (0.5f / y))
GRAD_LOOP(neg_grad_loop, -g)
GRAD_LOOP(abs_grad_loop, x > 0.0f ? g : (x < 0.0f ? -g : 0.0f))

int vck_activation_grad(int op, const float *g, const float *x, const float *y, float *dx, ptrdiff_t n, float parameter) {
#ifdef VCK_X86
  // The transcendental gradients have explicit AVX-512 loops; the others (and other CPUs) use the clones below.
  if ((op == VCK_SILU || op == VCK_GELU_ERF || op == VCK_GELU_TANH) && act() == &act_v4) {
    if (op == VCK_SILU) silu_grad_v4(g, x, dx, n);
    else if (op == VCK_GELU_ERF) gelu_erf_grad_v4(g, x, dx, n);
    else gelu_tanh_grad_v4(g, x, dx, n);
    return 0;
  }
#endif
  switch (op) {
    case VCK_RELU: relu_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_RELU6: relu6_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_LEAKY_RELU: leaky_relu_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_SILU: silu_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_GELU_ERF: gelu_erf_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_GELU_TANH: gelu_tanh_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_SIGMOID: sigmoid_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_TANH: tanh_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_HARD_SWISH: hard_swish_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_HARD_SIGMOID: hard_sigmoid_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_EXP: exp_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_LOG: log_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_SQRT: sqrt_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_NEG: neg_grad_loop(g, x, y, dx, n, parameter); return 0;
    case VCK_ABS: abs_grad_loop(g, x, y, dx, n, parameter); return 0;
    default: return -1;
  }
}
