// optim.cu — the GPU launches of optim.cuh: Adam and SGD over a flat buffer, one launch.
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
