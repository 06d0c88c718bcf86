// LSTM gate math for one batch row: the forward cell update and its BPTT derivative.
#include "activations.h"

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

#define FASTRNN_INSTANTIATE(T)                                                           \
    template void lstm_forward_row<T>(int64_t, T*, const T*, T*, T*, const T*);          \
    template void lstm_backward_row<T>(int64_t, const T*, const T*, const T*, const T*,  \
                                       const T*, T*, T*, const T*);
FASTRNN_INSTANTIATE(float)
FASTRNN_INSTANTIATE(double)
#undef FASTRNN_INSTANTIATE

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
