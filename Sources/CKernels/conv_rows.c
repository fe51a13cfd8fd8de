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
// Six output pixels (window origins px[0..5]) by 16 channels (weights w, row kk at w + kk * ldw), summed over the
// k taps (tap kk at px[j] + koff[kk]), stored pixel-major at out (row stride ROWS_NR): as they are, or, with the
// 16 channels' scale and shift `st` (scale, then shift), as sum * scale + shift, then max(0, .) with `relu` (the
// conv GEMM's epilogue operations on the lanes).
__attribute__((target("avx2,fma"))) static void rows_tile(ptrdiff_t k, const float *const *px, const ptrdiff_t *koff,
                                                          const float *w, ptrdiff_t ldw, float *out, const float *st,
                                                          int relu) {
  const float *p0 = px[0], *p1 = px[1], *p2 = px[2], *p3 = px[3], *p4 = px[4], *p5 = px[5];
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (ptrdiff_t kk = 0; kk < k; kk++, w += ldw) {
    const ptrdiff_t o = koff[kk];
    const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#define PIXEL(j)                                        \
  {                                                     \
    const __m256 xv = _mm256_broadcast_ss(p##j + o);    \
    c##j##0 = _mm256_fmadd_ps(xv, w0, c##j##0);         \
    c##j##1 = _mm256_fmadd_ps(xv, w1, c##j##1);         \
  }
    PIXEL(0) PIXEL(1) PIXEL(2) PIXEL(3) PIXEL(4) PIXEL(5)
#undef PIXEL
  }
  __m256 sums[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
  if (st) {
    const __m256 s[2] = {_mm256_loadu_ps(st), _mm256_loadu_ps(st + 8)};
    const __m256 t[2] = {_mm256_loadu_ps(st + ROWS_NR), _mm256_loadu_ps(st + ROWS_NR + 8)};
    for (int i = 0; i < 12; i++) {
      sums[i] = _mm256_fmadd_ps(sums[i], s[i % 2], t[i % 2]);
      if (relu) sums[i] = _mm256_max_ps(_mm256_setzero_ps(), sums[i]);  // keeps a NaN, as the epilogue's select
    }
  }
  for (int i = 0; i < 12; i++) _mm256_storeu_ps(out + 8 * i, sums[i]);
}

// rows_tile on AVX-512: eight pixels by 32 channels (16 accumulators; eight broadcasts and two weight loads per
// 16 multiply-adds, where the 6 x 16 AVX2 tile does six and two per 12 at half the width). ResNet's stem on a
// Zen 4, which splits each AVX-512 multiply-add in two: 1.02-1.06x as fast (at its multiply-add peak; wider gains
// where the AVX-512 units are whole). `st`: 32 scales, then 32 shifts.
__attribute__((target("avx512f"))) static void rows_tile_v4(ptrdiff_t k, const float *const *px, const ptrdiff_t *koff,
                                                            const float *w, ptrdiff_t ldw, float *out, const float *st,
                                                            int relu) {
  const float *p0 = px[0], *p1 = px[1], *p2 = px[2], *p3 = px[3], *p4 = px[4], *p5 = px[5], *p6 = px[6], *p7 = px[7];
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  for (ptrdiff_t kk = 0; kk < k; kk++, w += ldw) {
    const ptrdiff_t o = koff[kk];
    const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
#define PIXEL(j)                                        \
  {                                                     \
    const __m512 xv = _mm512_set1_ps(p##j[o]);          \
    c##j##0 = _mm512_fmadd_ps(xv, w0, c##j##0);         \
    c##j##1 = _mm512_fmadd_ps(xv, w1, c##j##1);         \
  }
    PIXEL(0) PIXEL(1) PIXEL(2) PIXEL(3) PIXEL(4) PIXEL(5) PIXEL(6) PIXEL(7)
#undef PIXEL
  }
  __m512 sums[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
  if (st) {
    const __m512 s[2] = {_mm512_loadu_ps(st), _mm512_loadu_ps(st + 16)};
    const __m512 t[2] = {_mm512_loadu_ps(st + WIDE_NR), _mm512_loadu_ps(st + WIDE_NR + 16)};
    for (int i = 0; i < 16; i++) {
      sums[i] = _mm512_fmadd_ps(sums[i], s[i % 2], t[i % 2]);
      if (relu) sums[i] = _mm512_max_ps(_mm512_setzero_ps(), sums[i]);  // keeps a NaN, as the epilogue's select
    }
  }
  for (int i = 0; i < 16; i++) _mm512_storeu_ps(out + 16 * i, sums[i]);
}
#endif

// Whether the epilogue runs on the tiles' lanes (scale, shift, ReLU) and the row buffer (the activations that the
// conv GEMM's row epilogue leaves to vck_activation): no residual, and no activation whose row epilogue has code of
// its own (ReLU6, LeakyReLU, the hard ones); those, and the residual, go through vck_conv_finish_row afterwards.
static int epilogue_in_tiles(const vck_conv_rows *job) {
  const int act = job->activation;
  return !job->residual && act != VCK_RELU6 && act != VCK_LEAKY_RELU && act != VCK_HARD_SWISH &&
         act != VCK_HARD_SIGMOID;
}

int vck_conv_rows_run(const vck_conv_rows *job, ptrdiff_t oy0, ptrdiff_t oy1, float *scratch) {
#ifdef VCK_X86
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return -1;
  const ptrdiff_t ow = job->ow, ohw = job->oh * ow;
  const int in_tiles = epilogue_in_tiles(job), act = job->activation;
  // Blocks of 32 channels on the AVX-512 tile where more than 16 remain (the conv GEMM's ISA choice of the
  // calling thread, which tests switch), else of 16 on the AVX2 one.
  const int avx512 = vck_conv_gemm_isa() == 4;
  for (ptrdiff_t oy = oy0; oy < oy1; oy++) {
    const float *row = job->x + oy * job->sh * job->wp;
    for (ptrdiff_t c0 = 0, nr; c0 < job->cout; c0 += nr) {
      const int wide = avx512 && job->cout - c0 > ROWS_NR;
      nr = wide ? WIDE_NR : ROWS_NR;
      const ptrdiff_t mr = wide ? WIDE_MR : ROWS_MR, tiles = (ow + mr - 1) / mr;
      const ptrdiff_t channels = job->cout - c0 < nr ? job->cout - c0 : nr;
      float st[2 * WIDE_NR];  // the block's nr scales, then its nr shifts, padded with 1 and 0
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
        if (wide)
          rows_tile_v4(job->k, px, job->koff, job->wt + c0, job->cp, scratch + t * mr * nr, in_tiles ? st : NULL,
                       act == VCK_RELU);
        else
          rows_tile(job->k, px, job->koff, job->wt + c0, job->cp, scratch + t * mr * nr, in_tiles ? st : NULL,
                    act == VCK_RELU);
      }
      if (in_tiles && act != -1 && act != VCK_RELU) vck_activation(act, scratch, scratch, ow * nr);
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
