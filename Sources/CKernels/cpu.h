// CPU-level macros private to CKernels: VCK_X86 on x86 (whose vector intrinsics then are available), and CLONES,
// which compiles a plain-C loop kernel once per x86-64 level (AVX-512, AVX2, baseline) and picks the best at load
// time, so that auto-vectorized loops use the CPU's widest vectors in a baseline build.
#ifndef VISIONCORE_CPU_H
#define VISIONCORE_CPU_H

#include "ckernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define VCK_X86 1
#include <immintrin.h>
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// r[j] becomes column j of the 8 x 8 block whose rows were r[0..7] (AVX shuffles, in registers).
__attribute__((target("avx2"), always_inline)) static inline void transpose8x8_ps(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // Column j: the low 128-bit halves of r[j] and r[j + 4] (j < 4), or their high halves (j - 4).
  for (int j = 0; j < 4; j++) {
    t[j] = _mm256_permute2f128_ps(r[j], r[j + 4], 0x20);
    t[j + 4] = _mm256_permute2f128_ps(r[j], r[j + 4], 0x31);
  }
  for (int j = 0; j < 8; j++) r[j] = t[j];
}
#else
#define CLONES
#endif

// The calling thread's ISA choice (isa_choice.c; needs ckernels.h).
extern _Thread_local vck_isa_choice vck_thread_isa;

#endif
