// Kernels for small feature maps (7x7 and below, as in a 28x28 network), where per-row or per-plane loops of a
// few elements would cost more in bookkeeping than in arithmetic: the batch's im2col matrix written straight from
// the NCHW input, and batch normalization's passes done over the contiguous [channels x span] block of each image
// with per-element expanded parameters, so that the inner loops are long and vectorize.
#include "ckernels.h"
#include "activation_math.h"

#ifdef VCK_X86
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

static ptrdiff_t ceil_div_clamped(ptrdiff_t a, ptrdiff_t b, ptrdiff_t hi) {
  ptrdiff_t q = a <= 0 ? 0 : (a + b - 1) / b;
  return q > hi ? hi : q;
}

CLONES void vck_im2col_batch(const float *x, ptrdiff_t batch, ptrdiff_t image_stride, ptrdiff_t h, ptrdiff_t w,
                             ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw,
                             ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t r0, ptrdiff_t r1,
                             float *dst) {
  const ptrdiff_t area = kh * kw, ohw = oh * ow, ld = batch * ohw;
  for (ptrdiff_t r = r0; r < r1; r++) {
    const ptrdiff_t c = r / area, t = r - c * area, ky = t / kw, kx = t - ky * kw;
    // Output columns whose input column ox * sw + kx * dw - pw lies in [0, w).
    const ptrdiff_t shift = kx * dw - pw;
    const ptrdiff_t ox0 = ceil_div_clamped(-shift, sw, ow), ox1 = ceil_div_clamped(w - shift, sw, ow);
    for (ptrdiff_t n = 0; n < batch; n++) {
      const float *plane = x + n * image_stride + c * h * w;
      float *out = dst + r * ld + n * ohw;
      for (ptrdiff_t oy = 0; oy < oh; oy++, out += ow) {
        const ptrdiff_t iy = oy * sh + ky * dh - ph;
        if (iy < 0 || iy >= h) {
          for (ptrdiff_t ox = 0; ox < ow; ox++) out[ox] = 0;
          continue;
        }
        const float *row = plane + iy * w + shift;
        for (ptrdiff_t ox = 0; ox < ox0; ox++) out[ox] = 0;
        if (sw == 1) {
          for (ptrdiff_t ox = ox0; ox < ox1; ox++) out[ox] = row[ox];
        } else {
          for (ptrdiff_t ox = ox0; ox < ox1; ox++) out[ox] = row[ox * sw];
        }
        for (ptrdiff_t ox = ox1 > ox0 ? ox1 : ox0; ox < ow; ox++) out[ox] = 0;
      }
    }
  }
}

// Each image's channels [c0, c1) are the contiguous block x + (img * c + c0) * span of len = (c1 - c0) * span
// floats; per-channel parameters are expanded to one value per element of that block first.
static void expand(const float *per_channel, ptrdiff_t c0, ptrdiff_t c1, ptrdiff_t span, float fill, float *out) {
  for (ptrdiff_t ch = c0; ch < c1; ch++)
    for (ptrdiff_t s = 0; s < span; s++) *out++ = per_channel ? per_channel[ch] : fill;
}

static void reduce_spans(const double *acc, ptrdiff_t channels, ptrdiff_t span, double *out) {
  for (ptrdiff_t ch = 0; ch < channels; ch++) {
    double t = 0;
    for (ptrdiff_t s = 0; s < span; s++) t += acc[ch * span + s];
    out[ch] = t;
  }
}

CLONES void vck_bn_sums(const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t span, ptrdiff_t c0, ptrdiff_t c1,
                        const float *center, double *s1, double *s2, double *scratch) {
  const ptrdiff_t len = (c1 - c0) * span;
  double *a1 = scratch, *a2 = scratch + len;
  float *mid = (float *)(scratch + 2 * len);
  expand(center, c0, c1, span, 0.0f, mid);
  for (ptrdiff_t i = 0; i < len; i++) a1[i] = a2[i] = 0;
  for (ptrdiff_t img = 0; img < n; img++) {
    const float *xp = x + (img * c + c0) * span;
    if (s2) {
      for (ptrdiff_t i = 0; i < len; i++) {
        const double v = (double)(xp[i] - mid[i]);
        a1[i] += v;
        a2[i] += v * v;
      }
    } else {
      for (ptrdiff_t i = 0; i < len; i++) a1[i] += (double)(xp[i] - mid[i]);
    }
  }
  reduce_spans(a1, c1 - c0, span, s1);
  if (s2) reduce_spans(a2, c1 - c0, span, s2);
}

CLONES void vck_bn_affine(const float *x, float *y, ptrdiff_t n, ptrdiff_t c, ptrdiff_t span, ptrdiff_t c0,
                          ptrdiff_t c1, const float *scale, const float *shift, float *scratch) {
  const ptrdiff_t len = (c1 - c0) * span;
  float *a = scratch, *b = scratch + len;
  expand(scale, c0, c1, span, 1.0f, a);
  expand(shift, c0, c1, span, 0.0f, b);
  for (ptrdiff_t img = 0; img < n; img++) {
    const float *xp = x + (img * c + c0) * span;
    float *yp = y + (img * c + c0) * span;
    for (ptrdiff_t i = 0; i < len; i++) yp[i] = xp[i] * a[i] + b[i];
  }
}

CLONES void vck_bn_grad_sums(const float *g, const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t span, ptrdiff_t c0,
                             ptrdiff_t c1, const float *mean, double *sg, double *sgx, double *scratch) {
  const ptrdiff_t len = (c1 - c0) * span;
  double *a1 = scratch, *a2 = scratch + len;
  float *mid = (float *)(scratch + 2 * len);
  expand(mean, c0, c1, span, 0.0f, mid);
  for (ptrdiff_t i = 0; i < len; i++) a1[i] = a2[i] = 0;
  for (ptrdiff_t img = 0; img < n; img++) {
    const float *gp = g + (img * c + c0) * span, *xp = x + (img * c + c0) * span;
    for (ptrdiff_t i = 0; i < len; i++) {
      a1[i] += (double)gp[i];
      a2[i] += (double)(gp[i] * (xp[i] - mid[i]));
    }
  }
  reduce_spans(a1, c1 - c0, span, sg);
  reduce_spans(a2, c1 - c0, span, sgx);
}

CLONES void vck_bn_grad_apply(const float *g, const float *x, float *o, ptrdiff_t n, ptrdiff_t c, ptrdiff_t span,
                              ptrdiff_t c0, ptrdiff_t c1, const float *a, const float *p, const float *q,
                              float *scratch) {
  const ptrdiff_t len = (c1 - c0) * span;
  float *ea = scratch, *ep = scratch + len, *eq = scratch + 2 * len;
  expand(a, c0, c1, span, 0.0f, ea);
  expand(p, c0, c1, span, 0.0f, ep);
  expand(q, c0, c1, span, 0.0f, eq);
  for (ptrdiff_t img = 0; img < n; img++) {
    const ptrdiff_t at = (img * c + c0) * span;
    for (ptrdiff_t i = 0; i < len; i++) o[at + i] = g[at + i] * ea[i] + (x[at + i] * ep[i] + eq[i]);
  }
}
