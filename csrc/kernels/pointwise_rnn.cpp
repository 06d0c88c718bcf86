// Elman activation for one batch row and its BPTT derivative, expressed through h so the
// forward need not save pre-activations: tanh' = 1 - h^2, relu' = [h > 0].
#include "activations.h"
#include "simd.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

template <typename T>
void rnn_forward_row(int64_t H, const T* pre, T* h, int relu) {
    if (relu) {
        // NaN stays NaN (a comparison with NaN is false), as in the reference.
        for (int64_t j = 0; j < H; ++j) h[j] = pre[j] < T(0) ? T(0) : pre[j];
    } else {
        for (int64_t j = 0; j < H; ++j) h[j] = tanh_(pre[j]);
    }
}

template <typename T>
void rnn_backward_row(int64_t H, const T* h, const T* dh_out, const T* dh_rec, T* da, int relu) {
    for (int64_t j = 0; j < H; ++j) {
        const T dh = dh_out ? dh_out[j] + dh_rec[j] : dh_rec[j];
        da[j] = relu ? (h[j] > T(0) ? dh : T(0)) : dh * (T(1) - h[j] * h[j]);
    }
}

// float32: tanh through the polynomial of simd.h.
template <>
void rnn_forward_row<float>(int64_t H, const float* pre, float* h, int relu) {
    if (relu) {
        for (int64_t j = 0; j < H; ++j) h[j] = pre[j] < 0.0f ? 0.0f : pre[j];
        return;
    }
    for_each_vec(H, [&](int64_t j, int n) { store_n(h + j, tanh(load_n(pre + j, n)), n); });
}

template void rnn_forward_row<double>(int64_t, const double*, double*, int);
template void rnn_backward_row<float>(int64_t, const float*, const float*, const float*, float*,
                                      int);
template void rnn_backward_row<double>(int64_t, const double*, const double*, const double*,
                                       double*, int);

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
