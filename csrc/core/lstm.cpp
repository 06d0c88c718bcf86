// LSTM time loops. Forward: the input projection of a chunk of steps is one GEMM; then
// one parallel region runs the chunk's steps, each thread owning the same (rows, units)
// tiles at every step, with the recurrent product and the gate math fused per tile and one
// barrier per step. Backward mirrors it: the reverse loop keeps only dG_t * w_hh, fused
// with the gate derivatives of the step before; the input and weight gradients are
// GEMMs over chunks of steps, each taken as soon as the loop has finished it
// (SequenceGrads).
#include "fastrnn/lstm.h"

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

// Inference keeps gate pre-activations for at most this many bytes of steps at a time,
// so memory stays O(B*H) however long the sequence.
constexpr int64_t kChunkBytes = 8 << 20;

template <typename T>
void copy_rows(int64_t B, int64_t H, const T* src, ptrdiff_t ld_src, T* dst) {
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(dst + b * H, src + b * ld_src, static_cast<size_t>(H) * sizeof(T));
}

// Adds the peephole gradients of steps [t0, t0 + n) (dG rows dg: [n, B, 4H]) to dp, or
// writes them when !accumulate: dp_i = sum dA_i * c_{t-1}, dp_f = sum dA_f * c_{t-1},
// dp_o = sum dA_o * c_t over (t, b) in a fixed order. Blocks of units go to threads whole,
// and each block walks the rows once, so every cache line of dG and c is read once.
template <typename T>
void peephole_grads(const Dims& d, int64_t t0, int64_t n, const T* dg, const T* c_init,
                    ptrdiff_t ld_c_init, const T* c_seq, bool accumulate, T* dp, int threads) {
    constexpr int64_t kBlock = 16;
    const int64_t H = d.H, G4 = kLstmGates * H;
    const int64_t blocks = (H + kBlock - 1) / kBlock;
    parallel_for(blocks, threads_for(n * d.B * H, 1 << 16, threads), [&](int64_t blk) {
        const int64_t j0 = blk * kBlock, nj = H - j0 < kBlock ? H - j0 : kBlock;
        T si[kBlock] = {}, sf[kBlock] = {}, so[kBlock] = {};
        if (accumulate)
            for (int64_t j = 0; j < nj; ++j) {
                si[j] = dp[j0 + j];
                sf[j] = dp[H + j0 + j];
                so[j] = dp[2 * H + j0 + j];
            }
        for (int64_t t = t0; t < t0 + n; ++t)
            for (int64_t b = 0; b < d.B; ++b) {
                const T* g = dg + ((t - t0) * d.B + b) * G4 + j0;
                const T* cp = t == 0 ? c_init + b * ld_c_init + j0
                                     : c_seq + ((t - 1) * d.B + b) * H + j0;
                const T* c = c_seq + (t * d.B + b) * H + j0;
                for (int64_t j = 0; j < nj; ++j) {
                    si[j] += g[j] * cp[j];
                    sf[j] += g[H + j] * cp[j];
                    so[j] += g[3 * H + j] * c[j];
                }
            }
        for (int64_t j = 0; j < nj; ++j) {
            dp[j0 + j] = si[j];
            dp[H + j0 + j] = sf[j];
            dp[2 * H + j0 + j] = so[j];
        }
    });
}

}  // namespace

template <typename T>
void lstm_forward(const LstmForwardArgs<T>& a, int threads) {
    FlushDenormals ftz;
    const Dims& d = a.d;
    const int64_t G4 = kLstmGates * d.H;
    const KernelTable<T>& kt = kernel_table<T>();
    const bool training = a.gates != nullptr;

    const bool natural = forward_reads_w_hh_as_stored(d.B, d.T);
    const int64_t fused_weights = G4 * (d.I + d.H);  // w_ih and w_hh: a fused step's panels
    const bool fused = forward_fuses_projection(
        d.B, d.T, a.x.sk, fused_weights * static_cast<int64_t>(sizeof(T)));
    // Unfused, inference keeps pre-activations for a chunk of steps only.
    int64_t chunk = d.T;
    if (!training && !fused) {
        const int64_t step_bytes = checked_mul(checked_mul(d.B, G4), sizeof(T));
        chunk = std::max<int64_t>(1, std::min<int64_t>(d.T, kChunkBytes / step_bytes));
    }
    Buffer<T> gate_ws(training || fused ? 0 : checked_mul(chunk * d.B, G4));
    Buffer<T> c0_zero(a.c0 ? 0 : checked_mul(d.B, d.H), true);
    const int64_t units = block_units(PanelKind::kLstmForward, kt.step_vec);
    StepPanels<T> w = natural ? StepPanels<T>()
                              : StepPanels<T>(a.w.w_hh, d.H, kLstmGates, PanelKind::kLstmForward,
                                              kt.step_vec, threads, fused ? a.w.w_ih : nullptr,
                                              d.I);
    // The first step from a zero state does not read w_hh.
    const StoredRows<T> w_rows(natural ? a.w.w_hh : nullptr, G4, d.H, d.T - (a.h0 ? 0 : 1),
                               threads);
    const int64_t step_weights = fused ? fused_weights : G4 * d.H;  // read by every step
    const int64_t weight_bytes = step_weights * static_cast<int64_t>(sizeof(T));
    const int team = step_threads(2 * d.B * step_weights, d.T, threads);

    // Inference updates c_n in place, step after step.
    if (!training) {
        if (a.c0) copy_rows(d.B, d.H, a.c0, a.ld_c0, a.c_n);
        else std::memset(a.c_n, 0, static_cast<size_t>(d.B * d.H) * sizeof(T));
    }
    const T* c_init = a.c0 ? a.c0 : c0_zero.data();
    const ptrdiff_t ld_c_init = a.c0 ? a.ld_c0 : d.H;

    // One tile of step t; g: the step's gate rows [B, 4H] (pre-activations in, unless
    // fused; activations out), or nullptr (fused inference keeps no activations).
    auto tile = [&](int64_t t, const StepItem& it, T* g) {
        const T* h_prev = t == 0 ? a.h0 : a.h_seq.row(t - 1, 0);  // nullptr: zero state
        const ptrdiff_t ld_h_prev = t == 0 ? a.ld_h0 : a.h_seq.sb;
        const T* c_prev = a.c_n;
        ptrdiff_t ld_c_prev = d.H;
        T* c = a.c_n;
        if (training) {
            c_prev = t == 0 ? c_init : a.c_seq + (t - 1) * d.B * d.H;
            ld_c_prev = t == 0 ? ld_c_init : d.H;
            c = a.c_seq + t * d.B * d.H;
        }
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
            s.w_gate_stride = d.H;
        } else {
            s.panel = w.panel(it.block);
        }
        if (fused) {
            s.x = a.x.row(t, it.r0);
            s.ldx = a.x.sb;
            s.Kx = d.I;
            s.bias = a.w.b + it.u0;
        }
        s.gates = g ? g + it.r0 * G4 + it.u0 : nullptr;
        s.ld_gates = G4;
        s.c_prev = c_prev + it.r0 * ld_c_prev + it.u0;
        s.ld_c_prev = ld_c_prev;
        s.c = c + it.r0 * d.H + it.u0;
        s.ld_c = d.H;
        s.h = a.h_seq.row(t, it.r0) + it.u0;
        s.ld_h = a.h_seq.sb;
        s.peephole = a.w.peephole ? a.w.peephole + it.u0 : nullptr;
        kt.lstm_forward_tile(s);
    };

    if (fused) {
        run_steps(d.T, d.B, d.H, kt.step_mr, units, weight_bytes, team, natural,
                  [&](int64_t t, const StepItem& it) {
                      tile(t, it, training ? a.gates + t * d.B * G4 : nullptr);
                  });
    } else {
        for (int64_t t0 = 0; t0 < d.T; t0 += chunk) {
            const int64_t nt = std::min(chunk, d.T - t0);
            T* gbuf = training ? a.gates + t0 * d.B * G4 : gate_ws.data();
            project_inputs<T>(d, G4, a.x, t0, nt, a.w.w_ih, a.w.b, gbuf, threads);
            run_steps(nt, d.B, d.H, kt.step_mr, units, weight_bytes, team, natural,
                      [&](int64_t step, const StepItem& it) {
                          tile(t0 + step, it, gbuf + step * d.B * G4);
                      });
        }
    }
    copy_rows(d.B, d.H, a.h_seq.row(d.T - 1, 0), a.h_seq.sb, a.h_n);
    if (training) copy_rows(d.B, d.H, a.c_seq + (d.T - 1) * d.B * d.H, d.H, a.c_n);
}

template <typename T>
void lstm_backward(const LstmBackwardArgs<T>& a, int threads) {
    FlushDenormals ftz;
    const Dims& d = a.d;
    const int64_t G4 = kLstmGates * d.H;
    const KernelTable<T>& kt = kernel_table<T>();

    SequenceGrads<T> grads(d, G4, a.x, a.h0, a.ld_h0, a.h_seq, a.w.w_ih, a.dx, a.dw_ih, a.dw_hh,
                           a.db, threads);
    GradChunks<T> dg(d, G4);
    Buffer<T> dc(checked_mul(d.B, d.H), true);
    Buffer<T> c0_zero(a.c0 ? 0 : checked_mul(d.B, d.H), true);
    if (a.dc_n) copy_rows(d.B, d.H, a.dc_n, a.ld_dc_n, dc.data());
    const T* c_init = a.c0 ? a.c0 : c0_zero.data();
    const ptrdiff_t ld_c_init = a.c0 ? a.ld_c0 : d.H;

    const bool as_stored = backward_reads_w_hh_as_stored(d.B, d.T, d.H, kt.step_vec);
    StepPanels<T> w = as_stored ? StepPanels<T>()
                                : StepPanels<T>(a.w.w_hh, d.H, kLstmGates, PanelKind::kBackward,
                                                kt.step_vec, threads);
    const StoredRows<T> w_rows(as_stored ? a.w.w_hh : nullptr, G4, d.H, d.T, threads);
    const int64_t units = block_units(PanelKind::kBackward, kt.step_vec);
    const int64_t weight_bytes = G4 * d.H * static_cast<int64_t>(sizeof(T));
    const int team = step_threads(2 * d.B * G4 * d.H, d.T, threads);

    // Phase p = 0 runs the gate derivatives of step T-1 from dh_n; phase p >= 1 computes
    // dh_{t-1} = dG_t * w_hh for t = T-p, then the derivatives of step t-1 (or dh0 when
    // t = 0).
    const auto phase = [&](int64_t p, const StepItem& it) {
        const int64_t t = d.T - p;  // the step whose dG feeds the product; t = T: none
        const int64_t s_step = t - 1;  // the step whose derivatives the epilogue computes
        StepTile<T> s;
        s.m = it.m;
        s.nu = it.nu;
        s.K = G4;
        s.H = d.H;
        if (t < d.T) {
            s.a = dg.row(t, it.r0);
            s.lda = G4;
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
            const int64_t row = s_step * d.B + it.r0;
            s.gates = const_cast<T*>(a.gates) + row * G4 + it.u0;
            s.ld_gates = G4;
            s.c_prev = s_step == 0 ? c_init + it.r0 * ld_c_init + it.u0
                                   : a.c_seq + (row - d.B) * d.H + it.u0;
            s.ld_c_prev = s_step == 0 ? ld_c_init : d.H;
            s.c = const_cast<T*>(a.c_seq) + row * d.H + it.u0;
            s.ld_c = d.H;
            if (a.dh_seq.p) {
                s.dh_out = a.dh_seq.row(s_step, it.r0) + it.u0;
                s.ld_dh_out = a.dh_seq.sb;
            }
            s.dc = dc.data() + it.r0 * d.H + it.u0;
            s.ld_dc = d.H;
            s.dg = dg.row(s_step, it.r0) + it.u0;
            s.ld_dg = G4;
            s.peephole = a.w.peephole ? a.w.peephole + it.u0 : nullptr;
        }
        kt.lstm_backward_tile(s);
    };
    dg.reverse(
        [&](int64_t p0, int64_t count) {
            run_steps(count, d.B, d.H, kt.step_mr, units, weight_bytes, team, as_stored,
                      [&](int64_t k, const StepItem& it) { phase(p0 + k, it); });
        },
        [&](int64_t t0, int64_t n) {
            if (a.w.peephole)
                peephole_grads(d, t0, n, dg.row(t0, 0), c_init, ld_c_init, a.c_seq,
                               t0 + n < d.T, a.dpeephole, threads);
            grads.add(t0, n, dg.row(t0, 0));
        });
    grads.finish();
    std::memcpy(a.dc0, dc.data(), static_cast<size_t>(d.B * d.H) * sizeof(T));
}

template void lstm_forward<float>(const LstmForwardArgs<float>&, int);
template void lstm_forward<double>(const LstmForwardArgs<double>&, int);
template void lstm_backward<float>(const LstmBackwardArgs<float>&, int);
template void lstm_backward<double>(const LstmBackwardArgs<double>&, int);

}  // namespace fastrnn::core
