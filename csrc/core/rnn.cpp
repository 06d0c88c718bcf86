// Elman RNN time loops, the same shape as lstm.cpp with one gate. The forward saves
// nothing but h_seq: the activation's derivative is recovered from h.
#include "fastrnn/rnn.h"

#include <algorithm>
#include <cstring>

#include "fastrnn/dispatch.h"
#include "fastrnn/fpmode.h"
#include "fastrnn/parallel.h"
#include "fastrnn/workspace.h"
#include "recurrence.h"
#include "sequence.h"

namespace fastrnn::core {

namespace {
constexpr int64_t kChunkBytes = 8 << 20;  // pre-activations kept at once, as in lstm.cpp
}

template <typename T>
void rnn_forward(const RnnForwardArgs<T>& a, int threads) {
    FlushDenormals ftz;
    const Dims& d = a.d;
    const KernelTable<T>& kt = kernel_table<T>();

    const bool natural = forward_reads_w_hh_as_stored(d.B, d.T);
    const int64_t fused_weights = d.H * (d.I + d.H);  // w_ih and w_hh: a fused step's panels
    const bool fused = forward_fuses_projection(
        d.B, d.T, a.x.sk, fused_weights * static_cast<int64_t>(sizeof(T)));
    const int64_t step_bytes = checked_mul(checked_mul(d.B, d.H), sizeof(T));
    const int64_t chunk =
        fused ? d.T : std::max<int64_t>(1, std::min<int64_t>(d.T, kChunkBytes / step_bytes));
    Buffer<T> pre(fused ? 0 : checked_mul(chunk * d.B, d.H));
    const int64_t units = block_units(PanelKind::kRnnForward, kt.step_vec);
    StepPanels<T> w = natural ? StepPanels<T>()
                              : StepPanels<T>(a.w_hh, d.H, kRnnGates, PanelKind::kRnnForward,
                                              kt.step_vec, threads, fused ? a.w_ih : nullptr,
                                              d.I);
    // The first step from a zero state does not read w_hh.
    const StoredRows<T> w_rows(natural ? a.w_hh : nullptr, d.H, d.H, d.T - (a.h0 ? 0 : 1),
                               threads);
    const int64_t step_weights = fused ? fused_weights : d.H * d.H;  // read by every step
    const int64_t weight_bytes = step_weights * static_cast<int64_t>(sizeof(T));
    const int team = step_threads(2 * d.B * step_weights, d.T, threads);
    const int relu = a.act == Nonlinearity::kRelu;

    // One tile of step t; p: the step's pre-activation rows [B, H] (unused when fused).
    auto tile = [&](int64_t t, const StepItem& it, T* p) {
        const T* h_prev = t == 0 ? a.h0 : a.h_seq.row(t - 1, 0);  // nullptr: zero state
        const ptrdiff_t ld_h_prev = t == 0 ? a.ld_h0 : a.h_seq.sb;
        StepTile<T> s;
        s.m = it.m;
        s.nu = it.nu;
        s.K = d.H;
        s.H = d.H;
        s.a = h_prev ? h_prev + it.r0 * ld_h_prev : nullptr;
        s.lda = ld_h_prev;
        if (natural) {
            s.w = w_rows.data() + it.u0 * w_rows.ld();
            s.ldw = w_rows.ld();
            s.w_gate_stride = kt.step_vec;
            s.w_units_per_q = kt.step_vec;
        } else {
            s.panel = w.panel(it.block);
        }
        if (fused) {
            s.x = a.x.row(t, it.r0);
            s.ldx = a.x.sb;
            s.Kx = d.I;
            s.bias = a.b + it.u0;
        } else {
            s.gates = p + it.r0 * d.H + it.u0;
            s.ld_gates = d.H;
        }
        s.h = a.h_seq.row(t, it.r0) + it.u0;
        s.ld_h = a.h_seq.sb;
        s.relu = relu;
        kt.rnn_forward_tile(s);
    };

    if (fused) {
        run_steps(d.T, d.B, d.H, kt.step_mr, units, weight_bytes, team, natural,
                  [&](int64_t t, const StepItem& it) { tile(t, it, nullptr); });
    } else {
        for (int64_t t0 = 0; t0 < d.T; t0 += chunk) {
            const int64_t nt = std::min(chunk, d.T - t0);
            project_inputs<T>(d, d.H, a.x, t0, nt, a.w_ih, a.b, pre.data(), threads);
            run_steps(nt, d.B, d.H, kt.step_mr, units, weight_bytes, team, natural,
                      [&](int64_t step, const StepItem& it) {
                          tile(t0 + step, it, pre.data() + step * d.B * d.H);
                      });
        }
    }
    for (int64_t b = 0; b < d.B; ++b)
        std::memcpy(a.h_n + b * d.H, a.h_seq.row(d.T - 1, b), static_cast<size_t>(d.H) * sizeof(T));
}

template <typename T>
void rnn_backward(const RnnBackwardArgs<T>& a, int threads) {
    FlushDenormals ftz;
    const Dims& d = a.d;
    const KernelTable<T>& kt = kernel_table<T>();

    SequenceGrads<T> grads(d, d.H, a.x, a.h0, a.ld_h0, a.h_seq, a.w_ih, a.dx, a.dw_ih, a.dw_hh,
                           a.db, threads);
    GradChunks<T> da(d, d.H);
    const bool as_stored = backward_reads_w_hh_as_stored(d.B, d.T, d.H, kt.step_vec);
    StepPanels<T> w = as_stored ? StepPanels<T>()
                                : StepPanels<T>(a.w_hh, d.H, kRnnGates, PanelKind::kBackward,
                                                kt.step_vec, threads);
    const StoredRows<T> w_rows(as_stored ? a.w_hh : nullptr, d.H, d.H, d.T, threads);
    const int64_t units = block_units(PanelKind::kBackward, kt.step_vec);
    const int64_t weight_bytes = d.H * d.H * static_cast<int64_t>(sizeof(T));
    const int team = step_threads(2 * d.B * d.H * d.H, d.T, threads);
    const int relu = a.act == Nonlinearity::kRelu;

    // Phases as in lstm_backward: p = 0 starts from dh_n, p >= 1 multiplies da_t by w_hh
    // (t = T-p) and differentiates step t-1, or writes dh0 after t = 0.
    const auto phase = [&](int64_t p, const StepItem& it) {
        const int64_t t = d.T - p;
        const int64_t s_step = t - 1;
        StepTile<T> s;
        s.m = it.m;
        s.nu = it.nu;
        s.K = d.H;
        s.H = d.H;
        if (t < d.T) {
            s.a = da.row(t, it.r0);
            s.lda = d.H;
        } else if (a.dh_n) {
            s.acc_init = a.dh_n + it.r0 * a.ld_dh_n + it.u0;
            s.ld_acc_init = a.ld_dh_n;
        }
        if (as_stored) {
            s.panel = w_rows.data() + it.u0;
            s.ldp = w_rows.ld();
        } else {
            s.panel = w.panel(it.block);
        }
        if (s_step < 0) {
            s.dh0 = a.dh0 + it.r0 * d.H + it.u0;
            s.ld_dh0 = d.H;
        } else {
            s.h = const_cast<T*>(a.h_seq.row(s_step, it.r0)) + it.u0;
            s.ld_h = a.h_seq.sb;
            if (a.dh_seq.p) {
                s.dh_out = a.dh_seq.row(s_step, it.r0) + it.u0;
                s.ld_dh_out = a.dh_seq.sb;
            }
            s.dg = da.row(s_step, it.r0) + it.u0;
            s.ld_dg = d.H;
            s.relu = relu;
        }
        kt.rnn_backward_tile(s);
    };
    da.reverse(
        [&](int64_t p0, int64_t count) {
            run_steps(count, d.B, d.H, kt.step_mr, units, weight_bytes, team, as_stored,
                      [&](int64_t k, const StepItem& it) { phase(p0 + k, it); });
        },
        [&](int64_t t0, int64_t n) { grads.add(t0, n, da.row(t0, 0)); });
    grads.finish();
}

template void rnn_forward<float>(const RnnForwardArgs<float>&, int);
template void rnn_forward<double>(const RnnForwardArgs<double>&, int);
template void rnn_backward<float>(const RnnBackwardArgs<float>&, int);
template void rnn_backward<double>(const RnnBackwardArgs<double>&, int);

}  // namespace fastrnn::core
