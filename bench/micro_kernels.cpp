// Google Benchmark micro benchmarks of the training step's kernels, at the shapes of
// the model (784-400-20 MLP VAE, batch 128): linear forward and backward,
// activations, the likelihoods, log-sum-exp, the optimizer step (alone, and after a layer's
// weight-gradient gemm as the fused step runs it: BM_adam_after_gemm), and the batch fill.
//   OPENBLAS_NUM_THREADS=1 build-perf/micro_kernels --benchmark_min_time=0.2
// items_per_second counts elements (or samples for the batch fill, parameters for
// the optimizers); bytes_per_second the buffers a kernel must stream.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "models/algorithms.hpp"
#include "models/batch.hpp"
#include "models/vae.hpp"
#include "nn/optimizer.hpp"
#include "prob/gaussian.hpp"
#include "prob/likelihood.hpp"
#include "tensor/activation.hpp"
#include "tensor/linear.hpp"
#include "tensor/weight_grad.hpp"

using namespace vae;

namespace {

constexpr std::size_t kD = 784, kH = 400, kL = 20;

Buffer<float> random_buffer(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  Buffer<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Linear layer in -> out at batch B: args {B, in, out}.
void BM_linear_forward(benchmark::State& st) {
  const std::size_t B = std::size_t(st.range(0)), I = std::size_t(st.range(1)), O = std::size_t(st.range(2));
  auto in = random_buffer(B * I, -1, 1, 1), W = random_buffer(O * I, -0.05f, 0.05f, 2),
       b = random_buffer(O, -0.1f, 0.1f, 3);
  Buffer<float> out(B * O);
  auto vin = mat(in.data(), B, I), vW = mat(W.data(), O, I), vout = mat(out.data(), B, O);
  auto vb = vec(b.data(), O);
  for (auto _ : st) {
    linear_forward(vout, vin, vW, vb);
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["GFLOPS"] = benchmark::Counter(2.0 * double(B * I * O),
                                             benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
}
BENCHMARK(BM_linear_forward)->Args({128, kD, kH})->Args({128, kH, kD})->Args({20, kD, kH})->Args({500, kH, kD});

void BM_linear_backward(benchmark::State& st) {
  const std::size_t B = std::size_t(st.range(0)), I = std::size_t(st.range(1)), O = std::size_t(st.range(2));
  auto in = random_buffer(B * I, -1, 1, 1), W = random_buffer(O * I, -0.05f, 0.05f, 2);
  auto dout = random_buffer(B * O, -1, 1, 3);
  Buffer<float> dW(O * I), db(O), din(B * I), ones(B, 1.0f);
  auto vin = mat(in.data(), B, I), vW = mat(W.data(), O, I), vdout = mat(dout.data(), B, O);
  auto vdW = mat(dW.data(), O, I), vdin = mat(din.data(), B, I);
  auto vdb = vec(db.data(), O), vones = vec(ones.data(), B);
  for (auto _ : st) {
    linear_backward(&vdin, vdW, vdb, vdout, vin, vW, vones);
    benchmark::DoNotOptimize(dW.data());
  }
  st.counters["GFLOPS"] = benchmark::Counter(4.0 * double(B * I * O),
                                             benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
}
BENCHMARK(BM_linear_backward)->Args({128, kD, kH})->Args({128, kH, kD})->Args({20, kD, kH});

// Activations on [128, 400], arg = vae::Activation (registered by name in main).
template <bool Backward>
void BM_activation(benchmark::State& st) {
  const auto a = Activation(st.range(0));
  const std::size_t B = 128, N = kH;
  auto in = random_buffer(B * N, -3, 3, 1), g = random_buffer(B * N, -1, 1, 2);
  Buffer<float> out(B * N);
  auto vin = mat(in.data(), B, N), vout = mat(out.data(), B, N), vg = mat(g.data(), B, N);
  activation_forward(vout, vin, a);
  for (auto _ : st) {
    if (Backward) activation_backward(vg, vg, vin, vout, a);
    else activation_forward(vout, vin, a);
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(g.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(B * N));
}

// Likelihoods on [B, 784]: arg 0 = Bernoulli, 1 = Gaussian fixed sigma, 2 = learned,
// 3 = per-pixel (registered by name in main); arg 1 = batch rows.
Likelihood<float> likelihood_case(int which) {
  Likelihood<float> lik;
  if (which == 0) return lik;
  lik.kind = LikelihoodKind::Gaussian;
  lik.sigma = which == 1 ? SigmaMode::Fixed : which == 2 ? SigmaMode::Learned : SigmaMode::PerPixel;
  return lik;
}
template <bool Backward>
void BM_likelihood(benchmark::State& st) {
  const auto lik = likelihood_case(int(st.range(0)));
  const std::size_t B = std::size_t(st.range(1)), D = kD;
  auto out = random_buffer(B * D, -6, 6, 1), raw = random_buffer(B * D, -2, 2, 2);
  auto x = random_buffer(B * D, 0, 1, 3);
  for (auto& v : x) v = v < 0.3f ? 1.0f : 0.0f;
  Buffer<float> nll(B), dout(B * D), draw(B * D), params(1, 0.0f), grads(1, 0.0f);
  LikelihoodWork<float> w;
  w.reserve(B, D);
  auto vout = mat(out.data(), B, D), vraw = mat(raw.data(), B, D), vx = mat(x.data(), B, D);
  auto vdout = mat(dout.data(), B, D), vdraw = mat(draw.data(), B, D);
  auto vnll = vec(nll.data(), B);
  likelihood_forward(vnll, w, lik, vout, vraw, vx, params.data());
  for (auto _ : st) {
    if (Backward)
      likelihood_backward(vdout, vdraw, w, lik, vout, vraw, vx, params.data(), grads.data(), 1.0f / float(B));
    else likelihood_forward(vnll, w, lik, vout, vraw, vx, params.data());
    benchmark::DoNotOptimize(nll.data());
    benchmark::DoNotOptimize(dout.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(B * D));
}

// Reparametrization, KL and their backward on [128, 20].
void BM_gaussian_posterior(benchmark::State& st) {
  const std::size_t B = 128, L = kL;
  auto mu = random_buffer(B * L, -1, 1, 1), lv = random_buffer(B * L, -2, 1, 2),
       eps = random_buffer(B * L, -2, 2, 3);
  auto dz = random_buffer(B * L, -1, 1, 4), kw = random_buffer(L, 0, 0.01f, 5);
  Buffer<float> z(B * L), kl(B * L), dmu(B * L), dlv(B * L);
  auto vmu = mat(mu.data(), B, L), vlv = mat(lv.data(), B, L), veps = mat(eps.data(), B, L);
  auto vz = mat(z.data(), B, L), vkl = mat(kl.data(), B, L), vdz = mat(dz.data(), B, L);
  auto vdmu = mat(dmu.data(), B, L), vdlv = mat(dlv.data(), B, L);
  auto vkw = vec(kw.data(), L);
  for (auto _ : st) {
    reparam_forward(vz, vmu, vlv, veps);
    kl_forward(vkl, vmu, vlv);
    gaussian_backward(vdmu, vdlv, vdz, vmu, vlv, veps, vkw);
    benchmark::DoNotOptimize(dlv.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(B * L));
}
BENCHMARK(BM_gaussian_posterior);

// log-sum-exp of K = 5000 importance weights (one example of the IW evaluation).
void BM_log_sum_exp(benchmark::State& st) {
  const std::size_t n = std::size_t(st.range(0));
  std::vector<double> v(n);
  std::mt19937 rng(1);
  std::normal_distribution<double> g(-100, 5);
  for (auto& x : v) x = g(rng);
  for (auto _ : st) benchmark::DoNotOptimize(log_sum_exp(v.data(), n));
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(n));
}
BENCHMARK(BM_log_sum_exp)->Arg(5000);

// One optimizer step over the model's 652,824 parameters (arg: 0 Adam, 1 Adagrad).
void BM_optimizer_step(benchmark::State& st) {
  const std::size_t n = 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784;
  auto p = random_buffer(n, -0.05f, 0.05f, 1), g = random_buffer(n, -1e-3f, 1e-3f, 2);
  Optimizer<float> opt;
  opt.configure(st.range(0) == 0 ? "adam" : "adagrad", 0.9, 0.999, 1e-8, 1e-10, n);
  for (auto _ : st) {
    opt.step(p, g, 1e-3);
    benchmark::DoNotOptimize(p.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(n));
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(n * sizeof(float) * (st.range(0) == 0 ? 7 : 5)));
}
BENCHMARK(BM_optimizer_step)->Arg(0)->Arg(1);

// Adam's pass without its divider work: the same loads and stores (parameters, gradient,
// both moments; the gradient zeroed) with the square root and the division replaced by
// multiplications. Not an optimizer: a bound on what any exact reformulation of the
// arithmetic could save (BM_adam_after_gemm, variant 2).
void adam_traffic_only(Adam<float>& a, float* __restrict p, float* __restrict g, std::size_t n) {
  const float b1 = float(a.beta1), b2 = float(a.beta2), c1 = 1 - b1, c2 = 1 - b2;
  const float step = a.step_size, ic2 = a.inv_c2, e = float(a.eps);
  float* __restrict M = a.m.data();
  float* __restrict V = a.v.data();
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = b1 * M[i] + c1 * gi;
    const float vi = b2 * V[i] + c2 * gi * gi;
    M[i] = mi;
    V[i] = vi;
    p[i] -= step * mi * (vi * ic2 + e);
    g[i] = 0;
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
// apply<true>'s loop compiled for 512-bit vectors (the library is built without AVX-512):
// variant 3 of BM_adam_after_gemm, run only where the CPU has it.
#define VAE_BENCH_AVX512 1
__attribute__((target("avx512f,prefer-vector-width=512"))) void adam_avx512(Adam<float>& a, float* __restrict p,
                                                                            float* __restrict g,
                                                                            std::size_t n) {
  const float b1 = float(a.beta1), b2 = float(a.beta2), c1 = 1 - b1, c2 = 1 - b2;
  const float step = a.step_size, ic2 = a.inv_c2, e = float(a.eps);
  float* __restrict M = a.m.data();
  float* __restrict V = a.v.data();
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = b1 * M[i] + c1 * gi;
    const float vi = b2 * V[i] + c2 * gi * gi;
    M[i] = mi;
    V[i] = vi;
    p[i] -= step * mi / (std::sqrt(vi) * ic2 + e);
    g[i] = 0;
  }
}
#endif

// One layer's part of the fused training step (models/algorithms.hpp, train_step_update):
// the weight gradient's gemm at batch B (dW += dout^T in, into the zeroed gradient), then
// variant 0: Adam on the layer as the step applies it (apply<true>); 1: the gemm alone;
// 2: the gemm and adam_traffic_only; 3: the gemm and adam_avx512; 4: the weight-gradient
// kernel with Adam on each strip (tensor/weight_grad.hpp, the fused step). Args {B, in, out,
// variant}. Variant 0 minus variant 1 is what Adam adds to a step; variant 2 shows how
// much of that is the divider's, variant 3 what wider vectors would change.
void BM_adam_after_gemm(benchmark::State& st) {
  const std::size_t B = std::size_t(st.range(0)), I = std::size_t(st.range(1)), O = std::size_t(st.range(2));
  const int variant = int(st.range(3));
#ifdef VAE_BENCH_AVX512
  if (variant == 3 && !__builtin_cpu_supports("avx512f")) {
    st.SkipWithError("no AVX-512 on this CPU");
    return;
  }
#else
  if (variant == 3) {
    st.SkipWithError("AVX-512 variant not built");
    return;
  }
#endif
  if (variant == 4 && !kWeightGradKernel<float>) {
    st.SkipWithError("no weight-gradient kernel in this build");
    return;
  }
  const std::size_t n = O * I;
  auto in = random_buffer(B * I, 0, 1, 1), dout = random_buffer(B * O, -1e-3f, 1e-3f, 3);
  auto p = random_buffer(n, -0.05f, 0.05f, 2);
  Buffer<float> g(n, 0.0f);
  Optimizer<float> opt;
  opt.configure("adam", 0.9, 0.999, 1e-8, 1e-10, n);
  auto vin = mat(in.data(), B, I), vdout = mat(dout.data(), B, O), vg = mat(g.data(), O, I);
  for (auto _ : st) {
    if (variant != 4) blas_gemm(vdout, vin, vg, true, false, 1.0f, 1.0f);
    opt.begin_step(1e-3);
    if (variant == 0) opt.apply_and_clear(p.data(), g.data(), 0, n);
    // variant 1: g keeps growing by a bounded dW a step, far from overflow in any run
    else if (variant == 2) adam_traffic_only(opt.adam, p.data(), g.data(), n);
    else if (variant == 4) {
      if constexpr (kWeightGradKernel<float>)
        weight_grad_strips(vdout, vin, [&](std::size_t start, std::size_t len, float* tile) {
          opt.apply_given(p.data(), tile, start, len);
        });
    }
#ifdef VAE_BENCH_AVX512
    else if (variant == 3)
      adam_avx512(opt.adam, p.data(), g.data(), n);
#endif
    benchmark::DoNotOptimize(p.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(n));
}
BENCHMARK(BM_adam_after_gemm)
    ->ArgsProduct({{20}, {kD}, {kH}, {0, 1, 2, 3, 4}})
    ->ArgsProduct({{20}, {kH}, {kD}, {0, 1, 2, 3, 4}})
    ->ArgsProduct({{20}, {kH}, {kL}, {0, 1, 2, 3, 4}});

// A layer's weight gradient dW += dout^T in at batch B: 0, OpenBLAS's gemm; 1, the strips of
// tensor/weight_grad.hpp added into dW (where the build has them). Args {B, in, out, impl}.
void BM_weight_grad(benchmark::State& st) {
  const std::size_t B = std::size_t(st.range(0)), I = std::size_t(st.range(1)), O = std::size_t(st.range(2));
  const bool kernel = st.range(3) == 1;
  if (kernel && !kWeightGradKernel<float>) {
    st.SkipWithError("no weight-gradient kernel in this build");
    return;
  }
  auto in = random_buffer(B * I, 0, 1, 1), dout = random_buffer(B * O, -1e-3f, 1e-3f, 3);
  Buffer<float> g(O * I, 0.0f);
  auto vin = mat(in.data(), B, I), vdout = mat(dout.data(), B, O), vg = mat(g.data(), O, I);
  for (auto _ : st) {
    if (!kernel) blas_gemm(vdout, vin, vg, true, false, 1.0f, 1.0f);
    else if constexpr (kWeightGradKernel<float>) weight_grad_add(vdout, vin, vg);
    benchmark::DoNotOptimize(g.data());
  }
  st.counters["GFLOPS"] = benchmark::Counter(2.0 * double(B * I * O),
                                             benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
}
BENCHMARK(BM_weight_grad)
    ->ArgsProduct({{20, 128, 1000}, {kD}, {kH}, {0, 1}})
    ->ArgsProduct({{20, 100, 1000}, {200}, {kD}, {0, 1}});

// Filling a batch of 128 MNIST-sized images: intensities, or a fresh binarization; and
// the batch's N(0, 1) noise [128, 20].
template <bool Binarize>
void BM_gather_batch(benchmark::State& st) {
  const std::size_t B = 128, N = 1024;
  data::Images images;
  images.n = N;
  images.rows = images.cols = 28;
  images.pixels.resize(N * kD);
  std::mt19937 rng(1);
  for (auto& p : images.pixels) p = uint8_t(rng() % 4 == 0 ? rng() % 256 : 0);  // mostly background
  std::vector<uint32_t> index(B);
  for (auto& i : index) i = uint32_t(rng() % N);
  Buffer<float> x(B * kD);
  std::mt19937_64 gen(7);
  for (auto _ : st) {
    if (Binarize) gather_batch_binarized(x.data(), images, index.data(), B, gen);
    else gather_batch(x.data(), images, index.data(), B);
    benchmark::DoNotOptimize(x.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(B));
}
BENCHMARK(BM_gather_batch<false>)->Name("BM_gather_batch");
BENCHMARK(BM_gather_batch<true>)->Name("BM_gather_batch_binarized");

void BM_fill_normal(benchmark::State& st) {
  Buffer<float> eps(128 * kL);
  std::mt19937_64 gen(7);
  for (auto _ : st) {
    fill_normal(eps.data(), eps.size(), gen);
    benchmark::DoNotOptimize(eps.data());
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(eps.size()));
}
BENCHMARK(BM_fill_normal);

}  // namespace

// Activations and likelihoods are registered by name (BM_activation_forward/relu, ...).
int main(int argc, char** argv) {
  const char* acts[] = {"identity", "relu", "tanh", "softplus", "sigmoid", "elu"};
  for (int a = 0; a < 6; ++a) {
    benchmark::RegisterBenchmark((std::string("BM_activation_forward/") + acts[a]).c_str(),
                                 BM_activation<false>)
        ->Arg(a);
    benchmark::RegisterBenchmark((std::string("BM_activation_backward/") + acts[a]).c_str(),
                                 BM_activation<true>)
        ->Arg(a);
  }
  const char* liks[] = {"bernoulli", "gaussian_fixed", "gaussian_learned", "gaussian_per_pixel"};
  for (int l = 0; l < 4; ++l) {
    benchmark::RegisterBenchmark((std::string("BM_likelihood_forward/") + liks[l]).c_str(),
                                 BM_likelihood<false>)
        ->Args({l, 128});
    benchmark::RegisterBenchmark((std::string("BM_likelihood_backward/") + liks[l]).c_str(),
                                 BM_likelihood<true>)
        ->Args({l, 128});
  }
  // the importance-weighted evaluation's chunk of 500 samples
  benchmark::RegisterBenchmark("BM_likelihood_forward/bernoulli", BM_likelihood<false>)->Args({0, 500});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
