// projection.cu — the GPU launches of projection.cuh. Sign is two launches: max|w| (one block
// of TP_BLOCK threads, fixed order) into a 1-element device array, then the element-wise map
// reading it there (no host sync in between). The clip is one launch.
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

// Every layer at once, over a flat buffer with an offsets table (projection.cuh):
// maxabs_segments: one block per tensor (grid = n_seg), α of tensor s into alpha[s];
// sign_segments / clip_segments: one thread per element, tensor s read from
// the table (clip bound bounds[s]; an infinite bound leaves the tensor as it is). out may be v.
template <typename T>
__global__ void maxabs_segments(const T* w, const tp_int* offsets, tp_int n_seg, T* alpha) {
    __shared__ T s[TP_BLOCK];
    tp_int seg = blockIdx.x, t = threadIdx.x;
    s[t] = maxabs_share(w + offsets[seg], offsets[seg + 1] - offsets[seg], t);
    for (tp_int half = TP_BLOCK / 2; half > 0; half /= 2) {
        __syncthreads();
        if (t < half) s[t] = tp_max_nan(s[t], s[t + half]);
    }
    if (t == 0) alpha[seg] = s[0];
}

template <typename T>
__global__ void sign_segments(const T* w, const tp_int* offsets, tp_int n_seg, const T* alpha,
                              T* out, tp_int size) {
    TP_FOR_EACH(e, size) out[e] = sign_element(w[e], alpha[tp_segment_of(offsets, n_seg, e)]);
}

template <typename T>
__global__ void clip_segments(const T* v, const tp_int* offsets, tp_int n_seg, const T* bounds,
                              T* out, tp_int size) {
    TP_FOR_EACH(e, size) out[e] = clip_element(v[e], bounds[tp_segment_of(offsets, n_seg, e)]);
}
