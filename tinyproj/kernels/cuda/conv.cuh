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
// I is the index type: tp_int (64-bit) always works; callers pass int where every index fits
// in 31 bits (tp_fits_int), as the seven divisions here are several times cheaper on a GPU
// in 32 bits (im2col was a quarter of the AlexNet-BN step on an H200 in 64 bits).
template <typename T, typename I = tp_int>
TP_HD T im2col_batch_element(const T* x, tp_window g, I e, T pad_value) {
    const I oh = (I)g.oh, ow = (I)g.ow, kh = (I)g.kh, kw = (I)g.kw;
    const I L = oh * ow;
    const I NL = (I)g.n * L;
    I k = e / NL, col = e % NL;             // row k = (c, i, j) of cols, column n·L + l
    I ni = col / L, l = col % L;
    I r = l / ow, s = l % ow;               // output pixel (r, s)
    I ci = k / (kh * kw), tap = k % (kh * kw);
    I i = tap / kw, j = tap % kw;           // kernel tap (i, j)
    I row = r * (I)g.sh + i - (I)g.ph;      // input pixel under the tap
    I cl = s * (I)g.sw + j - (I)g.pw;
    if (row < 0 || row >= (I)g.h || cl < 0 || cl >= (I)g.w) return pad_value;
    return x[((ni * (I)g.c + ci) * (I)g.h + row) * (I)g.w + cl];
}

// out[e] for e in [0, N·C·H·W): gather-style col2im. The caller of this element owns it
// alone and sums every column entry that came from this pixel, in the fixed order of the
// taps (i, j) ascending — the order in which reference.col2im_batch adds its slices — so
// the result is the reference's, bit for bit, with no atomics.
template <typename T, typename I = tp_int>
TP_HD T col2im_batch_element(const T* cols, tp_window g, I e) {
    const I oh = (I)g.oh, ow = (I)g.ow, kh = (I)g.kh, kw = (I)g.kw, sh = (I)g.sh, sw = (I)g.sw;
    const I h = (I)g.h, w = (I)g.w;
    const I L = oh * ow;
    const I NL = (I)g.n * L;
    I cl = e % w, row = (e / w) % h;
    I ci = (e / (w * h)) % (I)g.c, ni = e / (w * h * (I)g.c);
    I yp = row + (I)g.ph, xp = cl + (I)g.pw;          // position in the padded image
    T acc = 0;
    // tap i covers padded row yp from output row r = (yp − i)/sh when that divides exactly
    // and 0 <= r < OH; the taps that can, in ascending order: i = yp mod sh, + sh, ...
    for (I i = yp % sh; i < kh && i <= yp; i += sh) {
        I r = (yp - i) / sh;
        if (r >= oh) continue;
        for (I j = xp % sw; j < kw && j <= xp; j += sw) {
            I s = (xp - j) / sw;
            if (s >= ow) continue;
            I k = (ci * kh + i) * kw + j;
            acc += cols[k * NL + ni * L + r * ow + s];
        }
    }
    return acc;
}

// Whether every index of an im2col/col2im over these sizes fits the int index type: the
// columns' K·N·L entries and the images' N·C·H·W (with room for the padded positions).
TP_HD bool tp_fits_int(tp_window g) {
    const tp_int limit = 2147483647LL / 2;
    tp_int cols = g.c * g.kh * g.kw * g.n * g.oh * g.ow;
    tp_int image = g.n * g.c * (g.h + 2 * g.ph + g.kh) * (g.w + 2 * g.pw + g.kw);
    return cols < limit && image < limit;
}

#endif  // TINYPROJ_CONV_CUH
