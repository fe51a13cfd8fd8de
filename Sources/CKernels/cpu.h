// CPU-level macros private to CKernels: VCK_X86 on x86 (whose vector intrinsics then are available), and CLONES,
// which compiles a plain-C loop kernel once per x86-64 level (AVX-512, AVX2, baseline) and picks the best at load
// time, so that auto-vectorized loops use the CPU's widest vectors in a baseline build.
#ifndef VISIONCORE_CPU_H
#define VISIONCORE_CPU_H

#if defined(__x86_64__) || defined(__i386__)
#define VCK_X86 1
#include <immintrin.h>
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#endif
