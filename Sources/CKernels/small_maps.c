// Kernels for small feature maps (7x7 and below, as in a 28x28 network), where per-row or per-plane loops of a
// few elements would cost more in bookkeeping than in arithmetic: the batch's im2col matrix written straight from
// the NCHW input, and batch normalization's passes done over the contiguous [channels x span] block of each image
// with per-element expanded parameters, so that the inner loops are long and vectorize.
#include "ckernels.h"
#include "activation_math.h"
#include "cpu.h"
#include <stdint.h>
#include <stdlib.h>

// The tap table: per tap, where each output pixel reads in its input plane (-1: padding). With it, a row of one
// image is a gather of oh * ow values whatever the map's shape, instead of oh short runs with their bounds.
static void tap_table(ptrdiff_t h, ptrdiff_t w, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph,
                      ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t oh, ptrdiff_t ow, int *table) {
  const ptrdiff_t ohw = oh * ow;
  for (ptrdiff_t t = 0; t < kh * kw; t++) {
    const ptrdiff_t ky = t / kw, kx = t - ky * kw;
    for (ptrdiff_t oy = 0; oy < oh; oy++) {
      const ptrdiff_t iy = oy * sh + ky * dh - ph;
      for (ptrdiff_t ox = 0; ox < ow; ox++) {
        const ptrdiff_t ix = ox * sw + kx * dw - pw;
        table[t * ohw + oy * ow + ox] = iy < 0 || iy >= h || ix < 0 || ix >= w ? -1 : (int)(iy * w + ix);
      }
    }
  }
}

CLONES static void im2col_rows(const float *x, ptrdiff_t batch, ptrdiff_t image_stride, ptrdiff_t hw, ptrdiff_t area,
                               ptrdiff_t ohw, const int *table, ptrdiff_t r0, ptrdiff_t r1, float *dst) {
  const ptrdiff_t ld = batch * ohw;
  for (ptrdiff_t r = r0; r < r1; r++) {
    const ptrdiff_t c = r / area;
    const int *at = table + (r - c * area) * ohw;
    for (ptrdiff_t n = 0; n < batch; n++) {
      const float *plane = x + n * image_stride + c * hw;
      float *out = dst + (r - r0) * ld + n * ohw;
      for (ptrdiff_t p = 0; p < ohw; p++) {
        const int i = at[p];
        const float v = plane[i < 0 ? 0 : i];  // plane[0] stands in for the padding, then is replaced by 0
        out[p] = i < 0 ? 0.0f : v;
      }
    }
  }
}

#ifdef VCK_X86
// The source of a vector of columns held in four registers: `count` planes of hw floats (count * hw <= 64),
// `image_stride` apart in memory, laid out one after the other from lane 0 of v[0]. Masked loads read only each
// plane's own floats.
__attribute__((target("avx512f"))) static inline void hold_planes(const float *first, ptrdiff_t image_stride,
                                                                  ptrdiff_t hw, ptrdiff_t count, __m512 v[4]) {
  for (int r = 0; r < 4; r++) v[r] = _mm512_setzero_ps();
  for (ptrdiff_t j = 0; j < count; j++) {
    const float *plane = first + j * image_stride;
    for (ptrdiff_t lo = j * hw, hi = lo + hw, r = lo / 16; r < 4 && 16 * r < hi; r++) {
      // Lanes [max(lo, 16r), min(hi, 16r + 16)) of register r hold the plane's floats from max(lo, 16r) - lo.
      const ptrdiff_t a = lo > 16 * r ? lo : 16 * r, b = hi < 16 * r + 16 ? hi : 16 * r + 16;
      const __mmask16 m = (__mmask16)(((1u << (b - 16 * r)) - 1) & ~((1u << (a - 16 * r)) - 1));
      // Lane l reads plane[l + 16r - lo]; masked-off lanes are not read.
      v[r] = _mm512_mask_loadu_ps(v[r], m, (const float *)((uintptr_t)plane + (uintptr_t)((16 * r - lo) * 4)));
    }
  }
}

// Lane i of the result: held float idx[i] (0..63), or 0 where `valid` is clear.
__attribute__((target("avx512f"))) static inline __m512 pick(const __m512 v[4], __m512i idx, __mmask16 valid) {
  const __m512 low = _mm512_permutex2var_ps(v[0], idx, v[1]), high = _mm512_permutex2var_ps(v[2], idx, v[3]);
  const __mmask16 upper = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
  return _mm512_maskz_mov_ps(valid, _mm512_mask_blend_ps(upper, low, high));
}

// The same rows 16 columns at a time, each vector picked by permutes from the planes it reads, held in
// registers once for all the taps of their channel (planes of up to 64 floats; larger ones are gathered).
// Outputs of fewer than 16 pixels that divide 16 take 16 / ohw images per vector (`wide`: per tap, lane ->
// (lane / ohw) * hw + the tap's offset in image lane / ohw), so that every store is a full vector.
__attribute__((target("avx512f"))) static void im2col_rows_v4(const float *x, ptrdiff_t batch, ptrdiff_t image_stride,
                                                              ptrdiff_t hw, ptrdiff_t area, ptrdiff_t ohw,
                                                              const int *table, const int *wide, ptrdiff_t r0,
                                                              ptrdiff_t r1, float *dst) {
  const ptrdiff_t ld = batch * ohw, per = wide ? 16 / ohw : 1;
  const __m512i zero = _mm512_setzero_si512();
  __m512 held[4];
  for (ptrdiff_t c = r0 / area; c * area < r1; c++) {
    const ptrdiff_t t0 = r0 > c * area ? r0 - c * area : 0, t1 = r1 < (c + 1) * area ? r1 - c * area : area;
    for (ptrdiff_t n = 0; n < batch; n += per) {
      const float *plane = x + n * image_stride + c * hw;
      const ptrdiff_t count = batch - n < per ? batch - n : per;
      if (hw * count <= 64) hold_planes(plane, image_stride, hw, count, held);
      for (ptrdiff_t t = t0; t < t1; t++) {
        float *out = dst + (c * area + t - r0) * ld + n * ohw;
        if (wide) {
          const __m512i idx = _mm512_loadu_si512(wide + t * 16);
          const __mmask16 tail = count == per ? 0xffff : (__mmask16)((1u << (count * ohw)) - 1);
          _mm512_mask_storeu_ps(out, tail, pick(held, idx, _mm512_mask_cmpge_epi32_mask(tail, idx, zero)));
          continue;
        }
        for (ptrdiff_t p = 0; p < ohw; p += 16) {
          const __mmask16 tail = ohw - p >= 16 ? 0xffff : (__mmask16)((1u << (ohw - p)) - 1);
          const __m512i idx = _mm512_maskz_loadu_epi32(tail, table + t * ohw + p);
          const __mmask16 valid = _mm512_mask_cmpge_epi32_mask(tail, idx, zero);
          const __m512 v = hw <= 64 ? pick(held, idx, valid)
                                    : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx, plane, 4);
          _mm512_mask_storeu_ps(out + p, tail, v);
        }
      }
    }
  }
}

// Whether the AVX-512 rows run on this CPU (-1 until the first call); tests pick a level for their thread with
// vck_im2col_set_isa.
static int im2col_avx512 = -1;
#endif

int vck_im2col_set_isa(int level) {
#ifdef VCK_X86
  __builtin_cpu_init();
  const int best = __builtin_cpu_supports("avx512f") ? 4 : 1;
#else
  const int best = 1;
#endif
  if (level != 0 && ((level != 1 && level != 4) || level > best)) return -1;
  vck_thread_isa.im2col = level;
  return 0;
}

int vck_im2col_batch(const float *x, ptrdiff_t batch, ptrdiff_t image_stride, ptrdiff_t h, ptrdiff_t w, ptrdiff_t kh,
                     ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t dh, ptrdiff_t dw,
                     ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t r0, ptrdiff_t r1, float *dst) {
  const ptrdiff_t area = kh * kw, ohw = oh * ow;
  int *table = malloc((size_t)(area * ohw + area * 16) * sizeof(int));
  if (!table) return -1;
  tap_table(h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, table);
#ifdef VCK_X86
  if (__atomic_load_n(&im2col_avx512, __ATOMIC_RELAXED) < 0) {
    __builtin_cpu_init();
    __atomic_store_n(&im2col_avx512, __builtin_cpu_supports("avx512f") ? 1 : 0, __ATOMIC_RELAXED);
  }
  if (vck_thread_isa.im2col ? vck_thread_isa.im2col == 4 : __atomic_load_n(&im2col_avx512, __ATOMIC_RELAXED)) {
    // Several images per vector where their planes fit in the four held registers.
    const ptrdiff_t per = ohw < 16 && 16 % ohw == 0 ? 16 / ohw : 0;
    int *wide = per > 0 && per * h * w <= 64 ? table + area * ohw : NULL;
    for (ptrdiff_t t = 0; wide && t < area; t++)
      for (ptrdiff_t lane = 0; lane < 16; lane++) {
        const int i = table[t * ohw + lane % ohw];
        wide[t * 16 + lane] = i < 0 ? -1 : (int)((lane / ohw) * h * w) + i;
      }
    im2col_rows_v4(x, batch, image_stride, h * w, area, ohw, table, wide, r0, r1, dst);
    free(table);
    return 0;
  }
#endif
  im2col_rows(x, batch, image_stride, h * w, area, ohw, table, r0, r1, dst);
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
