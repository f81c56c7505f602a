// benchmarks/fold_step_c.py's program (issue 24): a dense fold network's training step written in C
// on the sgemm_ that torch links (MKL, exported by libtorch_cpu), fp32, one thread: lift 784 -> D,
// L fold layers x -> x - 2 W^T relu(W x + b) (row-major: y = x - 2 relu(x W^T + b) W), head D -> 10,
// softmax cross-entropy, Adam (torch's formula). Random weights of the fold step's shapes (W = I plus
// a small uniform matrix, b = -2): a measurement of speed, not of training. Sizes: -DL= -DD= -DNB=
// (default 200, 128, 128). Written by a review of issue 24 (2026-12-05). Variants, timed in turns:
//  0 "torchlike": forward all, backward all storing every gradient, then one Adam sweep
//  1 "fusedadam": Adam for layer l right after its backward (W_l, dW_l hot)
//  2 "k256":      1 + the two weight-gradient products as one of K=256 ([h;du]^T [-2g;x], adjacent)
//  3 "fa+prefetch": 1 + software prefetch of the next layer's operands
//  4 "fa+pf+fused mask": 3 + the ReLU mask and the bias sum in one loop
// Also: 6L hot D^3 products in a loop (no torch dispatch), and the 512^3 peak.
// Built as a shared library (-shared -fPIC -DNO_MAIN) it exports body_forward and body_backward, the
// body's passes as the step computes them, for the bits check against orthojac's DenseBody.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>
#include <stdint.h>
static int pf = 0, fuse = 0, pfd = 1;
static void prefetch(const float *p, size_t n) {
  const char *c = (const char *)p;
  for (size_t i = 0; i < n * 4; i += 64) _mm_prefetch(c + i, _MM_HINT_T1);
}

// gemm (row-major C(MxN) = alpha op(A) op(B) + beta C on sgemm_, as torch calls it): orthojac's compiled
// fold body's, whose source this program includes (its functions unused here)
#include "../src/orthojac/nets/native_body.c"

#ifndef L
#define L 200
#endif
#ifndef D
#define D 128
#endif
#ifndef NB
#define NB 128
#endif
#define IN 784
#define OUT 10

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
static float *fa(size_t n) {
  float *p = aligned_alloc(64, ((n * 4 + 63) / 64) * 64);
  memset(p, 0, n * 4);
  return p;
}
static unsigned long long rs = 88172645463325252ULL;
static float rnd(void) {  // uniform(-1,1)
  rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
  return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}

typedef struct { float *p, *g, *m, *v; int n; } Param;
static Param mk(int n, float scale) {
  Param q = {fa(n), fa(n), fa(n), fa(n), n};
  for (int i = 0; i < n; i++) q.p[i] = scale * rnd();
  return q;
}
static float lr = 3e-4f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
static int tstep = 0;
static void adam(Param *q, const float *g) {
  float bc1 = 1 - powf(b1, tstep), bc2 = 1 - powf(b2, tstep);
  float ss = lr / bc1, rb = 1.f / sqrtf(bc2);
  float *p = q->p, *m = q->m, *v = q->v;
#pragma omp simd
  for (int i = 0; i < q->n; i++) {
    float gi = g[i];
    float mi = m[i] + (1 - b1) * (gi - m[i]);
    float vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi; v[i] = vi;
    p[i] -= ss * mi / (sqrtf(vi) * rb + eps);
  }
}

static Param lw, lb, hw, hb, W[L], B[L];
static float *xin, *X[L + 1], *H2[L], *Xg[L + 1];  // H2[l]: 2N x D (h on top, du below); Xg: 2N x D (-2g on top, x below)
static float *H[L], *g, *du, *dwbuf, *dbbuf, *logits, *dlog;
static int lab[NB];
static double flop_step;

static void bias_rows(float *C, const float *b, int n, int d) {
  for (int i = 0; i < n; i++) memcpy(C + (size_t)i * d, b, d * 4);
}
static void colsum(const float *A, int n, int d, float *out) {
  memset(out, 0, d * 4);
  for (int i = 0; i < n; i++)
#pragma omp simd
    for (int j = 0; j < d; j++) out[j] += A[(size_t)i * d + j];
}

// returns loss; forward through lift, body, head; sets dlog
static float forward(int layout256) {
  float *x0 = layout256 ? Xg[0] + NB * D : X[0];
  bias_rows(x0, lb.p, NB, D);
  gemm('N', 'T', NB, D, IN, 1, xin, IN, lw.p, IN, 1, x0, D);
  for (int l = 0; l < L; l++) {
    float *x = layout256 ? Xg[l] + NB * D : X[l];
    float *y = layout256 ? Xg[l + 1] + NB * D : X[l + 1];
    float *h = layout256 ? H2[l] : H[l];
    bias_rows(h, B[l].p, NB, D);
    gemm('N', 'T', NB, D, D, 1, x, D, W[l].p, D, 1, h, D);
    for (int i = 0; i < NB * D; i++) h[i] = h[i] > 0 ? h[i] : 0;
    memcpy(y, x, NB * D * 4);
    if (pf && l + pfd < L) prefetch(W[l + pfd].p, D * D);
    gemm('N', 'N', NB, D, D, -2, h, D, W[l].p, D, 1, y, D);
  }
  float *xl = layout256 ? Xg[L] + NB * D : X[L];
  bias_rows(logits, hb.p, NB, OUT);
  gemm('N', 'T', NB, OUT, D, 1, xl, D, hw.p, D, 1, logits, OUT);
  float loss = 0;
  for (int i = 0; i < NB; i++) {
    float mx = -1e30f, s = 0;
    for (int j = 0; j < OUT; j++) mx = fmaxf(mx, logits[i * OUT + j]);
    for (int j = 0; j < OUT; j++) s += expf(logits[i * OUT + j] - mx);
    loss += logf(s) + mx - logits[i * OUT + lab[i]];
    for (int j = 0; j < OUT; j++) dlog[i * OUT + j] = expf(logits[i * OUT + j] - mx) / s / NB;
    dlog[i * OUT + lab[i]] -= 1.f / NB;
  }
  return loss / NB;
}

static void step(int variant) {
  pf = variant >= 3; fuse = variant == 4; if (variant >= 3) variant = 1;
  tstep++;
  int lay = variant == 2;
  forward(lay);
  float *xl = lay ? Xg[L] + NB * D : X[L];
  // head
  gemm('T', 'N', OUT, D, NB, 1, dlog, OUT, xl, D, 0, hw.g, D);
  colsum(dlog, NB, OUT, hb.g);
  gemm('N', 'N', NB, D, OUT, 1, dlog, OUT, hw.p, D, 0, g, D);
  if (variant) { adam(&hw, hw.g); adam(&hb, hb.g); }
  for (int l = L - 1; l >= 0; l--) {
    float *wl = W[l].p;
    if (variant == 2) {
      float *h = H2[l], *d = H2[l] + NB * D, *gm2 = Xg[l];
      for (int i = 0; i < NB * D; i++) gm2[i] = -2 * g[i];
      gemm('N', 'T', NB, D, D, 1, gm2, D, wl, D, 0, d, D);
      for (int i = 0; i < NB * D; i++) d[i] = h[i] > 0 ? d[i] : 0;
      colsum(d, NB, D, dbbuf);
      gemm('T', 'N', D, D, 2 * NB, 1, h, D, gm2, D, 0, dwbuf, D);  // [h;du]^T [-2g;x]
      gemm('N', 'N', NB, D, D, 1, d, D, wl, D, 1, g, D);
      adam(&W[l], dwbuf); adam(&B[l], dbbuf);
    } else {
      float *h = H[l], *x = X[l];
      float *dw = variant ? dwbuf : W[l].g, *db = variant ? dbbuf : B[l].g;
      gemm('N', 'T', NB, D, D, -2, g, D, wl, D, 0, du, D);
      if (fuse) {
        memset(db, 0, D * 4);
        for (int i = 0; i < NB; i++)
#pragma omp simd
          for (int j = 0; j < D; j++) { float d = h[i * D + j] > 0 ? du[i * D + j] : 0; du[i * D + j] = d; db[j] += d; }
      } else {
        for (int i = 0; i < NB * D; i++) du[i] = h[i] > 0 ? du[i] : 0;
        colsum(du, NB, D, db);
      }
      if (pf && l > 0) prefetch(W[l - 1].p, D * D);
      gemm('T', 'N', D, D, NB, 1, du, D, x, D, 0, dw, D);
      gemm('T', 'N', D, D, NB, -2, h, D, g, D, 1, dw, D);
      if (pf && l > 0) { prefetch(X[l - 1], NB * D); prefetch(H[l - 1], NB * D); }
      gemm('N', 'N', NB, D, D, 1, du, D, wl, D, 1, g, D);
      if (variant) { adam(&W[l], dwbuf); adam(&B[l], dbbuf); }
    }
  }
  // lift's gradient: g is dL/dx0
  gemm('T', 'N', D, IN, NB, 1, g, D, xin, IN, 0, lw.g, IN);
  colsum(g, NB, D, lb.g);
  adam(&lw, lw.g); adam(&lb, lb.g);
  if (!variant) {
    adam(&hw, hw.g); adam(&hb, hb.g);
    for (int l = 0; l < L; l++) { adam(&W[l], W[l].g); adam(&B[l], B[l].g); }
  }
}

// The body alone, for the bits check (tests and fold_step_c.py): its passes as step() takes them.
// xs: (nl+1) x nb x d (xs[0] = input), hs: nl x nb x d
void body_forward(int nl, int nb, int d, const float *W, const float *b, float *xs, float *hs) {
  for (int l = 0; l < nl; l++) {
    const float *w = W + (size_t)l * d * d;
    float *x = xs + (size_t)l * nb * d, *y = xs + (size_t)(l + 1) * nb * d, *h = hs + (size_t)l * nb * d;
    for (int i = 0; i < nb; i++) memcpy(h + (size_t)i * d, b + (size_t)l * d, d * 4);
    gemm('N', 'T', nb, d, d, 1, x, d, w, d, 1, h, d);
    for (int i = 0; i < nb * d; i++) h[i] = h[i] > 0 ? h[i] : 0;
    memcpy(y, x, (size_t)nb * d * 4);
    gemm('N', 'N', nb, d, d, -2, h, d, w, d, 1, y, d);
  }
}
// g: nb x d, in: dL/dxs[nl], out: dL/dxs[0]; du: nb x d scratch; dW: nl x d x d, db: nl x d
// adam != 0: p, m, v updated per layer right after its gradient (torch's Adam formula), dW/db reused scratch
void body_backward(int nl, int nb, int d, float *W, float *b, const float *xs, const float *hs, float *g, float *du,
                   float *dW, float *db, int adam, float *mW, float *vW, float *mb, float *vb, float lr, float b1,
                   float b2, float eps, int t) {
  float bc1 = 1 - powf(b1, t), bc2 = 1 - powf(b2, t), ss = lr / bc1, rb = 1.f / sqrtf(bc2);
  for (int l = nl - 1; l >= 0; l--) {
    float *w = W + (size_t)l * d * d;
    const float *x = xs + (size_t)l * nb * d, *h = hs + (size_t)l * nb * d;
    float *dw = adam ? dW : dW + (size_t)l * d * d, *dbl = adam ? db : db + (size_t)l * d;
    gemm('N', 'T', nb, d, d, -2, g, d, w, d, 0, du, d);
    for (int i = 0; i < nb * d; i++) du[i] = h[i] > 0 ? du[i] : 0;
    memset(dbl, 0, d * 4);
    for (int i = 0; i < nb; i++)
#pragma omp simd
      for (int j = 0; j < d; j++) dbl[j] += du[(size_t)i * d + j];
    gemm('T', 'N', d, d, nb, 1, du, d, x, d, 0, dw, d);
    gemm('T', 'N', d, d, nb, -2, h, d, g, d, 1, dw, d);
    gemm('N', 'N', nb, d, d, 1, du, d, w, d, 1, g, d);
    if (adam) {
      float *ps[2] = {w, b + (size_t)l * d}, *gs[2] = {dw, dbl};
      float *ms[2] = {mW + (size_t)l * d * d, mb + (size_t)l * d}, *vs[2] = {vW + (size_t)l * d * d, vb + (size_t)l * d};
      int ns[2] = {d * d, d};
      for (int k = 0; k < 2; k++) {
        float *p = ps[k], *gg = gs[k], *m = ms[k], *v = vs[k];
#pragma omp simd
        for (int i = 0; i < ns[k]; i++) {
          float gi = gg[i], mi = m[i] + (1 - b1) * (gi - m[i]), vi = b2 * v[i] + (1 - b2) * gi * gi;
          m[i] = mi; v[i] = vi;
          p[i] -= ss * mi / (sqrtf(vi) * rb + eps);
        }
      }
    }
  }
}


static int cmpd(const void *a, const void *b) {
  double x = *(double *)a, y = *(double *)b;
  return x < y ? -1 : x > y;
}

#ifndef NO_MAIN
int main(int argc, char **argv) {
  if (getenv("PFD")) pfd = atoi(getenv("PFD"));
  int rounds = argc > 1 ? atoi(argv[1]) : 7, steps = argc > 2 ? atoi(argv[2]) : 10;
  lw = mk(D * IN, 0.03f); lb = mk(D, 0.01f); hw = mk(OUT * D, 0.08f); hb = mk(OUT, 0.01f);
  for (int l = 0; l < L; l++) {
    W[l] = mk(D * D, 0.0883f);  // not orthogonal; speed only
    B[l] = mk(D, 0.f);
    for (int i = 0; i < D; i++) B[l].p[i] = -2.0f;
    for (int i = 0; i < D; i++) W[l].p[i * D + i] += 1.f;
  }
  xin = fa(NB * IN);
  for (int i = 0; i < NB * IN; i++) xin[i] = rnd();
  for (int i = 0; i < NB; i++) lab[i] = i % OUT;
  for (int l = 0; l <= L; l++) { X[l] = fa(NB * D); Xg[l] = fa(2 * NB * D); }
  for (int l = 0; l < L; l++) { H[l] = fa(NB * D); H2[l] = fa(2 * NB * D); }
  g = fa(NB * D); du = fa(NB * D); dwbuf = fa(D * D); dbbuf = fa(D); logits = fa(NB * OUT); dlog = fa(NB * OUT);
  flop_step = 6.0 * L * 2 * D * D * NB + 2.0 * 2 * NB * IN * D + 3.0 * 2 * NB * D * OUT;
  // hot 128^3 products
  {
    float *a = fa(D * D), *b = fa(D * D), *c = fa(D * D);
    for (int i = 0; i < D * D; i++) { a[i] = rnd(); b[i] = rnd(); }
    double best = 1e9;
    for (int r = 0; r < 7; r++) {
      double t = now();
      for (int i = 0; i < 6 * L; i++) gemm('N', 'N', D, D, D, 1, a, D, b, D, 0, c, D);
      t = now() - t;
      if (t < best) best = t;
    }
    printf("hot products: %d of %d^3, best %.3f ms, %.2f GFLOP/s\n", 6 * L, D, 1e3 * best, 6 * L * 2.0 * D * D * D / best / 1e9);
    int n = 512;
    float *A = fa(n * n), *Bm = fa(n * n), *C = fa(n * n);
    for (int i = 0; i < n * n; i++) { A[i] = rnd(); Bm[i] = rnd(); }
    best = 1e9;
    for (int r = 0; r < 7; r++) {
      double t = now();
      for (int i = 0; i < 20; i++) gemm('N', 'N', n, n, n, 1, A, n, Bm, n, 0, C, n);
      t = now() - t;
      if (t < best) best = t;
    }
    double peak = 20 * 2.0 * n * n * n / best / 1e9;
    printf("peak 512^3: %.2f GFLOP/s; step FLOP %.0f; 0.80 of peak = %.3f ms\n", peak, flop_step,
           flop_step / (0.8 * peak * 1e9) * 1e3);
  }
  const char *names[] = {"torchlike", "fusedadam", "k256", "fa+prefetch", "fa+pf+fused mask"};
  if (rounds < 1 || rounds > 64 || steps < 1 || steps > 64) { fprintf(stderr, "rounds and steps: 1 to 64\n"); return 2; }
  double med[5][64];
  for (int v = 0; v < 5; v++) step(v);
  for (int r = 0; r < rounds; r++) {
    for (int v = 0; v < 5; v++) {
      double ts[64];
      for (int s = 0; s < steps; s++) {
        double t = now();
        step(v);
        ts[s] = now() - t;
      }
      qsort(ts, steps, sizeof(double), cmpd);
      med[v][r] = ts[steps / 2];
    }
  }
  for (int v = 0; v < 5; v++) {
    qsort(med[v], rounds, sizeof(double), cmpd);
    printf("variant %s: median of round medians %.6f ms (min %.6f, max %.6f); %.2f GFLOP/s\n", names[v],
           1e3 * med[v][rounds / 2], 1e3 * med[v][0], 1e3 * med[v][rounds - 1], flop_step / med[v][rounds / 2] / 1e9);
  }
  return 0;
}
#endif
