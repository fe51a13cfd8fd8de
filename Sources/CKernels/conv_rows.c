// Convolutions of a few input channels (the networks' stems: 3 -> 32 at 3x3, 3 -> 64 at 7x7, stride 2) with
// output pixels as the register tile's rows and output channels as its vectors. The conv GEMM puts channels in
// rows and pixels in vectors; for a stem its k (27 to 147 taps) is too short to pay for a tile's fixed costs, and
// its strided, padded pixels go through a phase-split copy and, where rows end mid-tile, a tile buffer. Here each
// tap of six output pixels is a broadcast from the zero-padded input in place, met by 16 channels of transposed
// weights; an output row's tiles go to a pixel-major buffer through the conv GEMM's epilogue (on the lanes where
// its operations allow, else on the rows afterwards) and are transposed into the channel planes. Each output is
// the same chain of multiply-adds, in the same tap order, as in the conv GEMM, and the same epilogue operations:
// the same bits. On AVX-512 the tile is eight pixels by 32 channels where more than 16 channels remain.
#include "ckernels.h"
#include "cpu.h"
#include <string.h>

enum { ROWS_MR = 6, ROWS_NR = 16, WIDE_MR = 8, WIDE_NR = 32 };

#ifdef VCK_X86
// MR output pixels (window origins px[0 .. MR)) by 2 W channels (weights w, row kk at w + kk * ldw), summed over the
// k taps (tap kk at px[j] + koff[kk]), stored pixel-major at out (row stride 2 W): as they are, or, with the 2 W
// channels' scale and shift `st` (2 W scales, then 2 W shifts), as sum * scale + shift, then max(0, .) with `relu`
// (the conv GEMM's epilogue operations on the lanes). The pixels' accumulators are named (PIXELS lists them), so
// that they stay in registers; `x * w + c` contracts to the multiply-add the conv GEMM's kernels make.
#define ROWS_DECL(j) const float *p##j = px[j]; vt c##j##0 = zero, c##j##1 = zero;
#define ROWS_TAP(j)                         \
  {                                         \
    const vt xv = p##j[o] - zero; /* a splat (x - 0 is x, unlike 0 + x for x = -0) */ \
    c##j##0 = xv * w0 + c##j##0;            \
    c##j##1 = xv * w1 + c##j##1;            \
  }
#define ROWS_SUMS(j) c##j##0, c##j##1,
#define DEFINE_ROWS_TILE(NAME, TARGET, VT, VI, W, PIXELS)                                                      \
  __attribute__((target(TARGET))) static void NAME(ptrdiff_t k, const float *const *px, const ptrdiff_t *koff,  \
                                                   const float *w, ptrdiff_t ldw, float *out, const float *st,  \
                                                   int relu) {                                                  \
    typedef VT vt;                                                                                             \
    const vt zero = {0};                                                                                       \
    PIXELS(ROWS_DECL)                                                                                          \
    for (ptrdiff_t kk = 0; kk < k; kk++, w += ldw) {                                                           \
      const ptrdiff_t o = koff[kk];                                                                            \
      vt w0, w1;                                                                                               \
      memcpy(&w0, w, sizeof w0);                                                                               \
      memcpy(&w1, w + W, sizeof w1);                                                                           \
      PIXELS(ROWS_TAP)                                                                                         \
    }                                                                                                          \
    vt sums[] = {PIXELS(ROWS_SUMS)};                                                                           \
    const int n = (int)(sizeof sums / sizeof sums[0]);                                                         \
    if (st) {                                                                                                  \
      vt s[2], t[2];                                                                                           \
      memcpy(s, st, sizeof s);                                                                                 \
      memcpy(t, st + 2 * W, sizeof t);                                                                         \
      for (int i = 0; i < n; i++) {                                                                            \
        sums[i] = sums[i] * s[i % 2] + t[i % 2];                                                               \
        if (relu) sums[i] = (vt)((VI)sums[i] & ~(sums[i] < zero)); /* 0 where negative; keeps a NaN */         \
      }                                                                                                        \
    }                                                                                                          \
    memcpy(out, sums, sizeof sums);                                                                            \
  }

typedef float rows_v8 __attribute__((vector_size(32), aligned(4)));
typedef float rows_v16 __attribute__((vector_size(64), aligned(4)));
typedef int rows_i8 __attribute__((vector_size(32), aligned(4)));
typedef int rows_i16 __attribute__((vector_size(64), aligned(4)));
#define SIX_PIXELS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define EIGHT_PIXELS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
// AVX2: six pixels by 16 channels (12 accumulators of 16 registers).
DEFINE_ROWS_TILE(rows_tile, "avx2,fma", rows_v8, rows_i8, 8, SIX_PIXELS)
// AVX-512: eight pixels by 32 channels (16 accumulators; eight broadcasts and two weight loads per 16
// multiply-adds, where the AVX2 tile does six and two per 12 at half the width). ResNet's stem on a Zen 4, which
// splits each AVX-512 multiply-add in two: 1.02-1.06x as fast (at its multiply-add peak; wider gains where the
// AVX-512 units are whole).
DEFINE_ROWS_TILE(rows_tile_v4, "avx512f,fma", rows_v16, rows_i16, 16, EIGHT_PIXELS)
#endif

// Whether the epilogue runs on the tiles' lanes (scale, shift, ReLU) and the row buffer (the activations that the
// conv GEMM's row epilogue leaves to vck_activation): no residual, and no activation whose row epilogue has code of
// its own (ReLU6, LeakyReLU, the hard ones); those, and the residual, go through vck_conv_finish_row afterwards.
static int epilogue_in_tiles(const vck_conv_rows *job) {
  const int act = job->activation;
  return !job->residual && act != VCK_RELU6 && act != VCK_LEAKY_RELU && act != VCK_HARD_SWISH &&
         act != VCK_HARD_SIGMOID;
}

#ifdef VCK_X86
// The channel blocks of an output row: 32 channels on the AVX-512 tile where more than 16 remain (the conv GEMM's
// ISA choice of the calling thread, which tests switch), else 16 on the AVX2 one. Their widths sum to the
// channels rounded up to 16.
static ptrdiff_t block_width(const vck_conv_rows *job, ptrdiff_t c0, int avx512) {
  return avx512 && job->cout - c0 > ROWS_NR ? WIDE_NR : ROWS_NR;
}

// Output row oy's channels [c0, c0 + nr) pixel-major at `out` ([ow][nr]; the lanes past the channels hold the
// padding weights' zeros), through the epilogue when epilogue_in_tiles; `st` receives the block's scales and
// shifts (nr of each, padded with 1 and 0).
static void row_block(const vck_conv_rows *job, ptrdiff_t oy, ptrdiff_t c0, ptrdiff_t nr, int in_tiles, float *st,
                      float *out) {
  const ptrdiff_t ow = job->ow, channels = job->cout - c0 < nr ? job->cout - c0 : nr;
  const int wide = nr == WIDE_NR, act = job->activation;
  const ptrdiff_t mr = wide ? WIDE_MR : ROWS_MR, tiles = (ow + mr - 1) / mr;
  const float *row = job->x + oy * job->sh * job->wp;
  for (ptrdiff_t c = 0; c < nr; c++) {
    st[c] = c < channels && job->scale ? job->scale[c0 + c] : 1.0f;
    st[nr + c] = c < channels && job->shift ? job->shift[c0 + c] : 0.0f;
  }
  for (ptrdiff_t t = 0; t < tiles; t++) {
    const float *px[WIDE_MR];
    for (ptrdiff_t j = 0; j < mr; j++) {
      const ptrdiff_t ox = t * mr + j < ow ? t * mr + j : ow - 1;  // the last tile repeats a pixel
      px[j] = row + ox * job->sw;
    }
    // The last tile's repeated pixels land past the row (the caller's buffer has room for a whole tile).
    if (wide)
      rows_tile_v4(job->k, px, job->koff, job->wt + c0, job->cp, out + t * mr * nr, in_tiles ? st : NULL,
                   act == VCK_RELU);
    else
      rows_tile(job->k, px, job->koff, job->wt + c0, job->cp, out + t * mr * nr, in_tiles ? st : NULL,
                act == VCK_RELU);
  }
  if (in_tiles && act != -1 && act != VCK_RELU) vck_activation(act, out, out, ow * nr);
}
#endif

int vck_conv_rows_run(const vck_conv_rows *job, ptrdiff_t oy0, ptrdiff_t oy1, float *scratch) {
#ifdef VCK_X86
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return -1;
  const ptrdiff_t ow = job->ow, ohw = job->oh * ow;
  const int in_tiles = epilogue_in_tiles(job), act = job->activation, avx512 = vck_conv_gemm_isa() == 4;
  for (ptrdiff_t oy = oy0; oy < oy1; oy++) {
    for (ptrdiff_t c0 = 0, nr; c0 < job->cout; c0 += nr) {
      nr = block_width(job, c0, avx512);
      const ptrdiff_t channels = job->cout - c0 < nr ? job->cout - c0 : nr;
      float st[2 * WIDE_NR];
      row_block(job, oy, c0, nr, in_tiles, st, scratch);
      float *y = job->y + c0 * ohw + oy * ow;
      vck_transpose(scratch, ow, channels, nr, y, ohw);
      if (in_tiles) continue;
      for (ptrdiff_t c = 0; c < channels; c++) {
        const ptrdiff_t ch = c0 + c;
        vck_conv_finish_row(y + c * ohw, y + c * ohw, ow, st[c], st[nr + c],
                            job->residual ? job->residual + ch * ohw + oy * ow : NULL, act, job->parameter,
                            job->residual_after);
      }
    }
  }
  return 0;
#else
  (void)job;
  (void)oy0;
  (void)oy1;
  (void)scratch;
  return -1;
#endif
}

// Floats of one conv row in the pooling ring: every channel block of ow pixels, with room for a last tile's
// repeated pixels.
static ptrdiff_t ring_row_floats(ptrdiff_t cout, ptrdiff_t ow) { return (ow + WIDE_MR) * ((cout + 15) / 16 * 16); }

ptrdiff_t vck_conv_rows_pool_scratch(ptrdiff_t cout, ptrdiff_t ow, const vck_pool_window *pool) {
  return pool->kh * ring_row_floats(cout, ow) + pool->ow * WIDE_NR + 2 * WIDE_NR;
}

// One pooled row of a channel block: pooled[px][c] = the max over the window's conv rows lines[0 .. rows) (each
// [ow][nr], channel-minor) and its in-map columns, starting from the first element and taking a larger one or a
// NaN (max_pool2d's rule: a NaN in the window wins). Channels are the vector lanes.
CLONES static void pool_block(const float *const *lines, ptrdiff_t rows, ptrdiff_t ow, ptrdiff_t nr,
                              const vck_pool_window *pool, float *restrict pooled) {
  for (ptrdiff_t px = 0; px < pool->ow; px++) {
    const ptrdiff_t left = px * pool->sw - pool->pw;
    const ptrdiff_t x0 = left < 0 ? 0 : left, x1 = left + pool->kw < ow ? left + pool->kw : ow;
    for (ptrdiff_t c0 = 0; c0 < nr; c0 += 16) {  // 16 channels at a time, in registers
      float m[16];
      for (int c = 0; c < 16; c++) m[c] = lines[0][x0 * nr + c0 + c];
      for (ptrdiff_t r = 0; r < rows; r++)
        for (ptrdiff_t x = r == 0 ? x0 + 1 : x0; x < x1; x++) {
          const float *restrict v = lines[r] + x * nr + c0;
          for (int c = 0; c < 16; c++) m[c] = v[c] > m[c] || v[c] != v[c] ? v[c] : m[c];
        }
      for (int c = 0; c < 16; c++) pooled[px * nr + c0 + c] = m[c];
    }
  }
}

int vck_conv_rows_pool_run(const vck_conv_rows *job, const vck_pool_window *pool, ptrdiff_t py0, ptrdiff_t py1,
                           ptrdiff_t *tags, float *scratch) {
#ifdef VCK_X86
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !epilogue_in_tiles(job) || pool->kh < 1 ||
      pool->kh > 4)
    return -1;
  const ptrdiff_t ow = job->ow, row = ring_row_floats(job->cout, ow);
  const ptrdiff_t pw = pool->ow, pohw = pool->oh * pool->ow;
  const int avx512 = vck_conv_gemm_isa() == 4;
  float *ring = scratch, *pooled = ring + pool->kh * row, *st = pooled + pw * WIDE_NR;
  for (ptrdiff_t py = py0; py < py1; py++) {
    // The window's conv rows [r0, r1) (within the map), each in ring slot r % kh: made unless already there.
    const ptrdiff_t top = py * pool->sh - pool->ph;
    const ptrdiff_t r0 = top < 0 ? 0 : top, r1 = top + pool->kh < job->oh ? top + pool->kh : job->oh;
    for (ptrdiff_t r = r0; r < r1; r++) {
      float *slot = ring + (r % pool->kh) * row;
      if (tags[r % pool->kh] == r) continue;
      for (ptrdiff_t c0 = 0, nr; c0 < job->cout; c0 += nr) {
        nr = block_width(job, c0, avx512);
        row_block(job, r, c0, nr, 1, st, slot + c0 * (ow + WIDE_MR));
      }
      tags[r % pool->kh] = r;
    }
    for (ptrdiff_t c0 = 0, nr; c0 < job->cout; c0 += nr) {
      nr = block_width(job, c0, avx512);
      const ptrdiff_t channels = job->cout - c0 < nr ? job->cout - c0 : nr;
      const float *lines[4];
      for (ptrdiff_t r = r0; r < r1; r++) lines[r - r0] = ring + (r % pool->kh) * row + c0 * (ow + WIDE_MR);
      pool_block(lines, r1 - r0, ow, nr, pool, pooled);
      vck_transpose(pooled, pw, channels, nr, job->y + c0 * pohw + py * pw, pohw);
    }
  }
  return 0;
#else
  (void)job;
  (void)pool;
  (void)py0;
  (void)py1;
  (void)tags;
  (void)scratch;
  return -1;
#endif
}
