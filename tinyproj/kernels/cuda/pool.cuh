// pool.cuh — max pooling forward (values and argmax) and backward (gather-style).
//
// Shapes (kernels/reference.py, maxpool_forward / maxpool_backward):
//   x, gx          (N, C, H, W)
//   y, argmax, gy  (N, C, OH, OW)   argmax = the tap i·kw + j that won the window
#ifndef TINYPROJ_POOL_CUH
#define TINYPROJ_POOL_CUH
#include "conv.cuh"

// The window of output e in [0, N·C·OH·OW): its maximum goes to *y, the winning tap to *k.
// numpy.argmax over the taps in order: the first maximum wins, and a NaN beats everything
// (the first NaN). Padding counts as −∞, which never beats anything, so padded taps are
// skipped; a window whose tap 0 is padding starts from (−∞, tap 0), as in the reference.
template <typename T>
TP_HD void maxpool_forward_element(const T* x, tp_window g, tp_int e, T* y, tp_int* k_out) {
    tp_int s = e % g.ow, r = (e / g.ow) % g.oh, plane = e / (g.ow * g.oh);   // plane = n·C + c
    const T* p = x + plane * g.h * g.w;
    T best = tp_neg_inf<T>();
    tp_int best_k = 0;
    for (tp_int i = 0; i < g.kh; ++i) {
        tp_int row = r * g.sh + i - g.ph;
        if (row < 0 || row >= g.h) continue;
        for (tp_int j = 0; j < g.kw; ++j) {
            tp_int cl = s * g.sw + j - g.pw;
            if (cl < 0 || cl >= g.w) continue;
            T v = p[row * g.w + cl];
            tp_int k = i * g.kw + j;
            if (k == 0 || (best == best && (v > best || v != v))) { best = v; best_k = k; }
        }
    }
    *y = best;
    *k_out = best_k;
}

// gx[e] for e in [0, N·C·H·W): the sum of the gradients of the windows this pixel won,
// added in the order of the taps (i, j) ascending — the order of the reference's slices —
// so the result is bit-exact, and no two threads ever write the same element.
template <typename T, typename I>
TP_HD T maxpool_backward_element(const T* gy, const I* argmax, tp_window g, tp_int e) {
    tp_int cl = e % g.w, row = (e / g.w) % g.h, plane = e / (g.w * g.h);
    const T* gp = gy + plane * g.oh * g.ow;
    const I* ap = argmax + plane * g.oh * g.ow;
    tp_int yp = row + g.ph, xp = cl + g.pw;
    T acc = 0;
    for (tp_int i = yp % g.sh; i < g.kh && i <= yp; i += g.sh) {
        tp_int r = (yp - i) / g.sh;
        if (r >= g.oh) continue;
        for (tp_int j = xp % g.sw; j < g.kw && j <= xp; j += g.sw) {
            tp_int s = (xp - j) / g.sw;
            if (s >= g.ow) continue;
            if ((tp_int)ap[r * g.ow + s] == i * g.kw + j) acc += gp[r * g.ow + s];
        }
    }
    return acc;
}

#endif  // TINYPROJ_POOL_CUH
