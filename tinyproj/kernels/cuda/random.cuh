// random.cuh — counter-based random numbers (Philox-4x32-10, Salmon et al. 2011) for the
// stochastic kernels: Table 1's Stoch and StochM, and Walking Noise's Gaussian noise.
//
// A counter-based generator has no state to carry from thread to thread: the random words of
// element e are a pure function philox(counter = (e, stream), key = seed). So every GPU thread
// computes its own numbers, the host loops compute the very same ones, and a draw is
// reproducible from (seed, stream) alone. The kernels read (seed, stream) from a 2-element
// int64 array in device memory (``key``), which the caller draws from the run's generator on
// the device (one small launch, no host sync): the same generator state gives the same key,
// and a CUDA graph that replays the launches replays the draw of the key with them.
//
// Words → numbers (T = float or double), u in [0, 1):
//   float:  u = (w >> 8) · 2⁻²⁴            (24 random bits: every float32 in the grid is exact)
//   double: u = ((a >> 5)·2²⁶ + (b >> 6)) · 2⁻⁵³
// Normal pairs by Box–Muller: r = √(−2·ln(1 − u₁)), z₁ = r·cos(2πu₂), z₂ = r·sin(2πu₂).
// (The uniforms are exact on both builds; the normals go through log/cos/sin, whose last bit
// may differ between the GPU's and the host's math library.)
#ifndef TINYPROJ_RANDOM_CUH
#define TINYPROJ_RANDOM_CUH
#include "common.cuh"

typedef unsigned int tp_u32;
typedef unsigned long long tp_u64;

struct tp_words { tp_u32 w[4]; };

TP_HD tp_u32 tp_mulhilo(tp_u32 a, tp_u32 b, tp_u32* hi) {
    tp_u64 p = (tp_u64)a * (tp_u64)b;
    *hi = (tp_u32)(p >> 32);
    return (tp_u32)p;
}

// Philox-4x32 with 10 rounds: counter (c0, c1, c2, c3), key (k0, k1) → four random words.
TP_HD tp_words tp_philox(tp_u32 c0, tp_u32 c1, tp_u32 c2, tp_u32 c3, tp_u32 k0, tp_u32 k1) {
    for (int round = 0; round < 10; ++round) {
        tp_u32 hi0, hi1;
        tp_u32 lo0 = tp_mulhilo(0xD2511F53u, c0, &hi0);
        tp_u32 lo1 = tp_mulhilo(0xCD9E8D57u, c2, &hi1);
        tp_u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    tp_words r;
    r.w[0] = c0; r.w[1] = c1; r.w[2] = c2; r.w[3] = c3;
    return r;
}

// The four words of element e of the draw keyed by key[0] (seed) and key[1] (stream).
TP_HD tp_words tp_random_words(const tp_int* key, tp_int e) {
    tp_u64 seed = (tp_u64)key[0], stream = (tp_u64)key[1], ctr = (tp_u64)e;
    return tp_philox((tp_u32)ctr, (tp_u32)(ctr >> 32), (tp_u32)stream, (tp_u32)(stream >> 32),
                     (tp_u32)seed, (tp_u32)(seed >> 32));
}

// Uniforms in [0, 1): the first (i = 0) and second (i = 1) of an element's words.
template <typename T> TP_HD T tp_uniform(const tp_words& r, int i);
template <> TP_HD float tp_uniform<float>(const tp_words& r, int i) {
    return (float)(r.w[i] >> 8) * (1.0f / 16777216.0f);
}
template <> TP_HD double tp_uniform<double>(const tp_words& r, int i) {
    tp_u64 a = r.w[2 * i] >> 5, b = r.w[2 * i + 1] >> 6;
    return (double)(a * 67108864ull + b) * (1.0 / 9007199254740992.0);
}

TP_HD float tp_log(float a) { return logf(a); }
TP_HD double tp_log(double a) { return log(a); }
TP_HD float tp_cos(float a) { return cosf(a); }
TP_HD double tp_cos(double a) { return cos(a); }
TP_HD float tp_sin(float a) { return sinf(a); }
TP_HD double tp_sin(double a) { return sin(a); }

// Two independent N(0, 1) numbers of an element (Box–Muller on its two uniforms).
template <typename T>
TP_HD void tp_normal_pair(const tp_words& r, T* z1, T* z2) {
    T u1 = T(1) - tp_uniform<T>(r, 0);                 // (0, 1]: the log stays finite
    T u2 = tp_uniform<T>(r, 1);
    T rad = tp_sqrt(T(-2) * tp_log(u1));
    T angle = T(6.283185307179586) * u2;
    *z1 = rad * tp_cos(angle);
    *z2 = rad * tp_sin(angle);
}

#endif  // TINYPROJ_RANDOM_CUH
