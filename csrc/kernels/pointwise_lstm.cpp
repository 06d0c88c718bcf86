// LSTM gate math for one batch row: the forward cell update and its BPTT derivative.
#include "activations.h"
#include "simd.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

template <typename T>
void lstm_forward_row(int64_t H, T* gates, const T* c_prev, T* c, T* h, const T* peephole) {
    T* gi = gates;
    T* gf = gates + H;
    T* gg = gates + 2 * H;
    T* go = gates + 3 * H;
    for (int64_t j = 0; j < H; ++j) {
        // c_prev may alias c: read it before the write below.
        const T cp = c_prev[j];
        T pi = gi[j], pf = gf[j];
        if (peephole) {
            pi += peephole[j] * cp;
            pf += peephole[H + j] * cp;
        }
        const T i = sigmoid(pi);
        const T f = sigmoid(pf);
        const T g = tanh_(gg[j]);
        const T cn = f * cp + i * g;
        T po = go[j];
        if (peephole) po += peephole[2 * H + j] * cn;
        const T o = sigmoid(po);
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        c[j] = cn;
        h[j] = o * tanh_(cn);
    }
}

template <typename T>
void lstm_backward_row(int64_t H, const T* act, const T* c_prev, const T* c, const T* dh_out,
                       const T* dh_rec, T* dc, T* dgates, const T* peephole) {
    const T* ai = act;
    const T* af = act + H;
    const T* ag = act + 2 * H;
    const T* ao = act + 3 * H;
    for (int64_t j = 0; j < H; ++j) {
        const T i = ai[j], f = af[j], g = ag[j], o = ao[j];
        const T dh = dh_out ? dh_out[j] + dh_rec[j] : dh_rec[j];
        const T tc = tanh_(c[j]);
        const T da_o = dh * tc * o * (T(1) - o);
        T dcj = dc[j] + dh * o * (T(1) - tc * tc);
        if (peephole) dcj += da_o * peephole[2 * H + j];
        const T da_i = dcj * g * i * (T(1) - i);
        const T da_f = dcj * c_prev[j] * f * (T(1) - f);
        const T da_g = dcj * i * (T(1) - g * g);
        T dc_prev = dcj * f;
        if (peephole) dc_prev += da_i * peephole[j] + da_f * peephole[H + j];
        dgates[j] = da_i;
        dgates[H + j] = da_f;
        dgates[2 * H + j] = da_g;
        dgates[3 * H + j] = da_o;
        dc[j] = dc_prev;
    }
}

// float32: the same math on whole vectors with the polynomial sigmoid/tanh of simd.h.
template <>
void lstm_forward_row<float>(int64_t H, float* gates, const float* c_prev, float* c, float* h,
                             const float* peephole) {
    for_each_vec(H, [&](int64_t j, int n) {
        const VecF cp = load_n(c_prev + j, n);
        VecF pi = load_n(gates + j, n), pf = load_n(gates + H + j, n);
        if (peephole) {
            pi += load_n(peephole + j, n) * cp;
            pf += load_n(peephole + H + j, n) * cp;
        }
        const VecF i = sigmoid(pi), f = sigmoid(pf), g = tanh(load_n(gates + 2 * H + j, n));
        const VecF cn = f * cp + i * g;
        VecF po = load_n(gates + 3 * H + j, n);
        if (peephole) po += load_n(peephole + 2 * H + j, n) * cn;
        const VecF o = sigmoid(po);
        store_n(gates + j, i, n);
        store_n(gates + H + j, f, n);
        store_n(gates + 2 * H + j, g, n);
        store_n(gates + 3 * H + j, o, n);
        store_n(c + j, cn, n);
        store_n(h + j, o * tanh(cn), n);
    });
}

template <>
void lstm_backward_row<float>(int64_t H, const float* act, const float* c_prev, const float* c,
                              const float* dh_out, const float* dh_rec, float* dc, float* dgates,
                              const float* peephole) {
    for_each_vec(H, [&](int64_t j, int n) {
        const VecF i = load_n(act + j, n), f = load_n(act + H + j, n);
        const VecF g = load_n(act + 2 * H + j, n), o = load_n(act + 3 * H + j, n);
        VecF dh = load_n(dh_rec + j, n);
        if (dh_out) dh += load_n(dh_out + j, n);
        const VecF tc = tanh(load_n(c + j, n));
        const VecF da_o = dh * tc * o * (1.0f - o);
        VecF dcj = load_n(dc + j, n) + dh * o * (1.0f - tc * tc);
        if (peephole) dcj += da_o * load_n(peephole + 2 * H + j, n);
        const VecF da_i = dcj * g * i * (1.0f - i);
        const VecF da_f = dcj * load_n(c_prev + j, n) * f * (1.0f - f);
        const VecF da_g = dcj * i * (1.0f - g * g);
        VecF dc_prev = dcj * f;
        if (peephole)
            dc_prev += da_i * load_n(peephole + j, n) + da_f * load_n(peephole + H + j, n);
        store_n(dgates + j, da_i, n);
        store_n(dgates + H + j, da_f, n);
        store_n(dgates + 2 * H + j, da_g, n);
        store_n(dgates + 3 * H + j, da_o, n);
        store_n(dc + j, dc_prev, n);
    });
}

#define FASTRNN_INSTANTIATE(T)                                                           \
    template void lstm_forward_row<T>(int64_t, T*, const T*, T*, T*, const T*);          \
    template void lstm_backward_row<T>(int64_t, const T*, const T*, const T*, const T*,  \
                                       const T*, T*, T*, const T*);
FASTRNN_INSTANTIATE(double)
#undef FASTRNN_INSTANTIATE

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
