// conv.cu — the GPU launches of conv.cuh: im2col and col2im in the batch layout, one launch
// each (kernels/gpu.py loads this file with cupy.RawModule).
#include "conv.cuh"

// x (N, C, H, W) → cols (C·kh·kw, N·OH·OW): a 2-D grid, blockIdx.y over the rows k of cols
// (each split into its tap once), the threads along the row's N·OH·OW columns.
template <typename T, typename I>
__device__ void im2col_rows(const T* x, T* cols, tp_window g, T pad_value) {
    const I kh = (I)g.kh, kw = (I)g.kw;
    const I K = (I)g.c * kh * kw;
    const I NL = (I)g.n * (I)g.oh * (I)g.ow;
    for (I k = (I)blockIdx.y; k < K; k += (I)gridDim.y) {
        I ci = k / (kh * kw), tap = k - ci * (kh * kw);
        I i = tap / kw, j = tap - i * kw;
        T* row = cols + (tp_int)k * NL;
        for (I col = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; col < NL;
             col += (I)gridDim.x * (I)blockDim.x)
            row[col] = im2col_tap<T, I>(x, g, ci, i, j, col, pad_value);
    }
}

template <typename T>
__global__ void im2col_batch(const T* x, T* cols, tp_int n, tp_int c, tp_int h, tp_int w,
                             tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph, tp_int pw,
                             T pad_value) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    if (tp_fits_int(g)) im2col_rows<T, int>(x, cols, g, pad_value);   // 32-bit indices
    else im2col_rows<T, tp_int>(x, cols, g, pad_value);
}

// cols (C·kh·kw, N·OH·OW) → out (N, C, H, W), gather-style: no atomics, deterministic
template <typename T>
__global__ void col2im_batch(const T* cols, T* out, tp_int n, tp_int c, tp_int h, tp_int w,
                             tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph, tp_int pw) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    if (tp_fits_int(g)) {
        TP_FOR_EACH(e, n * c * h * w) out[e] = col2im_batch_element<T, int>(cols, g, (int)e);
    } else {
        TP_FOR_EACH(e, n * c * h * w) out[e] = col2im_batch_element<T, tp_int>(cols, g, e);
    }
}
