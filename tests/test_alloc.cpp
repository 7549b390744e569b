// Heap allocations during training steps: after the first step (which may let OpenBLAS
// set up its buffers) a step -- vae::forward_backward plus the optimizer -- allocates
// nothing. Counted at the malloc level: this file replaces malloc, calloc, realloc and
// the aligned variants for the whole test binary (forwarding to glibc's __libc_*
// entry points), and the global operator new/delete (forwarding to malloc/free), so an
// allocation by std::vector, xtensor, OpenBLAS or any library called on the step counts.
//
// Under AddressSanitizer the allocator belongs to ASan and nothing is replaced: the test
// is skipped with a warning (the normal build runs it).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "train/optimizer.hpp"
#include "models/algorithms.hpp"
#include "models/vae.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define VAE_COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VAE_COUNT_ALLOCS 0
#endif
#endif
#ifndef VAE_COUNT_ALLOCS
#define VAE_COUNT_ALLOCS 1
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_mallocs{0};  // malloc, calloc, realloc, aligned: every new block
std::atomic<long> g_news{0};     // operator new (also counted in g_mallocs)
inline void count_malloc() {
  if (g_counting.load(std::memory_order_relaxed)) g_mallocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if VAE_COUNT_ALLOCS
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
  count_malloc();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t s) {
  count_malloc();
  return __libc_calloc(n, s);
}
void* realloc(void* p, std::size_t n) {
  count_malloc();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* memalign(std::size_t a, std::size_t n) {
  count_malloc();
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  count_malloc();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  count_malloc();
  void* p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}  // extern "C"

namespace {
void* counted_new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* counted_new_aligned(std::size_t n, std::align_val_t a) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  void* p = nullptr;
  if (posix_memalign(&p, std::max(std::size_t(a), sizeof(void*)), n ? n : 1) == 0) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) { return counted_new_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_new_aligned(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif  // VAE_COUNT_ALLOCS

namespace {

struct Counts {
  long mallocs = 0, news = 0;
};

// Runs f with counting on and returns what it allocated.
template <class F>
Counts count_allocations(F&& f) {
  g_mallocs = 0;
  g_news = 0;
  g_counting = true;
  f();
  g_counting = false;
  return {g_mallocs.load(), g_news.load()};
}

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

}  // namespace

using namespace vae;

TEST_CASE("a training step allocates nothing after the first", "[alloc]") {
#if !VAE_COUNT_ALLOCS
  WARN("[alloc] skipped: under AddressSanitizer malloc belongs to ASan and cannot be counted");
  return;
#else
  SECTION("the counter sees allocations (the test can fail)") {
    const Counts c = count_allocations([] {
      std::vector<float> v(1000, 1.0f);
      g_sink = v.data();
      void* p = std::malloc(64);
      g_sink = p;
      std::free(p);
      Buffer<float> aligned(100);  // xsimd's aligned allocator
      g_sink = aligned.data();
    });
    CHECK(c.news >= 1);
    CHECK(c.mallocs >= 3);
  }

  struct Case {
    const char* name;
    LikelihoodKind kind;
    SigmaMode sigma;
    const char* optimizer;
    bool dynamic;
    bool conv;  // --arch conv (the peer's preset) instead of the MLP
  };
  const Case cases[] = {
      {"bernoulli, dynamic binarization, adam", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adam", true, false},
      {"bernoulli, fixed data, adagrad", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adagrad", false, false},
      {"gaussian learned sigma, adam", LikelihoodKind::Gaussian, SigmaMode::Learned, "adam", false, false},
      {"gaussian optimal sigma, adam", LikelihoodKind::Gaussian, SigmaMode::Optimal, "adam", false, false},
      {"gaussian per-pixel sigma, adam", LikelihoodKind::Gaussian, SigmaMode::PerPixel, "adam", false, false},
      {"conv, bernoulli, dynamic binarization, adam", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adam", true, true},
      {"conv, gaussian per-pixel sigma, adam", LikelihoodKind::Gaussian, SigmaMode::PerPixel, "adam", false, true},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      // The model: 784-400-20, batch 128, and a last batch of 72 rows.
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
        BatchLoss l = train_step(model, w, images, order.data() + start, rows, c.dynamic, rng, p);
        opt.step(model.params, model.grads, 1e-3);
        return l.loss;
      };
      step(0, B);  // warm-up
      double loss = 0;
      const Counts n = count_allocations([&] {
        for (int r = 0; r < 3; ++r) {
          loss += step(0, B);
          loss += step(B, images.n - B);  // a shorter last batch
        }
      });
      INFO("operator new: " << n.news << ", malloc-level blocks: " << n.mallocs);
      CHECK(std::isfinite(loss));
      CHECK(n.news == 0);
      CHECK(n.mallocs == 0);
    }
  }
#endif
}
