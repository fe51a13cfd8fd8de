// Polynomial approximations (Cephes expf; rational tanh and erf in the style of Eigen/XLA) accurate to a few
// float ulps, with NaN propagation and saturation handled by selects so that the loops vectorize.
//
// The forward activations and softmax's exp come in three variants with the same formulas and the same special
// values: explicit AVX-512 (rcp14 + one Newton step instead of a division, scalef for 2^n, masked tails) and
// AVX2+FMA intrinsics, chosen once at run time, and a portable C loop (the only one off x86). All of them work
// directly on src and dst (no copy through a local buffer), in place (src == dst) included: each vector is read
// before the same elements are written. vck_activation_set_isa lets the tests run every variant on one machine.
#include "ckernels.h"
#include "activation_math.h"

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
PORTABLE_MAP(exp_c, exp_full(x))

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
MAP512(exp_v4, exp_full512)

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
MAP256(exp_v3, exp_full256)

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

// The CPU's best set, found on first use (racing first calls store the same pointer).
static const act_kernels *best_known = NULL;

static const act_kernels *best_act(void) {
#ifdef VCK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return &act_v4;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &act_v3;
#endif
  return &act_portable;
}

// The set of an ISA level (4, 3, 1), or NULL when the CPU lacks it.
static const act_kernels *act_of_level(int level) {
  const act_kernels *best = best_act();
  if (level == 1) return &act_portable;
#ifdef VCK_X86
  if (level == 4 && best == &act_v4) return &act_v4;
  if (level == 3 && best != &act_portable) return &act_v3;
#endif
  return NULL;
}

static const act_kernels *act(void) {
  if (vck_thread_isa.activation) return act_of_level(vck_thread_isa.activation);
  const act_kernels *k = __atomic_load_n(&best_known, __ATOMIC_ACQUIRE);
  if (!k) {
    k = best_act();
    __atomic_store_n(&best_known, k, __ATOMIC_RELEASE);
  }
  return k;
}

int vck_activation_set_isa(int level) {
  if (level != 0 && !act_of_level(level)) return -1;
  vck_thread_isa.activation = level;
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
