/* Dense bodies' two passes in C (orthojac.nets.native): the CPU training fast path's compiled bodies.
 * Each family's layer makes the products of its orthojac.nets.fused kernel (FoldReLU, PlainReLU,
 * PartialReLU, OrthFFSigma1, OrthFFAbs), in its order and with its operands' layouts, on
 * the sgemm_ that torch's own products call (MKL, exported by libtorch_cpu), and between them the
 * kernel's elementwise steps, each rounded once as torch rounds it: so the kernel's bits. The biases'
 * gradients (a sum over the batch) are left to torch, whose sum adds in an order of its own: a
 * backward pass hands torch the terms it sums (`sums`).
 *
 * torch's semantics where they decide a bit: ReLU is clamp_min(v, 0), which keeps a NaN and a -0:
 * (v < 0 ? 0 : v); threshold_backward(d, r, 0) is (r <= 0 ? 0 : d), so a NaN in r passes d on; sgn of
 * a real is 1, -1 or 0 (a NaN's is 0); |v| is fabsf. Compiled without -ffast-math and without -march
 * (x86-64's baseline has no FMA, so nothing is contracted): an expression a + b + c rounds twice, as
 * torch's two kernels do.
 *
 * Every family has the same three entry points, `<family>_forward`, `<family>_forward_eval` and
 * `<family>_backward`. Row-major buffers; a layer maps nb x n to nb x n through a hidden width m.
 *   params  P pointers a layer, layer after layer, in the kernel's order
 *   saved   S buffers of nb x m a layer, what the backward pass reads besides the layer's input
 *   ys      each layer's output (nb x n); the last is the body's output
 *   gs      nl + 1 gradients (nb x n): gs[nl] the output's on entry (read only), gs[l] layer l's
 *           input's on return; fold builds them in place, so gs[l] may be gs[l + 1]
 *   grads   G buffers a layer, the weights' gradients, of the weights' shapes
 *   sums    U buffers of nb x m a layer, the terms torch sums over the batch for a bias's gradient
 *   scratch scratch_floats(S, nb, n, m, evaluation) floats: two buffers (tmp, tmp + scratch_buffer)
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

extern void sgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const float *alpha,
                   const float *a, const int *lda, const float *b, const int *ldb, const float *beta, float *c,
                   const int *ldc);

/* row-major C (M x N) = alpha op(A) op(B) + beta C, as torch's CPU products call sgemm_ (column-major:
 * the transposed product, operands swapped) */
static void gemm(char ta, char tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
  sgemm_(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc);
}

/* a scratch buffer: max(nb, m) x max(n, m) floats (nb x n, nb x m or m x n), rounded up to 64 bytes, where
 * torch's allocator puts a tensor (MKL's sgemm_ may round otherwise on operands placed otherwise) */
static size_t scratch_buffer(int nb, int n, int m) {
  return ((size_t)(nb > m ? nb : m) * (n > m ? n : m) + 15) / 16 * 16;
}

/* the floats a pass's scratch holds, from a 64-byte boundary: training's TRAIN_BUFFERS buffers (tmp,
 * tmp + scratch_buffer, ...); evaluation's two outputs in turn, TRAIN_BUFFERS buffers and the S saved
 * buffers, which every layer reuses */
#define TRAIN_BUFFERS 5
size_t scratch_floats(int S, int nb, int n, int m, int evaluation) {
  return (evaluation ? 2 + TRAIN_BUFFERS + (size_t)S : TRAIN_BUFFERS) * scratch_buffer(nb, n, m);
}

static inline float relu(float v) { return v < 0 ? 0.0f : v; }
static inline float mask(float r, float d) { return r <= 0 ? 0.0f : d; }
static inline float sgn(float v) { return v > 0 ? 1.0f : (v < 0 ? -1.0f : 0.0f); }

typedef void (*layer_fwd)(int nb, int n, int m, const float *const *p, const float *x, float *const *s, float *y,
                          float *tmp, float aux);
typedef void (*layer_bwd)(int nb, int n, int m, const float *const *p, const float *x, const float *y,
                          const float *const *s, const float *g, float *dx, float *const *grads, float *const *sums,
                          float *tmp, float aux);

/* ---- fold: y = x - 2 h W, h = ReLU(x W^T + b); W (m x n); saved h; grads dW; sums du ----
 *   forward   h = b (each row), h += x W^T; h = ReLU(h); y = x, y += -2 h W
 *   backward  du = -2 g W^T (beta 0); du = mask(h, du); dW = du^T x; dW += -2 h^T g; dx = g, dx += du W */
static void fold_fwd(int nb, int n, int m, const float *const *p, const float *x, float *const *s, float *y,
                     float *tmp, float aux) {
  const float *w = p[0], *b = p[1];
  float *h = s[0];
  (void)tmp, (void)aux;
  for (int i = 0; i < nb; i++) memcpy(h + (size_t)i * m, b, (size_t)m * sizeof(float));
  gemm('N', 'T', nb, m, n, 1.0f, x, n, w, n, 1.0f, h, m);
  for (size_t i = 0; i < (size_t)nb * m; i++) h[i] = relu(h[i]);
  memcpy(y, x, (size_t)nb * n * sizeof(float));
  gemm('N', 'N', nb, n, m, -2.0f, h, m, w, n, 1.0f, y, n);
}

static void fold_bwd(int nb, int n, int m, const float *const *p, const float *x, const float *y,
                     const float *const *s, const float *g, float *dx, float *const *grads, float *const *sums,
                     float *tmp, float aux) {
  const float *w = p[0], *h = s[0];
  float *du = sums[0], *dw = grads[0];
  (void)y, (void)tmp, (void)aux;
  gemm('N', 'T', nb, m, n, -2.0f, g, n, w, n, 0.0f, du, m);
  for (size_t i = 0; i < (size_t)nb * m; i++) du[i] = mask(h[i], du[i]);
  gemm('T', 'N', m, n, nb, 1.0f, du, m, x, n, 0.0f, dw, n);
  gemm('T', 'N', m, n, nb, -2.0f, h, m, g, n, 1.0f, dw, n);
  if (dx != g) memcpy(dx, g, (size_t)nb * n * sizeof(float));
  gemm('N', 'N', nb, n, m, 1.0f, du, m, w, n, 1.0f, dx, n);
}

/* ---- plain: y = ReLU(x W^T + b); W (n x n, m = n); nothing saved but y; grads dW; sums du ----
 *   forward   y = x W^T (beta 0); y = ReLU(y + b)
 *   backward  du = mask(y, g); dx = du W; dW = du^T x */
static void plain_fwd(int nb, int n, int m, const float *const *p, const float *x, float *const *s, float *y,
                      float *tmp, float aux) {
  const float *w = p[0], *b = p[1];
  (void)s, (void)tmp, (void)aux;
  gemm('N', 'T', nb, m, n, 1.0f, x, n, w, n, 0.0f, y, m);
  for (int i = 0; i < nb; i++)
    for (int j = 0; j < m; j++) y[(size_t)i * m + j] = relu(y[(size_t)i * m + j] + b[j]);
}

static void plain_bwd(int nb, int n, int m, const float *const *p, const float *x, const float *y,
                      const float *const *s, const float *g, float *dx, float *const *grads, float *const *sums,
                      float *tmp, float aux) {
  const float *w = p[0];
  float *du = sums[0];
  (void)s, (void)tmp, (void)aux;
  for (size_t i = 0; i < (size_t)nb * m; i++) du[i] = mask(y[i], g[i]);
  gemm('N', 'N', nb, n, m, 1.0f, du, m, w, n, 0.0f, dx, n);
  gemm('T', 'N', m, n, nb, 1.0f, du, m, x, n, 0.0f, grads[0], n);
}

/* the three products that end the backward pass of a layer y = s A, s = sigma(x B^T + b) (partial,
 * orthoff), in the order of fused's kernels: dx = du B; dA = s^T g; dB = du^T x */
static void orthff_products(int nb, int n, int m, const float *bw, const float *sv, const float *du, const float *g,
                            const float *x, float *dx, float *const *grads) {
  gemm('N', 'N', nb, n, m, 1.0f, du, m, bw, n, 0.0f, dx, n);
  gemm('T', 'N', m, n, nb, 1.0f, sv, m, g, n, 0.0f, grads[0], n);
  gemm('T', 'N', m, n, nb, 1.0f, du, m, x, n, 0.0f, grads[1], n);
}

/* the forward pass of an orthoff layer y = s A, s = act(u, t0), u = x B^T + b (sigma1, abs), in the order of
 * fused's kernels: u = x B^T (beta 0); u = u + b; s = act(u, t0); y = s A (beta 0). u is what the layer saves;
 * s goes to tmp. A and B are the layer's first two parameters, b its third */
static inline void orthff_forward(int nb, int n, int m, const float *const *p, const float *x, float *u, float *y,
                                  float *tmp, float (*act)(float, float), float t0) {
  const float *a = p[0], *bw = p[1], *b = p[2];
  gemm('N', 'T', nb, m, n, 1.0f, x, n, bw, n, 0.0f, u, m);
  for (int i = 0; i < nb; i++)
    for (int j = 0; j < m; j++) {
      size_t k = (size_t)i * m + j;
      u[k] = u[k] + b[j];
      tmp[k] = act(u[k], t0);
    }
  gemm('N', 'N', nb, n, m, 1.0f, tmp, m, a, n, 0.0f, y, n);
}

/* ---- partial: y = ReLU(x B^T + b) A; A, B (m x n); saved r = ReLU(x B^T + b); grads dA, dB; sums du ----
 *   forward   r = x B^T (beta 0); r = ReLU(r + b); y = r A (beta 0)
 *   backward  du = g A^T (beta 0); du = mask(r, du); dx = du B; dA = r^T g; dB = du^T x */
static void partial_fwd(int nb, int n, int m, const float *const *p, const float *x, float *const *s, float *y,
                        float *tmp, float aux) {
  const float *a = p[0], *bw = p[1], *b = p[2];
  float *r = s[0];
  (void)tmp, (void)aux;
  gemm('N', 'T', nb, m, n, 1.0f, x, n, bw, n, 0.0f, r, m);
  for (int i = 0; i < nb; i++)
    for (int j = 0; j < m; j++) r[(size_t)i * m + j] = relu(r[(size_t)i * m + j] + b[j]);
  gemm('N', 'N', nb, n, m, 1.0f, r, m, a, n, 0.0f, y, n);
}

static void partial_bwd(int nb, int n, int m, const float *const *p, const float *x, const float *y,
                        const float *const *s, const float *g, float *dx, float *const *grads, float *const *sums,
                        float *tmp, float aux) {
  const float *a = p[0], *bw = p[1], *r = s[0];
  float *du = sums[0];
  (void)y, (void)tmp, (void)aux;
  gemm('N', 'T', nb, m, n, 1.0f, g, n, a, n, 0.0f, du, m);
  for (size_t i = 0; i < (size_t)nb * m; i++) du[i] = mask(r[i], du[i]);
  orthff_products(nb, n, m, bw, r, du, g, x, dx, grads);
}

/* ---- orthoff with sigma_1: y = s A, s = u - 2 ReLU(u - t0), u = x B^T + b; A, B (m x n), t0 one
 *      breakpoint; saved u (r and s are made again from it, the same bits); grads dA, dB (t0 has none);
 *      sums du ----
 *   forward   u = x B^T (beta 0); u = u + b; r = ReLU(u - t0); s = u - 2 r; y = s A (beta 0)
 *   backward  ds = g A^T (beta 0); du = mask(r, -ds * 2) + ds; dx = du B; dA = s^T g; dB = du^T x */
static inline float sigma1_r(float u, float t0) { return relu(u - t0); }

static inline float sigma1_s(float u, float t0) { return u - 2.0f * sigma1_r(u, t0); }

static void sigma1_fwd(int nb, int n, int m, const float *const *p, const float *x, float *const *s, float *y,
                       float *tmp, float aux) {
  (void)aux;
  orthff_forward(nb, n, m, p, x, s[0], y, tmp, sigma1_s, p[3][0]);
}

static void sigma1_bwd(int nb, int n, int m, const float *const *p, const float *x, const float *y,
                       const float *const *s, const float *g, float *dx, float *const *grads, float *const *sums,
                       float *tmp, float aux) {
  const float *a = p[0], *bw = p[1], *u = s[0];
  const float t0 = p[3][0];
  float *du = sums[0], *sv = tmp + scratch_buffer(nb, n, m);
  (void)y, (void)aux;
  gemm('N', 'T', nb, m, n, 1.0f, g, n, a, n, 0.0f, tmp, m);
  for (size_t i = 0; i < (size_t)nb * m; i++) {
    float r = sigma1_r(u[i], t0);
    du[i] = mask(r, -tmp[i] * 2.0f) + tmp[i];
    sv[i] = u[i] - 2.0f * r;
  }
  orthff_products(nb, n, m, bw, sv, du, g, x, dx, grads);
}

/* ---- orthoff with |.|: y = |u| A, u = x B^T + b; A, B (m x n); saved u (|u| made again from it);
 *      grads dA, dB; sums du ----
 *   forward   u = x B^T (beta 0); u = u + b; s = |u|; y = s A (beta 0)
 *   backward  du = (g A^T) * sgn(u); dx = du B; dA = s^T g; dB = du^T x */
static inline float abs_s(float u, float t0) { (void)t0; return fabsf(u); }

static void abs_fwd(int nb, int n, int m, const float *const *p, const float *x, float *const *s, float *y,
                    float *tmp, float aux) {
  (void)aux;
  orthff_forward(nb, n, m, p, x, s[0], y, tmp, abs_s, 0.0f);
}

static void abs_bwd(int nb, int n, int m, const float *const *p, const float *x, const float *y,
                    const float *const *s, const float *g, float *dx, float *const *grads, float *const *sums,
                    float *tmp, float aux) {
  const float *a = p[0], *bw = p[1], *u = s[0];
  float *du = sums[0];
  (void)y, (void)aux;
  gemm('N', 'T', nb, m, n, 1.0f, g, n, a, n, 0.0f, du, m);
  for (size_t i = 0; i < (size_t)nb * m; i++) {
    du[i] = du[i] * sgn(u[i]);
    tmp[i] = fabsf(u[i]);
  }
  orthff_products(nb, n, m, bw, tmp, du, g, x, dx, grads);
}

/* ---- limit: y = x - 2 (s * r) B, r = ReLU(x B^T + b), s = 1 + delta t, t = tanh(x M^T); B, M (m x n); delta
 *      the body's (aux); saved t, r (s and q = s * r made again from them, the same bits); grads dB, dM;
 *      sums du ----
 *   forward   t = tanh(x M^T (beta 0)) (MKL's vsTanh, which torch's CPU tanh calls); r = x B^T (beta 0);
 *             r = ReLU(r + b); s = (delta t) + 1; q = s r; y = x - 2 (q B (beta 0))
 *   backward  dy = -g * 2; dq = dy B^T; du = mask(r, dq s); dm = ((dq r) delta) (1 - t t), the last
 *             factor one fused multiply-add as torch's tanh_backward computes it; dB = q^T dy, dB = dB +
 *             du^T x; dx = du B, dx = g + dx, dx = dx + dm M; dM = dm^T x */
extern void vsTanh(const int n, const float *a, float *r);

static void limit_fwd(int nb, int n, int m, const float *const *p, const float *x, float *const *s, float *y,
                      float *tmp, float aux) {
  const float *bw = p[0], *b = p[1], *mw = p[2];
  float *t = s[0], *r = s[1], *q = tmp, *qb = tmp + scratch_buffer(nb, n, m);
  gemm('N', 'T', nb, m, n, 1.0f, x, n, mw, n, 0.0f, q, m);
  vsTanh(nb * m, q, t);
  gemm('N', 'T', nb, m, n, 1.0f, x, n, bw, n, 0.0f, r, m);
  for (int i = 0; i < nb; i++)
    for (int j = 0; j < m; j++) {
      size_t k = (size_t)i * m + j;
      float rv = relu(r[k] + b[j]);
      float sv = t[k] * aux + 1.0f;
      r[k] = rv;
      q[k] = sv * rv;
    }
  gemm('N', 'N', nb, n, m, 1.0f, q, m, bw, n, 0.0f, qb, n);
  for (size_t i = 0; i < (size_t)nb * n; i++) y[i] = x[i] - 2.0f * qb[i];
}

static void limit_bwd(int nb, int n, int m, const float *const *p, const float *x, const float *y,
                      const float *const *s, const float *g, float *dx, float *const *grads, float *const *sums,
                      float *tmp, float aux) {
  const float *bw = p[0], *mw = p[2], *t = s[0], *r = s[1];
  size_t w = scratch_buffer(nb, n, m);
  float *dy = tmp, *dq = tmp + w, *q = tmp + 2 * w, *dm = tmp + 3 * w, *other = tmp + 4 * w;
  float *du = sums[0], *db = grads[0];
  (void)y;
  for (size_t i = 0; i < (size_t)nb * n; i++) dy[i] = -g[i] * 2.0f;
  gemm('N', 'T', nb, m, n, 1.0f, dy, n, bw, n, 0.0f, dq, m);
  for (size_t i = 0; i < (size_t)nb * m; i++) {
    float sv = t[i] * aux + 1.0f;
    q[i] = sv * r[i];
    du[i] = mask(r[i], dq[i] * sv);
    dm[i] = ((dq[i] * r[i]) * aux) * fmaf(-t[i], t[i], 1.0f);
  }
  gemm('T', 'N', m, n, nb, 1.0f, q, m, dy, n, 0.0f, db, n);
  gemm('T', 'N', m, n, nb, 1.0f, du, m, x, n, 0.0f, other, n);
  for (size_t i = 0; i < (size_t)m * n; i++) db[i] = db[i] + other[i];
  gemm('N', 'N', nb, n, m, 1.0f, du, m, bw, n, 0.0f, dx, n);
  gemm('N', 'N', nb, n, m, 1.0f, dm, m, mw, n, 0.0f, other, n);
  for (size_t i = 0; i < (size_t)nb * n; i++) dx[i] = (g[i] + dx[i]) + other[i];
  gemm('T', 'N', m, n, nb, 1.0f, dm, m, x, n, 0.0f, grads[1], n);
}

/* ---- the loops over the layers, shared by every family ---- */
static void run_forward(layer_fwd f, int P, int S, int nl, int nb, int n, int m, const float *const *p,
                        const float *x0, float *const *s, float *const *ys, float *scratch, float aux) {
  for (int l = 0; l < nl; l++)
    f(nb, n, m, p + (size_t)l * P, l == 0 ? x0 : ys[l - 1], s + (size_t)l * S, ys[l], scratch, aux);
}

/* nothing kept: scratch holds scratch_floats(S, nb, n, m, 1) */
static void run_forward_eval(layer_fwd f, int S, int P, int nl, int nb, int n, int m, const float *const *p,
                             const float *x0, float *scratch, float *out, float aux) {
  size_t w = scratch_buffer(nb, n, m);
  float *ping = scratch, *pong = scratch + w, *tmp = scratch + 2 * w, *s[4];
  for (int k = 0; k < S; k++) s[k] = scratch + (2 + TRAIN_BUFFERS + k) * w;
  const float *x = x0;
  for (int l = 0; l < nl; l++) {
    float *y = l == nl - 1 ? out : (l % 2 ? pong : ping);
    f(nb, n, m, p + (size_t)l * P, x, s, y, tmp, aux);
    x = y;
  }
}

static void run_backward(layer_bwd f, int P, int S, int G, int U, int nl, int nb, int n, int m,
                         const float *const *p, const float *x0, const float *const *ys, const float *const *s,
                         float *const *gs, float *const *grads, float *const *sums, float *scratch, float aux) {
  for (int l = nl - 1; l >= 0; l--)
    f(nb, n, m, p + (size_t)l * P, l == 0 ? x0 : ys[l - 1], ys[l], s + (size_t)l * S, gs[l + 1], gs[l],
      grads + (size_t)l * G, sums + (size_t)l * U, scratch, aux);
}

#define FAMILY(name, P, S, G, U)                                                                                  \
  void name##_forward(int nl, int nb, int n, int m, const float *const *p, const float *x0, float *const *s,      \
                      float *const *ys, float *scratch, float aux) {                                              \
    run_forward(name##_fwd, P, S, nl, nb, n, m, p, x0, s, ys, scratch, aux);                                     \
  }                                                                                                               \
  void name##_forward_eval(int nl, int nb, int n, int m, const float *const *p, const float *x0, float *scratch,  \
                           float *out, float aux) {                                                               \
    run_forward_eval(name##_fwd, S, P, nl, nb, n, m, p, x0, scratch, out, aux);                                  \
  }                                                                                                               \
  void name##_backward(int nl, int nb, int n, int m, const float *const *p, const float *x0, const float *const *ys, \
                       const float *const *s, float *const *gs, float *const *grads, float *const *sums,          \
                       float *scratch, float aux) {                                                               \
    run_backward(name##_bwd, P, S, G, U, nl, nb, n, m, p, x0, ys, s, gs, grads, sums, scratch, aux);             \
  }

FAMILY(fold, 2, 1, 1, 1)
FAMILY(plain, 2, 0, 1, 1)
FAMILY(partial, 3, 1, 2, 1)
FAMILY(sigma1, 4, 1, 2, 1)
FAMILY(abs, 3, 1, 2, 1)
FAMILY(limit, 3, 2, 2, 1)
