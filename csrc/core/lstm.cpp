// LSTM time loops. Forward: input projection for a chunk of steps as one GEMM, then per
// step one GEMM with the packed w_hh and the fused gate kernel. Backward: the reverse
// loop keeps only dG_t * w_hh; the rest is sequence_grads() over all steps at once.
#include "fastrnn/lstm.h"

#include <algorithm>
#include <cstring>

#include "fastrnn/dispatch.h"
#include "fastrnn/parallel.h"
#include "fastrnn/workspace.h"
#include "sequence.h"

namespace fastrnn::core {

namespace {

// Inference keeps gate pre-activations for at most this many bytes of steps at a time,
// so memory stays O(B*H) however long the sequence.
constexpr int64_t kChunkBytes = 8 << 20;

template <typename T>
void copy_rows(int64_t B, int64_t H, const T* src, ptrdiff_t ld_src, T* dst) {
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(dst + b * H, src + b * ld_src, static_cast<size_t>(H) * sizeof(T));
}

}  // namespace

template <typename T>
void lstm_forward(const LstmForwardArgs<T>& a, int threads) {
    const Dims& d = a.d;
    const int64_t G4 = kLstmGates * d.H;
    const KernelTable<T>& kt = kernel_table<T>();
    const bool training = a.gates != nullptr;

    int64_t chunk = d.T;
    if (!training) {
        const int64_t step_bytes = checked_mul(checked_mul(d.B, G4), sizeof(T));
        chunk = std::max<int64_t>(1, std::min<int64_t>(d.T, kChunkBytes / step_bytes));
    }
    Buffer<T> gate_ws(training ? 0 : checked_mul(chunk * d.B, G4));
    Buffer<T> c0_zero(a.c0 ? 0 : checked_mul(d.B, d.H), true);
    Buffer<T> a_pack(gemm_packed_scratch<T>(d.B, d.H));
    // w_hh^T as the B operand of h_{t-1} * w_hh^T, packed once for all steps.
    PackedB<T> w_hh_t(ConstMat<T>{a.w.w_hh, Axis::plain(1), Axis::plain(d.H)}, d.H, G4, threads);

    // Inference updates c_n in place, step after step.
    if (!training) {
        if (a.c0) copy_rows(d.B, d.H, a.c0, a.ld_c0, a.c_n);
        else std::memset(a.c_n, 0, static_cast<size_t>(d.B * d.H) * sizeof(T));
    }
    const T* c_init = a.c0 ? a.c0 : c0_zero.data();
    const ptrdiff_t ld_c_init = a.c0 ? a.ld_c0 : d.H;
    const int row_threads = threads_for(d.B * d.H, 4096, threads);

    for (int64_t t0 = 0; t0 < d.T; t0 += chunk) {
        const int64_t nt = std::min(chunk, d.T - t0);
        T* gbuf = training ? a.gates + t0 * d.B * G4 : gate_ws.data();
        project_inputs<T>(d, G4, a.x, t0, nt, a.w.w_ih, a.w.b, gbuf, threads);
        for (int64_t t = t0; t < t0 + nt; ++t) {
            T* g = gbuf + (t - t0) * d.B * G4;
            const T* h_prev = t == 0 ? a.h0 : a.h_seq.row(t - 1, 0);
            const ptrdiff_t ld_h_prev = t == 0 ? a.ld_h0 : a.h_seq.sb;
            if (h_prev)  // a zero h0 adds nothing
                gemm_packed<T>(d.B, ConstMat<T>{h_prev, Axis::plain(ld_h_prev), Axis::plain(1)},
                               w_hh_t, T(1), g, G4, a_pack.data(), threads);
            parallel_for(d.B, row_threads, [&](int64_t b) {
                const T* c_prev;
                T* c;
                if (training) {
                    c_prev = t == 0 ? c_init + b * ld_c_init : a.c_seq + ((t - 1) * d.B + b) * d.H;
                    c = a.c_seq + (t * d.B + b) * d.H;
                } else {
                    c_prev = c = a.c_n + b * d.H;
                }
                kt.lstm_forward_row(d.H, g + b * G4, c_prev, c, a.h_seq.row(t, b), a.w.peephole);
            });
        }
    }
    if (d.T > 0) {
        copy_rows(d.B, d.H, a.h_seq.row(d.T - 1, 0), a.h_seq.sb, a.h_n);
        if (training) copy_rows(d.B, d.H, a.c_seq + (d.T - 1) * d.B * d.H, d.H, a.c_n);
    }
}

template <typename T>
void lstm_backward(const LstmBackwardArgs<T>& a, int threads) {
    const Dims& d = a.d;
    const int64_t G4 = kLstmGates * d.H;
    const KernelTable<T>& kt = kernel_table<T>();

    Buffer<T> dg(checked_mul(checked_mul(d.T, d.B), G4));
    Buffer<T> dh_rec(checked_mul(d.B, d.H), true);
    Buffer<T> dc(checked_mul(d.B, d.H), true);
    Buffer<T> c0_zero(a.c0 ? 0 : checked_mul(d.B, d.H), true);
    Buffer<T> a_pack(gemm_packed_scratch<T>(d.B, G4));
    // w_hh as the B operand of dG_t * w_hh, packed once for all steps.
    PackedB<T> w_hh(ConstMat<T>{a.w.w_hh, Axis::plain(d.H), Axis::plain(1)}, G4, d.H, threads);

    if (a.dh_n) copy_rows(d.B, d.H, a.dh_n, a.ld_dh_n, dh_rec.data());
    if (a.dc_n) copy_rows(d.B, d.H, a.dc_n, a.ld_dc_n, dc.data());
    const T* c_init = a.c0 ? a.c0 : c0_zero.data();
    const ptrdiff_t ld_c_init = a.c0 ? a.ld_c0 : d.H;
    const int row_threads = threads_for(d.B * d.H, 4096, threads);

    for (int64_t t = d.T - 1; t >= 0; --t) {
        T* dg_t = dg.data() + t * d.B * G4;
        parallel_for(d.B, row_threads, [&](int64_t b) {
            const T* c_prev = t == 0 ? c_init + b * ld_c_init : a.c_seq + ((t - 1) * d.B + b) * d.H;
            const T* dh_out = a.dh_seq.p ? a.dh_seq.row(t, b) : nullptr;
            kt.lstm_backward_row(d.H, a.gates + (t * d.B + b) * G4, c_prev,
                                 a.c_seq + (t * d.B + b) * d.H, dh_out, dh_rec.data() + b * d.H,
                                 dc.data() + b * d.H, dg_t + b * G4, a.w.peephole);
        });
        gemm_packed<T>(d.B, ConstMat<T>{dg_t, Axis::plain(G4), Axis::plain(1)}, w_hh, T(0),
                       dh_rec.data(), d.H, a_pack.data(), threads);
    }
    std::memcpy(a.dh0, dh_rec.data(), static_cast<size_t>(d.B * d.H) * sizeof(T));
    std::memcpy(a.dc0, dc.data(), static_cast<size_t>(d.B * d.H) * sizeof(T));

    sequence_grads<T>(d, G4, dg.data(), a.x, a.h0, a.ld_h0, a.h_seq, a.w.w_ih, a.dx, a.dw_ih,
                      a.dw_hh, a.db, threads);

    if (a.w.peephole) {
        // dp_i = sum dA_i * c_{t-1}, dp_f = sum dA_f * c_{t-1}, dp_o = sum dA_o * c_t; each
        // unit reduced by one thread over (t, b) in a fixed order.
        const int64_t H = d.H;
        parallel_for(H, threads_for(d.T * d.B * H, 1 << 16, threads), [&](int64_t j) {
            T si = 0, sf = 0, so = 0;
            for (int64_t t = 0; t < d.T; ++t)
                for (int64_t b = 0; b < d.B; ++b) {
                    const T* g = dg.data() + (t * d.B + b) * G4;
                    const T cp = t == 0 ? c_init[b * ld_c_init + j]
                                        : a.c_seq[((t - 1) * d.B + b) * H + j];
                    si += g[j] * cp;
                    sf += g[H + j] * cp;
                    so += g[3 * H + j] * a.c_seq[(t * d.B + b) * H + j];
                }
            a.dpeephole[j] = si;
            a.dpeephole[H + j] = sf;
            a.dpeephole[2 * H + j] = so;
        });
    }
}

template void lstm_forward<float>(const LstmForwardArgs<float>&, int);
template void lstm_forward<double>(const LstmForwardArgs<double>&, int);
template void lstm_backward<float>(const LstmBackwardArgs<float>&, int);
template void lstm_backward<double>(const LstmBackwardArgs<double>&, int);

}  // namespace fastrnn::core
