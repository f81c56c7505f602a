/* H1's tanh RNN in C, for benchmarks/rnn_c.py: `orthojac.nets.fused.TanhRNN`'s kernels, in its order and
 * with its bits (the runner checks them), each step's addmm, add, tanh and their backward on the MKL
 * `sgemm_` and `vsTanh` that torch's own CPU kernels call (exported by libtorch_cpu), with no ATen and no
 * autograd around them. Built with orthojac.nets.native_build's flags (no contraction, no fast math).
 * A measurement of what compiling H1's RNN would gain, not a path that training takes. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern void sgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const float *alpha,
                   const float *a, const int *lda, const float *b, const int *ldb, const float *beta, float *c,
                   const int *ldc);
extern void vsTanh(const int n, const float *a, float *r);

/* row-major C (M x N) = alpha op(A) op(B) + beta C, as torch's CPU products call sgemm_ (column-major:
 * the transposed product, operands swapped) */
static void gemm(char ta, char tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
  sgemm_(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc);
}

/* a scratch buffer of nb x H floats, rounded up to 64 bytes, where torch's allocator puts a tensor */
static size_t scratch_buffer(int nb, int H) { return ((size_t)nb * H + 15) / 16 * 16; }

/* ---- H1's tanh RNN (fused.TanhRNN): h_{t+1} = tanh(b_hh + h_t W_hh^T + p_t) from
 *      h_0 = 0 over T steps; W_hh (H x H); p (T x nb x H) every step's projection of the input, which torch
 *      makes (x W_ih^T + b_ih); hidden the T + 1 states (nb x H), hidden[0] the zeros; dw T buffers (H x H),
 *      dw[t] step t's term of W_hh's gradient; du (T x nb x H) every step's du, for the products and sums
 *      torch then makes (W_ih's and the biases' gradients) ----
 *   a step  u = b_hh (each row), u += h_t W_hh^T; u = u + p_t; h_{t+1} = tanh(u) (MKL's vsTanh), as torch's
 *           addmm, add_ and tanh
 *   backward, from the last step: du_t = g (1 - h_{t+1} h_{t+1}), the factor one fused multiply-add as
 *           torch's tanh_backward computes it; g = du_t W_hh (beta 0), but at step 0; dw[t] = du_t^T h_t
 *           (beta 0). du_t is made in a buffer of its own where du's steps do not start on 64-byte
 *           boundaries (torch's products read a fresh tensor) and copied to du */
static void rnn_step(int nb, int H, const float *w, const float *b, const float *h, const float *p, float *out) {
  for (int i = 0; i < nb; i++) memcpy(out + (size_t)i * H, b, (size_t)H * sizeof(float));
  gemm('N', 'T', nb, H, H, 1.0f, h, H, w, H, 1.0f, out, H);
  for (size_t i = 0; i < (size_t)nb * H; i++) out[i] = out[i] + p[i];
  vsTanh(nb * H, out, out);
}

void rnn_forward(int T, int nb, int H, const float *w, const float *b, const float *p, float *const *hidden) {
  for (int t = 0; t < T; t++) rnn_step(nb, H, w, b, hidden[t], p + (size_t)t * nb * H, hidden[t + 1]);
}

/* nothing kept: h0 the zeros, scratch rnn_scratch_floats(nb, H) floats, out h_T */
void rnn_forward_eval(int T, int nb, int H, const float *w, const float *b, const float *p, const float *h0,
                      float *scratch, float *out) {
  size_t width = scratch_buffer(nb, H);
  const float *h = h0;
  for (int t = 0; t < T; t++) {
    float *y = t == T - 1 ? out : scratch + (size_t)(t % 2) * width;
    rnn_step(nb, H, w, b, h, p + (size_t)t * nb * H, y);
    h = y;
  }
}

size_t rnn_scratch_floats(int nb, int H) { return 3 * scratch_buffer(nb, H); }

void rnn_backward(int T, int nb, int H, const float *w, const float *const *hidden, const float *g_out, float *du,
                  float *const *dw, float *scratch) {
  size_t width = scratch_buffer(nb, H), n = (size_t)nb * H;
  int aligned = n % 16 == 0 && (uintptr_t)du % 64 == 0;
  const float *g = g_out;
  for (int t = T - 1; t >= 0; t--) {
    float *d = aligned ? du + (size_t)t * n : scratch + 2 * width;
    const float *h = hidden[t + 1];
    for (size_t i = 0; i < n; i++) d[i] = g[i] * fmaf(-h[i], h[i], 1.0f);
    if (t > 0) {
      float *next = scratch + (size_t)(t % 2) * width;
      gemm('N', 'N', nb, H, H, 1.0f, d, H, w, H, 0.0f, next, H);
      g = next;
    }
    gemm('T', 'N', H, H, nb, 1.0f, d, H, hidden[t], H, 0.0f, dw[t], H);
    if (!aligned) memcpy(du + (size_t)t * n, d, n * sizeof(float));
  }
}

/* b_hh's gradient as torch's TanhRNN adds it: the last step's sum, then each earlier step's added to it
 * (sums: T x H, step t's du summed over the batch) */
void rnn_bias_sum(int T, int H, const float *sums, float *out) {
  memcpy(out, sums + (size_t)(T - 1) * H, (size_t)H * sizeof(float));
  for (int t = T - 2; t >= 0; t--)
    for (int j = 0; j < H; j++) out[j] = out[j] + sums[(size_t)t * H + j];
}
