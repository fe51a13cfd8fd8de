// 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016): each 2x2 block of
// outputs ("tile") comes from a 4x4 input patch d and the 3x3 filter g as Y = A^T [(G g G^T) . (B^T d B)] A, so
// that the 16 element-wise products, summed over input channels, are 16 GEMMs of 4 multiply-adds per output
// instead of 9. The transforms use only additions and halvings (no rounding beyond that of the sums).
//
// The work runs in chunks of whole tile rows: the chunk's transformed inputs V [16][cin][nt] stay in L2 while
// blocks of output channels go by, each block's GEMM results M [16][rows][nt] made in L2 too. With few chunks,
// each block's transformed weights U [16][rows][cin] are made right there (a few additions per weight, redone
// for every chunk), rather than written to memory once and read back by every chunk, which cost more on the maps
// of a few dozen tiles where the weights outweigh the inputs (resnet50's 14x14 stage); with many (batches,
// training), they are transformed once beforehand (vck_winograd_weights) and shared.
//
// With 128 input channels or more on AVX2, the GEMMs take the tiles as rows instead (tiles_as_rows): V^T, a
// block's U^T and M^T, each transposed from the layouts above through small staging buffers, and the same sums in
// the same order, so that the bits do not depend on the order.
#include "ckernels.h"
#include "cpu.h"
#include <stdlib.h>
#include <string.h>

// The transforms run on AVX2 vectors with the conv GEMM's AVX2 or AVX-512 kernels (vck_conv_gemm_isa), as plain C
// loops otherwise, so that tests that switch the GEMM's ISA check both. Both compute the same operations in the
// same order: the bits do not depend on the path.
static int vector_transforms(void) {
#ifdef VCK_X86
  return vck_conv_gemm_isa() >= 3;
#else
  return 0;
#endif
}

// u[xi * stride + o - o0][i] (xi = 4 * row + column of G g G^T) for output channels [o0, o1) of the conv with
// filters g(o, i) = w[o][i] (3 x 3), or, transposed, g(o, i) = w[i][o] rotated by 180 degrees (the input
// gradient's conv). Each output channel's filters are first transposed to tap-major rows g[tap][i] (`buf`:
// 9 * ins floats), so that the transform runs along contiguous input channels.
CLONES static void weights_rows_c(const vck_winograd *job, ptrdiff_t o0, ptrdiff_t o1, float *u, ptrdiff_t stride,
                                  float *buf) {
  // The conv's channels: cout outputs of cin inputs; w's own shape swaps them when it is read transposed.
  const ptrdiff_t ins = job->cin, wcin = job->transposed ? job->cout : job->cin;
  for (ptrdiff_t o = o0; o < o1; o++) {
    if (job->transposed) {
      vck_transpose(job->weights + o * 9, ins, 9, wcin * 9, buf, ins);
    } else {
      vck_transpose(job->weights + o * wcin * 9, ins, 9, 9, buf, ins);
    }
    // Tap (ky, kx) of the filter: row 3 ky + kx of buf, or row 8 - (3 ky + kx) when rotated.
    const float *g[9];
    for (int k = 0; k < 9; k++) g[k] = buf + (job->transposed ? 8 - k : k) * ins;
    float *uo[16];
    for (int xi = 0; xi < 16; xi++) uo[xi] = u + (xi * stride + o - o0) * ins;
#pragma clang loop vectorize(assume_safety)
    for (ptrdiff_t i = 0; i < ins; i++) {
      float t[4][3];  // G g
      for (int c = 0; c < 3; c++) {
        float a = g[c][i], b = g[3 + c][i], e = g[6 + c][i];
        t[0][c] = a;
        t[1][c] = 0.5f * (a + b + e);
        t[2][c] = 0.5f * (a - b + e);
        t[3][c] = e;
      }
      for (int r = 0; r < 4; r++) {  // (G g) G^T
        uo[4 * r][i] = t[r][0];
        uo[4 * r + 1][i] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
        uo[4 * r + 2][i] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
        uo[4 * r + 3][i] = t[r][2];
      }
    }
  }
}

#ifdef VCK_X86
// weights_rows_c's transform of the untransposed filters, 8 input channels at a time: their 72 contiguous taps
// (w[o][i .. i + 7][0 .. 8]) go to one vector per tap by an 8 x 8 transpose in registers and a gather of the 9th,
// with no tap-major copy (the scalar transpose cost more than the transform on AVX2 machines). The last cin % 8
// channels take the same arithmetic one at a time.
#define HALF_OF(x) _mm256_mul_ps(half, (x))
// G g G^T on 8 lanes: u[xi] (xi = 4 row + column) from the tap vectors g[3 ky + kx], in weights_rows_c's order.
__attribute__((target("avx2"), always_inline)) static inline void filter_transform_avx2(const __m256 g[9],
                                                                                         __m256 u[16]) {
  const __m256 half = _mm256_set1_ps(0.5f);
  __m256 tg[4][3];  // G g
  for (int c = 0; c < 3; c++) {
    __m256 a = g[c], b = g[3 + c], e = g[6 + c];
    tg[0][c] = a;
    tg[1][c] = HALF_OF(_mm256_add_ps(_mm256_add_ps(a, b), e));
    tg[2][c] = HALF_OF(_mm256_add_ps(_mm256_sub_ps(a, b), e));
    tg[3][c] = e;
  }
  for (int row = 0; row < 4; row++) {  // (G g) G^T
    u[4 * row] = tg[row][0];
    u[4 * row + 1] = HALF_OF(_mm256_add_ps(_mm256_add_ps(tg[row][0], tg[row][1]), tg[row][2]));
    u[4 * row + 2] = HALF_OF(_mm256_add_ps(_mm256_sub_ps(tg[row][0], tg[row][1]), tg[row][2]));
    u[4 * row + 3] = tg[row][2];
  }
}

enum { WEIGHTS_AHEAD = 2 };
__attribute__((target("avx2"))) static void weights_rows_avx2(const vck_winograd *job, ptrdiff_t o0, ptrdiff_t o1,
                                                              float *u, ptrdiff_t stride) {
  const ptrdiff_t ins = job->cin, whole = ins / 8 * 8;
  const __m256i ninth = _mm256_setr_epi32(8, 17, 26, 35, 44, 53, 62, 71);
  for (ptrdiff_t o = o0; o < o1; o++) {
    const float *wo = job->weights + o * ins * 9;
    float *uo = u + (o - o0) * ins;
    const ptrdiff_t xs = stride * ins;  // from one xi's row to the next
    const float *ahead = o + WEIGHTS_AHEAD < o1 ? wo + WEIGHTS_AHEAD * ins * 9 : NULL;
    for (ptrdiff_t i = 0; i < whole; i += 8) {
      const float *src = wo + i * 9;
      if (ahead) {
        // The same 72 floats WEIGHTS_AHEAD output channels on, asked for now: in a network the weights come from
        // memory (resnet50's 14x14 Winograd convs 0.97-0.99x the time in-process, alternate forwards).
        for (int line = 0; line < 72; line += 16) __builtin_prefetch(ahead + i * 9 + line, 0, 3);
        __builtin_prefetch(ahead + i * 9 + 71, 0, 3);
      }
      __m256 g[9];
      for (int j = 0; j < 8; j++) g[j] = _mm256_loadu_ps(src + 9 * j);
      transpose8x8_ps(g);
      g[8] = _mm256_i32gather_ps(src, ninth, 4);
      __m256 uv[16];
      filter_transform_avx2(g, uv);
      for (int xi = 0; xi < 16; xi++) _mm256_storeu_ps(uo + xi * xs + i, uv[xi]);
    }
    for (ptrdiff_t i = whole; i < ins; i++) {
      const float *gi = wo + i * 9;
      float t[4][3];
      for (int c = 0; c < 3; c++) {
        float a = gi[c], b = gi[3 + c], e = gi[6 + c];
        t[0][c] = a;
        t[1][c] = 0.5f * (a + b + e);
        t[2][c] = 0.5f * (a - b + e);
        t[3][c] = e;
      }
      for (int row = 0; row < 4; row++) {
        float *dst = uo + 4 * row * xs + i;
        dst[0] = t[row][0];
        dst[xs] = 0.5f * (t[row][0] + t[row][1] + t[row][2]);
        dst[2 * xs] = 0.5f * (t[row][0] - t[row][1] + t[row][2]);
        dst[3 * xs] = t[row][2];
      }
    }
  }
}

// weights_rows_avx2's transform for 8 output channels [o0, o0 + 8) of the untransposed filters, stored as the
// tiles-as-rows GEMMs read them: ut[xi * cin * cols + ci * cols + o - o0], 8 contiguous channels per store. The
// first 8 taps of each channel's filter come to one vector per tap by an 8 x 8 transpose, the 9th by a gather
// (making U [xi][o][ci] and transposing it cost twice as much on AVX2). Same operations as weights_rows_avx2.
__attribute__((target("avx2"))) static void weights_cols_avx2(const vck_winograd *job, ptrdiff_t o0, float *ut,
                                                              ptrdiff_t cols) {
  const ptrdiff_t ins = job->cin, ws = ins * 9, xs = ins * cols;
  const int s = (int)ws;
  const __m256i ninth = _mm256_setr_epi32(8, 8 + s, 8 + 2 * s, 8 + 3 * s, 8 + 4 * s, 8 + 5 * s, 8 + 6 * s, 8 + 7 * s);
  const float *w0 = job->weights + o0 * ws;
  for (ptrdiff_t i = 0; i < ins; i++) {
    const float *src = w0 + i * 9;
    __m256 g[9];
    for (int j = 0; j < 8; j++) g[j] = _mm256_loadu_ps(src + j * ws);
    transpose8x8_ps(g);
    g[8] = _mm256_i32gather_ps(src, ninth, 4);
    __m256 uv[16];
    filter_transform_avx2(g, uv);
    for (int xi = 0; xi < 16; xi++) _mm256_storeu_ps(ut + xi * xs + i * cols, uv[xi]);
  }
}
#undef HALF_OF
#endif

static void weights_rows(const vck_winograd *job, ptrdiff_t o0, ptrdiff_t o1, float *u, ptrdiff_t stride,
                         float *buf, int vec) {
#ifdef VCK_X86
  if (!job->transposed && vec) {
    weights_rows_avx2(job, o0, o1, u, stride);
    return;
  }
#endif
  weights_rows_c(job, o0, o1, u, stride, buf);
}

void vck_winograd_weights(const vck_winograd *job, ptrdiff_t o0, ptrdiff_t o1, float *u, float *buf) {
  weights_rows(job, o0, o1, u + o0 * job->cin, job->cout, buf, vector_transforms());
}

// Output channels per block of transformed weights: U [16][rows][cin] within about 256 KB (a multiple of 8 rows,
// the GEMM's register tile on AVX-512).
static ptrdiff_t block_rows(const vck_winograd *job) {
  ptrdiff_t rows = 4096 / (job->cin > 0 ? job->cin : 1) / 8 * 8;
  return rows < 8 ? 8 : rows;
}

// Floats of a block's transformed weights in scratch: none when the job brings them transformed.
static ptrdiff_t block_u_floats(const vck_winograd *job) { return job->u ? 0 : 16 * block_rows(job) * job->cin; }

// Floats of each of the four rows that input_row transforms for a piece of nt tiles: the 2 nt + 2 columns it
// reads, padded to what the vector transform reads (whole blocks of 8 tiles, zeros past the end); also enough for
// output_row's two rows of 2 nt outputs each.
static ptrdiff_t row_floats(ptrdiff_t nt) { return (nt + 7) / 8 * 16 + 2; }

// Floats from one V row (a channel's nt tiles for one xi) to the next: whole vectors of 16, which a last partial
// column tile of the GEMM reads in place (the columns past nt are computed and dropped) instead of from a
// zero-padded copy, and at least 7 past nt, which input_columns_avx2's whole-vector stores may write.
static ptrdiff_t v_stride(ptrdiff_t nt) { return (nt + 7 + 15) / 16 * 16; }

// Output channels per block when the tiles are the GEMM's rows: U^T [cin][cols] of one xi within 16 KB (in L1
// while every panel of tiles meets it), whole 16-wide register tiles.
static ptrdiff_t column_block(const vck_winograd *job) {
  ptrdiff_t cols = 4096 / (job->cin > 0 ? job->cin : 1) / 16 * 16;
  return cols < 16 ? 16 : cols;
}

// Floats of the staging buffer of the tiles-as-rows order: eight channels' V, or eight output channels' U.
static ptrdiff_t stage_floats(const vck_winograd *job, ptrdiff_t tiles) {
  const ptrdiff_t v = 16 * 8 * v_stride(tiles), u = 16 * 8 * job->cin;
  return v > u ? v : u;
}

// The scratch of either order (the order follows the GEMM's ISA, which tests may switch between this call and
// the run): the weights' tap-major rows, four row-transformed rows (or two output rows), a row of zeros, and
// V, a block's U (unless the weights come transformed) and M; or V^T, a block's U^T, M^T, M and the staging;
// then 8 floats that output_tiles_avx2 may read past M.
ptrdiff_t vck_winograd_scratch(const vck_winograd *job, ptrdiff_t tiles) {
  const ptrdiff_t tx = (job->ow + 1) / 2, rows = block_rows(job), cols = column_block(job), cin = job->cin;
  const ptrdiff_t common = 9 * cin + 4 * row_floats(tx) + job->w;
  const ptrdiff_t by_columns = (job->v ? 0 : 16 * cin * v_stride(tiles)) + block_u_floats(job) + 16 * rows * tiles;
  const ptrdiff_t by_rows = 16 * tiles * cin + 16 * cin * cols + 2 * 16 * tiles * cols + stage_floats(job, tiles);
  return common + (by_columns > by_rows ? by_columns : by_rows) + 8;
}

// (B^T p) B for nt tiles of one tile row: v[xi * vstride + t] (xi = 4 r + column) from the four row-transformed
// rows B^T p (d, row r at d + r * ds), tile t reading their columns 2 t .. 2 t + 3.
CLONES static void input_columns_c(const float *d, ptrdiff_t ds, ptrdiff_t nt, float *v, ptrdiff_t vstride) {
  for (int r = 0; r < 4; r++) {
    const float *dr = d + r * ds;
    float *v0 = v + (4 * r) * vstride, *v1 = v0 + vstride, *v2 = v1 + vstride, *v3 = v2 + vstride;
#pragma clang loop vectorize(assume_safety)
    for (ptrdiff_t t = 0; t < nt; t++) {
      float e0 = dr[2 * t], o0 = dr[2 * t + 1], e1 = dr[2 * t + 2], o1 = dr[2 * t + 3];
      v0[t] = e0 - e1;
      v1[t] = o0 + e1;
      v2[t] = e1 - o0;
      v3[t] = o0 - o1;
    }
  }
}

#ifdef VCK_X86
// The even and odd floats of p[0 .. 15], in order.
__attribute__((target("avx2"), always_inline)) static inline void split_even_odd(const float *p, __m256 *even,
                                                                                  __m256 *odd) {
  __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
  *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8));
}

// input_columns_c on blocks of 8 tiles, whose even and odd columns are split in registers (the compiler's loop
// ran scalar on the 7 tiles of a 14-wide row). Reads d rows up to row_floats(nt) floats; the last block stores
// whole vectors too, up to 7 floats past nt (a masked store cost more than the block's arithmetic): into V's
// padding (v_stride), or into the next piece of the row, which is transformed after this one.
__attribute__((target("avx2"))) static void input_columns_avx2(const float *d, ptrdiff_t ds, ptrdiff_t nt, float *v,
                                                               ptrdiff_t vstride) {
  for (int r = 0; r < 4; r++) {
    const float *dr = d + r * ds;
    float *v0 = v + (4 * r) * vstride, *v1 = v0 + vstride, *v2 = v1 + vstride, *v3 = v2 + vstride;
    for (ptrdiff_t t = 0; t < nt; t += 8) {
      __m256 e0, o0, e1, o1;
      split_even_odd(dr + 2 * t, &e0, &o0);
      split_even_odd(dr + 2 * t + 2, &e1, &o1);
      __m256 y0 = _mm256_sub_ps(e0, e1), y1 = _mm256_add_ps(o0, e1), y2 = _mm256_sub_ps(e1, o0),
             y3 = _mm256_sub_ps(o0, o1);
      _mm256_storeu_ps(v0 + t, y0);
      _mm256_storeu_ps(v1 + t, y1);
      _mm256_storeu_ps(v2 + t, y2);
      _mm256_storeu_ps(v3 + t, y3);
    }
  }
}
#endif

// The 16 transformed patches of one channel for tiles [ta, tb) of one tile row: v[xi * vstride + t - ta], from
// the four input rows y0 .. y0 + 3 of `plane` (zero outside the image), tile t reading columns 2 t - pw ...
// 2 t - pw + 3. `zeros`: at least w zero floats, read in place of rows outside the image; no padded copy.
// `d`: 4 row_floats(tb - ta) floats; `vec`: vector_transforms().
CLONES static void input_row(const float *plane, ptrdiff_t h, ptrdiff_t w, ptrdiff_t y0, ptrdiff_t pw, ptrdiff_t ta,
                             ptrdiff_t tb, const float *zeros, float *d, float *v, ptrdiff_t vstride, int vec) {
  const ptrdiff_t nt = tb - ta, width = 2 * nt + 2, ds = row_floats(nt), x0 = 2 * ta - pw;
  // Column k of the padded rows is input column x0 + k; [c0, c1) are inside the image.
  ptrdiff_t c0 = x0 < 0 ? (-x0 < width ? -x0 : width) : 0, c1 = w - x0 < width ? w - x0 : width;
  if (c1 < c0) c1 = c0;
  const float *src[4];
  for (int r = 0; r < 4; r++) {
    ptrdiff_t y = y0 + r;
    src[r] = y < 0 || y >= h ? zeros : plane + y * w + x0 + c0;
  }
  float *d0 = d, *d1 = d + ds, *d2 = d1 + ds, *d3 = d2 + ds;
  // B^T p over the four padded rows p (zero outside [c0, c1)).
  for (ptrdiff_t k = 0; k < c0; k++) d0[k] = d1[k] = d2[k] = d3[k] = 0;
  const float *s0 = src[0] - c0, *s1 = src[1] - c0, *s2 = src[2] - c0, *s3 = src[3] - c0;
#pragma clang loop vectorize(assume_safety)
  for (ptrdiff_t k = c0; k < c1; k++) {
    float a = s0[k], b = s1[k], c = s2[k], e = s3[k];
    d0[k] = a - c;
    d1[k] = b + c;
    d2[k] = c - b;
    d3[k] = b - e;
  }
  for (ptrdiff_t k = c1; k < ds; k++) d0[k] = d1[k] = d2[k] = d3[k] = 0;
#ifdef VCK_X86
  if (vec) {
    input_columns_avx2(d, ds, nt, v, vstride);
    return;
  }
#endif
  input_columns_c(d, ds, nt, v, vstride);
}

// Y = A^T m A for nt tiles of one channel's tile row (m[xi * mstride + t]): output rows y0 and y1 (2 nt each).
CLONES static void output_tiles_c(const float *m, ptrdiff_t mstride, ptrdiff_t nt, float *y0, float *y1) {
  for (ptrdiff_t t = 0; t < nt; t++) {
    float a[4][2];
    for (int r = 0; r < 4; r++) {
      const float *mr = m + 4 * r * mstride + t;
      float m0 = mr[0], m1 = mr[mstride], m2 = mr[2 * mstride], m3 = mr[3 * mstride];
      a[r][0] = m0 + m1 + m2;
      a[r][1] = m1 - m2 - m3;
    }
    y0[2 * t] = a[0][0] + a[1][0] + a[2][0];
    y0[2 * t + 1] = a[0][1] + a[1][1] + a[2][1];
    y1[2 * t] = a[1][0] - a[2][0] - a[3][0];
    y1[2 * t + 1] = a[1][1] - a[2][1] - a[3][1];
  }
}

#ifdef VCK_X86
// output_tiles_c on blocks of 8 tiles, the even and odd output columns interleaved in registers. Reads m up to
// 7 floats past nt (the next channel's rows, or scratch after M) and writes y0 and y1 up to 16 ceil(nt / 8).
__attribute__((target("avx2"))) static void output_tiles_avx2(const float *m, ptrdiff_t mstride, ptrdiff_t nt,
                                                              float *y0, float *y1) {
  for (ptrdiff_t t = 0; t < nt; t += 8) {
    __m256 a[4][2];
    for (int r = 0; r < 4; r++) {
      const float *mr = m + 4 * r * mstride + t;
      __m256 m0 = _mm256_loadu_ps(mr), m1 = _mm256_loadu_ps(mr + mstride), m2 = _mm256_loadu_ps(mr + 2 * mstride),
             m3 = _mm256_loadu_ps(mr + 3 * mstride);
      a[r][0] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
      a[r][1] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    __m256 e0 = _mm256_add_ps(_mm256_add_ps(a[0][0], a[1][0]), a[2][0]);
    __m256 o0 = _mm256_add_ps(_mm256_add_ps(a[0][1], a[1][1]), a[2][1]);
    __m256 e1 = _mm256_sub_ps(_mm256_sub_ps(a[1][0], a[2][0]), a[3][0]);
    __m256 o1 = _mm256_sub_ps(_mm256_sub_ps(a[1][1], a[2][1]), a[3][1]);
    __m256 lo0 = _mm256_unpacklo_ps(e0, o0), hi0 = _mm256_unpackhi_ps(e0, o0);
    __m256 lo1 = _mm256_unpacklo_ps(e1, o1), hi1 = _mm256_unpackhi_ps(e1, o1);
    _mm256_storeu_ps(y0 + 2 * t, _mm256_permute2f128_ps(lo0, hi0, 0x20));
    _mm256_storeu_ps(y0 + 2 * t + 8, _mm256_permute2f128_ps(lo0, hi0, 0x31));
    _mm256_storeu_ps(y1 + 2 * t, _mm256_permute2f128_ps(lo1, hi1, 0x20));
    _mm256_storeu_ps(y1 + 2 * t + 8, _mm256_permute2f128_ps(lo1, hi1, 0x31));
  }
}
#endif

// The output tiles of one channel's tile row, then the epilogue, into the first n columns of output rows oy0 and
// oy0 + 1 (`rows` of them inside the output) at `out` (row stride ow). `buf`: 2 row_floats(nt) floats.
static void output_row(const vck_winograd *job, const float *m, ptrdiff_t mstride, ptrdiff_t nt, ptrdiff_t n,
                       float s, float sh, float *buf, float *out, const float *res, ptrdiff_t rows, int vec) {
  const ptrdiff_t ow = job->ow;
  float *y0 = buf, *y1 = buf + row_floats(nt);
#ifdef VCK_X86
  if (vec) {
    output_tiles_avx2(m, mstride, nt, y0, y1);
  } else
#endif
    output_tiles_c(m, mstride, nt, y0, y1);
  for (ptrdiff_t r = 0; r < rows; r++)
    vck_conv_finish_row(r == 0 ? y0 : y1, out + r * ow, n, s, sh, res ? res + r * ow : NULL, job->activation,
                        job->parameter, job->residual_after);
}

// Runs the statements for the pieces of tile rows that tiles [t0, t1) cover (`at`: index of tile ta of
// row `row` within the chunk).
#define FOR_TILE_PIECES(t0, t1, tx, ...)                                                                  \
  for (ptrdiff_t tile = (t0); tile < (t1);) {                                                             \
    const ptrdiff_t row = tile / (tx), ta = tile - row * (tx);                                            \
    const ptrdiff_t tb = (t1) - tile < (tx) - ta ? ta + ((t1) - tile) : (tx), at = tile - (t0);           \
    __VA_ARGS__                                                                                           \
    tile += tb - ta;                                                                                      \
  }

// The output transform and epilogue of output channels [b0, b1) from their GEMM results m [16][b1 - b0][nt].
static void output_block(const vck_winograd *job, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t b0, ptrdiff_t b1,
                         const float *m, float *buf, int vec) {
  const ptrdiff_t tx = (job->ow + 1) / 2, ty = (job->oh + 1) / 2, nt = t1 - t0, rows = b1 - b0, cout = job->cout;
  FOR_TILE_PIECES(t0, t1, tx, {
    const ptrdiff_t n = row / ty, oy = (row - n * ty) * 2, orows = job->oh - oy < 2 ? job->oh - oy : 2;
    const ptrdiff_t ox = 2 * ta, count = (2 * tb < job->ow ? 2 * tb : job->ow) - ox;
    for (ptrdiff_t co = b0; co < b1; co++) {
      const ptrdiff_t off = (n * cout + co) * job->oh * job->ow + oy * job->ow + ox;
      output_row(job, m + (co - b0) * nt + at, rows * nt, tb - ta, count, job->scale ? job->scale[co] : 1.0f,
                 job->shift ? job->shift[co] : 0.0f, buf, job->y + off, job->residual ? job->residual + off : NULL,
                 orows, vec);
    }
  })
}

// Whether the GEMMs take the tiles as rows and a block of output channels as columns: M^T[xi] = V^T[xi] U^T[xi],
// [nt x cin] x [cin x 16 k]. The AVX2 kernel's 6 x 16 tile then keeps U^T[xi] (16 KB) in L1 and reads 6 floats
// of V^T per step from L2, where with the output channels as rows it reads 16 floats of V per step and, for 49
// tiles (a 14x14 map), computes 4 column tiles for 3.06 of work. The GEMMs alone, single thread: resnet50's
// 256-channel 14x14 blocks 1.64x as fast, its 128-channel 28x28 chunks 1.27-1.39x. Whole convs with the
// transposes, on 2 threads: 1.19-1.22x and 1.10-1.23x; in the network 0.84-0.87x and 0.94x the time. With 64
// input channels (56x56, chunks of 64 tiles) the transposes cost more than the GEMMs save (0.85-0.9x), hence
// TILES_AS_ROWS_MIN_CIN.
enum { TILES_AS_ROWS_MIN_CIN = 128 };
static int tiles_as_rows(const vck_winograd *job) {
  return vck_conv_gemm_isa() == 3 && job->cin >= TILES_AS_ROWS_MIN_CIN;
}

static int run_tiles_as_rows(const vck_winograd *job, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t co0, ptrdiff_t co1,
                             float *scratch, int vec) {
  const ptrdiff_t tx = (job->ow + 1) / 2, ty = (job->oh + 1) / 2, nt = t1 - t0;
  const ptrdiff_t cin = job->cin, cout = job->cout, ub = column_block(job), vs = v_stride(nt);
  float *wbuf = scratch, *buf = wbuf + 9 * cin, *zeros = buf + 4 * row_floats(tx);
  float *vt = zeros + job->w, *ut = vt + 16 * nt * cin, *mt = ut + 16 * cin * ub, *m = mt + 16 * nt * ub;
  float *stage = m + 16 * ub * nt;
  memset(zeros, 0, (size_t)job->w * sizeof(float));
  ptrdiff_t *boff = malloc((size_t)cin * sizeof(ptrdiff_t));
  if (!boff) return -1;
  // Input transform, eight channels at a time: V [xi][8][vs] staged, then V^T[xi][tile - t0][ci].
  for (ptrdiff_t c0 = 0; c0 < cin; c0 += 8) {
    const ptrdiff_t cn = cin - c0 < 8 ? cin - c0 : 8;
    FOR_TILE_PIECES(t0, t1, tx, {
      const ptrdiff_t n = row / ty, oy = (row - n * ty) * 2;
      for (ptrdiff_t c = 0; c < cn; c++)
        input_row(job->x + (n * cin + c0 + c) * job->h * job->w, job->h, job->w, oy - job->ph, job->pw, ta, tb,
                  zeros, buf, stage + c * vs + at, 8 * vs, vec);
    })
    for (int xi = 0; xi < 16; xi++) vck_transpose(stage + xi * 8 * vs, cn, nt, vs, vt + xi * nt * cin + c0, cin);
  }
  int status = 0;
  for (ptrdiff_t b0 = co0; b0 < co1 && status == 0; b0 += ub) {
    const ptrdiff_t b1 = co1 - b0 < ub ? co1 : b0 + ub, cols = b1 - b0;
    // The block's U^T[xi][ci][co - b0]: from the shared transform, or made here eight output channels at a time.
    if (job->u) {
      for (int xi = 0; xi < 16; xi++)
        vck_transpose(job->u + (xi * cout + b0) * cin, cols, cin, cin, ut + xi * cin * cols, cols);
    } else {
      for (ptrdiff_t o = b0; o < b1; o += 8) {
        const ptrdiff_t on = b1 - o < 8 ? b1 - o : 8;
#ifdef VCK_X86
        if (on == 8 && vec && !job->transposed) {
          weights_cols_avx2(job, o, ut + (o - b0), cols);
          continue;
        }
#endif
        weights_rows(job, o, o + on, stage, on, wbuf, vec);
        for (int xi = 0; xi < 16; xi++)
          vck_transpose(stage + xi * on * cin, on, cin, cin, ut + xi * cin * cols + (o - b0), cols);
      }
    }
    for (ptrdiff_t kk = 0; kk < cin; kk++) boff[kk] = kk * cols;
    for (int xi = 0; xi < 16 && status == 0; xi++) {
      vck_conv_gemm g = {0};
      g.a = vt + xi * nt * cin;
      g.lda = cin;
      g.m = nt;
      g.k = cin;
      g.b = ut + xi * cin * cols;
      g.boff = boff;
      g.nq = g.vw = g.ow = g.readable = cols;
      g.c = mt + xi * nt * cols;
      g.ldc = cols;
      g.activation = -1;
      g.oh = 1;
      status = vck_conv_gemm_run(&g, 0, nt, 0, cols);
      // M[xi] for the output transform, which reads each channel's tiles contiguous.
      if (status == 0) vck_transpose(mt + xi * nt * cols, nt, cols, cols, m + xi * cols * nt, nt);
    }
    if (status == 0) output_block(job, t0, t1, b0, b1, m, buf, vec);
  }
  free(boff);
  return status;
}

ptrdiff_t vck_winograd_input_floats(const vck_winograd *job, ptrdiff_t tiles) {
  return tiles_as_rows(job) ? 0 : 16 * job->cin * v_stride(tiles);
}

// V[xi][ci][tile - t0] (rows vs apart) of channels [c0, c1) for tiles [t0, t1); `buf` and `zeros` as in the run.
static void input_tiles(const vck_winograd *job, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t c0, ptrdiff_t c1, float *v,
                        ptrdiff_t vs, float *buf, const float *zeros, int vec) {
  const ptrdiff_t tx = (job->ow + 1) / 2, ty = (job->oh + 1) / 2, cin = job->cin;
  FOR_TILE_PIECES(t0, t1, tx, {
    const ptrdiff_t n = row / ty, oy = (row - n * ty) * 2;
    for (ptrdiff_t ci = c0; ci < c1; ci++)
      input_row(job->x + (n * cin + ci) * job->h * job->w, job->h, job->w, oy - job->ph, job->pw, ta, tb, zeros,
                buf, v + ci * vs + at, cin * vs, vec);
  })
}

void vck_winograd_input(const vck_winograd *job, ptrdiff_t tiles, ptrdiff_t c0, ptrdiff_t c1, float *v, float *buf) {
  const ptrdiff_t tx = (job->ow + 1) / 2;
  float *rows = buf + 9 * job->cin, *zeros = rows + 4 * row_floats(tx);
  memset(zeros, 0, (size_t)job->w * sizeof(float));
  input_tiles(job, 0, tiles, c0, c1, v, v_stride(tiles), rows, zeros, vector_transforms());
}

int vck_winograd_run(const vck_winograd *job, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t co0, ptrdiff_t co1,
                     float *scratch) {
  const ptrdiff_t tx = (job->ow + 1) / 2, nt = t1 - t0;
  const ptrdiff_t cin = job->cin, cout = job->cout, ub = block_rows(job);
  if (nt <= 0 || co0 >= co1) return 0;
  const int vec = vector_transforms();
  if (tiles_as_rows(job)) return run_tiles_as_rows(job, t0, t1, co0, co1, scratch, vec);
  const ptrdiff_t vs = v_stride(nt);
  float *wbuf = scratch, *buf = wbuf + 9 * cin, *zeros = buf + 4 * row_floats(tx);
  // V[xi][ci][tile - t0]: the job's (all its tiles, made beforehand) or transformed here.
  float *own_v = zeros + job->w, *u = own_v + (job->v ? 0 : 16 * cin * vs), *m = u + block_u_floats(job);
  const float *v = job->v ? job->v : own_v;
  memset(zeros, 0, (size_t)job->w * sizeof(float));
  ptrdiff_t *boff = malloc((size_t)cin * sizeof(ptrdiff_t));
  if (!boff) return -1;
  for (ptrdiff_t kk = 0; kk < cin; kk++) boff[kk] = kk * vs;
  if (!job->v) input_tiles(job, t0, t1, 0, cin, own_v, vs, buf, zeros, vec);
  int status = 0;
  for (ptrdiff_t b0 = co0; b0 < co1 && status == 0; b0 += ub) {
    const ptrdiff_t b1 = co1 - b0 < ub ? co1 : b0 + ub, rows = b1 - b0;
    // The block's transformed weights: made here, or rows of the shared ones.
    if (!job->u) weights_rows(job, b0, b1, u, rows, wbuf, vec);
    // M[xi] = U[xi] V[xi]: 16 GEMMs [rows x cin] x [cin x nt].
    for (int xi = 0; xi < 16 && status == 0; xi++) {
      vck_conv_gemm g = {0};
      g.a = job->u ? job->u + (xi * cout + b0) * cin : u + xi * rows * cin;
      g.lda = cin;
      g.m = rows;
      g.k = cin;
      g.b = v + xi * cin * vs;
      g.boff = boff;
      g.nq = g.vw = g.ow = nt;
      g.readable = vs;
      g.c = m + xi * rows * nt;
      g.ldc = nt;
      g.activation = -1;
      g.oh = 1;
      status = vck_conv_gemm_run(&g, 0, rows, 0, nt);
    }
    if (status != 0) break;
    // Output transform and epilogue, channel by channel.
    output_block(job, t0, t1, b0, b1, m, buf, vec);
  }
  free(boff);
  return status;
}
