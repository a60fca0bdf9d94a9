// stochastic.cuh — the stochastic rows of Table 1 (Stoch, StochM) over every layer of a flat
// buffer, and Walking Noise's Gaussian noise; random numbers from random.cuh (Philox).
//
// Stoch(w)  = +α with probability p = (w/α + 1)/2, else −α      (projections.stoch)
// StochM(w) = s·|w|·(γ + (1/γ − γ)·u₂), s = +1 with probability p  (projections.stochm)
//   with α = max|w| of the layer (an all-zero layer: α taken as 1 in p, so p = 1/2), and
//   "with probability p" meaning u₁ < p for u₁ ~ U[0, 1) (so w = ±α gives ±α surely).
// Noise (walking_noise/noise.py), z₁, z₂ ~ N(0, 1) independent, f = 1 + σ_mul·z₁:
//   mul-add: y = x·f + σ_add·z₂        add-mul: y = (x + σ_add·z₂)·f
// (σ = 0 leaves that part out exactly: f = 1, no addition).
// Plain draws (kernels/generator.py, the run's generator on a device), u₁ and z₁ of element e:
//   uniform: lo + width·u₁             normal: mean + scale·z₁
#ifndef TINYPROJ_STOCHASTIC_CUH
#define TINYPROJ_STOCHASTIC_CUH
#include "common.cuh"
#include "random.cuh"

// +1 or −1: the sign Stoch and StochM draw for w in a layer of scale alpha.
template <typename T>
TP_HD T stoch_sign(T w, T alpha, T u) {
    T safe = alpha > T(0) ? alpha : T(1);
    T p = (w / safe + T(1)) / T(2);
    return u < p ? T(1) : T(-1);
}

template <typename T>
TP_HD T stoch_element(T w, T alpha, const tp_words& r) {
    return alpha * stoch_sign(w, alpha, tp_uniform<T>(r, 0));
}

// lo = γ and width = 1/γ − γ, both rounded to T as the reference rounds them.
template <typename T>
TP_HD T stochm_element(T w, T alpha, const tp_words& r, T lo, T width) {
    T s = stoch_sign(w, alpha, tp_uniform<T>(r, 0));
    T scale = lo + width * tp_uniform<T>(r, 1);
    T mag = w < T(0) ? -w : w;
    return (s * mag) * scale;
}

// y and the factor f for one activation (f is 1 when sigma_mul is 0).
template <typename T>
TP_HD T noise_element(T x, const tp_words& r, T sigma_add, T sigma_mul, tp_int add_first,
                      T* factor) {
    T z1, z2;
    tp_normal_pair(r, &z1, &z2);
    T f = sigma_mul != T(0) ? T(1) + sigma_mul * z1 : T(1);
    T y = x;
    if (add_first && sigma_add != T(0)) y = y + sigma_add * z2;
    if (sigma_mul != T(0)) y = y * f;
    if (!add_first && sigma_add != T(0)) y = y + sigma_add * z2;
    *factor = f;
    return y;
}

// One number of a plain draw: U[lo, lo + width) or N(mean, scale²) (z₂ is not used, so that
// element e of a draw depends on e and the key alone, whatever the size of the draw).
template <typename T>
TP_HD T uniform_element(const tp_words& r, T lo, T width) {
    return lo + width * tp_uniform<T>(r, 0);
}

template <typename T>
TP_HD T normal_element(const tp_words& r, T mean, T scale) {
    T z1, z2;
    tp_normal_pair(r, &z1, &z2);
    return mean + scale * z1;
}

#endif  // TINYPROJ_STOCHASTIC_CUH
