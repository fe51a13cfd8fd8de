// Hot element-wise loops written in C so that the compiler vectorizes them for the CPU it runs on
// (target_clones: AVX-512, AVX2+FMA or baseline, chosen at load time), whatever flags the Swift code was built with.
#ifndef VISIONCORE_CKERNELS_H
#define VISIONCORE_CKERNELS_H
#include <stddef.h>

/// Activation codes; keep in step with VisionCore's UnaryOp raw values.
enum {
  VCK_RELU = 0, VCK_RELU6 = 1, VCK_LEAKY_RELU = 2, VCK_SILU = 3, VCK_GELU_ERF = 4, VCK_GELU_TANH = 5,
  VCK_SIGMOID = 6, VCK_TANH = 7, VCK_HARD_SWISH = 8, VCK_HARD_SIGMOID = 9, VCK_EXP = 10, VCK_LOG = 11,
  VCK_SQRT = 12, VCK_NEG = 13, VCK_ABS = 14
};

/// dst[i] = f(src[i]) for the transcendental activations above; returns 0, or -1 for an unknown code.
int vck_activation(int op, const float *src, float *dst, ptrdiff_t n);

/// dx[i] = g[i] * f'(x[i]) for every activation code above (y = f(x), used where it is cheaper; `parameter` is
/// LeakyReLU's slope), with PyTorch's conventions at the kinks; returns 0, or -1 for an unknown code.
int vck_activation_grad(int op, const float *g, const float *x, const float *y, float *dx, ptrdiff_t n, float parameter);

/// dst[i] = exp(src[i] - shift), returning the sum of the results (softmax's inner loop).
float vck_exp_shift_sum(const float *src, float *dst, ptrdiff_t n, float shift);

/// The ISA level of each kernel family on the calling thread, as the vck_*_set_isa functions below set it for tests
/// (0: the best this CPU has). Thread-local: a test's choice never changes what other threads compute.
typedef struct {
  int activation, conv_gemm, im2col, attention, transpose;
} vck_isa_choice;
/// The calling thread's choice, and setting it (VisionCore's pool gives each job's workers the caller's).
void vck_isa_choice_get(vck_isa_choice *out);
void vck_isa_choice_set(const vck_isa_choice *choice);

/// Selects the variant of the kernels above for an ISA level (4: AVX-512, 3: AVX2+FMA, 1: portable C, 0: the best
/// this CPU has) on the calling thread (vck_isa_choice), so that tests can check every variant on one machine;
/// returns -1 when the CPU lacks that level. The silu and gelu gradients of vck_activation_grad follow it too
/// (AVX-512, or target_clones loops otherwise).
int vck_activation_set_isa(int level);
/// One convolution GEMM (see conv_gemm.c): C = epilogue(A x B) with A [m, k] row-major (`lda`), row kk of B at
/// b + boff[kk], contiguous in the virtual column q in [0, nq). Virtual column q = oy * vw + ox (of an image, see
/// `period`) is an output when ox < ow (and oy < oh) and is stored at c + row * ldc + oy * ow + ox, as act(acc * scale[row] + shift[row] + residual[same])
/// (or with the residual added after the activation).
typedef struct {
  const float *a;
  ptrdiff_t lda, m, k;
  const ptrdiff_t *aoff; /* NULL, or row r of A at a + aoff[r] instead of a + r * lda */
  const float *b;
  const ptrdiff_t *boff;
  ptrdiff_t nq, vw, ow;
  float *c;
  ptrdiff_t ldc;
  const float *scale, *shift, *residual; /* each may be NULL */
  int activation;                         /* an activation code above, or -1 for none */
  float parameter;                        /* LeakyReLU's slope */
  int residual_after;                     /* nonzero: act(acc * scale + shift) + residual instead */
  /* Several images in one column space (small maps): image i owns virtual columns [i * period, (i + 1) * period),
     with oh output rows, and its outputs start image_stride floats after the previous image's (also in residual).
     period 0: one image. */
  ptrdiff_t period, oh, image_stride;
  /* Columns of each B row that may be read (at least nq): where a last partial tile fits, it is read in place
     (the columns past nq are computed and dropped) instead of from a zero-padded copy. */
  ptrdiff_t readable;
  /* NULL, or B's column tiles packed beforehand by vck_conv_gemm_pack_b (packed_nr columns each), read in place of
     B by every call whose column range starts on a tile (when the kernels in use have packed_nr columns). */
  const float *packed_b;
  ptrdiff_t packed_nr;
} vck_conv_gemm;

/// Computes rows [m0, m1) and virtual columns [q0, q1) of `job`; returns 0, or -1 when scratch memory ran out.
int vck_conv_gemm_run(const vck_conv_gemm *job, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t q0, ptrdiff_t q1);

/// Floats of the tile-major copy of B that vck_conv_gemm_pack_b writes for a job (k rows of every column tile of
/// [0, nq), zero-padded), or 0 where the kernels in use read B in place instead (AVX-512's wide tiles).
ptrdiff_t vck_conv_gemm_packed_floats(const vck_conv_gemm *job);
/// Copies rows [k0, k1) of the job's B into `packed` (tile t's row kk at packed + (t * k + kk) * nr, zero past
/// nq); returns the tile width nr, to be stored in the job's packed_nr with the pointer, or 0 (nothing written)
/// when that layout needs more than `capacity` floats.
ptrdiff_t vck_conv_gemm_pack_b(const vck_conv_gemm *job, ptrdiff_t k0, ptrdiff_t k1, float *packed,
                               ptrdiff_t capacity);

/// The register tile of the best kernels this CPU has (whatever the calling thread's vck_isa_choice): work split
/// on multiples of it wastes nothing.
void vck_conv_gemm_tile(ptrdiff_t *mr, ptrdiff_t *nr);

/// Selects the GEMM kernels of an ISA level (4: AVX-512, 3: AVX2+FMA, 1: SSE2, 0: the best this CPU has) on the
/// calling thread (vck_isa_choice), so that tests can check every variant on one machine; returns -1 when the CPU
/// lacks that level.
int vck_conv_gemm_set_isa(int level);
/// The ISA level of the kernels the calling thread uses (4, 3 or 1); the Winograd transforms follow it.
int vck_conv_gemm_isa(void);

/// The column tile width for a weight-gradient GEMM of n columns: the kernels' full width, or, for fewer columns,
/// the narrowest whole number of vectors that holds them (no zero columns computed).
ptrdiff_t vck_conv_weight_grad_width(ptrdiff_t n);

/// The weight-gradient GEMM of a convolution, rows [m0, m1) of C [m, n] (+)= A x B: row r of A (a tap) at
/// a + aoff[r], k contiguous floats (the packed input, shifted); B [k, n] stored by column tiles of the register
/// tile's width `nr` (`vck_conv_weight_grad_width`), tile t at b + t * tile_stride with row kk at boff[kk] (nr
/// floats, zero past n), run by the calling thread's kernels, which laid it out. `accumulate`: add to C instead of
/// storing. Returns 0, or -1 when those kernels do not cover that width (a layout from other kernels).
int vck_conv_weight_grad_run(const float *a, const ptrdiff_t *aoff, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t k,
                             const float *b, ptrdiff_t nr, ptrdiff_t tile_stride, const ptrdiff_t *boff, ptrdiff_t n,
                             float *c, ptrdiff_t ldc, int accumulate);

/// The output gradient of one image as the B operand of the weight-gradient GEMM: row q = oy * vw + ox of `dst`
/// (row stride `ld`) holds the `channels` values g[c][oy][ox] of a [channels, oh, ow] plane stack; rows
/// [0, rows) that are not outputs (ox >= ow or oy >= oh) are zero, so the padding columns add nothing.
void vck_conv_grad_rows(const float *g, ptrdiff_t channels, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t vw, ptrdiff_t rows,
                        float *dst, ptrdiff_t ld);

/// A convolution of few input channels for one image, output pixels as the register tile's rows (conv_rows.c).
typedef struct {
  const float *x;        /* the zero-padded input: planes of hp x wp */
  ptrdiff_t hp, wp, sh, sw;
  const ptrdiff_t *koff; /* tap kk (in the conv GEMM's order: channel, ky, kx) at a window origin + koff[kk] */
  ptrdiff_t k;
  const float *wt;       /* the weights transposed: k rows of cp floats (cout, zero-padded to a multiple of 16) */
  ptrdiff_t cout, cp;
  float *y;              /* the output: cout planes of oh x ow */
  ptrdiff_t oh, ow;
  const float *scale, *shift, *residual; /* the conv GEMM's epilogue (residual: the output's layout) */
  int activation;
  float parameter;
  int residual_after;
} vck_conv_rows;

/// Computes output rows [oy0, oy1) of `job` with `scratch` (32 * ow + 256 floats); returns 0, or -1 without
/// AVX2 and FMA (nothing written).
int vck_conv_rows_run(const vck_conv_rows *job, ptrdiff_t oy0, ptrdiff_t oy1, float *scratch);
/// A max pooling window over a conv's output map (no dilation; kh at most 4), and the pooled map's size.
typedef struct {
  ptrdiff_t kh, kw, sh, sw, ph, pw;
  ptrdiff_t oh, ow;
} vck_pool_window;
/// Floats of scratch that vck_conv_rows_pool_run needs for a conv of `cout` channels and `ow` output columns (a
/// ring of kh conv rows, one pooled row, scales).
ptrdiff_t vck_conv_rows_pool_scratch(ptrdiff_t cout, ptrdiff_t ow, const vck_pool_window *pool);
/// Pooled rows [py0, py1) of `pool` over one image's conv output (job->y: that image's pooled planes,
/// [cout][pool->oh][pool->ow]), the conv rows made as needed into the ring at the start of `scratch`, whose row
/// numbers `tags` (kh entries, -1 for none) records: a caller that keeps both across calls for the same image
/// makes each row once. Needs the epilogue in the tiles (no residual, not ReLU6, LeakyReLU or the hard ones);
/// returns 0, or -1 without AVX2 and FMA, with another epilogue, or kh outside 1...4 (nothing written).
int vck_conv_rows_pool_run(const vck_conv_rows *job, const vck_pool_window *pool, ptrdiff_t py0, ptrdiff_t py1,
                           ptrdiff_t *tags, float *scratch);

/// Copies `channels` contiguous h x w planes into the zero-padded, stride-phase-split layout read by a strided
/// convolution's GEMM: per channel, sh * variants blocks (py, v) of `rows` x `rw`, element (r, col) holding the
/// input at (r * sh + py - ph, col * sw + v * variant_step - pw), zero outside the input. Then every tap is a
/// constant offset. The column variants are the stride phases (variants sw, step 1; a tap kx reads phase
/// kx % sw shifted kx / sw columns, so rows need those extra columns) or the kernel's column taps (variants kw,
/// step dw: rows exactly the output's width).
void vck_conv_pack_input(const float *src, ptrdiff_t channels, ptrdiff_t h, ptrdiff_t w, ptrdiff_t sh, ptrdiff_t sw,
                         ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t rows, ptrdiff_t rw, ptrdiff_t variants,
                         ptrdiff_t variant_step, float *dst);
/// Rows [r0, r1) of the batch's im2col matrix [channels * kh * kw][batch * oh * ow] (row (c, ky, kx), column
/// image * oh * ow + oy * ow + ox, zero where the tap falls in the padding), row r0 at dst and the others
/// batch * oh * ow floats apart, read straight from NCHW planes: x is the first channel of image 0, images
/// `image_stride` floats apart. For small maps, where a padded copy and a gather would cost more than the copy
/// itself. Planes must have fewer than 2^31 elements. Returns 0, or -1 when its table could not be allocated.
int vck_im2col_batch(const float *x, ptrdiff_t batch, ptrdiff_t image_stride, ptrdiff_t h, ptrdiff_t w,
                      ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw,
                      ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t r0, ptrdiff_t r1, float *dst);
/// Picks vck_im2col_batch's kernels on the calling thread (vck_isa_choice) for tests: 4 (AVX-512 permutes and
/// gathers), 1 (scalar) or 0 (the best this CPU runs). Returns -1 when the CPU lacks the level.
int vck_im2col_set_isa(int level);

/// Batch normalization over small spans (x and g are [n, c, span]), for the channels [c0, c1), in double, with
/// center NULL meaning 0: without g, s1 = Σ (x - center) and, if s2 is not NULL, s2 = Σ (x - center)^2 (the
/// statistics); with g, s1 = Σ g and s2 = Σ g (x - center) (the backward's sums), g read as 0 where `mask` (a
/// following ReLU's output, same layout, or NULL) is not positive. `scratch`: 3 * (c1 - c0) * span doubles.
/// Outputs are indexed from c0.
void vck_bn_sums(const float *g, const float *mask, const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t span,
                 ptrdiff_t c0, ptrdiff_t c1, const float *center, double *s1, double *s2, double *scratch);
/// y = x * scale[ch] + shift[ch] (+ residual, same layout as x, when not NULL; then relu when `relu` is nonzero)
/// for the channels [c0, c1) of [n, c, span]; scratch: 2 * (c1 - c0) * span floats.
void vck_bn_affine(const float *x, float *y, ptrdiff_t n, ptrdiff_t c, ptrdiff_t span, ptrdiff_t c0, ptrdiff_t c1,
                   const float *scale, const float *shift, const float *residual, int relu, float *scratch);
/// o = g * a[ch] + (x * p[ch] + q[ch]) for the channels [c0, c1), g masked as in vck_bn_sums; scratch:
/// 3 * (c1 - c0) * span floats.
void vck_bn_grad_apply(const float *g, const float *mask, const float *x, float *o, ptrdiff_t n, ptrdiff_t c,
                       ptrdiff_t span, ptrdiff_t c0, ptrdiff_t c1, const float *a, const float *p, const float *q,
                       float *scratch);

/// Scaled dot-product attention of one head (see attention.c): n keys and values of d features, key j's feature
/// c at k[j * k_rs + c * k_cs], value j's at v[j * v_rs + c * v_cs]; scores are scaled by `scale`.
typedef struct {
  const float *k, *v;
  ptrdiff_t k_rs, k_cs, v_rs, v_cs, n, d;
  float scale;
} vck_attention_head;
/// Floats of the scratch that vck_attention_pack and vck_attention_queries need for n keys of d features.
ptrdiff_t vck_attention_scratch(ptrdiff_t n, ptrdiff_t d);
/// Copies keys and values that are strided rows into `scratch` as dense rows and points `h` at the copies (the
/// copies live as long as the scratch is not packed again); leaves the others where they are.
void vck_attention_pack(vck_attention_head *h, float *scratch);
/// out_i = softmax_j(scale * q_i . k_j) v_j for the m queries at q (query i's feature c at q[i * q_rs + c * q_cs],
/// output at out[i * o_rs + c * o_cs]).
void vck_attention_queries(const vck_attention_head *h, const float *q, ptrdiff_t q_rs, ptrdiff_t q_cs, ptrdiff_t m,
                           float *scratch, float *out, ptrdiff_t o_rs, ptrdiff_t o_cs);
/// Selects the attention kernel (3 or 4: AVX2+FMA, 1: portable C, 0: the best this CPU has) on the calling thread
/// (vck_isa_choice) for tests; returns -1 when the CPU lacks that level. The portable kernel's exponentials follow
/// vck_activation_set_isa.
int vck_attention_set_isa(int level);

/// dst[j * ds + i] = src[i * ss + j] for i < rows, j < cols (out of place).
void vck_transpose(const float *src, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t ss, float *dst, ptrdiff_t ds);
/// Selects vck_transpose's code (4: AVX-512 tiles, 3: AVX2 tiles, 1: scalar, 0: the best this CPU has) on the
/// calling thread (vck_isa_choice), so that tests can check each on one machine; returns -1 when the CPU lacks that
/// level.
int vck_transpose_set_isa(int level);
/// dst[p][oy][ox] = src[p][oy * sh][ox * sw] for `planes` contiguous h x w planes, oh x ow outputs each (a 1x1
/// strided conv's input, made contiguous for the stride-1 kernels).
void vck_subsample(const float *src, ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w, ptrdiff_t sh, ptrdiff_t sw,
                   ptrdiff_t oh, ptrdiff_t ow, float *dst);

/// BatchNorm folded into a conv epilogue: scale = weight / sqrt(var + eps), shift = bias + (conv_bias - mean) * scale,
/// in double, rounded to float, for c channels (weight, bias, conv_bias: NULL for 1, 0, 0).
void vck_fold_batchnorm(const float *mean, const float *var, const float *weight, const float *bias,
                        const float *conv_bias, double eps, ptrdiff_t c, float *scale, float *shift);
/// The conv GEMM's epilogue on n contiguous outputs of one channel: y = act(x * s + t + res), or
/// act(x * s + t) + res when `after` (res may be NULL; act -1: none).
void vck_conv_finish_row(const float *x, float *y, ptrdiff_t n, float s, float t, const float *res, int act, float p,
                         int after);

/// A 3x3, stride-1, dilation-1, ungrouped convolution of NCHW `x` by Winograd's F(2x2, 3x3) (winograd.c), with the
/// conv GEMM's epilogue (scale, shift, residual, activation as in vck_conv_gemm). Output oh = h + 2 ph - 2,
/// ow = w + 2 pw - 2. Tiles are 2x2 output blocks; tile row r is output rows 2 (r % ty) and 2 (r % ty) + 1 of
/// image r / ty, with ty = ceil(oh / 2).
typedef struct {
  const float *x;
  ptrdiff_t cin, h, w, ph, pw;
  /* The 3x3 filters: [cout][cin][3][3], or, with `transposed`, the weights [cin][cout][3][3] of the conv whose
     input gradient this conv computes (read transposed and rotated by 180 degrees). */
  const float *weights;
  int transposed;
  /* NULL, or the weights transformed beforehand by vck_winograd_weights, [16][cout][cin] */
  const float *u;
  /* NULL, or the input transformed beforehand by vck_winograd_input for every tile of the job (one chunk), which
     each vck_winograd_run call then reads instead of transforming its tiles itself */
  const float *v;
  ptrdiff_t cout, oh, ow;
  float *y;
  const float *scale, *shift, *residual;
  int activation;
  float parameter;
  int residual_after;
} vck_winograd;

/// Transformed weights u[xi][o][i] ([16][cout][cin]) for the output channels [o0, o1); `buf`: 9 * cin floats.
void vck_winograd_weights(const vck_winograd *job, ptrdiff_t o0, ptrdiff_t o1, float *u, float *buf);
/// Floats of the transformed input of all `tiles` tiles (vck_winograd_input's `v`), or 0 where vck_winograd_run
/// would not read it (the GEMM's order with the tiles as rows, AVX2 with 128 input channels or more).
ptrdiff_t vck_winograd_input_floats(const vck_winograd *job, ptrdiff_t tiles);
/// Transforms input channels [c0, c1) of all `tiles` tiles into `v` (vck_winograd_input_floats floats; `buf`:
/// vck_winograd_scratch floats), for the job's `v`.
void vck_winograd_input(const vck_winograd *job, ptrdiff_t tiles, ptrdiff_t c0, ptrdiff_t c1, float *v, float *buf);
/// Floats of scratch that vck_winograd_run needs for a chunk of `tiles` tiles.
ptrdiff_t vck_winograd_scratch(const vck_winograd *job, ptrdiff_t tiles);
/// Computes output channels [co0, co1) of tiles [t0, t1) (tile t: row t / tx, column t % tx, tx = ceil(ow / 2));
/// returns 0, or -1 when memory ran out.
int vck_winograd_run(const vck_winograd *job, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t co0, ptrdiff_t co1,
                     float *scratch);

/// Floats of scratch that vck_depthwise_plane needs for an oh x ow output of a k x k kernel at stride s.
ptrdiff_t vck_depthwise_scratch(ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t k, ptrdiff_t s);
/// One plane of a depthwise convolution (depthwise.c): the h x w plane `x`, zero-padded by (ph, pw), by the k x k
/// filter `wt` at stride s (dilation 1) into the oh x ow plane `y`, with the conv GEMM's epilogue on each output
/// (act(acc * scale + shift + res), or the residual after the activation). `scratch`: vck_depthwise_scratch floats.
void vck_depthwise_plane(const float *x, ptrdiff_t h, ptrdiff_t w, ptrdiff_t k, ptrdiff_t s, ptrdiff_t ph,
                         ptrdiff_t pw, ptrdiff_t oh, ptrdiff_t ow, const float *wt, float scale, float shift,
                         const float *res, int act, float p, int after, float *y, float *scratch);

/// A spin-wait hint (x86 `pause`): lets the sibling hyperthread run and saves power while a thread polls a flag.
void vck_cpu_relax(void);

#endif
