// conv.cu — the GPU launches of conv.cuh: im2col and col2im in the batch layout, one launch
// each, one thread per output element (kernels/gpu.py loads this file with cupy.RawModule).
#include "conv.cuh"

// x (N, C, H, W) → cols (C·kh·kw, N·OH·OW)
template <typename T>
__global__ void im2col_batch(const T* x, T* cols, tp_int n, tp_int c, tp_int h, tp_int w,
                             tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph, tp_int pw,
                             T pad_value) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    TP_FOR_EACH(e, c * kh * kw * n * g.oh * g.ow) cols[e] = im2col_batch_element(x, g, e, pad_value);
}

// cols (C·kh·kw, N·OH·OW) → out (N, C, H, W), gather-style: no atomics, deterministic
template <typename T>
__global__ void col2im_batch(const T* cols, T* out, tp_int n, tp_int c, tp_int h, tp_int w,
                             tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph, tp_int pw) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    TP_FOR_EACH(e, n * c * h * w) out[e] = col2im_batch_element(cols, g, e);
}
