// The BLAS limit: the matrix products of the MLP VAE's training step (or of the
// importance-weighted evaluation's decoder), with the same shapes, transposes and
// beta as lib/models/vae.hpp issues them, timed with OpenBLAS alone. Whatever the
// suite does besides these calls is overhead against this figure.
//
//   limit_gemm --mode train --batch 128 --threads 1 --epochs 3   (epoch = 60000 samples)
//   limit_gemm --mode iw --chunk 500 --samples 5000 --examples 20 --reps 3
// Prints one JSON line; samples_per_s is the best repetition, as for the peer.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

struct Mat {
  std::vector<float> v;
  int rows = 0, cols = 0;
  Mat(int r, int c, std::mt19937& rng) : v(std::size_t(r) * std::size_t(c)), rows(r), cols(c) {
    std::uniform_real_distribution<float> u(-0.05f, 0.05f);
    for (auto& x : v) x = u(rng);
  }
  float* p() { return v.data(); }
};

// C[M,N] = alpha op(A) op(B) + beta C, all row-major, as xt::blas::gemm calls it.
void gemm(bool ta, bool tb, Mat& A, Mat& B, Mat& C, float beta) {
  const int M = ta ? A.cols : A.rows, K = ta ? A.rows : A.cols, N = tb ? B.rows : B.cols;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
              A.p(), A.cols, B.p(), B.cols, beta, C.p(), C.cols);
}
// db[O] += dout[B,O]^T . ones[B]
void bias_grad(Mat& dout, std::vector<float>& ones, std::vector<float>& db) {
  cblas_sgemv(CblasRowMajor, CblasTrans, dout.rows, dout.cols, 1.0f, dout.p(), dout.cols, ones.data(), 1, 1.0f,
              db.data(), 1);
}

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "train";
  int B = 128, threads = 1, epochs = 3, D = 784, H = 400, L = 20, N = 60000;
  int chunk = 500, K = 5000, examples = 20, reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (k == "--mode") mode = argv[i + 1];
    else if (k == "--batch") B = v;
    else if (k == "--threads") threads = v;
    else if (k == "--epochs") epochs = v;
    else if (k == "--train-size") N = v;
    else if (k == "--hidden") H = v;
    else if (k == "--latent") L = v;
    else if (k == "--chunk") chunk = v;
    else if (k == "--samples") K = v;
    else if (k == "--examples") examples = v;
    else if (k == "--reps") reps = v;
    else {
      std::fprintf(stderr, "limit_gemm: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  openblas_set_num_threads(threads);
  std::mt19937 rng(0);

  if (mode == "iw") {
    // Per chunk of m importance samples: z[m,L] -> g[m,H] -> logits[m,D].
    Mat Wd1(H, L, rng), Wd2(D, H, rng), z(chunk, L, rng), g(chunk, H, rng), out(chunk, D, rng);
    double best = 1e300;
    for (int r = 0; r < reps; ++r) {
      const auto t = Clock::now();
      for (int e = 0; e < examples; ++e)
        for (int done = 0; done < K; done += chunk) {
          const int m = std::min(chunk, K - done);
          z.rows = g.rows = out.rows = m;
          gemm(false, true, z, Wd1, g, 0.0f);
          gemm(false, true, g, Wd2, out, 0.0f);
        }
      best = std::min(best, since(t));
    }
    std::printf("{\"mode\":\"iw\",\"threads\":%d,\"chunk\":%d,\"iw_samples\":%d,\"iw_examples\":%d,"
                "\"best_s\":%.6f,\"samples_per_s\":%.1f}\n",
                threads, chunk, K, examples, best, double(K) * examples / best);
    return 0;
  }

  // Parameters and gradients: encoder D->H, heads H->L (mu, logvar), decoder L->H->D.
  Mat We(H, D, rng), Wm(L, H, rng), Wl(L, H, rng), Wd1(H, L, rng), Wd2(D, H, rng);
  Mat dWe(H, D, rng), dWm(L, H, rng), dWl(L, H, rng), dWd1(H, L, rng), dWd2(D, H, rng);
  std::vector<float> dbe(H), dbm(L), dbl(L), dbd1(H), dbd2(D), ones(B, 1.0f);
  // Activations and their gradients.
  Mat x(B, D, rng), h(B, H, rng), mu(B, L, rng), lv(B, L, rng), z(B, L, rng), g(B, H, rng), out(B, D, rng);
  Mat dout(B, D, rng), dg(B, H, rng), dz(B, L, rng), dmu(B, L, rng), dlv(B, L, rng), dh(B, H, rng);
  const int steps = (N + B - 1) / B;
  auto step = [&](int rows) {
    for (Mat* m : {&x, &h, &mu, &lv, &z, &g, &out, &dout, &dg, &dz, &dmu, &dlv, &dh}) m->rows = rows;
    // forward
    gemm(false, true, x, We, h, 0.0f);
    gemm(false, true, h, Wm, mu, 0.0f);
    gemm(false, true, h, Wl, lv, 0.0f);
    gemm(false, true, z, Wd1, g, 0.0f);
    gemm(false, true, g, Wd2, out, 0.0f);
    // backward: dW += dout^T in ; db += sum_b dout ; din = dout W
    gemm(true, false, dout, g, dWd2, 1.0f);
    bias_grad(dout, ones, dbd2);
    gemm(false, false, dout, Wd2, dg, 0.0f);
    gemm(true, false, dg, z, dWd1, 1.0f);
    bias_grad(dg, ones, dbd1);
    gemm(false, false, dg, Wd1, dz, 0.0f);
    gemm(true, false, dmu, h, dWm, 1.0f);
    bias_grad(dmu, ones, dbm);
    gemm(false, false, dmu, Wm, dh, 0.0f);
    gemm(true, false, dlv, h, dWl, 1.0f);
    bias_grad(dlv, ones, dbl);
    gemm(false, false, dlv, Wl, dh, 1.0f);
    gemm(true, false, dh, x, dWe, 1.0f);
    bias_grad(dh, ones, dbe);
  };
  step(B);  // warm-up: OpenBLAS allocates its buffers on the first call
  double best = 1e300;
  for (int e = 0; e < epochs; ++e) {
    const auto t = Clock::now();
    for (int s = 0; s < steps; ++s) step(std::min(B, N - s * B));
    best = std::min(best, since(t));
  }
  std::printf("{\"mode\":\"train\",\"threads\":%d,\"batch\":%d,\"epochs\":%d,\"train_size\":%d,"
              "\"best_epoch_s\":%.6f,\"samples_per_s\":%.1f}\n",
              threads, B, epochs, N, best, double(N) / best);
  return 0;
}
