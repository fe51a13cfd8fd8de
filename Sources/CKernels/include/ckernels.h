// Hot element-wise loops written in C so that the compiler vectorizes them for the CPU it runs on
// (target_clones: AVX-512, AVX2+FMA or baseline, chosen at load time), whatever flags the Swift code was built with.
#ifndef VISIONCORE_CKERNELS_H
#define VISIONCORE_CKERNELS_H
#include <stddef.h>

/// Activation codes; keep in step with VisionCore's UnaryOp raw values.
enum {
  VCK_SILU = 3, VCK_GELU_ERF = 4, VCK_GELU_TANH = 5, VCK_SIGMOID = 6, VCK_TANH = 7, VCK_EXP = 10
};

/// dst[i] = f(src[i]) for the transcendental activations above; returns 0, or -1 for an unknown code.
int vck_activation(int op, const float *src, float *dst, ptrdiff_t n);

/// dst[i] = exp(src[i] - shift), returning the sum of the results (softmax's inner loop).
float vck_exp_shift_sum(const float *src, float *dst, ptrdiff_t n, float shift);
#endif
