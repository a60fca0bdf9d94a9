// projection.cuh — Table 1's Sign and the clip.
//
// Sign(w)  = α·sign(w), sign(0) = +1                      (reference.sign_projection)
// clip(v)  = max(min(v, c), −c), NaN propagates            (clipping.prox_linf)
// α = max|w| over the whole tensor (NaN if any w is NaN): a fixed-order block reduction
// (common.cuh) in one launch, read by the element-wise launch from device memory (no sync).
#ifndef TINYPROJ_PROJECTION_CUH
#define TINYPROJ_PROJECTION_CUH
#include "common.cuh"

// max(a, b) where a NaN on either side wins (numpy.max).
template <typename T>
TP_HD T tp_max_nan(T a, T b) { return (a == a && !(b <= a)) ? b : a; }

// Thread t's share of max|w| (elements t, t + TP_BLOCK, ...); 0 for no elements.
template <typename T>
TP_HD T maxabs_share(const T* w, tp_int size, tp_int t) {
    T best = 0;
    for (tp_int e = t; e < size; e += TP_BLOCK) {
        T a = w[e] < T(0) ? -w[e] : w[e];
        best = tp_max_nan(best, a);
    }
    return best;
}

template <typename T>
TP_HD T sign_element(T w, T alpha) { return w >= T(0) ? alpha : -alpha; }

template <typename T>
TP_HD T clip_element(T v, T c) {
    T a = (v != v || v < c) ? v : c;                 // numpy.minimum(v, c)
    return (a != a || a > -c) ? a : -c;              // numpy.maximum(a, −c)
}

// Several tensors in one flat buffer (all the layers' weights side by side): tensor s holds
// the elements [offsets[s], offsets[s + 1]), offsets[0] = 0, n_seg tensors. The tensor of
// element e: the last s with offsets[s] <= e (a binary search; empty tensors are skipped).
TP_HD tp_int tp_segment_of(const tp_int* offsets, tp_int n_seg, tp_int e) {
    tp_int lo = 0, hi = n_seg;
    while (hi - lo > 1) {
        tp_int mid = (lo + hi) / 2;
        if (offsets[mid] <= e) lo = mid; else hi = mid;
    }
    return lo;
}

#endif  // TINYPROJ_PROJECTION_CUH
