// stochastic.cu — the GPU launches of stochastic.cuh, one thread per element. Stoch and
// StochM read α of each layer from alpha (maxabs_segments in projection.cu writes it) and the
// key (seed, stream) from device memory: nothing is read back to the host. uniform_fill and
// normal_fill are the plain draws of the run's generator on a device (kernels/generator.py).
#include "projection.cuh"
#include "stochastic.cuh"

template <typename T>
__global__ void stoch_segments(const T* w, const tp_int* offsets, tp_int n_seg, const T* alpha,
                               const tp_int* key, T* out, tp_int size) {
    TP_FOR_EACH(e, size) {
        out[e] = stoch_element(w[e], alpha[tp_segment_of(offsets, n_seg, e)],
                               tp_random_words(key, e));
    }
}

template <typename T>
__global__ void stochm_segments(const T* w, const tp_int* offsets, tp_int n_seg, const T* alpha,
                                const tp_int* key, T* out, tp_int size, T lo, T width) {
    TP_FOR_EACH(e, size) {
        out[e] = stochm_element(w[e], alpha[tp_segment_of(offsets, n_seg, e)],
                                tp_random_words(key, e), lo, width);
    }
}

// y, factor (N elements each; factor written only when keep_factor).
template <typename T>
__global__ void gaussian_noise(const T* x, const tp_int* key, T* y, T* factor, tp_int size,
                               T sigma_add, T sigma_mul, tp_int add_first, tp_int keep_factor) {
    TP_FOR_EACH(e, size) {
        T f;
        y[e] = noise_element(x[e], tp_random_words(key, e), sigma_add, sigma_mul, add_first, &f);
        if (keep_factor) factor[e] = f;
    }
}

// out[e] = lo + width·u₁ of element e (the generator's random, uniform).
template <typename T>
__global__ void uniform_fill(const tp_int* key, T* out, tp_int size, T lo, T width) {
    TP_FOR_EACH(e, size) {
        out[e] = uniform_element(tp_random_words(key, e), lo, width);
    }
}

// out[e] = mean + scale·z₁ of element e (the generator's standard_normal, normal).
template <typename T>
__global__ void normal_fill(const tp_int* key, T* out, tp_int size, T mean, T scale) {
    TP_FOR_EACH(e, size) {
        out[e] = normal_element(tp_random_words(key, e), mean, scale);
    }
}
