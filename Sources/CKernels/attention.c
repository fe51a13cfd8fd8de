// Scaled dot-product attention of one head, softmax(q k^T * scale) v, sixteen queries at a time, computed on
// the transposed scores s^T [keys, 16 queries] so that each query is a vector lane:
// - scores: six keys by sixteen queries per register tile, the keys broadcast where they lie and the block's
//   queries, packed once as q^T [d, 16], reused from L1 for every key; each query's running maximum is an
//   element-wise max of the tiles (no horizontal reductions);
// - the exponentials and their sums run down s^T (in L1) with one shift per lane;
// - values: six features by sixteen queries per tile, the values broadcast where they lie, s^T's rows as the
//   vector operand, scaled by each lane's 1 / sum.
// Keys and values are read where they lie, except that strided rows (token rows, where q, k and v interleave)
// are first copied dense, once per head and thread (vck_attention_pack); the [queries, keys] matrix never
// leaves L1/L2.
#include "ckernels.h"
#include "activation_math.h"
#include "cpu.h"
#include <math.h>
#include <string.h>

#define QB 16

// Keys per pass of the values tiles: s^T's rows for them (8 KB) and their values stay in L1 while every panel of
// features goes over them.
#define KEY_CHUNK 128

// Scratch: one block's q^T, s^T, partial sums and output tile (block_floats), then the packed keys and values.
static ptrdiff_t block_floats(ptrdiff_t n, ptrdiff_t d) { return QB * (2 * d + n + 6) + n; }

ptrdiff_t vck_attention_scratch(ptrdiff_t n, ptrdiff_t d) { return block_floats(n, d) + 2 * n * d; }

void vck_attention_pack(vck_attention_head *h, float *scratch) {
  const ptrdiff_t n = h->n, d = h->d;
  if (n <= 0 || d <= 0) return;
  float *k = scratch + block_floats(n, d), *v = k + n * d;
  if (h->k_cs == 1 && h->k_rs != d) {
    for (ptrdiff_t j = 0; j < n; j++) memcpy(k + j * d, h->k + j * h->k_rs, (size_t)d * sizeof(float));
    h->k = k;
    h->k_rs = d;
  }
  if (h->v_cs == 1 && h->v_rs != d) {
    for (ptrdiff_t j = 0; j < n; j++) memcpy(v + j * d, h->v + j * h->v_rs, (size_t)d * sizeof(float));
    h->v = v;
    h->v_rs = d;
  }
}

// One block of the m <= 16 queries at q: out_i = softmax(scale q_i k^T) v for each. `scratch` holds
// vck_attention_scratch floats.
typedef void (*attention_block_fn)(const vck_attention_head *h, const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs,
                                   int m, float *scratch, float *out, ptrdiff_t o_rs, ptrdiff_t o_cs);

// Query by query, through vck_exp_shift_sum.
static void block_c(const vck_attention_head *h, const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, int m,
                    float *scratch, float *out, ptrdiff_t o_rs, ptrdiff_t o_cs) {
  const ptrdiff_t n = h->n, d = h->d;
  float *s = scratch;
  for (int i = 0; i < m; i++) {
    float top = -INFINITY;
    for (ptrdiff_t j = 0; j < n; j++) {
      float acc = 0;
      for (ptrdiff_t c = 0; c < d; c++) acc += q[i * q_rs + c * q_cs] * h->k[j * h->k_rs + c * h->k_cs];
      s[j] = acc * h->scale;
      top = s[j] > top ? s[j] : top;
    }
    const float inv = 1 / vck_exp_shift_sum(s, s, n, top);
    for (ptrdiff_t c = 0; c < d; c++) {
      float acc = 0;
      for (ptrdiff_t j = 0; j < n; j++) acc += s[j] * h->v[j * h->v_rs + c * h->v_cs];
      out[i * o_rs + c * o_cs] = acc * inv;
    }
  }
}

#ifdef VCK_X86
#define ATTR_V3 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE_V3 __attribute__((target("avx2,fma"), always_inline)) static inline

// dst[j * ds + i] = src[i * ss + j] for i, j < 8, in registers.
ALWAYS_INLINE_V3 void transpose8x8_v3(const float *src, ptrdiff_t ss, float *dst, ptrdiff_t ds) {
  __m256 r[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ss);
  transpose8x8_ps(r);
  for (int j = 0; j < 8; j++) _mm256_storeu_ps(dst + j * ds, r[j]);
}

// q^T [d, 16] of the block's queries, zero in the lanes past m.
ATTR_V3 static void pack_queries_v3(const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, int m, ptrdiff_t d, float *qt) {
  if (q_rs == 1) {  // features as rows of contiguous queries (token columns)
    for (ptrdiff_t c = 0; c < d; c++) {
      memcpy(qt + c * QB, q + c * q_cs, (size_t)m * sizeof(float));
      memset(qt + c * QB + m, 0, (size_t)(QB - m) * sizeof(float));
    }
    return;
  }
  int i0 = 0;
  if (q_cs == 1)  // queries as rows of contiguous features (token rows): 8 x 8 transposes
    for (; i0 + 8 <= m; i0 += 8) {
      ptrdiff_t c = 0;
      for (; c + 8 <= d; c += 8) transpose8x8_v3(q + i0 * q_rs + c, q_rs, qt + c * QB + i0, QB);
      for (; c < d; c++)
        for (int i = i0; i < i0 + 8; i++) qt[c * QB + i] = q[i * q_rs + c];
    }
  for (ptrdiff_t c = 0; c < d; c++)
    for (int i = i0; i < QB; i++) qt[c * QB + i] = i < m ? q[i * q_rs + c * q_cs] : 0;
}

// out^T for features [c0, c0 + nf) (nf <= 6, a constant where inlined) over keys [j0, j1): the partial sums wait in
// `sums` ([d, 16]) between chunks of keys, and after the last chunk are scaled by each lane's 1 / sum and stored.
ALWAYS_INLINE_V3 void values_panel_v3(const vck_attention_head *h, const float *st, ptrdiff_t j0, ptrdiff_t j1,
                                      ptrdiff_t c0, const int nf, float *sums, __m256 inv0, __m256 inv1, int m,
                                      float *tile, float *out, ptrdiff_t o_rs, ptrdiff_t o_cs) {
  const ptrdiff_t v_rs = h->v_rs;
  const float *vr[6];
  for (int f = 0; f < nf; f++) vr[f] = h->v + (c0 + f) * h->v_cs;
  __m256 acc[6][2];
  for (int f = 0; f < nf; f++) {
    acc[f][0] = j0 > 0 ? _mm256_loadu_ps(sums + (c0 + f) * QB) : _mm256_setzero_ps();
    acc[f][1] = j0 > 0 ? _mm256_loadu_ps(sums + (c0 + f) * QB + 8) : _mm256_setzero_ps();
  }
  const float *b = st + j0 * QB;
  for (ptrdiff_t j = j0; j < j1; j++, b += QB) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    for (int f = 0; f < nf; f++) {
      const __m256 a = _mm256_broadcast_ss(vr[f] + j * v_rs);
      acc[f][0] = _mm256_fmadd_ps(a, b0, acc[f][0]);
      acc[f][1] = _mm256_fmadd_ps(a, b1, acc[f][1]);
    }
  }
  if (j1 < h->n) {
    for (int f = 0; f < nf; f++) {
      _mm256_storeu_ps(sums + (c0 + f) * QB, acc[f][0]);
      _mm256_storeu_ps(sums + (c0 + f) * QB + 8, acc[f][1]);
    }
    return;
  }
  const int direct = o_rs == 1 && m == QB;  // output features as rows of contiguous queries (token columns)
  for (int f = 0; f < nf; f++) {
    float *dst = direct ? out + (c0 + f) * o_cs : tile + f * QB;
    _mm256_storeu_ps(dst, _mm256_mul_ps(acc[f][0], inv0));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(acc[f][1], inv1));
  }
  if (!direct)
    for (int f = 0; f < nf; f++)
      for (int i = 0; i < m; i++) out[i * o_rs + (c0 + f) * o_cs] = tile[f * QB + i];
}

ATTR_V3 static void block_v3(const vck_attention_head *h, const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, int m,
                             float *scratch, float *out, ptrdiff_t o_rs, ptrdiff_t o_cs) {
  const ptrdiff_t n = h->n, d = h->d, k_rs = h->k_rs, k_cs = h->k_cs;
  float *qt = scratch, *st = qt + QB * d, *tile = st + QB * n, *sums = tile + 6 * QB;
  pack_queries_v3(q, q_rs, q_cs, m, d, qt);
  const __m256 vscale = _mm256_set1_ps(h->scale);
  __m256 mx0 = _mm256_set1_ps(-INFINITY), mx1 = mx0;
  // s^T, six keys at a time; a last panel of fewer keys repeats its last key (a real score: harmless in the max,
  // never stored).
  for (ptrdiff_t j0 = 0; j0 < n; j0 += 6) {
    const float *kr[6];
    for (int r = 0; r < 6; r++) kr[r] = h->k + (j0 + r < n ? j0 + r : n - 1) * k_rs;
    __m256 acc[6][2];
    for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const float *b = qt;
    for (ptrdiff_t c = 0; c < d; c++, b += QB) {
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
      for (int r = 0; r < 6; r++) {
        const __m256 a = _mm256_broadcast_ss(kr[r] + c * k_cs);
        acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < 6; r++) {
      const __m256 s0 = _mm256_mul_ps(acc[r][0], vscale), s1 = _mm256_mul_ps(acc[r][1], vscale);
      mx0 = _mm256_max_ps(mx0, s0);
      mx1 = _mm256_max_ps(mx1, s1);
      if (j0 + r < n) {
        _mm256_storeu_ps(st + (j0 + r) * QB, s0);
        _mm256_storeu_ps(st + (j0 + r) * QB + 8, s1);
      }
    }
  }
  // exp(s - each query's maximum) in place, and the sums.
  __m256 sum0 = _mm256_setzero_ps(), sum1 = sum0;
  for (ptrdiff_t j = 0; j < n; j++) {
    const __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(st + j * QB), mx0));
    const __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(st + j * QB + 8), mx1));
    _mm256_storeu_ps(st + j * QB, e0);
    _mm256_storeu_ps(st + j * QB + 8, e1);
    sum0 = _mm256_add_ps(sum0, e0);
    sum1 = _mm256_add_ps(sum1, e1);
  }
  const __m256 inv0 = _mm256_div_ps(_mm256_set1_ps(1), sum0), inv1 = _mm256_div_ps(_mm256_set1_ps(1), sum1);
  // out^T, six features at a time (then the 1 to 5 left), over chunks of keys; the partial sums wait in `sums`
  // ([d, 16]) between chunks.
  for (ptrdiff_t j0 = 0; j0 < n; j0 += KEY_CHUNK) {
    const ptrdiff_t j1 = n - j0 < KEY_CHUNK ? n : j0 + KEY_CHUNK;
    ptrdiff_t c0 = 0;
    for (; c0 + 6 <= d; c0 += 6) values_panel_v3(h, st, j0, j1, c0, 6, sums, inv0, inv1, m, tile, out, o_rs, o_cs);
    switch (d - c0) {
    case 1: values_panel_v3(h, st, j0, j1, c0, 1, sums, inv0, inv1, m, tile, out, o_rs, o_cs); break;
    case 2: values_panel_v3(h, st, j0, j1, c0, 2, sums, inv0, inv1, m, tile, out, o_rs, o_cs); break;
    case 3: values_panel_v3(h, st, j0, j1, c0, 3, sums, inv0, inv1, m, tile, out, o_rs, o_cs); break;
    case 4: values_panel_v3(h, st, j0, j1, c0, 4, sums, inv0, inv1, m, tile, out, o_rs, o_cs); break;
    case 5: values_panel_v3(h, st, j0, j1, c0, 5, sums, inv0, inv1, m, tile, out, o_rs, o_cs); break;
    default: break;
    }
  }
}
#endif

// The CPU's best kernel, found on first use (racing first calls store the same pointer).
static attention_block_fn best_known = NULL;

static attention_block_fn best_block(void) {
#ifdef VCK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return block_v3;
#endif
  return block_c;
}

// The kernel of an ISA level (1, 3 or 4), or NULL when the CPU lacks it.
static attention_block_fn block_of_level(int level) {
  if (level == 1) return block_c;
#ifdef VCK_X86
  if ((level == 3 || level == 4) && best_block() == block_v3) return block_v3;
#endif
  return NULL;
}

int vck_attention_set_isa(int level) {
  if (level != 0 && !block_of_level(level)) return -1;
  vck_thread_isa.attention = level;
  return 0;
}

void vck_attention_queries(const vck_attention_head *h, const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, ptrdiff_t m,
                           float *scratch, float *out, ptrdiff_t o_rs, ptrdiff_t o_cs) {
  attention_block_fn k = vck_thread_isa.attention ? block_of_level(vck_thread_isa.attention)
                                                   : __atomic_load_n(&best_known, __ATOMIC_ACQUIRE);
  if (!k) {
    k = best_block();
    __atomic_store_n(&best_known, k, __ATOMIC_RELEASE);
  }
  if (h->n <= 0 || h->d <= 0) return;
  for (ptrdiff_t i0 = 0; i0 < m; i0 += QB)
    k(h, q + i0 * q_rs, q_rs, q_cs, m - i0 < QB ? (int)(m - i0) : QB, scratch, out + i0 * o_rs, o_rs, o_cs);
}
