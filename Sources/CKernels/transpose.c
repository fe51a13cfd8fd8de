// Out-of-place transposes of float blocks, in 16 x 16 tiles held in registers on AVX-512, 8 x 8 on AVX2 (a scalar
// transpose writes one float per store, and a fresh destination costs a read-for-ownership per line it spreads
// over), and strided subsampling of planes (a strided 1x1 conv's input).
#include "ckernels.h"
#include "cpu.h"

#ifdef VCK_X86
// dst[j * ds + i] = src[i * ss + j] for i < rows, j < cols (both at most 16), through masked loads and stores.
__attribute__((target("avx512f"))) static void tile16(const float *src, ptrdiff_t ss, ptrdiff_t rows, ptrdiff_t cols,
                                                      float *dst, ptrdiff_t ds) {
  const __mmask16 cm = (__mmask16)((1u << cols) - 1), rm = (__mmask16)((1u << rows) - 1);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_maskz_loadu_ps(cm, src + i * ss) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // r[4q + s] now holds, in each 128-bit lane l, rows 4q..4q+3 of column 4l + s.
  for (int q = 0; q < 2; q++)
    for (int s = 0; s < 4; s++) {
      t[8 * q + s] = _mm512_shuffle_f32x4(r[8 * q + s], r[8 * q + 4 + s], 0x88);
      t[8 * q + 4 + s] = _mm512_shuffle_f32x4(r[8 * q + s], r[8 * q + 4 + s], 0xdd);
    }
  for (int s = 0; s < 8; s++) {
    r[s] = _mm512_shuffle_f32x4(t[s], t[8 + s], 0x88);
    r[8 + s] = _mm512_shuffle_f32x4(t[s], t[8 + s], 0xdd);
  }
  // r[j] is column j.
  for (int j = 0; j < cols; j++) _mm512_mask_storeu_ps(dst + j * ds, rm, r[j]);
}

// dst[j * ds + i] = src[i * ss + j] for a whole 8 x 8 block, transposed in registers.
__attribute__((target("avx2"))) static void tile8(const float *src, ptrdiff_t ss, float *dst, ptrdiff_t ds) {
  __m256 r[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ss);
  transpose8x8_ps(r);
  for (int j = 0; j < 8; j++) _mm256_storeu_ps(dst + j * ds, r[j]);
}

// -1 until the first call; then the CPU's best code: 4 (AVX-512 tiles), 3 (AVX2 tiles) or 1 (scalar). Tests pick
// another for their thread with vck_transpose_set_isa.
static int best_known = -1;

static int best_level(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") ? 4 : __builtin_cpu_supports("avx2") ? 3 : 1;
}
#endif

// Blocks of 16 x 16, so that both sides stay within a few lines.
static void transpose_scalar(const float *src, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t ss, float *dst,
                             ptrdiff_t ds) {
  for (ptrdiff_t i0 = 0; i0 < rows; i0 += 16)
    for (ptrdiff_t j0 = 0; j0 < cols; j0 += 16) {
      ptrdiff_t i1 = rows - i0 < 16 ? rows : i0 + 16, j1 = cols - j0 < 16 ? cols : j0 + 16;
      for (ptrdiff_t i = i0; i < i1; i++)
        for (ptrdiff_t j = j0; j < j1; j++) dst[j * ds + i] = src[i * ss + j];
    }
}

void vck_transpose(const float *src, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t ss, float *dst, ptrdiff_t ds) {
#ifdef VCK_X86
  int v = vck_thread_isa.transpose ? vck_thread_isa.transpose : __atomic_load_n(&best_known, __ATOMIC_RELAXED);
  if (v < 0) {
    v = best_level();
    __atomic_store_n(&best_known, v, __ATOMIC_RELAXED);
  }
  if (v == 4) {
    for (ptrdiff_t i = 0; i < rows; i += 16)
      for (ptrdiff_t j = 0; j < cols; j += 16)
        tile16(src + i * ss + j, ss, rows - i < 16 ? rows - i : 16, cols - j < 16 ? cols - j : 16, dst + j * ds + i, ds);
    return;
  }
  if (v == 3) {
    // Whole 8 x 8 tiles in registers; the last rows % 8 rows and cols % 8 columns by the scalar loops.
    const ptrdiff_t r8 = rows / 8 * 8, c8 = cols / 8 * 8;
    for (ptrdiff_t i = 0; i < r8; i += 8)
      for (ptrdiff_t j = 0; j < c8; j += 8) tile8(src + i * ss + j, ss, dst + j * ds + i, ds);
    transpose_scalar(src + r8 * ss, rows - r8, cols, ss, dst + r8, ds);
    transpose_scalar(src + c8, r8, cols - c8, ss, dst + c8 * ds, ds);
    return;
  }
#endif
  transpose_scalar(src, rows, cols, ss, dst, ds);
}

int vck_transpose_set_isa(int level) {
#ifdef VCK_X86
  int best = best_level();
#else
  int best = 1;
#endif
  if (level != 0 && ((level != 1 && level != 3 && level != 4) || level > best)) return -1;
  vck_thread_isa.transpose = level;
  return 0;
}

CLONES void vck_subsample(const float *src, ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w, ptrdiff_t sh, ptrdiff_t sw,
                          ptrdiff_t oh, ptrdiff_t ow, float *dst) {
  for (ptrdiff_t p = 0; p < planes; p++) {
    for (ptrdiff_t oy = 0; oy < oh; oy++, dst += ow) {
      const float *row = src + p * h * w + oy * sh * w;
      if (sw == 2) {  // a constant stride, which the compiler vectorizes with shuffles
        for (ptrdiff_t ox = 0; ox < ow; ox++) dst[ox] = row[2 * ox];
      } else {
        for (ptrdiff_t ox = 0; ox < ow; ox++) dst[ox] = row[ox * sw];
      }
    }
  }
}
