// The BLAS limit: the matrix products of the MLP VAE's training step (or of the
// importance-weighted evaluation's decoder), with the same shapes, transposes and
// beta as lib/models/vae.hpp issues them, timed with OpenBLAS alone. Whatever the
// suite does besides these calls is overhead against this figure.
//
//   limit_gemm --mode train --batch 128 --threads 1 --epochs 3   (epoch = 60000 samples)
//   limit_gemm --mode train --batch 20 --hidden 200,200 --latent 50 --k 50 --train-size 10000
//     (the k-sample objectives: the encoder on the batch's B rows, the decoder on B k)
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

// "200,200" -> {200, 200}
std::vector<int> parse_sizes(const char* s) {
  std::vector<int> sizes;
  for (const char* p = s; *p;) {
    char* end = nullptr;
    sizes.push_back(int(std::strtol(p, &end, 10)));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  return sizes;
}

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
  int B = 128, threads = 1, epochs = 3, D = 784, L = 20, N = 60000, k = 1;
  std::vector<int> hidden{400};
  int chunk = 500, K = 5000, examples = 20, reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (key == "--mode") mode = argv[i + 1];
    else if (key == "--batch") B = v;
    else if (key == "--threads") threads = v;
    else if (key == "--epochs") epochs = v;
    else if (key == "--train-size") N = v;
    else if (key == "--hidden") hidden = parse_sizes(argv[i + 1]);
    else if (key == "--latent") L = v;
    else if (key == "--k") k = v;
    else if (key == "--chunk") chunk = v;
    else if (key == "--samples") K = v;
    else if (key == "--examples") examples = v;
    else if (key == "--reps") reps = v;
    else {
      std::fprintf(stderr, "limit_gemm: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  openblas_set_num_threads(threads);
  std::mt19937 rng(0);

  if (mode == "iw") {
    // Per chunk of m importance samples: z[m,L] -> g[m,H] -> logits[m,D].
    const int H = hidden.back();
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

  // Parameters and gradients: encoder MLP D->H1->...->Hn, heads Hn->L (mu, logvar), decoder
  // MLP L->Hn->...->H1, output layer H1->D. The encoder runs on the B examples, the decoder
  // on their B k samples (k > 1: the k-sample objectives, which encode each example once).
  struct Layer {
    Mat W, dW;
    std::vector<float> db;
    Layer(int out, int in, std::mt19937& rng) : W(out, in, rng), dW(out, in, rng), db(std::size_t(out)) {}
  };
  std::vector<int> enc_sizes{D};
  enc_sizes.insert(enc_sizes.end(), hidden.begin(), hidden.end());
  std::vector<int> dec_sizes{L};
  dec_sizes.insert(dec_sizes.end(), hidden.rbegin(), hidden.rend());
  dec_sizes.push_back(D);  // the output layer is the decoder's last
  const int R = B * k;     // decoder rows
  std::vector<Layer> enc, dec;
  std::vector<Mat> enc_act, dec_act, enc_grad, dec_grad;  // layer i's input; d(its output)
  for (std::size_t i = 0; i + 1 < enc_sizes.size(); ++i) {
    enc.emplace_back(enc_sizes[i + 1], enc_sizes[i], rng);
    enc_act.emplace_back(B, enc_sizes[i], rng);
    enc_grad.emplace_back(B, enc_sizes[i + 1], rng);
  }
  for (std::size_t i = 0; i + 1 < dec_sizes.size(); ++i) {
    dec.emplace_back(dec_sizes[i + 1], dec_sizes[i], rng);
    dec_act.emplace_back(R, dec_sizes[i], rng);
    dec_grad.emplace_back(R, dec_sizes[i + 1], rng);
  }
  const int Hn = enc_sizes.back();
  Layer mu_head(L, Hn, rng), lv_head(L, Hn, rng);
  Mat h(B, Hn, rng), mu(B, L, rng), lv(B, L, rng), dmu(B, L, rng), dlv(B, L, rng), dh(B, Hn, rng);
  Mat out(R, D, rng), dz(R, L, rng);
  std::vector<float> ones(std::size_t(R), 1.0f);
  const int steps = (N + B - 1) / B;
  auto step = [&](int rows) {
    const int dec_rows = rows * k;
    for (auto* v : {&enc_act, &enc_grad})
      for (Mat& m : *v) m.rows = rows;
    for (auto* v : {&dec_act, &dec_grad})
      for (Mat& m : *v) m.rows = dec_rows;
    for (Mat* m : {&h, &mu, &lv, &dmu, &dlv, &dh}) m->rows = rows;
    out.rows = dz.rows = dec_rows;
    // forward: each layer's output is the next one's input
    for (std::size_t i = 0; i < enc.size(); ++i)
      gemm(false, true, enc_act[i], enc[i].W, i + 1 < enc.size() ? enc_act[i + 1] : h, 0.0f);
    gemm(false, true, h, mu_head.W, mu, 0.0f);
    gemm(false, true, h, lv_head.W, lv, 0.0f);
    for (std::size_t i = 0; i < dec.size(); ++i)
      gemm(false, true, dec_act[i], dec[i].W, i + 1 < dec.size() ? dec_act[i + 1] : out, 0.0f);
    // backward: dW += dout^T in ; db += sum_b dout ; din = dout W
    for (std::size_t i = dec.size(); i-- > 0;) {
      gemm(true, false, dec_grad[i], dec_act[i], dec[i].dW, 1.0f);
      bias_grad(dec_grad[i], ones, dec[i].db);
      gemm(false, false, dec_grad[i], dec[i].W, i > 0 ? dec_grad[i - 1] : dz, 0.0f);
    }
    gemm(true, false, dmu, h, mu_head.dW, 1.0f);
    bias_grad(dmu, ones, mu_head.db);
    gemm(false, false, dmu, mu_head.W, dh, 0.0f);
    gemm(true, false, dlv, h, lv_head.dW, 1.0f);
    bias_grad(dlv, ones, lv_head.db);
    gemm(false, false, dlv, lv_head.W, dh, 1.0f);
    for (std::size_t i = enc.size(); i-- > 0;) {
      Mat& g = i + 1 < enc.size() ? enc_grad[i] : dh;
      gemm(true, false, g, enc_act[i], enc[i].dW, 1.0f);
      bias_grad(g, ones, enc[i].db);
      if (i > 0) gemm(false, false, g, enc[i].W, enc_grad[i - 1], 0.0f);
    }
  };
  step(B);  // warm-up: OpenBLAS allocates its buffers on the first call
  double best = 1e300;
  for (int e = 0; e < epochs; ++e) {
    const auto t = Clock::now();
    for (int s = 0; s < steps; ++s) step(std::min(B, N - s * B));
    best = std::min(best, since(t));
  }
  std::printf("{\"mode\":\"train\",\"threads\":%d,\"batch\":%d,\"k\":%d,\"epochs\":%d,\"train_size\":%d,"
              "\"best_epoch_s\":%.6f,\"samples_per_s\":%.1f}\n",
              threads, B, k, epochs, N, best, double(N) / best);
  return 0;
}
