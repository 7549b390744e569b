// LD_PRELOAD shim: counts and times the malloc/free calls made by OpenBLAS's own code (the
// per-call buffers of some kernels; README, "Performance"). Build and use:
//   gcc -O2 -shared -fPIC -o /tmp/openblas_mallocs.so bench/openblas_mallocs.c -ldl
//   OPENBLAS_NUM_THREADS=1 LD_PRELOAD=/tmp/openblas_mallocs.so build/vae train --batch 20 ...
// At exit it prints the calls, bytes and the time spent in them (clock_gettime around
// each call, so a slight overestimate). A caller is OpenBLAS's when its return address
// lies in the library that defines openblas_get_config (dladdr).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
extern void* __libc_malloc(size_t);
extern void __libc_free(void*);
static void* base;
static long n_malloc, n_free, ns_malloc, ns_free, bytes;
__attribute__((constructor)) static void init(void) {
  void* s = dlsym(RTLD_DEFAULT, "openblas_get_config");
  Dl_info i;
  if (s && dladdr(s, &i)) base = i.dli_fbase;
}
__attribute__((destructor)) static void fini(void) {
  fprintf(stderr, "openblas malloc calls %ld (%ld bytes, %.3f ms), free calls %ld (%.3f ms)\n", n_malloc, bytes,
          ns_malloc / 1e6, n_free, ns_free / 1e6);
}
static int in_ob(void* ra) {
  Dl_info i;
  return base && dladdr(ra, &i) && i.dli_fbase == base;
}
static long now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}
void* malloc(size_t n) {
  if (!in_ob(__builtin_return_address(0))) return __libc_malloc(n);
  long t = now();
  void* p = __libc_malloc(n);
  ns_malloc += now() - t;
  ++n_malloc;
  bytes += n;
  return p;
}
void free(void* p) {
  if (!in_ob(__builtin_return_address(0))) { __libc_free(p); return; }
  long t = now();
  __libc_free(p);
  ns_free += now() - t;
  ++n_free;
}
