// Fused Elman steps: the recurrent GEMM tile and the activation on it, forward and
// backward. The backward recovers act' from h: tanh' = 1 - h^2, relu' = [h > 0].
#include "step_common.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

namespace {

template <typename T>
typename Simd<T>::V relu(typename Simd<T>::V x) {
    // x < 0 -> 0; NaN compares false and stays NaN, as in the reference.
    for (int l = 0; l < Simd<T>::lanes; ++l) x[l] = x[l] < T(0) ? T(0) : x[l];
    return x;
}

// Four vectors of units: h_t = act(product + x-projection in s.gates, or + bias when the
// projection is fused into the product).
template <typename T>
struct RnnForward {
    template <int R>
    struct Tile {
        static void run(const StepTile<T>& s) {
            using V = typename Simd<T>::V;
            constexpr int L = Simd<T>::lanes;
            V acc[R][4];
            for (int i = 0; i < R; ++i) prefetch_l2(s.h + i * s.ld_h, s.nu);
            step_product<T, R>(s, acc);
            for (int i = 0; i < R; ++i)
                for (int q = 0; q < 4; ++q) {
                    const int n = lanes_in(s.nu, q, L);
                    if (n == 0) break;
                    const T* add = s.bias ? s.bias + q * L : s.gates + i * s.ld_gates + q * L;
                    const V pre = acc[i][q] + load_n(add, n);
                    store_n(s.h + i * s.ld_h + q * L, s.relu ? relu<T>(pre) : tanh(pre), n);
                }
        }
    };
};

// dh_t = da_{t+1} * w_hh + dL/dh_t from the output; da_t = dh_t * act'(h_t).
// Past step 0, dh goes to dh0.
template <typename T>
struct RnnBackward {
    template <int R>
    struct Tile {
        static void run(const StepTile<T>& s) {
            using V = typename Simd<T>::V;
            constexpr int L = Simd<T>::lanes;
            V acc[R][4];
            for (int i = 0; !s.dh0 && i < R; ++i) {
                prefetch_l2(s.h + i * s.ld_h, s.nu);
                prefetch_l2(s.dg + i * s.ld_dg, s.nu);
                if (s.dh_out) prefetch_l2(s.dh_out + i * s.ld_dh_out, s.nu);
            }
            step_product<T, R>(s, acc);
            for (int i = 0; i < R; ++i)
                for (int q = 0; q < 4; ++q) {
                    const int n = lanes_in(s.nu, q, L);
                    if (n == 0) break;
                    const int64_t o = q * L;
                    V dh = acc[i][q];
                    if (s.dh_out) dh += load_n(s.dh_out + i * s.ld_dh_out + o, n);
                    if (s.dh0) {
                        store_n(s.dh0 + i * s.ld_dh0 + o, dh, n);
                        continue;
                    }
                    const V h = load_n(s.h + i * s.ld_h + o, n);
                    V da;
                    if (s.relu) {
                        // [h > 0] * dh, as the reference: a NaN or inf dh stays non-finite.
                        for (int l = 0; l < L; ++l) da[l] = T(h[l] > T(0)) * dh[l];
                    } else {
                        da = dh * (T(1) - h * h);
                    }
                    store_n(s.dg + i * s.ld_dg + o, da, n);
                }
        }
    };
};

}  // namespace

template <typename T>
void rnn_forward_tile(const StepTile<T>& s) {
    run_tile<RnnForward<T>::template Tile>(s);
}

template <typename T>
void rnn_backward_tile(const StepTile<T>& s) {
    run_tile<RnnBackward<T>::template Tile>(s);
}

template void rnn_forward_tile<float>(const StepTile<float>&);
template void rnn_forward_tile<double>(const StepTile<double>&);
template void rnn_backward_tile<float>(const StepTile<float>&);
template void rnn_backward_tile<double>(const StepTile<double>&);

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
