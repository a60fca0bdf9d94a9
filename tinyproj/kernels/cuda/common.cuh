// common.cuh — what every kernel header needs, for nvcc/NVRTC and for a plain C++ compiler.
//
// Each kernel's per-element logic is written ONCE, as an inline function marked TP_HD:
//   * under nvcc or NVRTC (CuPy's RawModule) TP_HD is `__host__ __device__ inline`, and the
//     `__global__` wrappers in the .cu files call it from one GPU thread per element;
//   * under g++/clang++ TP_HD is plain `inline`, and host_loops.cpp calls the same function
//     in an ordinary loop, which tests/test_kernels_gpu_host.py compares with reference.py.
// So the arithmetic a GPU runs is checked on any CPU (docs/design.md, rule 9).
//
// Rounding: no fused multiply-adds anywhere (nvcc/NVRTC get --fmad=false, g++ gets
// -ffp-contract=off), IEEE division and square root, float64 accumulators for sums.
#ifndef TINYPROJ_COMMON_CUH
#define TINYPROJ_COMMON_CUH

#if defined(__CUDACC__)
#define TP_HD __host__ __device__ inline
#else
#define TP_HD inline
#endif

#if !defined(__CUDACC_RTC__)       // NVRTC has these functions built in, and no system headers
#include <math.h>
#include <limits>
#endif

typedef long long tp_int;   // every size and index: no int32 overflow on large tensors

// Square root and floor in the element's own precision (sqrtf for float, sqrt for double).
TP_HD float tp_sqrt(float a) { return sqrtf(a); }
TP_HD double tp_sqrt(double a) { return sqrt(a); }
TP_HD float tp_floor(float a) { return floorf(a); }
TP_HD double tp_floor(double a) { return floor(a); }

// −∞ of type T (padding of a max-pool window).
template <typename T> TP_HD T tp_neg_inf();
#if defined(__CUDA_ARCH__)
template <> TP_HD float tp_neg_inf<float>() { return __int_as_float(0xff800000); }
template <> TP_HD double tp_neg_inf<double>() { return __longlong_as_double(0xfff0000000000000LL); }
#else
template <> TP_HD float tp_neg_inf<float>() { return -std::numeric_limits<float>::infinity(); }
template <> TP_HD double tp_neg_inf<double>() { return -std::numeric_limits<double>::infinity(); }
#endif

// Fixed-order block reductions (batch norm, max |w|): TP_BLOCK "threads" each fold a strided
// share of the values (thread t takes elements t, t + TP_BLOCK, t + 2·TP_BLOCK, ... in order),
// then the TP_BLOCK partial results are folded pairwise: s[t] += s[t + half] for
// half = TP_BLOCK/2, TP_BLOCK/4, ..., 1. The GPU runs this with one block per channel; the
// host loops run the very same steps one thread after another, so both give the same bits.
#define TP_BLOCK 256

TP_HD void tp_sum_fold_step(double* s, tp_int t, tp_int half) {
    if (t < half) s[t] += s[t + half];
}

#if defined(__CUDACC__)
// The .cu wrappers: one GPU thread per element, a grid-stride loop so that any grid size works.
#define TP_FOR_EACH(e, total)                                                    \
    for (tp_int e = (tp_int)blockIdx.x * blockDim.x + threadIdx.x; e < (total); \
         e += (tp_int)gridDim.x * blockDim.x)

// The fold of a block reduction on the GPU: the same steps as the host's, with a barrier
// between them. Every thread of the block must call it.
__device__ inline void tp_block_sum(double* s) {
    for (tp_int half = TP_BLOCK / 2; half > 0; half /= 2) {
        __syncthreads();
        tp_sum_fold_step(s, threadIdx.x, half);
    }
    __syncthreads();
}
#endif

#endif  // TINYPROJ_COMMON_CUH
