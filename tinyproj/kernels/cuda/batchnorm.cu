// batchnorm.cu — the GPU launches of batchnorm.cuh: forward and backward, one launch each,
// one block of TP_BLOCK threads per channel (launch with grid = C, block = TP_BLOCK).
#include "batchnorm.cuh"

// x, y (N, C, L); mean_in, var_in: the statistics to use when training == 0 (else ignored);
// gamma, beta read only when has_gamma, has_beta; mean_out, var_out, inv_std_out (C,);
// relu: apply the following ReLU too; has_running: update running_mean, running_var (C,) with
// keep, momentum, unbias (batchnorm.cuh); count: add one to tracked[0] (int64, block 0).
template <typename T>
__global__ void batchnorm_forward(const T* x, T* y, const T* mean_in, const T* var_in,
                                  const T* gamma, const T* beta, T* mean_out, T* var_out,
                                  T* inv_std_out, T* running_mean, T* running_var,
                                  tp_int* tracked, tp_int n, tp_int c, tp_int l, T eps,
                                  tp_int training, tp_int has_gamma, tp_int has_beta,
                                  tp_int relu, T keep, T momentum, T unbias, tp_int has_running,
                                  tp_int count) {
    __shared__ double s[TP_BLOCK];
    tp_int ci = blockIdx.x, t = threadIdx.x, m = n * l;
    T mean, var;
    if (training) {
        s[t] = bn_sum_share(x, n, c, l, ci, t);
        tp_block_sum(s);
        double mu = s[0] / (double)m;
        __syncthreads();                                   // everyone has read s[0]
        s[t] = bn_sqdev_share(x, n, c, l, ci, t, mu);
        tp_block_sum(s);
        mean = (T)mu;
        var = (T)(s[0] / (double)m);
    } else {
        mean = mean_in[ci];
        var = var_in[ci];
    }
    T inv_std = bn_inv_std(var, eps);
    for (tp_int e = t; e < m; e += TP_BLOCK) {
        tp_int idx = bn_index(c, l, ci, e);
        y[idx] = bn_forward_element(x[idx], mean, inv_std, gamma, beta, ci, has_gamma, has_beta,
                                    relu);
    }
    if (t == 0) {
        mean_out[ci] = mean;
        var_out[ci] = var;
        inv_std_out[ci] = inv_std;
        if (has_running)
            bn_running_update(running_mean, running_var, ci, mean, var, keep, momentum, unbias);
        if (count && ci == 0) tracked[0] += 1;
    }
}

// gy, x, gx (N, C, L); mean, inv_std (C,) from the forward pass; gamma read only when
// has_gamma; ggamma = Σ gy·x̂ and gbeta = Σ gy (C,); relu_out (N, C, L), read only when
// has_relu: the output of a forward pass with the fused ReLU.
template <typename T>
__global__ void batchnorm_backward(const T* gy, const T* x, const T* mean, const T* inv_std,
                                   const T* gamma, const T* relu_out, T* gx, T* ggamma,
                                   T* gbeta, tp_int n, tp_int c, tp_int l, tp_int training,
                                   tp_int has_gamma, tp_int has_relu) {
    __shared__ double sa[TP_BLOCK];
    __shared__ double sb[TP_BLOCK];
    tp_int ci = blockIdx.x, t = threadIdx.x, m = n * l;
    T mu = mean[ci], inv = inv_std[ci];
    bn_backward_shares(gy, relu_out, has_relu, x, mu, inv, n, c, l, ci, t, &sa[t], &sb[t]);
    tp_block_sum(sa);
    tp_block_sum(sb);
    T mean_g = training ? (T)(sa[0] / (double)m) : T(0);
    T mean_gx = training ? (T)(sb[0] / (double)m) : T(0);
    T gam = has_gamma ? gamma[ci] : T(1);
    for (tp_int e = t; e < m; e += TP_BLOCK) {
        tp_int idx = bn_index(c, l, ci, e);
        gx[idx] = bn_backward_element(bn_grad_in(gy, relu_out, has_relu, idx), x[idx], mu, inv,
                                      gam, mean_g, mean_gx, has_gamma, training);
    }
    if (t == 0) {
        ggamma[ci] = (T)sb[0];
        gbeta[ci] = (T)sa[0];
    }
}
