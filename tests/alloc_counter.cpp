// The allocator replacement behind tests/alloc_counter.hpp (see there for the rules).
#include "alloc_counter.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <sstream>

#include "tensor/blas.hpp"

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

constexpr int kSites = 4;  // call sites kept per class, for the failure message

struct Tally {
  std::atomic<long> blocks{0};
  std::atomic<void*> sites[kSites] = {};
  void add(void* site) {
    const long i = blocks.fetch_add(1, std::memory_order_relaxed);
    if (i < kSites) sites[i].store(site, std::memory_order_relaxed);
  }
  void reset() {
    blocks = 0;
    for (auto& s : sites) s = nullptr;
  }
};

std::atomic<bool> g_counting{false};
Tally g_ours, g_blas;
std::atomic<long> g_news{0};
void* g_openblas_base = nullptr;  // dli_fbase of the loaded OpenBLAS

// The loaded object holding OpenBLAS's own entry point. dlsym, not &openblas_get_config:
// in a non-PIE executable a function's address is its PLT stub in the executable.
void* find_openblas_base() {
  void* sym = dlsym(RTLD_DEFAULT, "openblas_get_config");
  Dl_info info{};
  if (!sym || !dladdr(sym, &info)) return nullptr;
  return info.dli_fbase;
}

bool in_openblas(const void* addr) {
  Dl_info info{};
  return g_openblas_base && dladdr(addr, &info) && info.dli_fbase == g_openblas_base;
}

// `caller` is the return address into the code that called malloc (or operator new).
// dladdr does not allocate; it runs only inside a BLAS call.
bool is_openblas_block(void* caller) { return vae::blas_call_depth > 0 && in_openblas(caller); }

[[maybe_unused]] inline void count_block(void* caller) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  (is_openblas_block(caller) ? g_blas : g_ours).add(caller);
}

std::string describe_sites(const Tally& t) {
  std::ostringstream out;
  for (const auto& s : t.sites) {
    void* site = s.load();
    if (!site) break;
    Dl_info info{};
    out << "\n  ";
    if (dladdr(site, &info) && info.dli_fname) {
      out << info.dli_fname << " ";
      if (info.dli_sname) out << info.dli_sname << "+";
      const void* from = info.dli_saddr ? info.dli_saddr : info.dli_fbase;
      out << "0x" << std::hex << (reinterpret_cast<uintptr_t>(site) - reinterpret_cast<uintptr_t>(from))
          << std::dec;
    } else {
      out << site;
    }
  }
  return out.str();
}

}  // namespace

namespace vae::test {

bool alloc_counting_available() { return VAE_COUNT_ALLOCS != 0; }

std::string openblas_library_file() {
  void* sym = dlsym(RTLD_DEFAULT, "openblas_get_config");
  Dl_info info{};
  if (!sym || !dladdr(sym, &info) || !info.dli_fname) return "";
  return info.dli_fname;
}

bool is_openblas_code(const void* addr) {
  if (!g_openblas_base) g_openblas_base = find_openblas_base();
  return in_openblas(addr);
}

void alloc_counting_start() {
  if (!g_openblas_base) g_openblas_base = find_openblas_base();
  g_ours.reset();
  g_blas.reset();
  g_news = 0;
  g_counting = true;
}

AllocCounts alloc_counting_stop() {
  g_counting = false;
  AllocCounts c;
  c.ours = g_ours.blocks.load();
  c.news = g_news.load();
  c.blas = g_blas.blocks.load();
  c.ours_sites = describe_sites(g_ours);
  c.blas_sites = describe_sites(g_blas);
  return c;
}

}  // namespace vae::test

#if VAE_COUNT_ALLOCS
#define VAE_CALLER __builtin_extract_return_addr(__builtin_return_address(0))
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
  count_block(VAE_CALLER);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t s) {
  count_block(VAE_CALLER);
  return __libc_calloc(n, s);
}
void* realloc(void* p, std::size_t n) {
  count_block(VAE_CALLER);
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* memalign(std::size_t a, std::size_t n) {
  count_block(VAE_CALLER);
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  count_block(VAE_CALLER);
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  count_block(VAE_CALLER);
  void* p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}  // extern "C"

// operator new takes its block from __libc_* directly, counted at the caller of new:
// OpenBLAS (C) never calls it, so every operator new counts as ours.
namespace {
void* counted_new(std::size_t n, void* caller) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_news.fetch_add(1, std::memory_order_relaxed);
    g_ours.add(caller);
  }
  if (void* p = __libc_malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* counted_new_aligned(std::size_t n, std::align_val_t a, void* caller) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_news.fetch_add(1, std::memory_order_relaxed);
    g_ours.add(caller);
  }
  if (void* p = __libc_memalign(std::max(std::size_t(a), sizeof(void*)), n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_new(n, VAE_CALLER); }
void* operator new[](std::size_t n) { return counted_new(n, VAE_CALLER); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n, VAE_CALLER);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n, VAE_CALLER);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) { return counted_new_aligned(n, a, VAE_CALLER); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_new_aligned(n, a, VAE_CALLER); }
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
#endif  // VAE_COUNT_ALLOCS
