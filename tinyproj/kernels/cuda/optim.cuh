// optim.cuh — Adam and SGD, one parameter value per call.
//
// The buffers are flat: one call of the kernel updates every value of w (and m, v or the
// momentum buffer) in place, so an optimizer whose parameters live side by side in one flat
// buffer updates them all in one launch. The scalars arrive already rounded to T, exactly as
// NumPy rounds a Python float next to a float32 array, so the result is the reference's bit
// for bit (no fused multiply-adds).
#ifndef TINYPROJ_OPTIM_CUH
#define TINYPROJ_OPTIM_CUH
#include "common.cuh"

// Adam (optim/adam.py, reference.adam_update), bc1 = 1 − β1^t, bc2 = 1 − β2^t:
//   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²,  w ← w − lr·(m/bc1) / (√(v/bc2) + eps)
template <typename T>
TP_HD void adam_element(T* w, const T* g, T* m, T* v, tp_int e, T lr, T beta1, T one_m_beta1,
                        T beta2, T one_m_beta2, T eps, T bc1, T bc2) {
    T gi = g[e];
    T mi = beta1 * m[e] + one_m_beta1 * gi;
    T vi = beta2 * v[e] + one_m_beta2 * (gi * gi);
    m[e] = mi;
    v[e] = vi;
    w[e] = w[e] - lr * (mi / bc1) / (tp_sqrt(vi / bc2) + eps);
}

// SGD (optim/sgd.py), PyTorch's convention:
//   g ← g + wd·w (if wd);  buf ← g on the first step, else momentum·buf + g;
//   g ← g + momentum·buf (nesterov) or buf;  w ← w − lr·g
// momentum = 0 means plain SGD (buf untouched; pass w as buf).
template <typename T>
TP_HD void sgd_element(T* w, const T* g, T* buf, tp_int e, T lr, T momentum, T weight_decay,
                       tp_int nesterov, tp_int first) {
    T gi = g[e];
    if (weight_decay != T(0)) gi = gi + weight_decay * w[e];
    if (momentum != T(0)) {
        T b = first ? gi : buf[e] * momentum + gi;
        buf[e] = b;
        gi = nesterov ? gi + momentum * b : b;
    }
    w[e] = w[e] - lr * gi;
}

#endif  // TINYPROJ_OPTIM_CUH
