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
#include "ckernels.h"
#include "cpu.h"
#include <stdlib.h>
#include <string.h>

// u[xi * stride + o - o0][i] (xi = 4 * row + column of G g G^T) for output channels [o0, o1) of the conv with
// filters g(o, i) = w[o][i] (3 x 3), or, transposed, g(o, i) = w[i][o] rotated by 180 degrees (the input
// gradient's conv). Each output channel's filters are first transposed to tap-major rows g[tap][i] (`buf`:
// 9 * ins floats), so that the transform runs along contiguous input channels.
CLONES static void weights_rows(const vck_winograd *job, ptrdiff_t o0, ptrdiff_t o1, float *u, ptrdiff_t stride,
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

void vck_winograd_weights(const vck_winograd *job, ptrdiff_t o0, ptrdiff_t o1, float *u, float *buf) {
  weights_rows(job, o0, o1, u + o0 * job->cin, job->cout, buf);
}

// Output channels per block of transformed weights: U [16][rows][cin] within about 256 KB (a multiple of 8 rows,
// the GEMM's register tile on AVX-512).
static ptrdiff_t block_rows(const vck_winograd *job) {
  ptrdiff_t rows = 4096 / (job->cin > 0 ? job->cin : 1) / 8 * 8;
  return rows < 8 ? 8 : rows;
}

// Floats of a block's transformed weights in scratch: none when the job brings them transformed.
static ptrdiff_t block_u_floats(const vck_winograd *job) { return job->u ? 0 : 16 * block_rows(job) * job->cin; }

ptrdiff_t vck_winograd_scratch(const vck_winograd *job, ptrdiff_t tiles) {
  const ptrdiff_t tx = (job->ow + 1) / 2, width = 2 * tx + 2, rows = block_rows(job);
  // V, a block's U (unless the weights come transformed) and M, the weights' tap-major rows, four row-transformed
  // rows (or two output rows), a row of zeros.
  return 16 * job->cin * ((tiles + 15) / 16 * 16) + block_u_floats(job) + 16 * rows * tiles + 9 * job->cin +
         4 * width + job->w;
}

// The 16 transformed patches of one channel for tiles [ta, tb) of one tile row: v[xi * vstride + t - ta], from
// the four input rows y0 .. y0 + 3 of `plane` (zero outside the image), tile t reading columns 2 t - pw ...
// 2 t - pw + 3. `zeros`: at least w zero floats, read in place of rows outside the image; no padded copy.
CLONES static void input_row(const float *plane, ptrdiff_t h, ptrdiff_t w, ptrdiff_t y0,
                                                         ptrdiff_t pw, ptrdiff_t ta, ptrdiff_t tb, const float *zeros,
                                                         float *d, float *v, ptrdiff_t vstride) {
  const ptrdiff_t nt = tb - ta, width = 2 * nt + 2, x0 = 2 * ta - pw;
  // Column k of the padded rows is input column x0 + k; [c0, c1) are inside the image.
  ptrdiff_t c0 = x0 < 0 ? (-x0 < width ? -x0 : width) : 0, c1 = w - x0 < width ? w - x0 : width;
  if (c1 < c0) c1 = c0;
  const float *src[4];
  for (int r = 0; r < 4; r++) {
    ptrdiff_t y = y0 + r;
    src[r] = y < 0 || y >= h ? zeros : plane + y * w + x0 + c0;
  }
  float *d0 = d, *d1 = d + width, *d2 = d1 + width, *d3 = d2 + width;
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
  for (ptrdiff_t k = c1; k < width; k++) d0[k] = d1[k] = d2[k] = d3[k] = 0;
  // (B^T p) B: columns 2t .. 2t + 3 of each row.
  for (int r = 0; r < 4; r++) {
    const float *dr = d + r * width;
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

// Y = A^T m A for nt tiles of one channel's tile row (m[xi * mstride + t]), then the epilogue, into the first n
// columns of output rows oy0 and oy0 + 1 (`rows` of them inside the output) at `out` (row stride ow).
CLONES static void output_row(const vck_winograd *job, const float *m, ptrdiff_t mstride, ptrdiff_t nt, ptrdiff_t n,
                              float s, float sh, float *buf, float *out, const float *res, ptrdiff_t rows) {
  const ptrdiff_t ow = job->ow;
  float *y0 = buf, *y1 = buf + 2 * nt;
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

int vck_winograd_run(const vck_winograd *job, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t co0, ptrdiff_t co1,
                     float *scratch) {
  const ptrdiff_t tx = (job->ow + 1) / 2, ty = (job->oh + 1) / 2, nt = t1 - t0;
  const ptrdiff_t cin = job->cin, cout = job->cout, ub = block_rows(job);
  if (nt <= 0 || co0 >= co1) return 0;
  // V's rows are padded to whole vectors of 16, which a last partial column tile reads in place (the columns past
  // nt are computed and dropped) instead of from a zero-padded copy.
  const ptrdiff_t vs = (nt + 15) / 16 * 16;
  float *v = scratch, *u = v + 16 * cin * vs, *m = u + block_u_floats(job), *wbuf = m + 16 * ub * nt;
  float *buf = wbuf + 9 * cin, *zeros = buf + 4 * (2 * tx + 2);
  memset(zeros, 0, (size_t)job->w * sizeof(float));
  ptrdiff_t *boff = malloc((size_t)cin * sizeof(ptrdiff_t));
  if (!boff) return -1;
  for (ptrdiff_t kk = 0; kk < cin; kk++) boff[kk] = kk * vs;
  // Input transform: V[xi][ci][tile - t0].
  FOR_TILE_PIECES(t0, t1, tx, {
    const ptrdiff_t n = row / ty, oy = (row - n * ty) * 2;
    for (ptrdiff_t ci = 0; ci < cin; ci++)
      input_row(job->x + (n * cin + ci) * job->h * job->w, job->h, job->w, oy - job->ph, job->pw, ta, tb, zeros,
                buf, v + ci * vs + at, cin * vs);
  })
  int status = 0;
  for (ptrdiff_t b0 = co0; b0 < co1 && status == 0; b0 += ub) {
    const ptrdiff_t b1 = co1 - b0 < ub ? co1 : b0 + ub, rows = b1 - b0;
    // The block's transformed weights: made here, or rows of the shared ones.
    if (!job->u) weights_rows(job, b0, b1, u, rows, wbuf);
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
    FOR_TILE_PIECES(t0, t1, tx, {
      const ptrdiff_t n = row / ty, oy = (row - n * ty) * 2, orows = job->oh - oy < 2 ? job->oh - oy : 2;
      const ptrdiff_t ox = 2 * ta, count = (2 * tb < job->ow ? 2 * tb : job->ow) - ox;
      for (ptrdiff_t co = b0; co < b1; co++) {
        const ptrdiff_t off = (n * cout + co) * job->oh * job->ow + oy * job->ow + ox;
        output_row(job, m + (co - b0) * nt + at, rows * nt, tb - ta, count, job->scale ? job->scale[co] : 1.0f,
                   job->shift ? job->shift[co] : 0.0f, buf, job->y + off,
                   job->residual ? job->residual + off : NULL, orows);
      }
    })
  }
  free(boff);
  return status;
}
