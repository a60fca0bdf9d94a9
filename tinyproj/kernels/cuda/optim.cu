// optim.cu — the GPU launches of optim.cuh: Adam and SGD over a flat buffer, one launch.
// The *_scalars versions read the per-step scalars from device memory instead of taking them
// as arguments (``scalars`` = [lr, bc1, bc2] for Adam, [lr] for SGD; optim/device_scalars.py
// writes them), so a CUDA graph that replays the launch sees each step's values.
#include "optim.cuh"

template <typename T>
__global__ void adam_update(T* w, const T* g, T* m, T* v, tp_int size, T lr, T beta1,
                            T one_m_beta1, T beta2, T one_m_beta2, T eps, T bc1, T bc2) {
    TP_FOR_EACH(e, size) adam_element(w, g, m, v, e, lr, beta1, one_m_beta1, beta2, one_m_beta2,
                                      eps, bc1, bc2);
}

template <typename T>
__global__ void sgd_update(T* w, const T* g, T* buf, tp_int size, T lr, T momentum,
                           T weight_decay, tp_int nesterov, tp_int first) {
    TP_FOR_EACH(e, size) sgd_element(w, g, buf, e, lr, momentum, weight_decay, nesterov, first);
}

template <typename T>
__global__ void adam_update_scalars(T* w, const T* g, T* m, T* v, tp_int size, const T* scalars,
                                    T beta1, T one_m_beta1, T beta2, T one_m_beta2, T eps) {
    T lr = scalars[0], bc1 = scalars[1], bc2 = scalars[2];
    TP_FOR_EACH(e, size) adam_element(w, g, m, v, e, lr, beta1, one_m_beta1, beta2, one_m_beta2,
                                      eps, bc1, bc2);
}

template <typename T>
__global__ void sgd_update_scalars(T* w, const T* g, T* buf, tp_int size, const T* scalars,
                                   T momentum, T weight_decay, tp_int nesterov, tp_int first) {
    T lr = scalars[0];
    TP_FOR_EACH(e, size) sgd_element(w, g, buf, e, lr, momentum, weight_decay, nesterov, first);
}
