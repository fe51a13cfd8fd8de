// Polynomial approximations (Cephes expf; rational tanh and erf in the style of Eigen/XLA) accurate to a few
// float ulps, with NaN propagation and saturation handled by selects so that the loops vectorize.
#include "ckernels.h"
#include <math.h>

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define INLINE static inline __attribute__((always_inline))

INLINE float exp_approx(float x0) {
  float x = x0 < -87.33654f ? -87.33654f : x0;
  x = x > 88.37626f ? 88.37626f : x;
  // n = floor(x * log2(e) + 0.5); floorf becomes one rounding instruction in the AVX clones.
  float n = floorf(x * 1.44269504088896341f + 0.5f);
  x = x - n * 0.693359375f + n * 2.12194440e-4f;
  float z = x * x;
  float y = 1.9875691500e-4f;
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * z + x + 1.0f;
  union { float f; unsigned u; } scale = { .f = n + (12582912.0f + 127.0f) };
  scale.u <<= 23;
  float out = y * scale.f;
  return x0 != x0 ? x0 : out;
}

INLINE float tanh_approx(float x0) {
  float x = x0 < -7.90531110763549805f ? -7.90531110763549805f : x0;
  x = x > 7.90531110763549805f ? 7.90531110763549805f : x;
  float x2 = x * x;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  float r = p / q;
  r = (x0 < 0.0004f && x0 > -0.0004f) ? x0 : r;
  // Saturate exactly: the rational form stops a few ulps short of +-1, which 1 + tanh(x) would magnify.
  r = x0 >= 7.90531110763549805f ? 1.0f : r;
  r = x0 <= -7.90531110763549805f ? -1.0f : r;
  return x0 != x0 ? x0 : r;
}

INLINE float erf_approx(float x0) {
  float x = x0 < -4.0f ? -4.0f : x0;
  x = x > 4.0f ? 4.0f : x;
  float x2 = x * x;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = x * p;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  float r = p / q;
  return x0 != x0 ? x0 : r;
}

INLINE float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// Each loop works on blocks copied into a local buffer: the compiler then knows the math loop has no aliasing
// and vectorizes it even when the caller passes the same buffer as source and destination.
#define BLOCKED_MAP(NAME, EXPR)                                          \
  CLONES static void NAME(const float *s, float *d, ptrdiff_t n) {      \
    float buf[256];                                                       \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += 256) {                           \
      ptrdiff_t m = n - i0 < 256 ? n - i0 : 256;                          \
      for (ptrdiff_t j = 0; j < m; j++) buf[j] = s[i0 + j];              \
      for (ptrdiff_t j = 0; j < m; j++) { float x = buf[j]; buf[j] = (EXPR); } \
      for (ptrdiff_t j = 0; j < m; j++) d[i0 + j] = buf[j];              \
    }                                                                     \
  }

BLOCKED_MAP(silu_loop, x == -INFINITY ? NAN : x * sigmoid_approx(x))  /* -inf * 0 = NaN, as PyTorch */
BLOCKED_MAP(gelu_erf_loop, 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f)))
BLOCKED_MAP(gelu_tanh_loop, 0.5f * x * (1.0f + tanh_approx(0.79788456080286536f * (x + 0.044715f * x * x * x))))
BLOCKED_MAP(sigmoid_loop, sigmoid_approx(x))
BLOCKED_MAP(tanh_loop, tanh_approx(x))
BLOCKED_MAP(exp_loop, exp_approx(x))

int vck_activation(int op, const float *src, float *dst, ptrdiff_t n) {
  switch (op) {
    case VCK_SILU: silu_loop(src, dst, n); return 0;
    case VCK_GELU_ERF: gelu_erf_loop(src, dst, n); return 0;
    case VCK_GELU_TANH: gelu_tanh_loop(src, dst, n); return 0;
    case VCK_SIGMOID: sigmoid_loop(src, dst, n); return 0;
    case VCK_TANH: tanh_loop(src, dst, n); return 0;
    case VCK_EXP: exp_loop(src, dst, n); return 0;
    default: return -1;
  }
}

// Gradient loops: blocks of g, x (and y) copied into local buffers, for the same no-aliasing reason as above.
#define BLOCKED_GRAD(NAME, EXPR)                                                                    \
  CLONES static void NAME(const float *gs, const float *xs, const float *ys, float *d, ptrdiff_t n, float a) { \
    float gb[256], xb[256], yb[256];                                                                 \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += 256) {                                                      \
      ptrdiff_t m = n - i0 < 256 ? n - i0 : 256;                                                     \
      for (ptrdiff_t j = 0; j < m; j++) { gb[j] = gs[i0 + j]; xb[j] = xs[i0 + j]; yb[j] = ys ? ys[i0 + j] : 0.0f; } \
      for (ptrdiff_t j = 0; j < m; j++) { float g = gb[j], x = xb[j], y = yb[j]; (void)y; (void)a; gb[j] = (EXPR); } \
      for (ptrdiff_t j = 0; j < m; j++) d[i0 + j] = gb[j];                                          \
    }                                                                                                \
  }

INLINE float silu_grad(float x) { float s = sigmoid_approx(x); return s * (1.0f + x * (1.0f - s)); }
INLINE float gelu_erf_grad(float x) {
  return 0.5f * (1.0f + erf_approx(x * 0.70710678118654752f)) + x * 0.39894228040143268f * exp_approx(-0.5f * x * x);
}
INLINE float gelu_tanh_grad(float x) {
  const float k = 0.79788456080286536f;
  float t = tanh_approx(k * (x + 0.044715f * x * x * x));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
}

BLOCKED_GRAD(relu_grad_loop, x > 0.0f ? g : 0.0f)
BLOCKED_GRAD(relu6_grad_loop, (x > 0.0f && x < 6.0f) ? g : 0.0f)
BLOCKED_GRAD(leaky_relu_grad_loop, x > 0.0f ? g : g * a)
BLOCKED_GRAD(silu_grad_loop, g * silu_grad(x))
BLOCKED_GRAD(gelu_erf_grad_loop, g * gelu_erf_grad(x))
BLOCKED_GRAD(gelu_tanh_grad_loop, g * gelu_tanh_grad(x))
BLOCKED_GRAD(sigmoid_grad_loop, g * (y * (1.0f - y)))
BLOCKED_GRAD(tanh_grad_loop, g * (1.0f - y * y))
BLOCKED_GRAD(hard_swish_grad_loop, x <= -3.0f ? 0.0f : (x >= 3.0f ? g : g * ((2.0f * x + 3.0f) / 6.0f)))
BLOCKED_GRAD(hard_sigmoid_grad_loop, (x > -3.0f && x < 3.0f) ? g * (1.0f / 6.0f) : 0.0f)
BLOCKED_GRAD(exp_grad_loop, g * y)
BLOCKED_GRAD(log_grad_loop, g / x)
BLOCKED_GRAD(sqrt_grad_loop, g * (0.5f / y))
BLOCKED_GRAD(neg_grad_loop, -g)
BLOCKED_GRAD(abs_grad_loop, x > 0.0f ? g : (x < 0.0f ? -g : 0.0f))

int vck_activation_grad(int op, const float *g, const float *x, const float *y, float *dx, ptrdiff_t n, float parameter) {
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

CLONES float vck_exp_shift_sum(const float *src, float *dst, ptrdiff_t n, float shift) {
  float buf[256], lanes[16] = {0};
  float sum = 0.0f;
  for (ptrdiff_t i0 = 0; i0 < n; i0 += 256) {
    ptrdiff_t m = n - i0 < 256 ? n - i0 : 256;
    for (ptrdiff_t j = 0; j < m; j++) buf[j] = src[i0 + j];
    for (ptrdiff_t j = 0; j < m; j++) buf[j] = exp_approx(buf[j] - shift);
    for (ptrdiff_t j = 0; j < m; j++) dst[i0 + j] = buf[j];
    // Sixteen independent partial sums vectorize without reassociating a single float sum.
    ptrdiff_t j = 0;
    for (; j + 16 <= m; j += 16)
      for (int k = 0; k < 16; k++) lanes[k] += buf[j + k];
    for (; j < m; j++) sum += buf[j];
  }
  for (int k = 0; k < 16; k++) sum += lanes[k];
  return sum;
}
