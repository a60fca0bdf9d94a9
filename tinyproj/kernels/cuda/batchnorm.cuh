// batchnorm.cuh — batch norm forward and backward, training and evaluation mode.
//
// x, y, gy, gx are seen as (N, C, L): L = H·W for BatchNorm2d, 1 for BatchNorm1d; the m = N·L
// values of channel c are visited in the order e = 0 .. m−1, element e being x[e / L, c, e % L].
// Formulas (kernels/reference.py, batchnorm_forward / batchnorm_backward):
//   μ = Σx / m,  σ² = Σ(x − μ)² / m  (biased; two passes, float64 sums, rounded once to T)
//   inv_std = 1 / √(σ² + eps),  x̂ = (x − μ)·inv_std,  y = γ·x̂ + β
//   ggamma = Σ gy·x̂,  gbeta = Σ gy,  gx = γ·inv_std·(gy − Σgy/m − x̂·Σ(gy·x̂)/m)   (training)
//                                     gx = (gy·γ)·inv_std                          (evaluation)
// The sums are fixed-order block reductions (common.cuh, TP_BLOCK): one GPU block per channel.
//
// Running statistics (optional, training mode): updated in the same launch, PyTorch's convention
// with the roundings of the array code it replaces (nn/batchnorm.py), all in T:
//   running_mean ← running_mean·keep + momentum·μ,  running_var ← running_var·keep + (momentum·σ²)·unbias
//   keep = 1 − momentum, unbias = m/(m − 1) (the running variance is the unbiased one)
// and the layer's batch counter (int64) goes up by one (block 0 does it), so the bookkeeping
// of a training-mode batch norm costs no launch of its own.
//
// Fused ReLU (optional): the forward pass can apply the ReLU that follows it, y ← y·[y > 0]
// (functional ReLU's own formula, so NaN stays NaN and the bits match), and the backward pass
// then takes that output r and uses gy·[r > 0] in place of gy (r > 0 exactly where the
// normalized value was > 0), so the ReLU costs no launch of its own in either direction.
#ifndef TINYPROJ_BATCHNORM_CUH
#define TINYPROJ_BATCHNORM_CUH
#include "common.cuh"

// Index in the (N, C, L) array of the e-th value of channel ci.
TP_HD tp_int bn_index(tp_int c, tp_int l, tp_int ci, tp_int e) {
    return ((e / l) * c + ci) * l + e % l;
}

// Thread t's share of Σx over channel ci: elements t, t + TP_BLOCK, ... in order.
template <typename T>
TP_HD double bn_sum_share(const T* x, tp_int n, tp_int c, tp_int l, tp_int ci, tp_int t) {
    double acc = 0.0;
    for (tp_int e = t; e < n * l; e += TP_BLOCK) acc += (double)x[bn_index(c, l, ci, e)];
    return acc;
}

// Thread t's share of Σ(x − μ)², μ in float64 (the second pass: no cancellation).
template <typename T>
TP_HD double bn_sqdev_share(const T* x, tp_int n, tp_int c, tp_int l, tp_int ci, tp_int t,
                            double mu) {
    double acc = 0.0;
    for (tp_int e = t; e < n * l; e += TP_BLOCK) {
        double d = (double)x[bn_index(c, l, ci, e)] - mu;
        acc += d * d;
    }
    return acc;
}

// 1/√(σ² + eps) in T, as the reference rounds it.
template <typename T>
TP_HD T bn_inv_std(T var, T eps) { return T(1) / tp_sqrt(var + eps); }

// y for one value: x̂ = (x − μ)·inv_std, then ·γ and +β when given (the reference's order).
template <typename T>
TP_HD T bn_forward_element(T x, T mean, T inv_std, const T* gamma, const T* beta, tp_int ci,
                           tp_int has_gamma, tp_int has_beta, tp_int relu) {
    T y = (x - mean) * inv_std;
    if (has_gamma) y = y * gamma[ci];
    if (has_beta) y = y + beta[ci];
    if (relu) y = y * (y > T(0) ? T(1) : T(0));
    return y;
}

// The running statistics of channel ci after one training batch (see the top of this file).
template <typename T>
TP_HD void bn_running_update(T* running_mean, T* running_var, tp_int ci, T mean, T var, T keep,
                             T momentum, T unbias) {
    running_mean[ci] = running_mean[ci] * keep + momentum * mean;
    running_var[ci] = running_var[ci] * keep + (momentum * var) * unbias;
}

// The gradient arriving at the batch norm itself: gy, or gy·[r > 0] behind a fused ReLU
// whose output is r (the product, as the ReLU's backward computes it).
template <typename T>
TP_HD T bn_grad_in(const T* gy, const T* relu_out, tp_int has_relu, tp_int idx) {
    return has_relu ? gy[idx] * (relu_out[idx] > T(0) ? T(1) : T(0)) : gy[idx];
}

// Thread t's shares of Σgy (*a) and Σgy·x̂ (*b) over channel ci.
template <typename T>
TP_HD void bn_backward_shares(const T* gy, const T* relu_out, tp_int has_relu, const T* x,
                              T mean, T inv_std, tp_int n, tp_int c, tp_int l, tp_int ci,
                              tp_int t, double* a, double* b) {
    double sa = 0.0, sb = 0.0;
    for (tp_int e = t; e < n * l; e += TP_BLOCK) {
        tp_int idx = bn_index(c, l, ci, e);
        T xhat = (x[idx] - mean) * inv_std;
        T g = bn_grad_in(gy, relu_out, has_relu, idx);
        sa += (double)g;
        sb += (double)g * (double)xhat;
    }
    *a = sa;
    *b = sb;
}

// gx for one value. mean_g = Σgy/m and mean_gx = Σ(gy·x̂)/m, rounded to T (training only).
template <typename T>
TP_HD T bn_backward_element(T gy, T x, T mean, T inv_std, T gamma, T mean_g, T mean_gx,
                            tp_int has_gamma, tp_int training) {
    if (!training) return (has_gamma ? gy * gamma : gy) * inv_std;
    T xhat = (x - mean) * inv_std;
    T f = has_gamma ? gamma * inv_std : inv_std;
    return f * (gy - mean_g - xhat * mean_gx);
}

#endif  // TINYPROJ_BATCHNORM_CUH
