/* A dense fold/ReLU body's two passes in C (orthojac.nets.native): the CPU training fast path's
 * compiled body, the same products as orthojac.nets.fused.FoldReLU, in its order, on the sgemm_
 * that torch's own products call (MKL, exported by libtorch_cpu), so the same bits.
 *
 * Layer l: y = x - 2 h W, h = ReLU(x W^T + b), W (m x n) row-major, x and y (nb x n), h (nb x m).
 * FoldReLU's kernels, product by product:
 *   forward   h = b (each row), h += x W^T; h = ReLU(h); y = x, y += -2 h W
 *   backward  du = -2 g W^T (beta 0); du = (h <= 0 ? 0 : du); dW = du^T x; dW += -2 h^T g;
 *             g += du W
 * ReLU is torch's clamp_min(h, 0), which keeps a NaN and a -0: (h < 0 ? 0 : h). The mask is
 * torch's threshold_backward(du, h, 0): (h <= 0 ? 0 : du), so a NaN in h passes du on. The bias's
 * gradient (du summed over the batch) is left to torch, whose sum adds in an order of its own.
 * Only products, copies, compares and a sign: nothing here rounds but sgemm_.
 */
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

static void layer_forward(int nb, int n, int m, const float *w, const float *b, const float *x, float *h,
                          float *y) {
  for (int i = 0; i < nb; i++) memcpy(h + (size_t)i * m, b, (size_t)m * sizeof(float));
  gemm('N', 'T', nb, m, n, 1.0f, x, n, w, n, 1.0f, h, m);
  for (size_t i = 0; i < (size_t)nb * m; i++) h[i] = h[i] < 0 ? 0.0f : h[i];
  memcpy(y, x, (size_t)nb * n * sizeof(float));
  gemm('N', 'N', nb, n, m, -2.0f, h, m, w, n, 1.0f, y, n);
}

/* Training's forward: layer l's input is x0 (l = 0) or xs[l - 1], its h hs[l]; layer nl - 1 writes out.
 * xs: nl - 1 buffers of nb x n, hs: nl of nb x m (one allocation each, as torch's own layers make them:
 * a step's buffers then come back from the allocator's free lists, not as fresh pages). */
void fold_forward(int nl, int nb, int n, int m, const float *const *w, const float *const *b, const float *x0,
                  float *const *xs, float *const *hs, float *out) {
  for (int l = 0; l < nl; l++) {
    const float *x = l == 0 ? x0 : xs[l - 1];
    float *y = l == nl - 1 ? out : xs[l];
    layer_forward(nb, n, m, w[l], b[l], x, hs[l], y);
  }
}

/* Evaluation's forward, nothing kept: scratch holds 2 x nb x n + nb x m floats. */
void fold_forward_eval(int nl, int nb, int n, int m, const float *const *w, const float *const *b,
                       const float *x0, float *scratch, float *out) {
  float *ping = scratch, *pong = scratch + (size_t)nb * n, *h = scratch + (size_t)2 * nb * n;
  const float *x = x0;
  for (int l = 0; l < nl; l++) {
    float *y = l == nl - 1 ? out : (l % 2 ? pong : ping);
    layer_forward(nb, n, m, w[l], b[l], x, h, y);
    x = y;
  }
}

/* Training's backward, from the last layer: g (nb x n) holds dL/dout on entry and dL/dx0 on return;
 * dus[l] (nb x m) receives layer l's masked du (for the bias's gradient), dw[l] (m x n) W_l's
 * gradient. x0, xs, hs as fold_forward left them. */
void fold_backward(int nl, int nb, int n, int m, const float *const *w, const float *x0, const float *const *xs,
                   const float *const *hs, float *g, float *const *dus, float *const *dw) {
  for (int l = nl - 1; l >= 0; l--) {
    const float *x = l == 0 ? x0 : xs[l - 1], *h = hs[l];
    float *du = dus[l];
    gemm('N', 'T', nb, m, n, -2.0f, g, n, w[l], n, 0.0f, du, m);
    for (size_t i = 0; i < (size_t)nb * m; i++) du[i] = h[i] <= 0 ? 0.0f : du[i];
    gemm('T', 'N', m, n, nb, 1.0f, du, m, x, n, 0.0f, dw[l], n);
    gemm('T', 'N', m, n, nb, -2.0f, h, m, g, n, 1.0f, dw[l], n);
    gemm('N', 'N', nb, n, m, 1.0f, du, m, w[l], n, 1.0f, g, n);
  }
}
