// projection.cu — the GPU launches of projection.cuh. Sign and Round are two launches each:
// max|w| (one block of TP_BLOCK threads, fixed order) into a 1-element device array, then the
// element-wise map reading it there (no host sync in between). The clip is one launch.
#include "projection.cuh"

template <typename T>
__global__ void maxabs(const T* w, tp_int size, T* alpha) {
    __shared__ T s[TP_BLOCK];
    tp_int t = threadIdx.x;
    s[t] = maxabs_share(w, size, t);
    for (tp_int half = TP_BLOCK / 2; half > 0; half /= 2) {
        __syncthreads();
        if (t < half) s[t] = tp_max_nan(s[t], s[t + half]);
    }
    if (t == 0) alpha[0] = s[0];
}

template <typename T>
__global__ void sign_apply(const T* w, const T* alpha, T* out, tp_int size) {
    T a = alpha[0];
    TP_FOR_EACH(e, size) out[e] = sign_element(w[e], a);
}

template <typename T>
__global__ void round_apply(const T* w, const T* alpha, T* out, tp_int size) {
    T a = alpha[0];
    TP_FOR_EACH(e, size) out[e] = round_element(w[e], a);
}

template <typename T>
__global__ void clip_apply(const T* v, T* out, tp_int size, T c) {
    TP_FOR_EACH(e, size) out[e] = clip_element(v[e], c);
}
