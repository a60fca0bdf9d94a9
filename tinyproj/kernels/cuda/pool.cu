// pool.cu — the GPU launches of pool.cuh: max pooling forward and backward, one launch each.
// I is the argmax type: signed char when the window has at most 127 taps, else long long.
#include "pool.cuh"

// x (N, C, H, W) → y, argmax (N, C, OH, OW)
template <typename T, typename I>
__global__ void maxpool_forward(const T* x, T* y, I* argmax, tp_int n, tp_int c, tp_int h,
                                tp_int w, tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph,
                                tp_int pw) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    TP_FOR_EACH(e, n * c * g.oh * g.ow) {
        tp_int k;
        maxpool_forward_element(x, g, e, &y[e], &k);
        argmax[e] = (I)k;
    }
}

// gy, argmax (N, C, OH, OW) → gx (N, C, H, W), gather-style: no atomics, deterministic
template <typename T, typename I>
__global__ void maxpool_backward(const T* gy, const I* argmax, T* gx, tp_int n, tp_int c,
                                 tp_int h, tp_int w, tp_int kh, tp_int kw, tp_int sh, tp_int sw,
                                 tp_int ph, tp_int pw) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    TP_FOR_EACH(e, n * c * h * w) gx[e] = maxpool_backward_element(gy, argmax, g, e);
}
