// Depthwise convolution of one plane (one k x k filter per channel, dilation 1) through stride-phase planes.
//
// The padded input is split into stride x stride phase planes, P[a][b][i][j] = xpad[i * s + a][j * s + b], each
// rs = ow + (k - 1) / s columns wide. Output (oy, ox), tap (ky, kx) then reads P[ky % s][kx % s] at
// (oy + ky / s) * rs + ox + kx / s: one fixed offset per tap from the "virtual" index q = oy * rs + ox. So the
// whole plane is one flat loop over q in [0, oh * rs), vectorized across rows; the (k - 1) / s columns past ow in
// each row are computed and dropped. Narrow maps (7x7, 14x14) thus fill whole vectors instead of one partial
// vector per row, and the epilogue (vck_conv_finish_row) compacts the rows as it stores them.
#include "ckernels.h"
#include "cpu.h"
#include <math.h>
#include <string.h>

// Floats of a phase plane (rounded up to a cache line). The flat loop's last read, at tap offset
// ext * rs + ext plus q < oh * rs rounded up to whole 8-float vectors, stays inside it.
static inline __attribute__((always_inline)) ptrdiff_t phase_plane(ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t k,
                                                                   ptrdiff_t s) {
  const ptrdiff_t ext = (k - 1) / s, rs = ow + ext;
  return ((oh + ext) * rs + 8 + 15) / 16 * 16;
}

ptrdiff_t vck_depthwise_scratch(ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t k, ptrdiff_t s) {
  const ptrdiff_t rs = ow + (k - 1) / s;
  return s * s * phase_plane(oh, ow, k, s) + (oh * rs + 63) / 64 * 64;
}

// acc[q] = clamp(shift + sum of the nine taps at q (k = 3), in tap order, lo, hi): the weights come scaled, and
// ReLU / ReLU6 (or no activation, with infinite bounds) apply in the same pass.
static inline __attribute__((always_inline)) void taps3(const float *const *p, const float *w, float shift, float lo, float hi,
                         float *restrict acc, ptrdiff_t n) {
  const float *restrict p0 = p[0], *restrict p1 = p[1], *restrict p2 = p[2], *restrict p3 = p[3], *restrict p4 = p[4];
  const float *restrict p5 = p[5], *restrict p6 = p[6], *restrict p7 = p[7], *restrict p8 = p[8];
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];
  for (ptrdiff_t q = 0; q < n; q++) {
    float v = shift + w0 * p0[q] + w1 * p1[q] + w2 * p2[q] + w3 * p3[q] + w4 * p4[q] + w5 * p5[q] + w6 * p6[q] +
              w7 * p7[q] + w8 * p8[q];
    v = v < lo ? lo : v;
    acc[q] = v > hi ? hi : v;
  }
}

// Input row `src` (w floats) into the two column phases of a stride-2 padded row, starting at padded column pw.
static inline __attribute__((always_inline)) void split_row2(const float *restrict src, ptrdiff_t w, ptrdiff_t pw, ptrdiff_t rs, float *restrict p0,
                              float *restrict p1) {
  // Even input columns land in phase pw % 2 at column (c + pw) / 2, odd ones in the other phase.
  float *restrict even = (pw & 1) ? p1 : p0, *restrict odd = (pw & 1) ? p0 : p1;
  const ptrdiff_t je = pw / 2, jo = (pw + 1) / 2;
  ptrdiff_t pairs = w / 2;
  if (pairs > rs - jo) pairs = rs - jo > 0 ? rs - jo : 0;
  for (ptrdiff_t m = 0; m < pairs; m++) {
    even[je + m] = src[2 * m];
    odd[jo + m] = src[2 * m + 1];
  }
  for (ptrdiff_t c = 2 * pairs; c < w; c++) {
    const ptrdiff_t j = (c + pw) / 2;
    if (j < rs) ((c & 1) ? odd : even)[j] = src[c];
  }
}

// acc[q] += w * src[q] (any kernel size: one pass per tap over an L1-sized block).
static inline __attribute__((always_inline)) void tap_add(const float *restrict src, float w, float *restrict acc, ptrdiff_t n) {
  for (ptrdiff_t q = 0; q < n; q++) acc[q] += w * src[q];
}

typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef float v4f __attribute__((vector_size(16), aligned(4)));

// dst[0, n) = src[0, n) in vectors, the last one overlapping the one before, so that a 14-float row costs two
// moves instead of a vector and six scalar copies (and a 7-float row two 4-float moves).
static inline __attribute__((always_inline)) void copy_floats(float *restrict dst, const float *restrict src,
                                                              ptrdiff_t n) {
  if (n < 8) {
    if (n < 4) {
      for (ptrdiff_t i = 0; i < n; i++) dst[i] = src[i];
      return;
    }
    v4f a, b;
    memcpy(&a, src, sizeof a);
    memcpy(&b, src + n - 4, sizeof b);
    memcpy(dst, &a, sizeof a);
    memcpy(dst + n - 4, &b, sizeof b);
    return;
  }
  v8f v;
  for (ptrdiff_t i = 0; i + 8 < n; i += 8) {
    memcpy(&v, src + i, sizeof v);
    memcpy(dst + i, &v, sizeof v);
  }
  memcpy(&v, src + n - 8, sizeof v);
  memcpy(dst + n - 8, &v, sizeof v);
}

// Copies input row `src` (w floats) into padded row `R` of the phase planes.
static inline __attribute__((always_inline)) void fill_row(const float *src, ptrdiff_t w, ptrdiff_t R, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t rows,
                     ptrdiff_t rs, ptrdiff_t plane, float *phases) {
  const ptrdiff_t a = R % s, i = R / s;
  if (i >= rows) return;
  float *row = phases + a * s * plane + i * rs;
  if (s == 1) {
    copy_floats(row + pw, src, w < rs - pw ? w : rs - pw);
    return;
  }
  if (s == 2) {
    split_row2(src, w, pw, rs, row, row + plane);
    return;
  }
  // Phase b holds the input columns c = c0, c0 + s, ... (padded column c + pw = j * s + b).
  for (ptrdiff_t b = 0; b < s; b++) {
    const ptrdiff_t c0 = ((b - pw) % s + s) % s, j0 = (c0 + pw) / s;
    if (c0 >= w || j0 >= rs) continue;
    ptrdiff_t n = (w - c0 + s - 1) / s;
    if (n > rs - j0) n = rs - j0;
    float *dst = row + b * plane + j0;
    const float *from = src + c0;
    for (ptrdiff_t m = 0; m < n; m++) dst[m] = from[m * s];
  }
}

// Zeroes the cells of the phase planes that no input value fills (padding), and only those: a memset of whole
// planes cost as much as the convolution itself on wide maps.
static inline __attribute__((always_inline)) void zero_padding(ptrdiff_t h, ptrdiff_t w, ptrdiff_t s, ptrdiff_t ph,
                                                               ptrdiff_t pw, ptrdiff_t rows, ptrdiff_t rs,
                                                               ptrdiff_t plane, float *phases) {
  for (ptrdiff_t b = 0; b < s; b++) {
    // Columns [jlo, jhi) of column phase b hold input columns c = j * s + b - pw in [0, w).
    const ptrdiff_t last = w - 1 + pw - b;
    ptrdiff_t jlo = pw > b ? (pw - b + s - 1) / s : 0, jhi = last >= 0 ? last / s + 1 : 0;
    if (jlo > rs) jlo = rs;
    if (jhi > rs) jhi = rs;
    if (jhi < jlo) jhi = jlo;
    for (ptrdiff_t a = 0; a < s; a++) {
      float *p = phases + (a * s + b) * plane;
      for (ptrdiff_t i = 0; i < rows; i++) {
        const ptrdiff_t r = i * s + a - ph;
        float *row = p + i * rs;
        if (r < 0 || r >= h) {
          for (ptrdiff_t j = 0; j < rs; j++) row[j] = 0;
        } else {
          for (ptrdiff_t j = 0; j < jlo; j++) row[j] = 0;
          for (ptrdiff_t j = jhi; j < rs; j++) row[j] = 0;
        }
      }
    }
  }
}

// The plane for one stride: with s a constant (1 and 2, inlined below), the phase arithmetic of every row
// (R % s, R / s) and of the tap offsets folds away, which cost more than the products on 7x7 and 14x14 planes.
static inline __attribute__((always_inline)) void depthwise_plane(const float *x, ptrdiff_t h, ptrdiff_t w,
                                                                  ptrdiff_t k, ptrdiff_t s, ptrdiff_t ph, ptrdiff_t pw,
                                                                  ptrdiff_t oh, ptrdiff_t ow, const float *wt,
                                                                  float scale, float shift, const float *res, int act,
                                                                  float p, int after, float *y, float *scratch) {
  const ptrdiff_t ext = (k - 1) / s, rs = ow + ext, rows = oh + ext, plane = phase_plane(oh, ow, k, s);
  const ptrdiff_t n = oh * rs;
  float *phases = scratch, *acc = scratch + s * s * plane;
  zero_padding(h, w, s, ph, pw, rows, rs, plane, phases);
  for (ptrdiff_t r = 0; r < h; r++) fill_row(x + r * w, w, r + ph, pw, s, rows, rs, plane, phases);
  // ReLU and ReLU6 clamp in the tap loop; other activations and residuals go through the conv epilogue.
  const int inline_act = !res && (act == -1 || act == VCK_RELU || act == VCK_RELU6);
  if (k == 3 && inline_act) {
    const float *tp[9];
    float ws[9];
    for (int t = 0; t < 9; t++) {
      const ptrdiff_t ky = t / 3, kx = t % 3;
      tp[t] = phases + ((ky % s) * s + kx % s) * plane + (ky / s) * rs + kx / s;
      ws[t] = wt[t] * scale;
    }
    // Whole vectors only: the few outputs past n (dropped) read the planes' slack (zeroed: no stale NaN or
    // subnormal in those lanes) and land in acc's.
    for (ptrdiff_t i = 0; i < s * s; i++)
      for (ptrdiff_t j = rows * rs; j < plane; j++) phases[i * plane + j] = 0;
    taps3(tp, ws, shift, act == -1 ? -INFINITY : 0.0f, act == VCK_RELU6 ? 6.0f : INFINITY, acc, (n + 7) / 8 * 8);
    for (ptrdiff_t oy = 0; oy < oh; oy++) copy_floats(y + oy * ow, acc + oy * rs, ow);
    return;
  }
  memset(acc, 0, (size_t)n * sizeof(float));
  for (ptrdiff_t ky = 0; ky < k; ky++)
    for (ptrdiff_t kx = 0; kx < k; kx++)
      tap_add(phases + ((ky % s) * s + kx % s) * plane + (ky / s) * rs + kx / s, wt[ky * k + kx], acc, n);
  for (ptrdiff_t oy = 0; oy < oh; oy++)
    vck_conv_finish_row(acc + oy * rs, y + oy * ow, ow, scale, shift, res ? res + oy * ow : NULL, act, p, after);
}

// Cloned per ISA level with its inlined helpers, so that the short row copies vectorize in place instead of
// costing a memcpy call each; for the same reason the padding's zero fills (a float or two at each row's ends)
// stay loops rather than memset calls.
#define NO_MEMSET __attribute__((no_builtin("memset")))
CLONES NO_MEMSET void vck_depthwise_plane(const float *x, ptrdiff_t h, ptrdiff_t w, ptrdiff_t k, ptrdiff_t s, ptrdiff_t ph,
                         ptrdiff_t pw, ptrdiff_t oh, ptrdiff_t ow, const float *wt, float scale, float shift,
                         const float *res, int act, float p, int after, float *y, float *scratch) {
  if (s == 1) {
    depthwise_plane(x, h, w, k, 1, ph, pw, oh, ow, wt, scale, shift, res, act, p, after, y, scratch);
  } else if (s == 2) {
    depthwise_plane(x, h, w, k, 2, ph, pw, oh, ow, wt, scale, shift, res, act, p, after, y, scratch);
  } else {
    depthwise_plane(x, h, w, k, s, ph, pw, oh, ow, wt, scale, shift, res, act, p, after, y, scratch);
  }
}
