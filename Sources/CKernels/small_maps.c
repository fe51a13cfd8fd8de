// Kernels for small feature maps (7x7 and below, as in a 28x28 network), where per-row or per-plane loops of a
// few elements would cost more in bookkeeping than in arithmetic: the batch's im2col matrix written straight from
// the NCHW input, and batch normalization's passes done over the contiguous [channels x span] block of each image
// with per-element expanded parameters, so that the inner loops are long and vectorize.
#include "ckernels.h"
#include "activation_math.h"
#include "cpu.h"
#include <stdlib.h>

CLONES int vck_im2col_batch(const float *x, ptrdiff_t batch, ptrdiff_t image_stride, ptrdiff_t h, ptrdiff_t w,
                            ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw,
                            ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t r0, ptrdiff_t r1,
                            float *dst) {
  const ptrdiff_t area = kh * kw, ohw = oh * ow, ld = batch * ohw;
  // Per tap, where each output pixel reads in its input plane (-1: padding). With it, a row of one image is a
  // gather of oh * ow values whatever the map's shape, instead of oh short runs with their bounds.
  int *table = malloc((size_t)(area * ohw) * sizeof(int));
  if (!table) return -1;
  for (ptrdiff_t t = 0; t < area; t++) {
    const ptrdiff_t ky = t / kw, kx = t - ky * kw;
    for (ptrdiff_t oy = 0; oy < oh; oy++) {
      const ptrdiff_t iy = oy * sh + ky * dh - ph;
      for (ptrdiff_t ox = 0; ox < ow; ox++) {
        const ptrdiff_t ix = ox * sw + kx * dw - pw;
        table[t * ohw + oy * ow + ox] = iy < 0 || iy >= h || ix < 0 || ix >= w ? -1 : (int)(iy * w + ix);
      }
    }
  }
  for (ptrdiff_t r = r0; r < r1; r++) {
    const ptrdiff_t c = r / area;
    const int *at = table + (r - c * area) * ohw;
    for (ptrdiff_t n = 0; n < batch; n++) {
      const float *plane = x + n * image_stride + c * h * w;
      float *out = dst + r * ld + n * ohw;
      for (ptrdiff_t p = 0; p < ohw; p++) {
        const int i = at[p];
        const float v = plane[i < 0 ? 0 : i];  // plane[0] stands in for the padding, then is replaced by 0
        out[p] = i < 0 ? 0.0f : v;
      }
    }
  }
  free(table);
  return 0;
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

CLONES void vck_bn_sums(const float *g, const float *mask, const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t span,
                        ptrdiff_t c0, ptrdiff_t c1, const float *center, double *s1, double *s2, double *scratch) {
  const ptrdiff_t len = (c1 - c0) * span;
  double *a1 = scratch, *a2 = scratch + len;
  float *mid = (float *)(scratch + 2 * len);
  expand(center, c0, c1, span, 0.0f, mid);
  for (ptrdiff_t i = 0; i < len; i++) a1[i] = a2[i] = 0;
  for (ptrdiff_t img = 0; img < n; img++) {
    const ptrdiff_t at = (img * c + c0) * span;
    const float *xp = x + at;
    if (g) {
      const float *gp = g + at, *mp = mask ? mask + at : NULL;
      for (ptrdiff_t i = 0; i < len; i++) {
        const float gv = !mp || mp[i] > 0.0f ? gp[i] : 0.0f;  // a following ReLU's gradient, when masked
        a1[i] += (double)gv;
        a2[i] += (double)(gv * (xp[i] - mid[i]));
      }
    } else if (s2) {
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
                          ptrdiff_t c1, const float *scale, const float *shift, const float *residual, int relu,
                          float *scratch) {
  const ptrdiff_t len = (c1 - c0) * span;
  float *a = scratch, *b = scratch + len;
  expand(scale, c0, c1, span, 1.0f, a);
  expand(shift, c0, c1, span, 0.0f, b);
  for (ptrdiff_t img = 0; img < n; img++) {
    const ptrdiff_t at = (img * c + c0) * span;
    const float *xp = x + at;
    float *yp = y + at;
    const float *rp = residual ? residual + at : NULL;
    for (ptrdiff_t i = 0; i < len; i++) {
      float v = xp[i] * a[i] + b[i];
      if (rp) v += rp[i];
      if (relu) v = v < 0.0f ? 0.0f : v;  // NaN stays NaN, as relu
      yp[i] = v;
    }
  }
}

CLONES void vck_bn_grad_apply(const float *g, const float *mask, const float *x, float *o, ptrdiff_t n, ptrdiff_t c,
                              ptrdiff_t span, ptrdiff_t c0, ptrdiff_t c1, const float *a, const float *p,
                              const float *q, float *scratch) {
  const ptrdiff_t len = (c1 - c0) * span;
  float *ea = scratch, *ep = scratch + len, *eq = scratch + 2 * len;
  expand(a, c0, c1, span, 0.0f, ea);
  expand(p, c0, c1, span, 0.0f, ep);
  expand(q, c0, c1, span, 0.0f, eq);
  for (ptrdiff_t img = 0; img < n; img++) {
    const ptrdiff_t at = (img * c + c0) * span;
    for (ptrdiff_t i = 0; i < len; i++) {
      const float gv = !mask || mask[at + i] > 0.0f ? g[at + i] : 0.0f;
      o[at + i] = gv * ea[i] + (x[at + i] * ep[i] + eq[i]);
    }
  }
}
