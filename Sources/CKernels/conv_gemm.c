// The GEMM behind VisionCore's convolutions: register-tiled micro-kernels that read the weights in place
// (row-major, no packing: they are re-read from cache for every column tile, and caching a packed copy would have
// to track every write to a parameter) and the input rows through an offset table, so that a convolution needs no
// im2col: row (ci, ky, kx) of the implicit column matrix is the padded input plane shifted by the tap's offset.
// The epilogue (scale, shift, residual, activation) is applied to each tile while it is in registers or L1.
#include "ckernels.h"
#include "activation_math.h"
#include "cpu.h"
#include <stdlib.h>
#include <string.h>

// Where a micro-kernel stores a tile whose columns are contiguous outputs: straight to C with the epilogue
// applied in registers (rows past `rows` are not stored). Pointers are already offset to the tile's first row.
// `next_a`: the first of the next panel's 8 weight rows (next_lda apart), which the kernel asks for while its
// products run, or NULL.
typedef struct {
  float *c;
  ptrdiff_t ldc, rows;
  const float *scale, *shift, *residual;
  int activation, after;
  float parameter;
  const float *next_a;
  ptrdiff_t next_lda;
} direct_store;

// The narrow last tiles on AVX-512: HALF_NR columns for the half kernel, at most COLUMNS_NR for the columns kernel.
enum { HALF_NR = 8, COLUMNS_NR = 4 };

// act(y) in registers for the piecewise-linear activations (NaN propagates as in the scalar definitions); the
// others are applied to the stored row afterwards. SEL picks a where the mask m is set, else b.
#define SEL(VT, VI, m, a, b) ((VT)((((VI)(a)) & (m)) | (((VI)(b)) & ~(m))))
#define ACTIVATE(VT, VI, y, act, p)                                                                       \
  do {                                                                                                    \
    const VT zero_ = (VT){0}, six_ = zero_ + 6.0f;                                                        \
    if ((act) == VCK_RELU) {                                                                              \
      y = SEL(VT, VI, y < zero_, zero_, y);                                                               \
    } else if ((act) == VCK_RELU6) {                                                                      \
      y = SEL(VT, VI, y < zero_, zero_, y);                                                               \
      y = SEL(VT, VI, y > six_, six_, y);                                                                 \
    } else if ((act) == VCK_LEAKY_RELU) {                                                                 \
      y = SEL(VT, VI, y < zero_, y * (p), y);                                                             \
    } else if ((act) == VCK_HARD_SWISH || (act) == VCK_HARD_SIGMOID) {                                    \
      VT c_ = y + 3.0f;                                                                                   \
      c_ = SEL(VT, VI, c_ < zero_, zero_, c_);                                                            \
      c_ = SEL(VT, VI, c_ > six_, six_, c_);                                                              \
      y = (act) == VCK_HARD_SWISH ? y * c_ * (1.0f / 6) : c_ * (1.0f / 6);                                \
    }                                                                                                     \
  } while (0)

INLINE int inline_activation(int act) {
  return act < 0 || act == VCK_RELU || act == VCK_RELU6 || act == VCK_LEAKY_RELU || act == VCK_HARD_SWISH ||
         act == VCK_HARD_SIGMOID;
}

// One micro-kernel per ISA: an MR x (NV * VL) block of C accumulated over k in registers, starting from zero or
// from the partial sums at `init` (tile layout), then written to `tile` (row stride NR) or, with `ds`, stored
// through the epilogue. `arow` holds the MR weight rows; row kk of
// B is at b + boff[kk].
#define DEFINE_MICRO(NAME, ATTR, VT, VI, VL, MR, NV, VACT)                                                \
  ATTR static void NAME(ptrdiff_t k, const float *const *arow, const float *b, const ptrdiff_t *boff,    \
                        const float *init, float *tile, const direct_store *ds) {                         \
    const float *a[MR];                                                                                   \
    for (int r = 0; r < MR; r++) a[r] = arow[r];                                                          \
    VT acc[MR][NV];                                                                                       \
    for (int r = 0; r < MR; r++)                                                                          \
      for (int v = 0; v < NV; v++) {                                                                      \
        acc[r][v] = (VT){0};                                                                              \
        if (init) memcpy(&acc[r][v], init + r * (NV * VL) + v * VL, sizeof(VT));                          \
      }                                                                                                   \
    for (ptrdiff_t kk = 0; kk < k; kk++) {                                                                \
      const float *bp = b + boff[kk];                                                                     \
      VT bv[NV];                                                                                          \
      for (int v = 0; v < NV; v++) memcpy(&bv[v], bp + v * VL, sizeof(VT));                               \
      for (int r = 0; r < MR; r++) {                                                                      \
        VT av = a[r][kk] - (VT){0}; /* a splat (x - 0 is x, unlike 0 + x for x = -0) */                  \
        for (int v = 0; v < NV; v++) acc[r][v] += av * bv[v];                                             \
      }                                                                                                   \
    }                                                                                                     \
    if (!ds) {                                                                                            \
      for (int r = 0; r < MR; r++)                                                                        \
        for (int v = 0; v < NV; v++) memcpy(tile + r * (NV * VL) + v * VL, &acc[r][v], sizeof(VT));       \
      return;                                                                                             \
    }                                                                                                     \
    const int act = ds->activation;                                                                       \
    for (int r = 0; r < MR; r++) {                                                                        \
      if (r >= ds->rows) break;                                                                           \
      const VT s = (VT){0} + (ds->scale ? ds->scale[r] : 1.0f), t = (VT){0} + (ds->shift ? ds->shift[r] : 0.0f); \
      float *o = ds->c + r * ds->ldc;                                                                     \
      const float *res = ds->residual ? ds->residual + r * ds->ldc : NULL;                                \
      int done = 1;                                                                                       \
      for (int v = 0; v < NV; v++) {                                                                      \
        VT y = acc[r][v] * s + t, rv = (VT){0};                                                           \
        if (res) memcpy(&rv, res + v * VL, sizeof(VT));                                                   \
        if (res && !ds->after) y = acc[r][v] * s + t + rv;                                                \
        if (inline_activation(act)) {                                                                     \
          ACTIVATE(VT, VI, y, act, ds->parameter);                                                        \
        } else {                                                                                          \
          done = VACT(&y, act);                                                                           \
        }                                                                                                 \
        if (done && res && ds->after) y += rv;                                                            \
        memcpy(o + v * VL, &y, sizeof(VT));                                                               \
      }                                                                                                   \
      if (!done) {                                                                                        \
        vck_activation(act, o, o, NV * VL);                                                               \
        if (res && ds->after)                                                                             \
          for (int i = 0; i < NV * VL; i++) o[i] += res[i];                                               \
      }                                                                                                   \
    }                                                                                                     \
  }

typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v4 __attribute__((vector_size(16), aligned(4)));
typedef int i16v __attribute__((vector_size(64), aligned(4)));
typedef int i8v __attribute__((vector_size(32), aligned(4)));
typedef int i4v __attribute__((vector_size(16), aligned(4)));

#define ATTR_V4 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#define ATTR_V3 __attribute__((target("avx2,fma")))
#define ATTR_V1

// The activations with register code (one list for the kernels' switches and vact_covers): code, function stem.
#define VACT_CODES(X)                                                                                     \
  X(VCK_SILU, silu) X(VCK_GELU_ERF, gelu_erf) X(VCK_GELU_TANH, gelu_tanh) X(VCK_SIGMOID, sigmoid) X(VCK_TANH, tanh) \
  X(VCK_EXP, exp_full)
#define VACT_CASE512(code, f) \
  case code: x = f##512(x); break;
#define VACT_CASE256(code, f) \
  case code: x = f##256(x); break;
#define VACT_COVERED(code, f) case code:

// The transcendental activations on one register (the element-wise loops' vector code); 0 when the ISA has none
// here, and the stored row then goes through vck_activation.
#ifdef VCK_X86
__attribute__((target("avx512f,avx512vl,avx512dq"), always_inline)) static inline int vact_v16(v16 *y, int act) {
  __m512 x = (__m512)*y;
  switch (act) {
  VACT_CODES(VACT_CASE512)
  default: return 0;
  }
  *y = (v16)x;
  return 1;
}

__attribute__((target("avx2,fma"), always_inline)) static inline int vact_v8(v8 *y, int act) {
  __m256 x = (__m256)*y;
  switch (act) {
  VACT_CODES(VACT_CASE256)
  default: return 0;
  }
  *y = (v8)x;
  return 1;
}
// The AVX-512 code on 8 lanes (the half kernel's), so that its outputs have the same bits as a full tile's.
__attribute__((target("avx512f,avx512vl,avx512dq"), always_inline)) static inline int vact_v8w(v8 *y, int act) {
  v16 w = (v16)_mm512_zextps256_ps512((__m256)*y);
  if (!vact_v16(&w, act)) return 0;
  *y = (v8)_mm512_castps512_ps256((__m512)w);
  return 1;
}
#else
INLINE int vact_v16(v16 *y, int act) { (void)y; (void)act; return 0; }
INLINE int vact_v8w(v8 *y, int act) { (void)y; (void)act; return 0; }
INLINE int vact_v8(v8 *y, int act) { (void)y; (void)act; return 0; }
#endif
INLINE int vact_v4(v4 *y, int act) { (void)y; (void)act; return 0; }

// AVX-512: 8 x 48 (24 accumulators of 32 registers); AVX2: 6 x 16 (12 of 16); SSE2: 4 x 8. Narrower variants
// (fewer vectors per row) finish the last columns without computing a whole wide tile for a few of them.
enum { MR_MAX = 8, NR_MAX = 48, NV_MAX = 3 };

DEFINE_MICRO(micro_v4_1, ATTR_V4, v16, i16v, 16, 8, 1, vact_v16)
DEFINE_MICRO(micro_v4_2, ATTR_V4, v16, i16v, 16, 8, 2, vact_v16)
DEFINE_MICRO(micro_v4_3, ATTR_V4, v16, i16v, 16, 8, 3, vact_v16)
// 8 x 8 on AVX-512 machines, for a last tile of 5 to 8 columns (half the multiply-adds of a 16-wide tile), with
// the AVX-512 activations; also the epilogue of columns_v4's sums (1 to 4 columns).
DEFINE_MICRO(micro_v4_h, ATTR_V4, v8, i8v, 8, 8, 1, vact_v8w)
DEFINE_MICRO(micro_v3_1, ATTR_V3, v8, i8v, 8, 6, 1, vact_v8)
DEFINE_MICRO(micro_v3_2, ATTR_V3, v8, i8v, 8, 6, 2, vact_v8)

#ifdef VCK_X86
// Whether vact_v8 computes `act` in registers (the transcendental activations of the epilogues).
INLINE int vact_covers(int act) {
  switch (act) {
  VACT_CODES(VACT_COVERED)
    return 1;
  default:
    return 0;
  }
}

// The generic kernel's activation of one register (inline_activation's or the ISA's vact_*): same operations, same
// bits.
#define DEFINE_ACTIVATE(NAME, TARGET, RT, VT, VI, VACT)                                            \
  __attribute__((target(TARGET), always_inline)) static inline RT NAME(RT x, int act, float p) {  \
    VT y = (VT)x;                                                                                  \
    if (inline_activation(act)) {                                                                  \
      ACTIVATE(VT, VI, y, act, p);                                                                 \
    } else {                                                                                       \
      VACT(&y, act);                                                                               \
    }                                                                                              \
    return (RT)y;                                                                                  \
  }
DEFINE_ACTIVATE(activate_v8, "avx2,fma", __m256, v8, i8v, vact_v8)
DEFINE_ACTIVATE(activate_v16, "avx512f,avx512vl,avx512dq", __m512, v16, i16v, vact_v16)

// micro_v3_2 written out for the AVX2 machines it runs on: named accumulators stay in registers through the k
// loop and the whole epilogue (any activation computed in registers, the residual before or after it, short
// panels), where the generic code's arrays went through the stack and its per-vector branches cost about as much
// as a k = 64 tile's products; a SiLU epilogue on k = 16 took 1.4-1.6x as long through it. Same operations in the
// same order as micro_v3_2 (whose epilogue contracts to the same multiply-add), which still runs whole the calls
// whose activation has no register code (log, abs, ...: VisionCore defers those to a pass after the GEMM): same
// bits either way.
__attribute__((target("avx2,fma"))) static void micro_v3_6x16(ptrdiff_t k, const float *const *arow, const float *b,
                                                              const ptrdiff_t *boff, const float *init, float *tile,
                                                              const direct_store *ds) {
  if (ds && !inline_activation(ds->activation) && !vact_covers(ds->activation)) {
    micro_v3_2(k, arow, b, boff, init, tile, ds);  // activations stored first: the generic kernel, products and all
    return;
  }
  const float *a0 = arow[0], *a1 = arow[1], *a2 = arow[2], *a3 = arow[3], *a4 = arow[4], *a5 = arow[5];
  if (ds) {
    // The tile's output (and residual) rows lie a map row apart, and the next panel's further on: a pattern the
    // hardware prefetcher does not follow. Asked for now, their lines arrive while the products run (resnet50,
    // in-process: its 1x1 convs at 14x14 to 56x56 0.84-0.92x the time, the whole network 0.94x).
    for (ptrdiff_t r = 0; r < ds->rows; r++) {
      __builtin_prefetch(ds->c + r * ds->ldc, 1, 3);
      __builtin_prefetch(ds->c + r * ds->ldc + 15, 1, 3);
      if (ds->residual) {
        __builtin_prefetch(ds->residual + r * ds->ldc, 0, 3);
        __builtin_prefetch(ds->residual + r * ds->ldc + 15, 0, 3);
      }
    }
  }
  __m256 c[12];
  for (int i = 0; i < 12; i++) c[i] = init ? _mm256_loadu_ps(init + 8 * i) : _mm256_setzero_ps();
  __m256 c00 = c[0], c01 = c[1], c10 = c[2], c11 = c[3], c20 = c[4], c21 = c[5];
  __m256 c30 = c[6], c31 = c[7], c40 = c[8], c41 = c[9], c50 = c[10], c51 = c[11];
  for (ptrdiff_t kk = 0; kk < k; kk++) {
    const float *bp = b + boff[kk];
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#define ROW(r)                                  \
  {                                             \
    const __m256 av = _mm256_broadcast_ss(a##r + kk); \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0); \
    c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1); \
  }
    ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
  }
  const __m256 sums[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
  if (!ds) {  // partial sums for the next block of k, or a tile to copy out
    for (int i = 0; i < 12; i++) _mm256_storeu_ps(tile + 8 * i, sums[i]);
    return;
  }
  const int act = ds->activation, after = ds->residual && ds->after;
  const __m256 zero = _mm256_setzero_ps();
  if (ds->rows == 6 && !after && (act == -1 || act == VCK_RELU)) {
    // The common epilogues on their own, so that the compiler unrolls the rows and keeps the sums in registers
    // (with the general code below in the same loop, the rows stayed a loop and the residual went through the
    // stack).
    const int relu = act == VCK_RELU;
    for (int r = 0; r < 6; r++) {
      const __m256 s = _mm256_set1_ps(ds->scale ? ds->scale[r] : 1.0f), t = _mm256_set1_ps(ds->shift ? ds->shift[r] : 0.0f);
      __m256 y0 = _mm256_fmadd_ps(sums[2 * r], s, t), y1 = _mm256_fmadd_ps(sums[2 * r + 1], s, t);
      if (ds->residual) {
        y0 = _mm256_add_ps(y0, _mm256_loadu_ps(ds->residual + r * ds->ldc));
        y1 = _mm256_add_ps(y1, _mm256_loadu_ps(ds->residual + r * ds->ldc + 8));
      }
      if (relu) {  // max(0, y) keeps a NaN y, like the generic select
        y0 = _mm256_max_ps(zero, y0);
        y1 = _mm256_max_ps(zero, y1);
      }
      _mm256_storeu_ps(ds->c + r * ds->ldc, y0);
      _mm256_storeu_ps(ds->c + r * ds->ldc + 8, y1);
    }
    return;
  }
  for (int r = 0; r < 6; r++) {
    if (r >= ds->rows) break;  // the rows past the end repeated the last row's weights
    const __m256 s = _mm256_set1_ps(ds->scale ? ds->scale[r] : 1.0f), t = _mm256_set1_ps(ds->shift ? ds->shift[r] : 0.0f);
    __m256 y0 = _mm256_fmadd_ps(sums[2 * r], s, t), y1 = _mm256_fmadd_ps(sums[2 * r + 1], s, t);
    __m256 r0 = zero, r1 = zero;
    if (ds->residual) {
      r0 = _mm256_loadu_ps(ds->residual + r * ds->ldc);
      r1 = _mm256_loadu_ps(ds->residual + r * ds->ldc + 8);
      if (!after) {
        y0 = _mm256_add_ps(y0, r0);
        y1 = _mm256_add_ps(y1, r1);
      }
    }
    if (act == VCK_RELU) {
      y0 = _mm256_max_ps(zero, y0);
      y1 = _mm256_max_ps(zero, y1);
    } else if (act != -1) {
      y0 = activate_v8(y0, act, ds->parameter);
      y1 = activate_v8(y1, act, ds->parameter);
    }
    if (after) {
      y0 = _mm256_add_ps(y0, r0);
      y1 = _mm256_add_ps(y1, r1);
    }
    _mm256_storeu_ps(ds->c + r * ds->ldc, y0);
    _mm256_storeu_ps(ds->c + r * ds->ldc + 8, y1);
  }
}
#define MICRO_V3_WIDE micro_v3_6x16

// micro_v4_1..3 written out as micro_v3_6x16 is, for the same reason: through the generic code the 24
// accumulators of the 8 x 48 tile were stored to the stack on every step of the k loop (a store per multiply-add,
// half the tile's speed: resnet50 at 2.8x ONNX Runtime's time on a Zen 4). NV vectors per row, a constant of each
// caller, so that the unused accumulators vanish. Same operations in the same order: same bits. The prefetches
// (output and residual rows, B's rows ahead) pay only where those lines are cold, as in a network: resnet50 on a
// Zen 4 (per-conv times in-process, alternate forwards with and without): its convs 0.97-0.99x the time, the 1x1
// convs with a residual 0.86-0.95x; the same convs repeated on hot operands gain nothing.
#define V4_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
enum { B_AHEAD = 8 };
__attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"), always_inline)) static inline void micro_v4_body(
    const int NV, ptrdiff_t k, const float *const *arow, const float *b, const ptrdiff_t *boff, const float *init,
    float *tile, const direct_store *ds) {
  const __m512 zero = _mm512_setzero_ps();
#define V4_DECL(r)                                                                              \
  const float *a##r = arow[r];                                                                  \
  __m512 c##r##0 = init ? _mm512_loadu_ps(init + (r) * NV * 16) : zero;                         \
  __m512 c##r##1 = init && NV > 1 ? _mm512_loadu_ps(init + (r) * NV * 16 + 16) : zero;          \
  __m512 c##r##2 = init && NV > 2 ? _mm512_loadu_ps(init + (r) * NV * 16 + 32) : zero;
  V4_ROWS(V4_DECL)
#undef V4_DECL
  // The epilogue's operands, read once from `ds` (its stores could alias it, so the compiler would re-read
  // every field after each store).
  float *const out = ds ? ds->c : NULL;
  const float *const res = ds ? ds->residual : NULL, *const scale = ds ? ds->scale : NULL;
  const float *const shift = ds ? ds->shift : NULL;
  const ptrdiff_t ldc = ds ? ds->ldc : 0;
  const float *const next_a = ds ? ds->next_a : NULL;
  const ptrdiff_t next_lda = ds ? ds->next_lda : 0;
  if (ds && ds->rows == 8) {
    // In a network the tile's output and residual rows are cold (a map row apart, in memory last touched layers
    // ago): asked for now, their lines arrive while the products run. (Written out for whole panels: the loop
    // over rows and vectors cost as much as a tenth of a k = 64 tile's products with the epilogue's re-reads.)
#define V4_PREFETCH(r)                                                                  \
  for (int v = 0; v < NV; v++) {                                                        \
    __builtin_prefetch(out + (r) * ldc + 16 * v, 1, 3);                                 \
    if (res) __builtin_prefetch(res + (r) * ldc + 16 * v, 0, 3);                        \
  }
    V4_ROWS(V4_PREFETCH)
#undef V4_PREFETCH
  } else if (ds) {
    for (ptrdiff_t r = 0; r < ds->rows; r++) {
      for (int v = 0; v < NV; v++) {
        __builtin_prefetch(out + r * ldc + 16 * v, 1, 3);
        if (res) __builtin_prefetch(res + r * ldc + 16 * v, 0, 3);
      }
    }
  }
#define V4_ROW(r)                                             \
  {                                                           \
    const __m512 av = _mm512_set1_ps(a##r[kk]);               \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);               \
    if (NV > 1) c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);   \
    if (NV > 2) c##r##2 = _mm512_fmadd_ps(av, b2, c##r##2);   \
  }
#define V4_STEP                                                                               \
  {                                                                                           \
    const float *bp = b + boff[kk];                                                           \
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = NV > 1 ? _mm512_loadu_ps(bp + 16) : zero,    \
                 b2 = NV > 2 ? _mm512_loadu_ps(bp + 32) : zero;                               \
    V4_ROWS(V4_ROW)                                                                           \
  }
  // B's rows lie a map row apart (1x1 convs read their input in place), and the first panel to meet a column
  // tile reads them from L3: each row is asked for B_AHEAD steps before its products. The next panel's weights
  // (cold in a network, and rows of a few hundred floats are too short for the hardware prefetcher to follow
  // eight at once) come one line every other step, row after row: all 8 x k of them by the end of the loop.
  ptrdiff_t kk = 0;
  for (; kk < k - B_AHEAD; kk++) {
    const float *ahead = b + boff[kk + B_AHEAD];
    __builtin_prefetch(ahead, 0, 3);
    if (NV > 1) __builtin_prefetch(ahead + 16, 0, 3);
    if (NV > 2) __builtin_prefetch(ahead + 32, 0, 3);
    if (next_a && !(kk & 1)) __builtin_prefetch(next_a + ((kk >> 1) & 7) * next_lda + (kk >> 4) * 16, 0, 3);
    V4_STEP
  }
  for (; kk < k; kk++) V4_STEP
#undef V4_STEP
#undef V4_ROW
  const __m512 sums[8][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32},
                             {c40, c41, c42}, {c50, c51, c52}, {c60, c61, c62}, {c70, c71, c72}};
  if (!ds) {  // partial sums for the next block of k, or a tile to copy out
    for (int r = 0; r < 8; r++)
      for (int v = 0; v < NV; v++) _mm512_storeu_ps(tile + r * NV * 16 + v * 16, sums[r][v]);
    return;
  }
  const int act = ds->activation, after = ds->residual && ds->after;
  if (ds->rows == 8 && !after && (act == -1 || act == VCK_RELU)) {
    // The common epilogues on their own, with no per-vector activation branches, from the named accumulators and
    // the operands read once (with `ds` re-read after every store and the sums through the stack, a k = 64 tile
    // with a residual took 1.05x the time).
    const int relu = act == VCK_RELU;
#define V4_OUT(acc, v)                                                                  \
  {                                                                                     \
    __m512 y = _mm512_fmadd_ps(acc, s, t);                                              \
    if (q) y = _mm512_add_ps(y, _mm512_loadu_ps(q + 16 * (v)));                         \
    if (relu) y = _mm512_max_ps(zero, y); /* max(0, y) keeps a NaN y, like the generic select */ \
    _mm512_storeu_ps(o + 16 * (v), y);                                                  \
  }
#define V4_EPILOGUE(r)                                                                  \
  {                                                                                     \
    const __m512 s = _mm512_set1_ps(scale ? scale[r] : 1.0f), t = _mm512_set1_ps(shift ? shift[r] : 0.0f); \
    float *const o = out + (r) * ldc;                                                   \
    const float *const q = res ? res + (r) * ldc : NULL;                                \
    V4_OUT(c##r##0, 0)                                                                  \
    if (NV > 1) V4_OUT(c##r##1, 1)                                                      \
    if (NV > 2) V4_OUT(c##r##2, 2)                                                      \
  }
    V4_ROWS(V4_EPILOGUE)
#undef V4_EPILOGUE
#undef V4_OUT
    return;
  }
  for (int r = 0; r < 8; r++) {
    if (r >= ds->rows) break;  // the rows past the end repeated the last row's weights
    const __m512 s = _mm512_set1_ps(scale ? scale[r] : 1.0f), t = _mm512_set1_ps(shift ? shift[r] : 0.0f);
    for (int v = 0; v < NV; v++) {
      __m512 y = _mm512_fmadd_ps(sums[r][v], s, t), rv = zero;
      if (res) {
        rv = _mm512_loadu_ps(res + r * ldc + 16 * v);
        if (!after) y = _mm512_add_ps(y, rv);
      }
      if (act == VCK_RELU) {
        y = _mm512_max_ps(zero, y);
      } else if (act != -1) {
        y = activate_v16(y, act, ds->parameter);
      }
      if (after) y = _mm512_add_ps(y, rv);
      _mm512_storeu_ps(out + r * ldc + 16 * v, y);
    }
  }
}
#undef V4_ROWS

// The activations without register code go through the generic kernel (stored first, then vck_activation).
#define DEFINE_MICRO_V4(NAME, NV, GENERIC)                                                                   \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))) static void NAME(                            \
      ptrdiff_t k, const float *const *arow, const float *b, const ptrdiff_t *boff, const float *init, float *tile, \
      const direct_store *ds) {                                                                              \
    if (ds && !inline_activation(ds->activation) && !vact_covers(ds->activation))                            \
      GENERIC(k, arow, b, boff, init, tile, ds);                                                             \
    else                                                                                                     \
      micro_v4_body(NV, k, arow, b, boff, init, tile, ds);                                                   \
  }
DEFINE_MICRO_V4(micro_v4_8x16, 1, micro_v4_1)
DEFINE_MICRO_V4(micro_v4_8x32, 2, micro_v4_2)
DEFINE_MICRO_V4(micro_v4_8x48, 3, micro_v4_3)

// Full panels of 8 rows of one column tile (rows p * 8 .. p * 8 + 7 of A at a, lda apart), each through the
// direct store of `first` moved 8 rows on per panel: one call per tile instead of one per panel and tile, so
// that one panel's epilogue overlaps the next one's products (resnet50's 1x1 convs with k = 64 on one thread,
// hot: 0.95x the time; k = 128 0.975x). Each panel asks for the next one's weights while it runs when `ahead`
// (the full panels of A from a, 0 for no prefetch) says there is one.
#define DEFINE_PANELS_V4(NAME, NV)                                                                          \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))) static void NAME(                            \
      ptrdiff_t k, const float *a, ptrdiff_t lda, ptrdiff_t panels, const float *b, const ptrdiff_t *boff,    \
      const direct_store *first, ptrdiff_t ahead) {                                                          \
    direct_store ds = *first;                                                                                \
    ds.next_lda = lda;                                                                                       \
    for (ptrdiff_t p = 0; p < panels; p++) {                                                                 \
      const float *arow[8];                                                                                  \
      for (int r = 0; r < 8; r++) arow[r] = a + (8 * p + r) * lda;                                           \
      ds.next_a = p + 1 < ahead ? a + 8 * (p + 1) * lda : NULL;                                              \
      micro_v4_body(NV, k, arow, b, boff, NULL, NULL, &ds);                                                  \
      ds.c += 8 * ds.ldc;                                                                                    \
      if (ds.residual) ds.residual += 8 * ds.ldc;                                                            \
      if (ds.scale) ds.scale += 8;                                                                           \
      if (ds.shift) ds.shift += 8;                                                                           \
    }                                                                                                        \
  }
DEFINE_PANELS_V4(panels_v4_1, 1)
DEFINE_PANELS_V4(panels_v4_2, 2)
DEFINE_PANELS_V4(panels_v4_3, 3)

// The sums of a last tile of at most COLUMNS_NR columns on AVX-512 machines, the rows as the vector lanes: eight
// weight rows, eight steps of k at a time, transposed in registers, so that one multiply-add advances eight
// outputs of a column. The half kernel (8-lane vectors along the columns) spends eight multiply-adds per step of k
// whatever the width, for a 7x7 map's one last column or a 14x14 map's four (resnet50 on a Zen 4, in-process,
// alternate forwards: 1.02x as fast). P = 2 panels (arow: 16 rows) advance side by side: a panel alone is one
// chain of dependent multiply-adds per column, 4 cycles a step, which two panels' chains share (one 7x7 column
// of k = 512 weights: 0.6x the time per panel). Each output is the same chain of multiply-adds in the same order
// as in any other tile (same bits). Panel p's sums go to sums + p * 8 * HALF_NR (tile layout, 8 x HALF_NR),
// seeded from init (same layout) or from zero.
__attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"), always_inline)) static inline void columns_v4_body(
    const int W, const int P, ptrdiff_t k, const float *const *arow, const float *b, const ptrdiff_t *boff,
    const float *init, float *sums) {
  __m256 acc0[8], acc1[8];  // panel 0's and 1's, column c at [c], row r in lane r
  for (int r = 0; r < 8; r++) {
    acc0[r] = init ? _mm256_loadu_ps(init + 8 * r) : _mm256_setzero_ps();
    acc1[r] = init && P > 1 ? _mm256_loadu_ps(init + 8 * HALF_NR + 8 * r) : _mm256_setzero_ps();
  }
  transpose8x8_ps(acc0);
  if (P > 1) transpose8x8_ps(acc1);
#define COLUMNS_STEP(j)                                                                                  \
  {                                                                                                      \
    const float *bp = b + boff[kk + (j)];                                                                \
    for (int c = 0; c < W; c++) {                                                                        \
      const __m256 bv = _mm256_broadcast_ss(bp + c);                                                     \
      acc0[c] = _mm256_fmadd_ps(a0[j], bv, acc0[c]);                                                     \
      if (P > 1) acc1[c] = _mm256_fmadd_ps(a1[j], bv, acc1[c]);                                          \
    }                                                                                                    \
  }
  ptrdiff_t kk = 0;
  for (; kk + 8 <= k; kk += 8) {
    __m256 a0[8], a1[8];
    for (int r = 0; r < 8; r++) {
      a0[r] = _mm256_loadu_ps(arow[r] + kk);
      if (P > 1) a1[r] = _mm256_loadu_ps(arow[8 + r] + kk);
    }
    transpose8x8_ps(a0);  // a0[j]: the eight rows' weights of step kk + j
    if (P > 1) transpose8x8_ps(a1);
    COLUMNS_STEP(0) COLUMNS_STEP(1) COLUMNS_STEP(2) COLUMNS_STEP(3)
    COLUMNS_STEP(4) COLUMNS_STEP(5) COLUMNS_STEP(6) COLUMNS_STEP(7)
  }
  if (kk < k) {  // the last k % 8 steps, from masked loads (nothing read past the rows' ends)
    const __mmask8 live = (__mmask8)((1u << (k - kk)) - 1);
    __m256 a0[8], a1[8];
    for (int r = 0; r < 8; r++) {
      a0[r] = _mm256_maskz_loadu_ps(live, arow[r] + kk);
      if (P > 1) a1[r] = _mm256_maskz_loadu_ps(live, arow[8 + r] + kk);
    }
    transpose8x8_ps(a0);
    if (P > 1) transpose8x8_ps(a1);
    for (int j = 0; j < k - kk; j++) COLUMNS_STEP(j)
  }
#undef COLUMNS_STEP
  for (int c = W; c < 8; c++) acc0[c] = acc1[c] = _mm256_setzero_ps();
  transpose8x8_ps(acc0);
  for (int r = 0; r < 8; r++) _mm256_storeu_ps(sums + 8 * r, acc0[r]);
  if (P > 1) {
    transpose8x8_ps(acc1);
    for (int r = 0; r < 8; r++) _mm256_storeu_ps(sums + 8 * HALF_NR + 8 * r, acc1[r]);
  }
}

#define COLUMNS_WIDTHS(P)                                                    \
  switch (width) {                                                           \
  case 1: columns_v4_body(1, P, k, arow, b, boff, init, sums); break;        \
  case 2: columns_v4_body(2, P, k, arow, b, boff, init, sums); break;        \
  case 3: columns_v4_body(3, P, k, arow, b, boff, init, sums); break;        \
  default: columns_v4_body(4, P, k, arow, b, boff, init, sums); break;       \
  }
__attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))) static void columns_v4(
    ptrdiff_t k, const float *const *arow, ptrdiff_t panels, const float *b, const ptrdiff_t *boff, ptrdiff_t width,
    const float *init, float *sums) {
  if (panels > 1) {
    COLUMNS_WIDTHS(2)
  } else {
    COLUMNS_WIDTHS(1)
  }
}
#undef COLUMNS_WIDTHS
#else
#define MICRO_V3_WIDE micro_v3_2
#define micro_v4_8x16 micro_v4_1
#define micro_v4_8x32 micro_v4_2
#define micro_v4_8x48 micro_v4_3
#define columns_v4 NULL
#define panels_v4_1 NULL
#define panels_v4_2 NULL
#define panels_v4_3 NULL
#endif
DEFINE_MICRO(micro_v1_1, ATTR_V1, v4, i4v, 4, 4, 1, vact_v4)
DEFINE_MICRO(micro_v1_2, ATTR_V1, v4, i4v, 4, 4, 2, vact_v4)

// The epilogue on `n` contiguous outputs of one channel row: y = act(x * s + t + res), or act(x * s + t) + res
// when `after`.
#define DEFINE_FINISH(NAME, ATTR)                                                                         \
  ATTR static void NAME(const float *x, float *y, ptrdiff_t n, float s, float t, const float *res, int act, \
                        float p, int after) {                                                             \
    if (res && !after) {                                                                                  \
      for (ptrdiff_t i = 0; i < n; i++) y[i] = x[i] * s + t + res[i];                                     \
    } else {                                                                                              \
      for (ptrdiff_t i = 0; i < n; i++) y[i] = x[i] * s + t;                                              \
    }                                                                                                     \
    switch (act) {                                                                                        \
    case -1: break;                                                                                       \
    case VCK_RELU:                                                                                        \
      for (ptrdiff_t i = 0; i < n; i++) y[i] = y[i] < 0 ? 0 : y[i];                                       \
      break;                                                                                              \
    case VCK_RELU6:                                                                                       \
      for (ptrdiff_t i = 0; i < n; i++) y[i] = y[i] < 0 ? 0 : (y[i] > 6 ? 6 : y[i]);                      \
      break;                                                                                              \
    case VCK_LEAKY_RELU:                                                                                  \
      for (ptrdiff_t i = 0; i < n; i++) y[i] = y[i] < 0 ? y[i] * p : y[i];                                \
      break;                                                                                              \
    case VCK_HARD_SWISH:                                                                                  \
      for (ptrdiff_t i = 0; i < n; i++) {                                                                 \
        float v = y[i], c = v + 3;                                                                        \
        c = c < 0 ? 0 : (c > 6 ? 6 : c);                                                                  \
        y[i] = v != v ? v : v * c * (1.0f / 6);                                                           \
      }                                                                                                   \
      break;                                                                                              \
    case VCK_HARD_SIGMOID:                                                                                \
      for (ptrdiff_t i = 0; i < n; i++) {                                                                 \
        float v = y[i], c = v + 3;                                                                        \
        c = c < 0 ? 0 : (c > 6 ? 6 : c);                                                                  \
        y[i] = v != v ? v : c * (1.0f / 6);                                                               \
      }                                                                                                   \
      break;                                                                                              \
    default: vck_activation(act, y, y, n); break;                                                         \
    }                                                                                                     \
    if (res && after)                                                                                     \
      for (ptrdiff_t i = 0; i < n; i++) y[i] += res[i];                                                   \
  }

DEFINE_FINISH(finish_v4, ATTR_V4)
DEFINE_FINISH(finish_v3, ATTR_V3)
DEFINE_FINISH(finish_v1, ATTR_V1)

typedef void (*micro_fn)(ptrdiff_t, const float *const *, const float *, const ptrdiff_t *, const float *,
                         float *, const direct_store *);
typedef void (*finish_fn)(const float *, float *, ptrdiff_t, float, float, const float *, int, float, int);
typedef void (*panels_fn)(ptrdiff_t, const float *, ptrdiff_t, ptrdiff_t, const float *, const ptrdiff_t *,
                          const direct_store *, ptrdiff_t);
typedef void (*columns_fn)(ptrdiff_t, const float *const *, ptrdiff_t, const float *, const ptrdiff_t *, ptrdiff_t,
                           const float *, float *);

typedef struct {
  micro_fn micro[NV_MAX + 1];  // by vectors per row
  finish_fn finish;
  int mr, vl, nv;              // rows, floats per vector, vectors per row of the widest kernel
  micro_fn half;               // a kernel of HALF_NR columns for narrow last tiles, or NULL
  columns_fn columns;          // the sums of a last tile of at most COLUMNS_NR columns (1 or 2 panels), or NULL
  panels_fn panels[NV_MAX + 1];  // full panels of a tile of contiguous outputs in one call, by vectors per row, or NULL
} isa_kernels;

static const isa_kernels isa_v4 = {{NULL, micro_v4_8x16, micro_v4_8x32, micro_v4_8x48}, finish_v4, 8, 16, 3, micro_v4_h,
                                   columns_v4, {NULL, panels_v4_1, panels_v4_2, panels_v4_3}};
static const isa_kernels isa_v3 = {{NULL, micro_v3_1, MICRO_V3_WIDE, NULL}, finish_v3, 6, 8, 2, NULL, NULL, {NULL}};
static const isa_kernels isa_v1 = {{NULL, micro_v1_1, micro_v1_2, NULL}, finish_v1, 4, 4, 2, NULL, NULL, {NULL}};

// Whether a last tile of `width` outputs takes the columns kernel, which reads B's columns [q, q + width) only
// (no zero-padded copy needed past B's end).
static int columns_tile(isa_kernels ks, ptrdiff_t width) { return ks.columns && width <= COLUMNS_NR; }

// Columns a tile of `width` outputs computes: whole vectors, or HALF_NR with the half kernel (nv 0).
static ptrdiff_t tile_columns(isa_kernels ks, ptrdiff_t width, ptrdiff_t *nv) {
  if (ks.half && width <= HALF_NR) {
    *nv = 0;
    return HALF_NR;
  }
  *nv = (width + ks.vl - 1) / ks.vl;
  return *nv * ks.vl;
}
// The CPU's best set, found on first use (racing first calls store the same pointer).
static const isa_kernels *best_known = NULL;

static const isa_kernels *best_isa(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return &isa_v4;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &isa_v3;
  return &isa_v1;
}

static const isa_kernels *best_kernels(void) {
  const isa_kernels *k = __atomic_load_n(&best_known, __ATOMIC_ACQUIRE);
  if (!k) {
    k = best_isa();
    __atomic_store_n(&best_known, k, __ATOMIC_RELEASE);
  }
  return k;
}

// The calling thread's set (vck_isa_choice).
static const isa_kernels *current_isa(void) {
  const int level = vck_thread_isa.conv_gemm;
  if (level) return level == 4 ? &isa_v4 : level == 3 ? &isa_v3 : &isa_v1;
  return best_kernels();
}

static isa_kernels kernels(void) { return *current_isa(); }

int vck_conv_gemm_set_isa(int level) {
  const isa_kernels *best = best_isa(), *k = level == 4 ? &isa_v4 : level == 3 ? &isa_v3 : level == 1 ? &isa_v1 : NULL;
  if (level != 0 && (!k || (k == &isa_v4 && best != &isa_v4) || (k == &isa_v3 && best == &isa_v1))) return -1;
  vck_thread_isa.conv_gemm = level;
  return 0;
}

int vck_conv_gemm_isa(void) {
  const isa_kernels *k = current_isa();
  return k == &isa_v4 ? 4 : k == &isa_v3 ? 3 : 1;
}

void vck_conv_gemm_tile(ptrdiff_t *mr, ptrdiff_t *nr) {
  // The CPU's best set whatever this thread's choice: callers cache it, and its tiles are the widest.
  isa_kernels ks = *best_kernels();
  *mr = ks.mr;
  *nr = ks.vl * ks.nv;
}

void vck_conv_finish_row(const float *x, float *y, ptrdiff_t n, float s, float t, const float *res, int act, float p,
                         int after) {
  kernels().finish(x, y, n, s, t, res, act, p, after);
}

// Applies the epilogue to tile columns [q, qe) of rows [i, i + rows) and stores the outputs among them
// (virtual column q = oy * vw + ox of its image is an output when ox < ow and oy < oh). `finished`: the tile
// already holds the epilogue's results (no residual), which are copied.
static void store_tile(const vck_conv_gemm *job, finish_fn finish, const float *tile, ptrdiff_t nr, ptrdiff_t i,
                       ptrdiff_t rows, ptrdiff_t q, ptrdiff_t qe, int finished) {
  const ptrdiff_t period = job->period > 0 ? job->period : job->nq;
  if (job->period > 0 && job->vw == job->ow && job->oh * job->ow == job->period) {
    // Explicit columns (every column an output, images of a few pixels): one epilogue call per row into a
    // buffer, then a scatter through the columns' output offsets, instead of one call per image segment.
    const ptrdiff_t n = qe - q;
    ptrdiff_t off[NR_MAX];
    float res[NR_MAX], out[NR_MAX];
    for (ptrdiff_t j = 0; j < n; j++) {
      ptrdiff_t image = (q + j) / period;
      off[j] = image * job->image_stride + (q + j - image * period);
    }
    for (ptrdiff_t rr = 0; rr < rows; rr++) {
      ptrdiff_t ch = i + rr;
      float *y = job->c + ch * job->ldc;
      if (finished) {
        for (ptrdiff_t j = 0; j < n; j++) y[off[j]] = tile[rr * nr + j];
        continue;
      }
      float s = job->scale ? job->scale[ch] : 1.0f, t = job->shift ? job->shift[ch] : 0.0f;
      if (job->residual)
        for (ptrdiff_t j = 0; j < n; j++) res[j] = job->residual[ch * job->ldc + off[j]];
      finish(tile + rr * nr, out, n, s, t, job->residual ? res : NULL, job->activation, job->parameter,
             job->residual_after);
      for (ptrdiff_t j = 0; j < n; j++) y[off[j]] = out[j];
    }
    return;
  }
  ptrdiff_t j = q;
  while (j < qe) {
    ptrdiff_t image = j / period, r = j - image * period, oy = r / job->vw, ox = r - oy * job->vw;
    if (job->period > 0 && oy >= job->oh) {
      j = (image + 1) * period;
      continue;
    }
    if (ox >= job->ow) {
      j += job->vw - ox;
      continue;
    }
    ptrdiff_t end = j + (job->ow - ox);
    if (end > qe) end = qe;
    ptrdiff_t n = end - j, at = image * job->image_stride + oy * job->ow + ox;
    for (ptrdiff_t rr = 0; rr < rows; rr++) {
      ptrdiff_t ch = i + rr;
      if (finished) {
        memcpy(job->c + ch * job->ldc + at, tile + rr * nr + (j - q), (size_t)n * sizeof(float));
        continue;
      }
      float s = job->scale ? job->scale[ch] : 1.0f, t = job->shift ? job->shift[ch] : 0.0f;
      const float *res = job->residual ? job->residual + ch * job->ldc + at : NULL;
      finish(tile + rr * nr + (j - q), job->c + ch * job->ldc + at, n, s, t, res, job->activation, job->parameter,
             job->residual_after);
    }
    j = end;
  }
}

// A column tile: where its B rows are read (a zero-padded copy for the columns past nq) and how wide it is.
typedef struct {
  const float *b;
  const ptrdiff_t *boff;
  ptrdiff_t q, qe, nv, nr;  // nv 0: the half kernel
} column_tile;

// Row kk of a tile-major copy at kk * stride: the offsets the kernels read such a copy's rows by.
static void fill_row_offsets(ptrdiff_t *offsets, ptrdiff_t n, ptrdiff_t stride) {
  for (ptrdiff_t kk = 0; kk < n; kk++) offsets[kk] = kk * stride;
}

// The first `width` floats (a multiple of 4) of src at dst: fixed-size copies that the compiler turns into vector
// moves (a memcpy call per 64-byte row cost as much as the row's products).
static void copy_row(float *dst, const float *src, ptrdiff_t width) {
  for (ptrdiff_t j = 0; j < width; j += 4) memcpy(dst + j, src + j, 4 * sizeof(float));
}

// Copies rows [k0, k1) of B's columns [q, q1) into `dst` tile-major (tile t's row kk at dst + (t * k + kk) * nr),
// zero-padded to whole tiles.
static void pack_columns(const vck_conv_gemm *job, ptrdiff_t nr, ptrdiff_t q, ptrdiff_t q1, ptrdiff_t k0, ptrdiff_t k1,
                         float *dst) {
  const ptrdiff_t k = job->k;
  for (; q < q1; q += nr, dst += k * nr) {
    const ptrdiff_t w = q1 - q < nr ? q1 - q : nr;
    for (ptrdiff_t kk = k0; kk < k1; kk++) {
      if (w == nr) {
        copy_row(dst + kk * nr, job->b + job->boff[kk] + q, nr);
      } else {
        memcpy(dst + kk * nr, job->b + job->boff[kk] + q, (size_t)w * sizeof(float));
        memset(dst + kk * nr + w, 0, (size_t)(nr - w) * sizeof(float));
      }
    }
  }
}

// Prepares the tile starting at q; `edge` / `edge_off` (from alloc_edge) take the copy if needed.
static column_tile make_tile(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t q, ptrdiff_t q1, float *edge,
                             ptrdiff_t *edge_off) {
  ptrdiff_t width = q1 - q < ks.vl * ks.nv ? q1 - q : ks.vl * ks.nv, nv;
  ptrdiff_t nr = tile_columns(ks, width, &nv);
  column_tile t = {job->b + q, job->boff, q, q + width, nv, nr};
  if (q + nr > job->nq && q + nr > job->readable && !columns_tile(ks, width)) {
    pack_columns(job, nr, q, job->nq, 0, job->k, edge);  // one tile: its nq - q columns, zero-padded
    fill_row_offsets(edge_off, job->k, nr);
    t.b = edge;
    t.boff = edge_off;
  }
  return t;
}

// The job's epilogue for rows [i, i + rows) stored at c (row stride ldc), with the residual at `res` (same
// layout) or none.
static direct_store epilogue_store(const vck_conv_gemm *job, ptrdiff_t i, ptrdiff_t rows, float *c, ptrdiff_t ldc,
                                   const float *res) {
  direct_store d = {c, ldc, rows, job->scale ? job->scale + i : NULL, job->shift ? job->shift + i : NULL, res,
                    job->activation, res ? job->residual_after : 0, job->parameter, NULL, 0};
  return d;
}

// The next panel's weights (rows [i + mr, i + 2 mr), columns from k0) for the kernel to prefetch when they lie
// below row `ahead_end` a row stride apart, else NULL.
static const float *next_panel(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t i, ptrdiff_t ahead_end,
                               ptrdiff_t k0) {
  return !job->aoff && i + 2 * ks.mr <= ahead_end ? job->a + (i + ks.mr) * job->lda + k0 : NULL;
}

// The weight rows of the panel at row i (from column k0) into arow; rows past `me` repeat the last one (their
// results are discarded).
static void panel_rows(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t i, ptrdiff_t me, ptrdiff_t k0,
                       const float **arow) {
  for (ptrdiff_t r = 0; r < ks.mr; r++) {
    const ptrdiff_t row = i + r < me ? i + r : me - 1;
    arow[r] = job->a + (job->aoff ? job->aoff[row] : row * job->lda) + k0;
  }
}

// Whether tile t's outputs are contiguous columns of C (no padding columns, no images' gaps): stored from
// registers through the epilogue.
static int contiguous_tile(const vck_conv_gemm *job, const column_tile *t) {
  return job->vw == job->ow && job->period == 0 && t->qe - t->q == t->nr;
}

// Rows [i, i + mr) of tile t over weight columns [k0, k0 + kn) (B's rows at t->boff[0..kn), already offset),
// starting from the partial sums at `init` (tile layout) or zero; the result goes through the epilogue when
// `partial` is NULL, else to `partial` (tile layout) for the next block of k. The next panel's weights are
// prefetched when they lie below row `ahead_end` (0: none).
static void run_panel(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t i, ptrdiff_t me, const column_tile *t,
                      float *tile, ptrdiff_t k0, ptrdiff_t kn, const float *init, float *partial, ptrdiff_t ahead_end) {
  const float *arow[MR_MAX];
  panel_rows(job, ks, i, me, k0, arow);
  ptrdiff_t rows = me - i < ks.mr ? me - i : ks.mr, nr = t->nr;
  const micro_fn micro = t->nv == 0 ? ks.half : ks.micro[t->nv];
  float sums[MR_MAX * HALF_NR] __attribute__((aligned(64)));
  if (kn > 0 && t->nv == 0 && columns_tile(ks, t->qe - t->q)) {
    // The narrow kernel's sums seed the half kernel, which then runs no step of k: its epilogue alone.
    ks.columns(kn, arow, 1, t->b, t->boff, t->qe - t->q, init, sums);
    kn = 0;
    init = sums;
  }
  if (partial) {
    micro(kn, arow, t->b, t->boff, init, partial, NULL);
    return;
  }
  if (contiguous_tile(job, t)) {
    // A full tile of contiguous outputs: stored from registers through the epilogue.
    direct_store ds = epilogue_store(job, i, rows, job->c + i * job->ldc + t->q, job->ldc,
                                     job->residual ? job->residual + i * job->ldc + t->q : NULL);
    ds.next_a = next_panel(job, ks, i, ahead_end, k0);
    ds.next_lda = job->lda;
    micro(kn, arow, t->b, t->boff, init, tile, &ds);
    return;
  }
  if (!job->residual) {
    // The epilogue in registers into the tile, which is then copied out segment by segment (a call of the
    // row epilogue per segment cost more than the products on short rows, SiLU most).
    direct_store ts = epilogue_store(job, i, rows, tile, nr, NULL);
    ts.next_a = next_panel(job, ks, i, ahead_end, k0);
    ts.next_lda = job->lda;
    micro(kn, arow, t->b, t->boff, init, tile, &ts);
    store_tile(job, ks.finish, tile, nr, i, rows, t->q, t->qe, 1);
    return;
  }
  micro(kn, arow, t->b, t->boff, init, tile, NULL);
  store_tile(job, ks.finish, tile, nr, i, rows, t->q, t->qe, 0);
}

// The full panels of rows [i, me) of tile t in one call of the panels kernel where it applies (a whole tile of
// contiguous outputs, rows of A lda apart, an activation the tile's epilogue computes); returns the first row
// left for run_panel. Prefetches as run_panel does.
static ptrdiff_t run_full_panels(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t i, ptrdiff_t me,
                                 const column_tile *t, ptrdiff_t ahead_end) {
  const ptrdiff_t full = (me - i) / ks.mr;
  if (full == 0 || t->nv == 0 || !ks.panels[t->nv] || job->aoff || !contiguous_tile(job, t) ||
      !(inline_activation(job->activation) || vact_covers(job->activation)))
    return i;
  direct_store ds = epilogue_store(job, i, ks.mr, job->c + i * job->ldc + t->q, job->ldc,
                                   job->residual ? job->residual + i * job->ldc + t->q : NULL);
  ks.panels[t->nv](job->k, job->a + i * job->lda, job->lda, full, t->b, t->boff, &ds,
                   ahead_end > i ? (ahead_end - i) / ks.mr : 0);
  return i + full * ks.mr;
}

// Rows [i, me) of a last tile for the columns kernel (full k, no partial sums), two panels per call (their chains
// of multiply-adds side by side), each stored through run_panel's epilogue; returns the first row left for
// run_panel. Not where the rows lie a multiple of 4 KB apart (lda of 1024, 2048 weights): sixteen rows on the same
// L1 sets, more than its eight ways, ran slower than one panel at a time.
static ptrdiff_t run_column_pairs(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t i, ptrdiff_t me,
                                  const column_tile *t, float *tile) {
  const ptrdiff_t mr = ks.mr;
  if (job->aoff || job->lda % 1024 == 0) return i;
  float sums[2 * MR_MAX * HALF_NR] __attribute__((aligned(64)));
  const float *arow[2 * MR_MAX];
  for (; i + 2 * mr <= me; i += 2 * mr) {
    panel_rows(job, ks, i, me, 0, arow);
    panel_rows(job, ks, i + mr, me, 0, arow + mr);
    ks.columns(job->k, arow, 2, t->b, t->boff, t->qe - t->q, NULL, sums);
    run_panel(job, ks, i, me, t, tile, 0, 0, sums, NULL, 0);
    run_panel(job, ks, i + mr, me, t, tile, 0, 0, sums + mr * HALF_NR, NULL, 0);
  }
  return i;
}

// The zero-padded copy that the last column tile of [q0, q1) reads when it runs past B's readable columns:
// allocated (k rows of the widest tile, k offsets) into *edge / *edge_off, or left NULL when not needed.
// Returns -1 when memory ran out (nothing is left allocated).
static int alloc_edge(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t q0, ptrdiff_t q1, ptrdiff_t k, float **edge,
                      ptrdiff_t **edge_off) {
  const ptrdiff_t nr = ks.vl * ks.nv, last = q0 + (q1 - q0 - 1) / nr * nr;
  ptrdiff_t last_nv, last_nr = tile_columns(ks, q1 - last, &last_nv);
  *edge = NULL;
  *edge_off = NULL;
  if (last + last_nr <= job->nq || last + last_nr <= job->readable || columns_tile(ks, q1 - last)) return 0;
  *edge = malloc((size_t)k * nr * sizeof(float));
  *edge_off = malloc((size_t)k * sizeof(ptrdiff_t));
  if (*edge && *edge_off) return 0;
  free(*edge);
  free(*edge_off);
  *edge = NULL;
  *edge_off = NULL;
  return -1;
}

// copy_row for rows boff[0..kn) of b, at dst + kk * stride.
static void copy_slice(float *dst, ptrdiff_t stride, const float *b, const ptrdiff_t *boff, ptrdiff_t kn,
                       ptrdiff_t width) {
  for (ptrdiff_t kk = 0; kk < kn; kk++, dst += stride) copy_row(dst, b + boff[kk], width);
}

// Whether the kernels read B from a tile-major copy packed once per GEMM (vck_conv_gemm_pack_b) when the caller
// splits the rows over several work items: the narrow tiles, whose calls otherwise each re-read every column
// tile's rows of B where they lie (k rows a B row apart; in a network, fresh from the previous layer in L3); and
// which copy a column chunk's scattered rows block by block themselves (run_column_blocks).
static int packs_b(isa_kernels ks) { return ks.vl * ks.nv <= 16; }

ptrdiff_t vck_conv_gemm_packed_floats(const vck_conv_gemm *job) {
  isa_kernels ks = kernels();
  const ptrdiff_t nr = ks.vl * ks.nv;
  if (!packs_b(ks) || job->k <= 0 || job->nq <= 0) return 0;
  return job->k * ((job->nq + nr - 1) / nr) * nr;
}

ptrdiff_t vck_conv_gemm_pack_b(const vck_conv_gemm *job, ptrdiff_t k0, ptrdiff_t k1, float *packed,
                               ptrdiff_t capacity) {
  isa_kernels ks = kernels();
  const ptrdiff_t nr = ks.vl * ks.nv, ntiles = (job->nq + nr - 1) / nr;
  if (job->k * ntiles * nr > capacity) return 0;
  pack_columns(job, nr, 0, job->nq, k0, k1, packed);
  return nr;
}

// The packed copy of B when the job brings one for these kernels and the columns start on a tile, else NULL.
static const float *packed_b(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t q0) {
  const ptrdiff_t nr = ks.vl * ks.nv;
  return job->packed_b && job->packed_nr == nr && q0 % nr == 0 ? job->packed_b : NULL;
}

// The tile at q read from the packed copy `pk`: its rows nr floats apart (`offsets`: kk * nr).
static column_tile packed_tile(const vck_conv_gemm *job, isa_kernels ks, const float *pk, ptrdiff_t q, ptrdiff_t q1,
                               const ptrdiff_t *offsets) {
  const ptrdiff_t nr = ks.vl * ks.nv;
  ptrdiff_t width = q1 - q < nr ? q1 - q : nr, nv;
  ptrdiff_t tnr = tile_columns(ks, width, &nv);
  column_tile t = {pk + (q / nr) * job->k * nr, offsets, q, q + width, nv, tnr};
  return t;
}

// Blocked order for narrow register tiles (AVX2's 6 x 16 reads 64 bytes of B per 12 multiply-adds, three times
// AVX-512's rate, more than L2 delivers, and k of thousands pushes a tile's B rows out of L1). For each block of
// BLOCK_KC weight columns and of rows whose weights fit BLOCK_A_FLOATS (L2), each column tile's slice of B
// (k block x nr) is copied contiguous (16-32 KB, in L1) and meets every row panel of the block; with fewer than
// BLOCK_PACK_MIN_PANELS panels the copy costs more than it saves and B is read in place. Partial sums wait
// between k blocks in a scratch (tile layout) and seed the next block's accumulators, so that each output is the
// same chain of multiply-adds in the same order as in one pass: the bits do not depend on the blocking.
enum { BLOCK_MIN_K = 256, BLOCK_KC = 512, BLOCK_A_FLOATS = 65536, BLOCK_PACK_MIN_PANELS = 12 };

static int blocked_order(isa_kernels ks, ptrdiff_t k) { return ks.vl * ks.nv <= 16 && k >= BLOCK_MIN_K; }

static int run_blocked(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t q0,
                       ptrdiff_t q1) {
  const ptrdiff_t mr = ks.mr, nr = ks.vl * ks.nv, k = job->k;
  const ptrdiff_t blocks = (k + BLOCK_KC - 1) / BLOCK_KC, kc = (k + blocks - 1) / blocks;  // even blocks
  ptrdiff_t mc = BLOCK_A_FLOATS / kc / mr * mr;
  if (mc < mr) mc = mr;
  const ptrdiff_t ntiles = (q1 - q0 + nr - 1) / nr, panels = (m1 - m0 + mr - 1) / mr;
  float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
  float *edge = NULL, *slice = NULL;  // slice rows nr floats apart (64 bytes: whole cache lines), whatever a tile's width
  ptrdiff_t *edge_off = NULL;
  const float *pk = packed_b(job, ks, q0);
  if (!pk && alloc_edge(job, ks, q0, q1, k, &edge, &edge_off) != 0) return -1;
  if (posix_memalign((void **)&slice, 64, (size_t)kc * nr * sizeof(float)) != 0) slice = NULL;
  ptrdiff_t *slice_off = malloc((size_t)kc * sizeof(ptrdiff_t));
  float *partials = blocks > 1 ? malloc((size_t)panels * ntiles * mr * nr * sizeof(float)) : NULL;
  const int ok = slice && slice_off && (blocks == 1 || partials);
  if (ok) {
    fill_row_offsets(slice_off, kc, nr);
    const column_tile last = pk ? packed_tile(job, ks, pk, q0 + (ntiles - 1) * nr, q1, slice_off)
                                : make_tile(job, ks, q0 + (ntiles - 1) * nr, q1, edge, edge_off);
    for (ptrdiff_t kb = 0; kb < blocks; kb++) {
      const ptrdiff_t k0 = kb * kc, kn = k0 + kc < k ? kc : k - k0;
      for (ptrdiff_t mb = m0; mb < m1; mb += mc) {
        const ptrdiff_t me = mb + mc < m1 ? mb + mc : m1;
        for (ptrdiff_t ti = 0; ti < ntiles; ti++) {
          column_tile t = ti == ntiles - 1 ? last
                          : pk ? packed_tile(job, ks, pk, q0 + ti * nr, q1, slice_off)
                               : make_tile(job, ks, q0 + ti * nr, q1, NULL, NULL);
          if (pk) {
            t.b += k0 * nr;  // the block's rows, contiguous already
          } else if ((me - mb) / mr >= BLOCK_PACK_MIN_PANELS) {
            copy_slice(slice, nr, t.b, t.boff + k0, kn, t.nr);
            t.b = slice;
            t.boff = slice_off;
          } else {
            t.boff += k0;
          }
          for (ptrdiff_t i = mb; i < me; i += mr) {
            float *sums = partials ? partials + (((i - m0) / mr) * ntiles + ti) * (mr * nr) : NULL;
            run_panel(job, ks, i, me, &t, tile, k0, kn, kb > 0 ? sums : NULL, kb < blocks - 1 ? sums : NULL, 0);
          }
        }
      }
    }
  }
  free(slice);
  free(slice_off);
  free(partials);
  free(edge);
  free(edge_off);
  return ok ? 0 : -1;
}

// Whether the rows of B lie far apart for chunks of `width` columns: a 1x1 conv reading its input in place, whose
// rows are H x W floats apart (3136 at 56 x 56) against chunks of a few hundred columns. A column tile's rows
// then sit on k different pages, and the kernels read them faster from a tile-major copy.
static int scattered_rows(const vck_conv_gemm *job, ptrdiff_t width) {
  if (job->k < 2) return 0;
  ptrdiff_t lo = job->boff[0], hi = lo;
  for (ptrdiff_t kk = 1; kk < job->k; kk++) {
    lo = job->boff[kk] < lo ? job->boff[kk] : lo;
    hi = job->boff[kk] > hi ? job->boff[kk] : hi;
  }
  return (hi - lo) / (job->k - 1) > 2 * width;
}

// The order for scattered B rows (narrow tiles): column blocks whose B (k x columns) fits in about 256 KB of L2,
// each copied tile-major (pack_columns) and met by every weight panel, a panel's products over the block's
// tiles written as mr rows of outputs in runs of the block's width. Against reading B in place (1x1 convs, single
// thread, column chunks as the threads take them): 1.1-1.4x for k = 16 .. 228 with 4 panels or more, 0.85-0.93x
// with 3 (16 rows), 0.85-0.93x on Winograd's contiguous rows; hence only for scattered rows and 4+ panels.
static int run_column_blocks(const vck_conv_gemm *job, isa_kernels ks, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t q0,
                             ptrdiff_t q1) {
  const ptrdiff_t mr = ks.mr, nr = ks.vl * ks.nv, k = job->k;
  ptrdiff_t qb = (65536 / k) / nr * nr;
  if (qb < nr) qb = nr;
  float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
  float *block = NULL;
  if (posix_memalign((void **)&block, 64, (size_t)(qb * k) * sizeof(float)) != 0) return -1;
  ptrdiff_t *offsets = malloc((size_t)k * sizeof(ptrdiff_t));
  if (!offsets) {
    free(block);
    return -1;
  }
  fill_row_offsets(offsets, k, nr);
  for (ptrdiff_t qs = q0; qs < q1; qs += qb) {
    const ptrdiff_t qe = qs + qb < q1 ? qs + qb : q1;
    pack_columns(job, nr, qs, qe, 0, k, block);
    for (ptrdiff_t i = m0; i < m1; i += mr) {
      for (ptrdiff_t q = qs; q < qe; q += nr) {
        ptrdiff_t nv, width = qe - q < nr ? qe - q : nr, tnr = tile_columns(ks, width, &nv);
        column_tile t = {block + (q - qs) * k, offsets, q, q + width, nv, tnr};
        run_panel(job, ks, i, m1, &t, tile, 0, k, NULL, NULL, 0);
      }
    }
  }
  free(block);
  free(offsets);
  return 0;
}

int vck_conv_gemm_run(const vck_conv_gemm *job, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t q0, ptrdiff_t q1) {
  isa_kernels ks = kernels();
  const ptrdiff_t mr = ks.mr, nr = ks.vl * ks.nv, k = job->k > 0 ? job->k : 1;
  if (m0 >= m1 || q0 >= q1) return 0;
  if (blocked_order(ks, job->k)) return run_blocked(job, ks, m0, m1, q0, q1);
  const float *pk = packed_b(job, ks, q0);
  if (!pk && packs_b(ks) && m1 - m0 > 3 * mr && scattered_rows(job, q1 - q0))
    return run_column_blocks(job, ks, m0, m1, q0, q1);
  float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
  // The rows' weights fit in L2 (at most 256 KB): every panel meets a column tile in one call of the panels
  // kernel, the tile's B in L1 (one call per panel and tile cost a tenth of a k = 64 tile: resnet50's 1x1 convs
  // with k = 64 0.9-0.94x the time, k = 128 0.96x). Else B fits in L2: panels outside, column tiles inside, so
  // each weight panel is read from memory once and stays in L1. Otherwise blocks of about 192 KB of weights stay
  // in L2 while the column tiles go by.
  const int panels_outside = k * (q1 - q0) <= 65536;
  ptrdiff_t mc = (m1 - m0) * k <= 65536 ? m1 - m0 : panels_outside ? mr : (49152 / k) / mr * mr;
  if (mc < mr) mc = mr;
  // A last tile for the columns kernel takes pairs of panels (run_column_pairs).
  if (columns_tile(ks, q1 - (q0 + (q1 - q0 - 1) / nr * nr)) && mc < 2 * mr) mc = 2 * mr;
  // Columns past the readable end of B (the last tile) are computed from a zero-padded copy of those columns,
  // unless B comes packed (its tiles zero-padded already; offsets_nr: its rows' offsets, kk * nr).
  float *edge = NULL;
  ptrdiff_t *edge_off = NULL, *offsets_nr = NULL;
  if (pk) {
    offsets_nr = malloc((size_t)k * sizeof(ptrdiff_t));
    if (!offsets_nr) return -1;
    fill_row_offsets(offsets_nr, k, nr);
  } else if (alloc_edge(job, ks, q0, q1, k, &edge, &edge_off) != 0) {
    return -1;
  }
  // The column tiles are prepared once (only the last one may need the padded copy).
  column_tile tiles[64];
  ptrdiff_t ntiles = 0;
  for (ptrdiff_t q = q0; q < q1; q += nr) {
    if (ntiles == 64) break;
    tiles[ntiles++] = pk ? packed_tile(job, ks, pk, q, q1, offsets_nr) : make_tile(job, ks, q, q1, edge, edge_off);
  }
  for (ptrdiff_t mb = m0; mb < m1; mb += mc) {
    ptrdiff_t me = mb + mc < m1 ? mb + mc : m1;
    for (ptrdiff_t q = q0, ti = 0; q < q1; q += nr, ti++) {
      column_tile t = ti < ntiles ? tiles[ti]
                      : pk ? packed_tile(job, ks, pk, q, q1, offsets_nr) : make_tile(job, ks, q, q1, edge, edge_off);
      // The first tile meets each panel's weights first (cold in a network): it prefetches the next panel's.
      const ptrdiff_t ahead_end = q == q0 ? m1 : 0;
      ptrdiff_t i = t.nv == 0 && columns_tile(ks, t.qe - t.q) ? run_column_pairs(job, ks, mb, me, &t, tile)
                                                               : run_full_panels(job, ks, mb, me, &t, ahead_end);
      for (; i < me; i += mr) run_panel(job, ks, i, me, &t, tile, 0, job->k, NULL, NULL, ahead_end);
    }
  }
  free(edge);
  free(edge_off);
  free(offsets_nr);
  return 0;
}

// dst[i] = src[2 i] for i < n: sixteen outputs from two vectors by one shuffle (the scalar loop was a tenth of a
// stride-2 conv's time on AVX-512). Reads no further than src[2 n - 2].
typedef float f16v __attribute__((vector_size(64), aligned(4)));
CLONES static void copy_even(float *dst, const float *src, ptrdiff_t n) {
  ptrdiff_t i = 0;
  for (; i + 16 < n; i += 16) {
    f16v a, b;
    memcpy(&a, src + 2 * i, sizeof a);
    memcpy(&b, src + 2 * i + 16, sizeof b);
    const f16v even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    memcpy(dst + i, &even, sizeof even);
  }
  for (; i < n; i++) dst[i] = src[2 * i];
}

#ifdef VCK_X86
// Lanes lo .. hi of 16 (clamped), as a mask.
static inline __mmask16 lane_range(ptrdiff_t lo, ptrdiff_t hi) {
  if (lo < 0) lo = 0;
  if (hi > 15) hi = 15;
  return lo > hi ? 0 : (__mmask16)(((1u << (hi + 1)) - 1) & ~((1u << lo) - 1));
}

// One packed row of a stride-2 phase on AVX-512: dst[j] = line[2 (j - c0)] for j in [c0, c1), zeros elsewhere in
// [0, rw), sixteen columns per step by masked loads (only line[0 .. 2 (c1 - c0) - 2] are read) and one shuffle,
// where the scalar gather and three memset calls per row were a tenth of a stride-2 conv's time. It keeps its
// place beside copy_even (which has an AVX-512 clone too): whole rows, padding included, with no scalar tail and
// no memset calls, resnet50's stride-2 3x3 convs at 56 and 28 ran 1.02-1.06x as fast (equal at 14).
__attribute__((target("avx512f"))) static void stride2_row_v4(float *dst, const float *line, ptrdiff_t c0, ptrdiff_t c1,
                                                              ptrdiff_t rw) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (ptrdiff_t j0 = 0; j0 < rw; j0 += 16) {
    // Source lane t of the pair of vectors is line[2 (j0 - c0) + t], needed for 2 c0 <= 2 j0 + t <= 2 c1 - 2.
    const ptrdiff_t lo = 2 * (c0 - j0), hi = 2 * (c1 - j0) - 2, at = 2 * (j0 - c0);
    const __mmask16 ma = lane_range(lo, hi), mb = lane_range(lo - 16, hi - 16);
    const __m512 a = _mm512_maskz_loadu_ps(ma, (const char *)line + at * (ptrdiff_t)sizeof(float));
    const __m512 b = _mm512_maskz_loadu_ps(mb, (const char *)line + (at + 16) * (ptrdiff_t)sizeof(float));
    _mm512_mask_storeu_ps(dst + j0, lane_range(0, rw - j0 - 1), _mm512_permutex2var_ps(a, even, b));
  }
}
#endif

void vck_conv_pack_input(const float *src, ptrdiff_t channels, ptrdiff_t h, ptrdiff_t w, ptrdiff_t sh, ptrdiff_t sw,
                         ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t rows, ptrdiff_t rw, ptrdiff_t variants,
                         ptrdiff_t variant_step, float *dst) {
#ifdef VCK_X86
  const int avx512 = __builtin_cpu_supports("avx512f");
#endif
  for (ptrdiff_t c = 0; c < channels; c++) {
    const float *plane = src + c * h * w;
    for (ptrdiff_t py = 0; py < sh; py++) {
      for (ptrdiff_t v = 0; v < variants; v++) {
        const ptrdiff_t px = v * variant_step;
        // Columns col of this phase read input column col * sw + px - pw; those in [0, w) are [c0, c1).
        ptrdiff_t first = pw - px, c0 = first <= 0 ? 0 : (first + sw - 1) / sw;
        ptrdiff_t lim = w + pw - px, c1 = lim <= 0 ? 0 : (lim + sw - 1) / sw;
        if (c1 > rw) c1 = rw;
        if (c0 > c1) c0 = c1;
        for (ptrdiff_t r = 0; r < rows; r++, dst += rw) {
          ptrdiff_t y = r * sh + py - ph;
          if (y < 0 || y >= h || c0 == c1) {
            memset(dst, 0, (size_t)rw * sizeof(float));
            continue;
          }
          const float *line = plane + y * w + (c0 * sw + px - pw);
#ifdef VCK_X86
          if (sw == 2 && avx512) {
            stride2_row_v4(dst, line, c0, c1, rw);
            continue;
          }
#endif
          memset(dst, 0, (size_t)c0 * sizeof(float));
          if (sw == 1) {
            memcpy(dst + c0, line, (size_t)(c1 - c0) * sizeof(float));
          } else if (sw == 2) {
            copy_even(dst + c0, line, c1 - c0);
          } else {
            for (ptrdiff_t col = c0; col < c1; col++) dst[col] = line[(col - c0) * sw];
          }
          memset(dst + c1, 0, (size_t)(rw - c1) * sizeof(float));
        }
      }
    }
  }
}

ptrdiff_t vck_conv_weight_grad_width(ptrdiff_t n) {
  isa_kernels ks = kernels();
  ptrdiff_t nv = (n + ks.vl - 1) / ks.vl;
  return ks.vl * (nv < 1 ? 1 : nv > ks.nv ? ks.nv : nv);
}

// Whether a kernel set computes tiles `nr` columns wide: a whole number of its vectors, no more than its widest.
static int covers(isa_kernels ks, ptrdiff_t nr) { return nr > 0 && nr % ks.vl == 0 && nr / ks.vl <= ks.nv; }

int vck_conv_weight_grad_run(const float *a, const ptrdiff_t *aoff, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t k,
                             const float *b, ptrdiff_t nr, ptrdiff_t tile_stride, const ptrdiff_t *boff, ptrdiff_t n,
                             float *c, ptrdiff_t ldc, int accumulate) {
  // The calling thread's kernels laid B out (vck_conv_weight_grad_width; the pool's workers take the caller's
  // choice), so they cover its tile width; a layout from other kernels is refused.
  isa_kernels ks = kernels();
  if (!covers(ks, nr)) return -1;
  ks.nv = (int)(nr / ks.vl);
  const ptrdiff_t mr = ks.mr;
  float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
  const float *arow[MR_MAX];
  // A panel (mr rows of k floats) stays in L1 while it meets every column tile of B, which stays in L2.
  for (ptrdiff_t i = m0; i < m1; i += mr) {
    ptrdiff_t rows = m1 - i < mr ? m1 - i : mr;
    for (ptrdiff_t r = 0; r < mr; r++) arow[r] = a + aoff[r < rows ? i + r : m1 - 1];
    for (ptrdiff_t t = 0, q = 0; q < n; t++, q += nr) {
      ptrdiff_t width = n - q < nr ? n - q : nr, nv = (width + ks.vl - 1) / ks.vl;
      const float *bt = b + t * tile_stride;
      float *ct = c + i * ldc + q;
      if (width == nv * ks.vl) {
        direct_store ds = {ct, ldc, rows, NULL, NULL, accumulate ? ct : NULL, -1, 0, 0.0f, NULL, 0};
        ks.micro[nv](k, arow, bt, boff, NULL, tile, &ds);
      } else {
        ks.micro[nv](k, arow, bt, boff, NULL, tile, NULL);
        for (ptrdiff_t r = 0; r < rows; r++)
          ks.finish(tile + r * nv * ks.vl, ct + r * ldc, width, 1.0f, 0.0f, accumulate ? ct + r * ldc : NULL, -1, 0.0f, 0);
      }
    }
  }
  return 0;
}

void vck_conv_grad_rows(const float *g, ptrdiff_t channels, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t vw, ptrdiff_t rows,
                        float *dst, ptrdiff_t ld) {
  const ptrdiff_t hw = oh * ow;
  for (ptrdiff_t q = 0; q < rows; q++) {
    ptrdiff_t oy = q / vw, ox = q - oy * vw;
    if (oy >= oh || ox >= ow) memset(dst + q * ld, 0, (size_t)channels * sizeof(float));
  }
  for (ptrdiff_t oy = 0; oy < oh; oy++) vck_transpose(g + oy * ow, channels, ow, hw, dst + oy * vw * ld, ld);
}
