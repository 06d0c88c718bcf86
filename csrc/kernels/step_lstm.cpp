// Fused LSTM steps: the recurrent GEMM tile and the gate math on it, forward and backward.
#include "step_common.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

namespace {

// One vector of units, four gates: pre-activations are the product plus either the
// x-projection already in s.gates or (fused projection) the bias; activations go to
// s.gates (when kept), c_t and h_t out.
template <typename T>
struct LstmForward {
    template <int R>
    struct Tile {
        static void run(const StepTile<T>& s) {
            using V = typename Simd<T>::V;
            V acc[R][4];
            // Fused training writes the gates, which no cache holds. Unfused, they hold the
            // pre-activations that the input projection has just written: prefetching
            // them made no difference (B=1 T=100, A/B 0.996-0.998).
            const bool gates_out = s.gates && s.x;
            for (int i = 0; i < R; ++i) {
                if (gates_out)
                    for (int q = 0; q < 4; ++q)
                        prefetch_l2(s.gates + i * s.ld_gates + q * s.H, s.nu);
                prefetch_l2(s.c + i * s.ld_c, s.nu);
                prefetch_l2(s.h + i * s.ld_h, s.nu);
            }
            step_product<T, R>(s, acc);
            const int n = s.nu;
            const int64_t H = s.H;
            V bias[4];
            if (s.bias)
                for (int q = 0; q < 4; ++q) bias[q] = load_n(s.bias + q * H, n);
            for (int i = 0; i < R; ++i) {
                T* g = s.gates ? s.gates + i * s.ld_gates : nullptr;
                V pre[4];
                for (int q = 0; q < 4; ++q)
                    pre[q] = acc[i][q] + (s.bias ? bias[q] : load_n(g + q * H, n));
                // c_prev may alias c: it is read before c is written.
                const V cp = load_n(s.c_prev + i * s.ld_c_prev, n);
                if (s.peephole) {
                    pre[0] = fma(load_n(s.peephole, n), cp, pre[0]);
                    pre[1] = fma(load_n(s.peephole + H, n), cp, pre[1]);
                }
                const V ig = sigmoid(pre[0]), fg = sigmoid(pre[1]), gg = tanh(pre[2]);
                const V cn = fma(fg, cp, ig * gg);
                if (s.peephole) pre[3] = fma(load_n(s.peephole + 2 * H, n), cn, pre[3]);
                const V og = sigmoid(pre[3]);
                if (g) {
                    store_n(g, ig, n);
                    store_n(g + H, fg, n);
                    store_n(g + 2 * H, gg, n);
                    store_n(g + 3 * H, og, n);
                }
                store_n(s.c + i * s.ld_c, cn, n);
                store_n(s.h + i * s.ld_h, og * tanh(cn), n);
            }
        }
    };
};

// dh_t = dG_{t+1} * w_hh (the product) + dL/dh_t from the output; then the BPTT of step t
// for four vectors of units: dG_t and dc_{t-1}. Past step 0, dh goes to dh0.
template <typename T>
struct LstmBackward {
    template <int R>
    struct Tile {
        static void run(const StepTile<T>& s) {
            using V = typename Simd<T>::V;
            constexpr int L = Simd<T>::lanes;
            V acc[R][4];
            for (int i = 0; !s.dh0 && i < R; ++i) {
                for (int q = 0; q < 4; ++q) {
                    prefetch_l2(s.gates + i * s.ld_gates + q * s.H, s.nu);
                    prefetch_l2(s.dg + i * s.ld_dg + q * s.H, s.nu);
                }
                prefetch_l2(s.c + i * s.ld_c, s.nu);
                prefetch_l2(s.c_prev + i * s.ld_c_prev, s.nu);
                prefetch_l2(s.dc + i * s.ld_dc, s.nu);
                if (s.dh_out) prefetch_l2(s.dh_out + i * s.ld_dh_out, s.nu);
            }
            step_product<T, R>(s, acc);
            const int64_t H = s.H;
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
                    const T* act = s.gates + i * s.ld_gates + o;
                    const V ig = load_n(act, n), fg = load_n(act + H, n);
                    const V gg = load_n(act + 2 * H, n), og = load_n(act + 3 * H, n);
                    const V tc = tanh(load_n(s.c + i * s.ld_c + o, n));
                    const V da_o = dh * tc * og * (T(1) - og);
                    T* dcp = s.dc + i * s.ld_dc + o;
                    V dc = load_n(dcp, n) + dh * og * (T(1) - tc * tc);
                    if (s.peephole) dc += da_o * load_n(s.peephole + 2 * H + o, n);
                    const V da_i = dc * gg * ig * (T(1) - ig);
                    const V cp = load_n(s.c_prev + i * s.ld_c_prev + o, n);
                    const V da_f = dc * cp * fg * (T(1) - fg);
                    const V da_g = dc * ig * (T(1) - gg * gg);
                    V dc_prev = dc * fg;
                    if (s.peephole)
                        dc_prev += da_i * load_n(s.peephole + o, n) +
                                   da_f * load_n(s.peephole + H + o, n);
                    T* dg = s.dg + i * s.ld_dg + o;
                    store_n(dg, da_i, n);
                    store_n(dg + H, da_f, n);
                    store_n(dg + 2 * H, da_g, n);
                    store_n(dg + 3 * H, da_o, n);
                    store_n(dcp, dc_prev, n);
                }
        }
    };
};

}  // namespace

template <typename T>
void lstm_forward_tile(const StepTile<T>& s) {
    run_tile<LstmForward<T>::template Tile>(s);
}

template <typename T>
void lstm_backward_tile(const StepTile<T>& s) {
    run_tile<LstmBackward<T>::template Tile>(s);
}

template void lstm_forward_tile<float>(const StepTile<float>&);
template void lstm_forward_tile<double>(const StepTile<double>&);
template void lstm_backward_tile<float>(const StepTile<float>&);
template void lstm_backward_tile<double>(const StepTile<double>&);

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
