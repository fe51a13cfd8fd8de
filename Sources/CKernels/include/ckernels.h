// Hot element-wise loops written in C so that the compiler vectorizes them for the CPU it runs on
// (target_clones: AVX-512, AVX2+FMA or baseline, chosen at load time), whatever flags the Swift code was built with.
#ifndef VISIONCORE_CKERNELS_H
#define VISIONCORE_CKERNELS_H
#include <stddef.h>

/// Activation codes; keep in step with VisionCore's UnaryOp raw values.
enum {
  VCK_RELU = 0, VCK_RELU6 = 1, VCK_LEAKY_RELU = 2, VCK_SILU = 3, VCK_GELU_ERF = 4, VCK_GELU_TANH = 5,
  VCK_SIGMOID = 6, VCK_TANH = 7, VCK_HARD_SWISH = 8, VCK_HARD_SIGMOID = 9, VCK_EXP = 10, VCK_LOG = 11,
  VCK_SQRT = 12, VCK_NEG = 13, VCK_ABS = 14
};

/// dst[i] = f(src[i]) for the transcendental activations above; returns 0, or -1 for an unknown code.
int vck_activation(int op, const float *src, float *dst, ptrdiff_t n);

/// dx[i] = g[i] * f'(x[i]) for every activation code above (y = f(x), used where it is cheaper; `parameter` is
/// LeakyReLU's slope), with PyTorch's conventions at the kinks; returns 0, or -1 for an unknown code.
int vck_activation_grad(int op, const float *g, const float *x, const float *y, float *dx, ptrdiff_t n, float parameter);

/// dst[i] = exp(src[i] - shift), returning the sum of the results (softmax's inner loop).
float vck_exp_shift_sum(const float *src, float *dst, ptrdiff_t n, float shift);
#endif
