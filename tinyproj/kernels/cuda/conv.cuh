// conv.cuh — im2col and col2im in the batch layout, one output element per call.
//
// Shapes (kernels/reference.py, im2col_batch / col2im_batch):
//   x    (N, C, H, W)         images, channels first, C-contiguous
//   cols (K, N·L)             K = C·kh·kw rows ordered (c, i, j); L = OH·OW; column n·L + l
//                             is the patch under output pixel l = r·OW + s of image n
//   OH = (H + 2·ph − kh) / sh + 1 (floor), same for OW.
#ifndef TINYPROJ_CONV_CUH
#define TINYPROJ_CONV_CUH
#include "common.cuh"

// The window geometry, shared by convolution and pooling.
struct tp_window {
    tp_int n, c, h, w;        // input (N, C, H, W)
    tp_int kh, kw;            // window size
    tp_int sh, sw;            // stride
    tp_int ph, pw;            // padding on each side
    tp_int oh, ow;            // output size
};

TP_HD tp_window tp_make_window(tp_int n, tp_int c, tp_int h, tp_int w, tp_int kh, tp_int kw,
                               tp_int sh, tp_int sw, tp_int ph, tp_int pw) {
    tp_window g;
    g.n = n; g.c = c; g.h = h; g.w = w; g.kh = kh; g.kw = kw;
    g.sh = sh; g.sw = sw; g.ph = ph; g.pw = pw;
    g.oh = (h + 2 * ph - kh) / sh + 1;   // callers check that the window fits (oh, ow >= 1)
    g.ow = (w + 2 * pw - kw) / sw + 1;
    return g;
}

// cols[e] for e in [0, K·N·L): a copy of one input pixel, or pad_value where the tap
// falls on the padding. No arithmetic on values, so every build gives the same bits.
template <typename T>
TP_HD T im2col_batch_element(const T* x, tp_window g, tp_int e, T pad_value) {
    tp_int L = g.oh * g.ow;
    tp_int NL = g.n * L;
    tp_int k = e / NL, col = e % NL;        // row k = (c, i, j) of cols, column n·L + l
    tp_int ni = col / L, l = col % L;
    tp_int r = l / g.ow, s = l % g.ow;      // output pixel (r, s)
    tp_int ci = k / (g.kh * g.kw), tap = k % (g.kh * g.kw);
    tp_int i = tap / g.kw, j = tap % g.kw;  // kernel tap (i, j)
    tp_int row = r * g.sh + i - g.ph;       // input pixel under the tap
    tp_int cl = s * g.sw + j - g.pw;
    if (row < 0 || row >= g.h || cl < 0 || cl >= g.w) return pad_value;
    return x[((ni * g.c + ci) * g.h + row) * g.w + cl];
}

// out[e] for e in [0, N·C·H·W): gather-style col2im. The caller of this element owns it
// alone and sums every column entry that came from this pixel, in the fixed order of the
// taps (i, j) ascending — the order in which reference.col2im_batch adds its slices — so
// the result is the reference's, bit for bit, with no atomics.
template <typename T>
TP_HD T col2im_batch_element(const T* cols, tp_window g, tp_int e) {
    tp_int L = g.oh * g.ow;
    tp_int NL = g.n * L;
    tp_int cl = e % g.w, row = (e / g.w) % g.h;
    tp_int ci = (e / (g.w * g.h)) % g.c, ni = e / (g.w * g.h * g.c);
    tp_int yp = row + g.ph, xp = cl + g.pw;           // position in the padded image
    T acc = 0;
    // tap i covers padded row yp from output row r = (yp − i)/sh when that divides exactly
    // and 0 <= r < OH; the taps that can, in ascending order: i = yp mod sh, + sh, ...
    for (tp_int i = yp % g.sh; i < g.kh && i <= yp; i += g.sh) {
        tp_int r = (yp - i) / g.sh;
        if (r >= g.oh) continue;
        for (tp_int j = xp % g.sw; j < g.kw && j <= xp; j += g.sw) {
            tp_int s = (xp - j) / g.sw;
            if (s >= g.ow) continue;
            tp_int k = (ci * g.kh + i) * g.kw + j;
            acc += cols[k * NL + ni * L + r * g.ow + s];
        }
    }
    return acc;
}

#endif  // TINYPROJ_CONV_CUH
