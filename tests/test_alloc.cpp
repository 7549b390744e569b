// Heap allocations during training steps: after the first step a step --
// vae::train_step_update, the trainer's (train_step plus the optimizer, fused into the
// backward pass for the MLP) -- takes no heap block in our code, whatever
// BLAS kernel the CPU gets. Counted with tests/alloc_counter.hpp, which tells our blocks
// from those OpenBLAS's own code takes inside a BLAS call (some kernels, e.g. SkylakeX and
// Cooperlake sgemm's small-matrix path, take a buffer per call; see the README, "Performance").
// The counter's own tests show that it sees our blocks -- also inside the BLAS mark and
// inside a real training step -- and that what it sets apart comes from OpenBLAS.
//
// Under AddressSanitizer the allocator belongs to ASan and nothing is replaced: these tests
// are skipped with a warning (the normal build runs them).
#include <dlfcn.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xtensor.hpp>

#include "alloc_counter.hpp"
#include "models/algorithms.hpp"
#include "models/vae.hpp"
#include "nn/optimizer.hpp"
#include "tensor/blas.hpp"
#include "tensor/view.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_alloc {

// OpenBLAS's name for the kernel it picked (cblas.h clashes with xtensor-blas's copy).
extern "C" char* openblas_get_corename(void);

using vae::test::AllocCounts;
using vae::test::count_allocations;

#define SKIP_UNDER_ASAN()                                                                         \
  if (!vae::test::alloc_counting_available()) {                                                   \
    WARN("[alloc] skipped: under AddressSanitizer malloc belongs to ASan and cannot be counted"); \
    return;                                                                                       \
  }

namespace {

// Keeps the compiler from eliding a new/delete or malloc/free pair.
void* volatile g_sink = nullptr;

vae::data::Images synthetic_images(std::size_t n, std::size_t side, float scale) {
  vae::data::Images im;
  im.n = n;
  im.rows = im.cols = side;
  im.scale = scale;
  im.pixels.resize(n * side * side);
  std::mt19937 rng(5);
  for (auto& p : im.pixels) p = uint8_t(scale == 1.0f ? rng() % 2 : rng() % 256);
  return im;
}

struct Case {
  const char* name;
  vae::LikelihoodKind kind;
  vae::SigmaMode sigma;
  const char* optimizer;
  bool dynamic;
  bool conv;  // --arch conv (the peer's preset) instead of the MLP
};
using vae::LikelihoodKind;
using vae::SigmaMode;
const Case kCases[] = {
    {"bernoulli, dynamic binarization, adam", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adam", true, false},
    {"bernoulli, fixed data, adagrad", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adagrad", false, false},
    {"gaussian learned sigma, adam", LikelihoodKind::Gaussian, SigmaMode::Learned, "adam", false, false},
    {"gaussian optimal sigma, adam", LikelihoodKind::Gaussian, SigmaMode::Optimal, "adam", false, false},
    {"gaussian per-pixel sigma, adam", LikelihoodKind::Gaussian, SigmaMode::PerPixel, "adam", false, false},
    {"conv, bernoulli, dynamic binarization, adam", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adam", true,
     true},
    {"conv, gaussian per-pixel sigma, adam", LikelihoodKind::Gaussian, SigmaMode::PerPixel, "adam", false,
     true},
};

constexpr int kCountedSteps = 6;

// The model (784-400-20, or the conv preset): one warm-up step at batch 128, then
// counts kCountedSteps steps -- batch 128 and a shorter last batch of 72 rows, in turn --
// with `hook` installed as vae::blas_test_hook while they run.
AllocCounts count_training_steps(const Case& c, double& loss, void (*hook)(bool) = nullptr) {
  using namespace vae;
  VaeShape shape;
  if (c.conv) shape.arch = Arch::Conv;
  Likelihood<float> lik;
  lik.kind = c.kind;
  lik.sigma = c.sigma;
  Vae<float> model(shape, lik);
  std::mt19937_64 rng(1);
  model.initialize(Init::Uniform, 0, rng);
  typename Vae<float>::Work w;
  const std::size_t B = 128;
  model.reserve(w, B);
  Optimizer<float> opt;
  opt.configure(c.optimizer, 0.9, 0.999, 1e-8, 1e-10, model.num_params());
  const auto images = synthetic_images(200, 28, c.dynamic ? 1.0f / 255.0f : 1.0f);
  std::vector<uint32_t> order(images.n);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(order.size() - 1 - i);
  const ObjectiveParams p{1.0, 0.0};
  auto step = [&](std::size_t start, std::size_t rows) {
    return train_step_update(model, w, images, order.data() + start, rows, c.dynamic, rng, p, opt, 1e-3).loss;
  };
  step(0, B);  // warm-up
  loss = 0;
  blas_test_hook = hook;
  const AllocCounts n = count_allocations([&] {
    for (int r = 0; r < kCountedSteps / 2; ++r) {
      loss += step(0, B);
      loss += step(B, images.n - B);  // a shorter last batch
    }
  });
  blas_test_hook = nullptr;
  return n;
}

// A hook that allocates in our code on every BLAS call of a training step, on one side of
// the BLAS mark: outside it a malloc, inside it an xtensor temporary (what a careless
// change to blas_gemm would add).
bool g_alloc_inside_blas = false;
long g_hook_allocations = 0;
void allocating_hook(bool inside_blas) {
  if (inside_blas != g_alloc_inside_blas) return;
  ++g_hook_allocations;
  if (inside_blas) {
    xt::xtensor<float, 1> temporary = xt::zeros<float>({16});
    g_sink = temporary.data();
  } else {
    void* p = std::malloc(64);
    g_sink = p;
    std::free(p);
  }
}

std::string core_name() { return openblas_get_corename(); }

}  // namespace

TEST_CASE("the allocation counter tells our blocks from OpenBLAS's", "[alloc]") {
  SKIP_UNDER_ASAN();
  auto our_allocations = [] {
    std::vector<float> v(1000, 1.0f);
    g_sink = v.data();
    void* p = std::malloc(64);
    g_sink = p;
    std::free(p);
    vae::Buffer<float> aligned(100);  // xsimd's aligned allocator
    g_sink = aligned.data();
    xt::xtensor<float, 2> temporary = xt::ones<float>({4, 4});
    g_sink = temporary.data();
  };
  SECTION("it counts our blocks") {
    const AllocCounts c = count_allocations(our_allocations);
    CHECK(c.news >= 1);
    CHECK(c.ours >= 4);
    CHECK(c.blas == 0);
  }
  SECTION("our blocks inside the BLAS mark are still ours") {
    const AllocCounts c = count_allocations([&] {
      vae::BlasCallScope inside_blas;
      our_allocations();
    });
    CHECK(c.news >= 1);
    CHECK(c.ours >= 4);
    CHECK(c.blas == 0);
  }
  SECTION("only code in the OpenBLAS library is OpenBLAS's") {
    const std::string file = vae::test::openblas_library_file();
    INFO("OpenBLAS library: " << file);
    CHECK(file.find("openblas") != std::string::npos);
    CHECK(vae::test::is_openblas_code(dlsym(RTLD_DEFAULT, "cblas_sgemm")));
    CHECK_FALSE(vae::test::is_openblas_code(dlsym(RTLD_DEFAULT, "strlen")));              // libc
    CHECK_FALSE(vae::test::is_openblas_code(reinterpret_cast<void*>(&allocating_hook)));  // ours
  }
  SECTION("a kernel's own per-call buffers are OpenBLAS's") {
    // A 72x400 by 400x20 sgemm with beta 0 (the decoder's input gradient on a last batch
    // of 72 rows) goes to sgemm_small_kernel_b0_nn on SkylakeX and Cooperlake, which
    // mallocs a buffer per call; other kernels take none.
    std::vector<float> a(72 * 400, 0.5f), b(400 * 20, 0.25f), out(72 * 20);
    auto A = vae::mat(a.data(), 72, 400);
    auto Bm = vae::mat(b.data(), 400, 20);
    auto C = vae::mat(out.data(), 72, 20);
    vae::blas_gemm(A, Bm, C, false, false, 1.0f, 0.0f);  // warm-up
    const AllocCounts c = count_allocations([&] { vae::blas_gemm(A, Bm, C, false, false, 1.0f, 0.0f); });
    INFO("kernel " << core_name() << ": OpenBLAS blocks " << c.blas << c.blas_sites);
    CHECK(c.ours == 0);
    CHECK(out[0] == Approx(400 * 0.5 * 0.25));
    const std::string core = core_name();
    if (core == "SkylakeX" || core == "Cooperlake") CHECK(c.blas >= 1);
  }
}

TEST_CASE("a training step allocates nothing after the first", "[alloc]") {
  SKIP_UNDER_ASAN();
  for (const Case& c : kCases) {
    DYNAMIC_SECTION(c.name) {
      double loss = 0;
      const AllocCounts n = count_training_steps(c, loss);
      INFO("kernel " << core_name() << "; ours: " << n.ours << " blocks (operator new: " << n.news << ")"
                     << n.ours_sites << "\nOpenBLAS's own, not counted: " << n.blas << " blocks in "
                     << kCountedSteps << " steps" << n.blas_sites);
      CHECK(std::isfinite(loss));
      CHECK(n.news == 0);
      CHECK(n.ours == 0);
    }
  }
}

TEST_CASE("the allocation test catches our allocation in a training step", "[alloc]") {
  SKIP_UNDER_ASAN();
  const Case& mlp = kCases[0];
  const Case& conv = kCases[5];
  for (const Case* c : {&mlp, &conv}) {
    for (bool inside : {false, true}) {
      DYNAMIC_SECTION(
          c->name << (inside ? ": an xtensor temporary inside blas_gemm" : ": a malloc before blas_gemm")) {
        g_alloc_inside_blas = inside;
        g_hook_allocations = 0;
        double loss = 0;
        const AllocCounts n = count_training_steps(*c, loss, &allocating_hook);
        INFO("kernel " << core_name() << "; hook allocations: " << g_hook_allocations << "; ours: " << n.ours
                       << n.ours_sites << "\nOpenBLAS's own: " << n.blas);
        CHECK(g_hook_allocations >= kCountedSteps);  // the hook ran in the counted steps
        if (inside) CHECK(n.ours >= g_hook_allocations);
        else CHECK(n.ours == g_hook_allocations);
      }
    }
  }
}

}  // namespace test_alloc
