// Scaled dot-product attention of one head, softmax(q k^T * scale) v, six queries at a time: their scores
// ([6, keys], in L1) are computed by a register-tiled pass that also keeps each row's maximum in registers, the
// exponentials are taken in place, and a second register-tiled pass multiplies them by v. The [queries, keys]
// score matrix never goes through L2, and no GEMM call packs k or v per query block: they are packed once per
// head (vck_attention_pack) into the layouts the two passes read.
#include "ckernels.h"
#include "cpu.h"
#include <math.h>
#include <string.h>

#define QROWS 6

static inline ptrdiff_t round_up(ptrdiff_t x, ptrdiff_t to) { return (x + to - 1) / to * to; }

// Scratch layout: k^T by tiles of 16 keys (tile t's feature c at kt + (t * d + c) * 16, zero past n, so that the
// scores pass streams it in order), v [n, d8] (zero past d) unless it is read in place, scores [QROWS, n16], an
// output tile [QROWS, d8] and the rows' 1 / sum.
typedef struct {
  float *kt, *s, *tile, *inv;
  const float *v;
  ptrdiff_t ldv, n16, d8;
} attention_scratch;

// Values rows of d floats, d a whole number of vectors, are read where they are.
static int values_in_place(const vck_attention_head *h) { return h->v_cs == 1 && h->d % 8 == 0; }

static attention_scratch scratch_parts(const vck_attention_head *h, float *scratch) {
  const ptrdiff_t n16 = round_up(h->n, 16), d8 = round_up(h->d, 8);
  attention_scratch p = {scratch, 0, 0, 0, scratch + h->d * n16, d8, n16, d8};
  p.s = (float *)p.v + h->n * d8;
  p.tile = p.s + QROWS * n16;
  p.inv = p.tile + QROWS * d8;
  if (values_in_place(h)) {
    p.v = h->v;
    p.ldv = h->v_rs;
  }
  return p;
}

ptrdiff_t vck_attention_scratch(ptrdiff_t n, ptrdiff_t d) {
  return d * round_up(n, 16) + n * round_up(d, 8) + QROWS * round_up(n, 16) + QROWS * round_up(d, 8) + QROWS;
}

// k^T's tiles, generic strides (eight keys at a time, so that the rows being read stay in L1).
static void pack_keys_c(const vck_attention_head *h, float *kt) {
  const ptrdiff_t n = h->n, d = h->d;
  for (ptrdiff_t j0 = 0; j0 < round_up(n, 16); j0 += 8) {
    float *tile = kt + (j0 / 16 * d) * 16 + j0 % 16;
    for (ptrdiff_t c = 0; c < d; c++)
      for (ptrdiff_t j = 0; j < 8; j++) tile[c * 16 + j] = j0 + j < n ? h->k[(j0 + j) * h->k_rs + c * h->k_cs] : 0;
  }
}

// v [n, d8] (zero past d), generic strides.
static void pack_values_c(const vck_attention_head *h, float *v, ptrdiff_t d8) {
  for (ptrdiff_t j = 0; j < h->n; j++)
    for (ptrdiff_t c = 0; c < d8; c++) v[j * d8 + c] = c < h->d ? h->v[j * h->v_rs + c * h->v_cs] : 0;
}

// The two passes, per ISA. scores: s[r][j] = scale * q_r . k_j for the `rows` queries at q (row r at q + r * q_rs,
// element c at + c * q_cs), j < n16 (those past n set to -inf), and maxes[r] = the row's maximum.
// values: tile[r][c] = inv[r] * sum over j < n of s[r][j] v[j][c], for c < d8.
typedef struct {
  void (*pack_keys)(const vck_attention_head *h, float *kt);
  void (*pack_values)(const vck_attention_head *h, float *v, ptrdiff_t d8);
  void (*scores)(const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, int rows, const attention_scratch *p, ptrdiff_t n,
                 ptrdiff_t d, float scale, float *maxes);
  void (*values)(int rows, const attention_scratch *p, ptrdiff_t n);
} attention_kernels;

static void scores_c(const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, int rows, const attention_scratch *p,
                     ptrdiff_t n, ptrdiff_t d, float scale, float *maxes) {
  for (int r = 0; r < rows; r++) {
    float *s = p->s + r * p->n16, m = -INFINITY;
    for (ptrdiff_t j = 0; j < p->n16; j++) {
      float acc = 0;
      for (ptrdiff_t c = 0; c < d; c++) acc += q[r * q_rs + c * q_cs] * p->kt[(j / 16 * d + c) * 16 + j % 16];
      s[j] = j < n ? acc * scale : -INFINITY;
      m = s[j] > m ? s[j] : m;
    }
    maxes[r] = m;
  }
}

static void values_c(int rows, const attention_scratch *p, ptrdiff_t n) {
  for (int r = 0; r < rows; r++) {
    const float *s = p->s + r * p->n16;
    float *t = p->tile + r * p->d8;
    for (ptrdiff_t c = 0; c < p->d8; c++) t[c] = 0;
    for (ptrdiff_t j = 0; j < n; j++)
      for (ptrdiff_t c = 0; c < p->d8; c++) t[c] += s[j] * p->v[j * p->ldv + c];
    for (ptrdiff_t c = 0; c < p->d8; c++) t[c] *= p->inv[r];
  }
}

static const attention_kernels attention_portable = {pack_keys_c, pack_values_c, scores_c, values_c};

#ifdef VCK_X86
#define ATTR_V3 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE_V3 __attribute__((target("avx2,fma"), always_inline)) static inline

// Rows past `rows` repeat the last one (computed, never stored), so the tile loops keep all six rows unrolled.
ATTR_V3 static void scores_v3(const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, int rows, const attention_scratch *p,
                              ptrdiff_t n, ptrdiff_t d, float scale, float *maxes) {
  const float *qr[QROWS];
  for (int r = 0; r < QROWS; r++) qr[r] = q + (r < rows ? r : rows - 1) * q_rs;
  const ptrdiff_t n16 = p->n16;
  const __m256 vscale = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
  __m256 mx[QROWS];
  for (int r = 0; r < QROWS; r++) mx[r] = ninf;
  for (ptrdiff_t j0 = 0; j0 < n16; j0 += 16) {
    __m256 acc[QROWS][2];
    for (int r = 0; r < QROWS; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const float *b = p->kt + j0 * d;
    for (ptrdiff_t c = 0; c < d; c++, b += 16) {
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
      for (int r = 0; r < QROWS; r++) {
        const __m256 a = _mm256_broadcast_ss(qr[r] + c * q_cs);
        acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
      }
    }
    // The keys past n (zero columns of k^T) get -inf: they must not raise a row's maximum.
    __m256 keep0 = ninf, keep1 = ninf;
    if (j0 + 16 > n) {
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256i left = _mm256_set1_epi32((int)(n - j0));
      keep0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(left, lane));
      keep1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(left, _mm256_add_epi32(lane, _mm256_set1_epi32(8))));
    }
    for (int r = 0; r < QROWS; r++) {
      __m256 s0 = _mm256_mul_ps(acc[r][0], vscale), s1 = _mm256_mul_ps(acc[r][1], vscale);
      if (j0 + 16 > n) {
        s0 = _mm256_blendv_ps(ninf, s0, keep0);
        s1 = _mm256_blendv_ps(ninf, s1, keep1);
      }
      mx[r] = _mm256_max_ps(mx[r], _mm256_max_ps(s0, s1));
      if (r < rows) {
        _mm256_storeu_ps(p->s + r * n16 + j0, s0);
        _mm256_storeu_ps(p->s + r * n16 + j0 + 8, s1);
      }
    }
  }
  // Every row, rows past `rows` included: indexing the accumulators by a run-time bound would keep them in memory.
  for (int r = 0; r < QROWS; r++) {
    float lanes[8];
    _mm256_storeu_ps(lanes, mx[r]);
    float m = lanes[0];
    for (int l = 1; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
    maxes[r] = m;
  }
}

// NV vectors (8 columns each) of the output tile, starting at column c0.
ALWAYS_INLINE_V3 void values_block_v3(int rows, const attention_scratch *p, ptrdiff_t n, ptrdiff_t c0, const int nv) {
  const float *sr[QROWS];
  for (int r = 0; r < QROWS; r++) sr[r] = p->s + (r < rows ? r : rows - 1) * p->n16;
  __m256 acc[QROWS][2];
  for (int r = 0; r < QROWS; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const float *b = p->v + c0;
  for (ptrdiff_t j = 0; j < n; j++, b += p->ldv) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = nv > 1 ? _mm256_loadu_ps(b + 8) : b0;
    for (int r = 0; r < QROWS; r++) {
      const __m256 a = _mm256_broadcast_ss(sr[r] + j);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      if (nv > 1) acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < QROWS; r++) {
    if (r >= rows) break;
    const __m256 f = _mm256_set1_ps(p->inv[r]);
    float *t = p->tile + r * p->d8 + c0;
    _mm256_storeu_ps(t, _mm256_mul_ps(acc[r][0], f));
    if (nv > 1) _mm256_storeu_ps(t + 8, _mm256_mul_ps(acc[r][1], f));
  }
}

ATTR_V3 static void values_v3(int rows, const attention_scratch *p, ptrdiff_t n) {
  ptrdiff_t c0 = 0;
  for (; c0 + 16 <= p->d8; c0 += 16) values_block_v3(rows, p, n, c0, 2);
  if (c0 < p->d8) values_block_v3(rows, p, n, c0, 1);
}

// dst[j * ds + i] = src[i * ss + j] for i, j < 8, in registers.
ALWAYS_INLINE_V3 void transpose8x8_v3(const float *src, ptrdiff_t ss, float *dst, ptrdiff_t ds) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // Column j: the low 128-bit halves of r[j] and r[j + 4] (j < 4), or their high halves (j - 4).
  for (int j = 0; j < 4; j++) {
    _mm256_storeu_ps(dst + j * ds, _mm256_permute2f128_ps(r[j], r[j + 4], 0x20));
    _mm256_storeu_ps(dst + (j + 4) * ds, _mm256_permute2f128_ps(r[j], r[j + 4], 0x31));
  }
}

// Keys as rows of contiguous features (token rows): 8 x 8 blocks transposed in registers; features as rows of
// contiguous keys (token columns): 16-key row pieces copied.
ATTR_V3 static void pack_keys_v3(const vck_attention_head *h, float *kt) {
  const ptrdiff_t n = h->n, d = h->d;
  if (h->k_rs == 1) {
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 16) {
      const ptrdiff_t nj = n - j0 < 16 ? n - j0 : 16;
      float *tile = kt + j0 * d;
      for (ptrdiff_t c = 0; c < d; c++) {
        memcpy(tile + c * 16, h->k + c * h->k_cs + j0, (size_t)nj * sizeof(float));
        memset(tile + c * 16 + nj, 0, (size_t)(16 - nj) * sizeof(float));
      }
    }
    return;
  }
  if (h->k_cs != 1 || d % 8 != 0) {
    pack_keys_c(h, kt);
    return;
  }
  ptrdiff_t j0 = 0;
  for (; j0 + 8 <= n; j0 += 8)
    for (ptrdiff_t c = 0; c < d; c += 8)
      transpose8x8_v3(h->k + j0 * h->k_rs + c, h->k_rs, kt + (j0 / 16 * d + c) * 16 + j0 % 16, 16);
  // The last keys (fewer than eight) and the zero half-tile past them.
  for (; j0 < round_up(n, 16); j0 += 8) {
    float *tile = kt + (j0 / 16 * d) * 16 + j0 % 16;
    for (ptrdiff_t c = 0; c < d; c++)
      for (ptrdiff_t j = 0; j < 8; j++) tile[c * 16 + j] = j0 + j < n ? h->k[(j0 + j) * h->k_rs + c] : 0;
  }
}

// Values as rows of contiguous keys (token columns): 8 x 8 blocks transposed in registers.
ATTR_V3 static void pack_values_v3(const vck_attention_head *h, float *v, ptrdiff_t d8) {
  const ptrdiff_t n = h->n, d = h->d, cs = h->v_cs;
  if (h->v_rs != 1 || d % 8 != 0) {
    pack_values_c(h, v, d8);
    return;
  }
  ptrdiff_t j0 = 0;
  for (; j0 + 8 <= n; j0 += 8)
    for (ptrdiff_t c = 0; c < d; c += 8) transpose8x8_v3(h->v + c * cs + j0, cs, v + j0 * d8 + c, d8);
  for (; j0 < n; j0++)
    for (ptrdiff_t c = 0; c < d; c++) v[j0 * d8 + c] = h->v[c * cs + j0];
}

static const attention_kernels attention_v3 = {pack_keys_v3, pack_values_v3, scores_v3, values_v3};
#endif

static const attention_kernels *current_attention = NULL;

static const attention_kernels *best_attention(void) {
#ifdef VCK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &attention_v3;
#endif
  return &attention_portable;
}

int vck_attention_set_isa(int level) {
  const attention_kernels *best = best_attention(), *k = NULL;
  if (level == 0) k = best;
  if (level == 1) k = &attention_portable;
#ifdef VCK_X86
  if ((level == 3 || level == 4) && best == &attention_v3) k = &attention_v3;
#endif
  if (!k) return -1;
  __atomic_store_n(&current_attention, k, __ATOMIC_RELEASE);
  return 0;
}

static const attention_kernels *kernels(void) {
  const attention_kernels *k = __atomic_load_n(&current_attention, __ATOMIC_ACQUIRE);
  if (!k) {
    k = best_attention(); // racing first calls store the same pointer
    __atomic_store_n(&current_attention, k, __ATOMIC_RELEASE);
  }
  return k;
}

void vck_attention_pack(const vck_attention_head *h, float *scratch) {
  if (h->n <= 0 || h->d <= 0) return;
  attention_scratch p = scratch_parts(h, scratch);
  kernels()->pack_keys(h, p.kt);
  if (!values_in_place(h)) kernels()->pack_values(h, (float *)p.v, p.d8);
}

void vck_attention_queries(const vck_attention_head *h, const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, ptrdiff_t m,
                           float *scratch, float *out, ptrdiff_t o_rs, ptrdiff_t o_cs) {
  const attention_kernels *k = kernels();
  const ptrdiff_t n = h->n, d = h->d;
  if (m <= 0 || n <= 0 || d <= 0) return;
  attention_scratch p = scratch_parts(h, scratch);
  float maxes[QROWS];
  for (ptrdiff_t r0 = 0; r0 < m; r0 += QROWS) {
    const int rows = m - r0 < QROWS ? (int)(m - r0) : QROWS;
    k->scores(q + r0 * q_rs, q_rs, q_cs, rows, &p, n, d, h->scale, maxes);
    for (int r = 0; r < rows; r++) p.inv[r] = 1 / vck_exp_shift_sum(p.s + r * p.n16, p.s + r * p.n16, n, maxes[r]);
    k->values(rows, &p, n);
    for (int r = 0; r < rows; r++) {
      const float *t = p.tile + r * p.d8;
      float *o = out + (r0 + r) * o_rs;
      if (o_cs == 1) memcpy(o, t, (size_t)d * sizeof(float));
      else for (ptrdiff_t c = 0; c < d; c++) o[c * o_cs] = t[c];
    }
  }
}
