// BatchNorm folded into a conv's epilogue at inference: per-channel scale and shift computed in double, as
// ConvEpilogue.batchNorm always did, but vectorized (CLONES: 4 or 8 lanes of vsqrtpd / vdivpd; the builtin sqrt
// has no errno path, which kept libm's sqrt a scalar call), because every inference forward folds each
// BatchNorm again (resnet50: 53 of them, up to 2048 channels; the scalar Swift loop and its arrays cost
// 2 + 0.007 us per channel).
#include "ckernels.h"
#include "cpu.h"

enum { FOLD_CHUNK = 64 };

CLONES void vck_fold_batchnorm(const float *mean, const float *var, const float *weight, const float *bias,
                               const float *conv_bias, double eps, ptrdiff_t c, float *scale, float *shift) {
  // Separate multiplies and adds, in the order of the scalar code this replaces (weight 1, bias and conv bias 0
  // when absent): the same bits on every ISA.
#pragma clang fp contract(off)
  for (ptrdiff_t i0 = 0; i0 < c; i0 += FOLD_CHUNK) {
    const ptrdiff_t n = c - i0 < FOLD_CHUNK ? c - i0 : FOLD_CHUNK;
    double s[FOLD_CHUNK], t[FOLD_CHUNK];
    for (ptrdiff_t j = 0; j < n; j++)
      s[j] = (weight ? (double)weight[i0 + j] : 1.0) / __builtin_elementwise_sqrt((double)var[i0 + j] + eps);
    for (ptrdiff_t j = 0; j < n; j++) scale[i0 + j] = (float)s[j];
    for (ptrdiff_t j = 0; j < n; j++) t[j] = (conv_bias ? (double)conv_bias[i0 + j] : 0.0) - (double)mean[i0 + j];
    for (ptrdiff_t j = 0; j < n; j++) shift[i0 + j] = (float)((bias ? (double)bias[i0 + j] : 0.0) + t[j] * s[j]);
  }
}
