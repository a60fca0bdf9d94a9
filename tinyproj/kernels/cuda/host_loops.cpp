// host_loops.cpp — the kernels of this folder as plain loops on the CPU.
//
// Built by kernels/host.py with the system C++ compiler (-O2 -ffp-contract=off) into a shared
// library that the tests load with ctypes. Each loop calls the very per-element function that
// the GPU thread calls in the .cu file (one element per iteration), and the block reductions
// run the same fixed steps one "thread" after another, so a difference between this build and
// kernels/reference.py is a difference of the GPU kernel too — found without a GPU.
//
// Every function is exported twice, for float (_f32) and double (_f64), with C names; argmax
// arrays are int64 here.
#include "conv.cuh"
#include "pool.cuh"
#include "batchnorm.cuh"
#include "optim.cuh"
#include "projection.cuh"
#include "stochastic.cuh"

namespace {

template <typename T>
void im2col_batch_loop(const T* x, T* cols, tp_int n, tp_int c, tp_int h, tp_int w, tp_int kh,
                       tp_int kw, tp_int sh, tp_int sw, tp_int ph, tp_int pw, T pad_value) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    for (tp_int e = 0; e < c * kh * kw * n * g.oh * g.ow; ++e)
        cols[e] = im2col_batch_element(x, g, e, pad_value);
}

template <typename T>
void col2im_batch_loop(const T* cols, T* out, tp_int n, tp_int c, tp_int h, tp_int w, tp_int kh,
                       tp_int kw, tp_int sh, tp_int sw, tp_int ph, tp_int pw) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    for (tp_int e = 0; e < n * c * h * w; ++e) out[e] = col2im_batch_element(cols, g, e);
}

template <typename T>
void maxpool_forward_loop(const T* x, T* y, tp_int* argmax, tp_int n, tp_int c, tp_int h,
                          tp_int w, tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph,
                          tp_int pw) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    for (tp_int e = 0; e < n * c * g.oh * g.ow; ++e)
        maxpool_forward_element(x, g, e, &y[e], &argmax[e]);
}

template <typename T>
void maxpool_backward_loop(const T* gy, const tp_int* argmax, T* gx, tp_int n, tp_int c,
                           tp_int h, tp_int w, tp_int kh, tp_int kw, tp_int sh, tp_int sw,
                           tp_int ph, tp_int pw) {
    tp_window g = tp_make_window(n, c, h, w, kh, kw, sh, sw, ph, pw);
    for (tp_int e = 0; e < n * c * h * w; ++e) gx[e] = maxpool_backward_element(gy, argmax, g, e);
}

// The fold of a block reduction, thread after thread (the GPU runs each step in parallel).
void block_sum(double* s) {
    for (tp_int half = TP_BLOCK / 2; half > 0; half /= 2)
        for (tp_int t = 0; t < half; ++t) tp_sum_fold_step(s, t, half);
}

// One "block" per channel, as in batchnorm.cu.
template <typename T>
void batchnorm_forward_loop(const T* x, T* y, const T* mean_in, const T* var_in, const T* gamma,
                            const T* beta, T* mean_out, T* var_out, T* inv_std_out,
                            T* running_mean, T* running_var, tp_int* tracked, tp_int n,
                            tp_int c, tp_int l, T eps, tp_int training, tp_int has_gamma,
                            tp_int has_beta, tp_int relu, T keep, T momentum, T unbias,
                            tp_int has_running, tp_int count) {
    double s[TP_BLOCK];
    tp_int m = n * l;
    for (tp_int ci = 0; ci < c; ++ci) {
        T mean, var;
        if (training) {
            for (tp_int t = 0; t < TP_BLOCK; ++t) s[t] = bn_sum_share(x, n, c, l, ci, t);
            block_sum(s);
            double mu = s[0] / (double)m;
            for (tp_int t = 0; t < TP_BLOCK; ++t) s[t] = bn_sqdev_share(x, n, c, l, ci, t, mu);
            block_sum(s);
            mean = (T)mu;
            var = (T)(s[0] / (double)m);
        } else {
            mean = mean_in[ci];
            var = var_in[ci];
        }
        T inv_std = bn_inv_std(var, eps);
        for (tp_int e = 0; e < m; ++e) {
            tp_int idx = bn_index(c, l, ci, e);
            y[idx] = bn_forward_element(x[idx], mean, inv_std, gamma, beta, ci, has_gamma,
                                        has_beta, relu);
        }
        mean_out[ci] = mean;
        var_out[ci] = var;
        inv_std_out[ci] = inv_std;
        if (has_running)
            bn_running_update(running_mean, running_var, ci, mean, var, keep, momentum, unbias);
    }
    if (count && c > 0) tracked[0] += 1;
}

template <typename T>
void batchnorm_backward_loop(const T* gy, const T* x, const T* mean, const T* inv_std,
                             const T* gamma, const T* relu_out, T* gx, T* ggamma, T* gbeta,
                             tp_int n, tp_int c, tp_int l, tp_int training, tp_int has_gamma,
                             tp_int has_relu) {
    double sa[TP_BLOCK], sb[TP_BLOCK];
    tp_int m = n * l;
    for (tp_int ci = 0; ci < c; ++ci) {
        T mu = mean[ci], inv = inv_std[ci];
        for (tp_int t = 0; t < TP_BLOCK; ++t)
            bn_backward_shares(gy, relu_out, has_relu, x, mu, inv, n, c, l, ci, t, &sa[t],
                               &sb[t]);
        block_sum(sa);
        block_sum(sb);
        T mean_g = training ? (T)(sa[0] / (double)m) : T(0);
        T mean_gx = training ? (T)(sb[0] / (double)m) : T(0);
        T gam = has_gamma ? gamma[ci] : T(1);
        for (tp_int e = 0; e < m; ++e) {
            tp_int idx = bn_index(c, l, ci, e);
            gx[idx] = bn_backward_element(bn_grad_in(gy, relu_out, has_relu, idx), x[idx], mu,
                                          inv, gam, mean_g, mean_gx, has_gamma, training);
        }
        ggamma[ci] = (T)sb[0];
        gbeta[ci] = (T)sa[0];
    }
}

template <typename T>
void adam_update_loop(T* w, const T* g, T* m, T* v, tp_int size, T lr, T beta1, T one_m_beta1,
                      T beta2, T one_m_beta2, T eps, T bc1, T bc2) {
    for (tp_int e = 0; e < size; ++e)
        adam_element(w, g, m, v, e, lr, beta1, one_m_beta1, beta2, one_m_beta2, eps, bc1, bc2);
}

template <typename T>
void sgd_update_loop(T* w, const T* g, T* buf, tp_int size, T lr, T momentum, T weight_decay,
                     tp_int nesterov, tp_int first) {
    for (tp_int e = 0; e < size; ++e)
        sgd_element(w, g, buf, e, lr, momentum, weight_decay, nesterov, first);
}

template <typename T>
void adam_update_scalars_loop(T* w, const T* g, T* m, T* v, tp_int size, const T* scalars,
                              T beta1, T one_m_beta1, T beta2, T one_m_beta2, T eps) {
    T lr = scalars[0], bc1 = scalars[1], bc2 = scalars[2];
    for (tp_int e = 0; e < size; ++e)
        adam_element(w, g, m, v, e, lr, beta1, one_m_beta1, beta2, one_m_beta2, eps, bc1, bc2);
}

template <typename T>
void sgd_update_scalars_loop(T* w, const T* g, T* buf, tp_int size, const T* scalars,
                             T momentum, T weight_decay, tp_int nesterov, tp_int first) {
    T lr = scalars[0];
    for (tp_int e = 0; e < size; ++e)
        sgd_element(w, g, buf, e, lr, momentum, weight_decay, nesterov, first);
}

template <typename T>
void maxabs_loop(const T* w, tp_int size, T* alpha) {
    T s[TP_BLOCK];
    for (tp_int t = 0; t < TP_BLOCK; ++t) s[t] = maxabs_share(w, size, t);
    for (tp_int half = TP_BLOCK / 2; half > 0; half /= 2)
        for (tp_int t = 0; t < half; ++t) s[t] = tp_max_nan(s[t], s[t + half]);
    alpha[0] = s[0];
}

template <typename T>
void sign_apply_loop(const T* w, const T* alpha, T* out, tp_int size) {
    for (tp_int e = 0; e < size; ++e) out[e] = sign_element(w[e], alpha[0]);
}

template <typename T>
void maxabs_segments_loop(const T* w, const tp_int* offsets, tp_int n_seg, T* alpha) {
    for (tp_int seg = 0; seg < n_seg; ++seg)
        maxabs_loop(w + offsets[seg], offsets[seg + 1] - offsets[seg], &alpha[seg]);
}

template <typename T>
void sign_segments_loop(const T* w, const tp_int* offsets, tp_int n_seg, const T* alpha, T* out,
                        tp_int size) {
    for (tp_int e = 0; e < size; ++e)
        out[e] = sign_element(w[e], alpha[tp_segment_of(offsets, n_seg, e)]);
}

template <typename T>
void clip_segments_loop(const T* v, const tp_int* offsets, tp_int n_seg, const T* bounds, T* out,
                        tp_int size) {
    for (tp_int e = 0; e < size; ++e)
        out[e] = clip_element(v[e], bounds[tp_segment_of(offsets, n_seg, e)]);
}

template <typename T>
void stoch_segments_loop(const T* w, const tp_int* offsets, tp_int n_seg, const T* alpha,
                         const tp_int* key, T* out, tp_int size) {
    for (tp_int e = 0; e < size; ++e)
        out[e] = stoch_element(w[e], alpha[tp_segment_of(offsets, n_seg, e)],
                               tp_random_words(key, e));
}

template <typename T>
void stochm_segments_loop(const T* w, const tp_int* offsets, tp_int n_seg, const T* alpha,
                          const tp_int* key, T* out, tp_int size, T lo, T width) {
    for (tp_int e = 0; e < size; ++e)
        out[e] = stochm_element(w[e], alpha[tp_segment_of(offsets, n_seg, e)],
                                tp_random_words(key, e), lo, width);
}

template <typename T>
void gaussian_noise_loop(const T* x, const tp_int* key, T* y, T* factor, tp_int size,
                         T sigma_add, T sigma_mul, tp_int add_first, tp_int keep_factor) {
    for (tp_int e = 0; e < size; ++e) {
        T f;
        y[e] = noise_element(x[e], tp_random_words(key, e), sigma_add, sigma_mul, add_first, &f);
        if (keep_factor) factor[e] = f;
    }
}

template <typename T>
void uniform_fill_loop(const tp_int* key, T* out, tp_int size, T lo, T width) {
    for (tp_int e = 0; e < size; ++e)
        out[e] = uniform_element(tp_random_words(key, e), lo, width);
}

template <typename T>
void normal_fill_loop(const tp_int* key, T* out, tp_int size, T mean, T scale) {
    for (tp_int e = 0; e < size; ++e)
        out[e] = normal_element(tp_random_words(key, e), mean, scale);
}

}  // namespace

// C names for ctypes: tp_<kernel>_f32 and tp_<kernel>_f64. The argument lists are those of
// the loops above (and of the __global__ kernels in the .cu files).
#define TP_EXPORT_ALL(T, SUF)                                                                 \
extern "C" void tp_im2col_batch_##SUF(const T* x, T* cols, tp_int n, tp_int c, tp_int h,     \
        tp_int w, tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph, tp_int pw, T pv) {  \
    im2col_batch_loop(x, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, pv); }                     \
extern "C" void tp_col2im_batch_##SUF(const T* cols, T* out, tp_int n, tp_int c, tp_int h,   \
        tp_int w, tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph, tp_int pw) {        \
    col2im_batch_loop(cols, out, n, c, h, w, kh, kw, sh, sw, ph, pw); }                       \
extern "C" void tp_maxpool_forward_##SUF(const T* x, T* y, tp_int* am, tp_int n, tp_int c,   \
        tp_int h, tp_int w, tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph,           \
        tp_int pw) {                                                                          \
    maxpool_forward_loop(x, y, am, n, c, h, w, kh, kw, sh, sw, ph, pw); }                     \
extern "C" void tp_maxpool_backward_##SUF(const T* gy, const tp_int* am, T* gx, tp_int n,    \
        tp_int c, tp_int h, tp_int w, tp_int kh, tp_int kw, tp_int sh, tp_int sw, tp_int ph, \
        tp_int pw) {                                                                          \
    maxpool_backward_loop(gy, am, gx, n, c, h, w, kh, kw, sh, sw, ph, pw); }                  \
extern "C" void tp_batchnorm_forward_##SUF(const T* x, T* y, const T* mean_in,               \
        const T* var_in, const T* gamma, const T* beta, T* mean_out, T* var_out,             \
        T* inv_std_out, T* rmean, T* rvar, tp_int* tracked, tp_int n, tp_int c, tp_int l,    \
        T eps, tp_int training, tp_int has_gamma, tp_int has_beta, tp_int relu, T keep,      \
        T mom, T unbias, tp_int has_running, tp_int count) {                                  \
    batchnorm_forward_loop(x, y, mean_in, var_in, gamma, beta, mean_out, var_out,            \
                           inv_std_out, rmean, rvar, tracked, n, c, l, eps, training,         \
                           has_gamma, has_beta, relu, keep, mom, unbias, has_running,         \
                           count); }                                                          \
extern "C" void tp_batchnorm_backward_##SUF(const T* gy, const T* x, const T* mean,          \
        const T* inv_std, const T* gamma, const T* relu_out, T* gx, T* ggamma, T* gbeta,     \
        tp_int n, tp_int c, tp_int l, tp_int training, tp_int has_gamma, tp_int has_relu) {  \
    batchnorm_backward_loop(gy, x, mean, inv_std, gamma, relu_out, gx, ggamma, gbeta, n, c,  \
                            l, training, has_gamma, has_relu); }                              \
extern "C" void tp_adam_update_##SUF(T* w, const T* g, T* m, T* v, tp_int size, T lr,        \
        T b1, T omb1, T b2, T omb2, T eps, T bc1, T bc2) {                                    \
    adam_update_loop(w, g, m, v, size, lr, b1, omb1, b2, omb2, eps, bc1, bc2); }              \
extern "C" void tp_sgd_update_##SUF(T* w, const T* g, T* buf, tp_int size, T lr, T mom,      \
        T wd, tp_int nesterov, tp_int first) {                                                \
    sgd_update_loop(w, g, buf, size, lr, mom, wd, nesterov, first); }                         \
extern "C" void tp_adam_update_scalars_##SUF(T* w, const T* g, T* m, T* v, tp_int size,     \
        const T* scalars, T b1, T omb1, T b2, T omb2, T eps) {                               \
    adam_update_scalars_loop(w, g, m, v, size, scalars, b1, omb1, b2, omb2, eps); }          \
extern "C" void tp_sgd_update_scalars_##SUF(T* w, const T* g, T* buf, tp_int size,           \
        const T* scalars, T mom, T wd, tp_int nesterov, tp_int first) {                      \
    sgd_update_scalars_loop(w, g, buf, size, scalars, mom, wd, nesterov, first); }           \
extern "C" void tp_maxabs_##SUF(const T* w, tp_int size, T* alpha) {                         \
    maxabs_loop(w, size, alpha); }                                                            \
extern "C" void tp_sign_apply_##SUF(const T* w, const T* alpha, T* out, tp_int size) {       \
    sign_apply_loop(w, alpha, out, size); }                                                   \
extern "C" void tp_maxabs_segments_##SUF(const T* w, const tp_int* offsets, tp_int n_seg,     \
        T* alpha) {                                                                           \
    maxabs_segments_loop(w, offsets, n_seg, alpha); }                                         \
extern "C" void tp_sign_segments_##SUF(const T* w, const tp_int* offsets, tp_int n_seg,       \
        const T* alpha, T* out, tp_int size) {                                                \
    sign_segments_loop(w, offsets, n_seg, alpha, out, size); }                                \
extern "C" void tp_clip_segments_##SUF(const T* v, const tp_int* offsets, tp_int n_seg,       \
        const T* bounds, T* out, tp_int size) {                                               \
    clip_segments_loop(v, offsets, n_seg, bounds, out, size); }                               \
extern "C" void tp_stoch_segments_##SUF(const T* w, const tp_int* offsets, tp_int n_seg,      \
        const T* alpha, const tp_int* key, T* out, tp_int size) {                            \
    stoch_segments_loop(w, offsets, n_seg, alpha, key, out, size); }                          \
extern "C" void tp_stochm_segments_##SUF(const T* w, const tp_int* offsets, tp_int n_seg,     \
        const T* alpha, const tp_int* key, T* out, tp_int size, T lo, T width) {             \
    stochm_segments_loop(w, offsets, n_seg, alpha, key, out, size, lo, width); }              \
extern "C" void tp_gaussian_noise_##SUF(const T* x, const tp_int* key, T* y, T* factor,       \
        tp_int size, T sigma_add, T sigma_mul, tp_int add_first, tp_int keep_factor) {       \
    gaussian_noise_loop(x, key, y, factor, size, sigma_add, sigma_mul, add_first,             \
                        keep_factor); }                                                       \
extern "C" void tp_uniform_fill_##SUF(const tp_int* key, T* out, tp_int size, T lo, T width) { \
    uniform_fill_loop(key, out, size, lo, width); }                                           \
extern "C" void tp_normal_fill_##SUF(const tp_int* key, T* out, tp_int size, T mean, T scale) {  \
    normal_fill_loop(key, out, size, mean, scale); }

TP_EXPORT_ALL(float, f32)
TP_EXPORT_ALL(double, f64)
