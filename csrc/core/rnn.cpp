// Elman RNN time loops, the same shape as lstm.cpp with one gate. The forward saves
// nothing but h_seq: the activation's derivative is recovered from h.
#include "fastrnn/rnn.h"

#include <algorithm>
#include <cstring>

#include "fastrnn/dispatch.h"
#include "fastrnn/parallel.h"
#include "fastrnn/workspace.h"
#include "sequence.h"

namespace fastrnn::core {

namespace {
constexpr int64_t kChunkBytes = 8 << 20;  // pre-activations kept at once, as in lstm.cpp
}

template <typename T>
void rnn_forward(const RnnForwardArgs<T>& a, int threads) {
    const Dims& d = a.d;
    const KernelTable<T>& kt = kernel_table<T>();
    const int relu = a.act == Nonlinearity::kRelu;

    const int64_t step_bytes = checked_mul(checked_mul(d.B, d.H), sizeof(T));
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(d.T, kChunkBytes / step_bytes));
    Buffer<T> pre(checked_mul(chunk * d.B, d.H));
    Buffer<T> a_pack(gemm_packed_scratch<T>(d.B, d.H));
    PackedB<T> w_hh_t(ConstMat<T>{a.w_hh, Axis::plain(1), Axis::plain(d.H)}, d.H, d.H, threads);
    const int row_threads = threads_for(d.B * d.H, 8192, threads);

    for (int64_t t0 = 0; t0 < d.T; t0 += chunk) {
        const int64_t nt = std::min(chunk, d.T - t0);
        project_inputs<T>(d, d.H, a.x, t0, nt, a.w_ih, a.b, pre.data(), threads);
        for (int64_t t = t0; t < t0 + nt; ++t) {
            T* p = pre.data() + (t - t0) * d.B * d.H;
            const T* h_prev = t == 0 ? a.h0 : a.h_seq.row(t - 1, 0);
            const ptrdiff_t ld_h_prev = t == 0 ? a.ld_h0 : a.h_seq.sb;
            if (h_prev)
                gemm_packed<T>(d.B, ConstMat<T>{h_prev, Axis::plain(ld_h_prev), Axis::plain(1)},
                               w_hh_t, T(1), p, d.H, a_pack.data(), threads);
            parallel_for(d.B, row_threads, [&](int64_t b) {
                kt.rnn_forward_row(d.H, p + b * d.H, a.h_seq.row(t, b), relu);
            });
        }
    }
    if (d.T > 0)
        for (int64_t b = 0; b < d.B; ++b)
            std::memcpy(a.h_n + b * d.H, a.h_seq.row(d.T - 1, b),
                        static_cast<size_t>(d.H) * sizeof(T));
}

template <typename T>
void rnn_backward(const RnnBackwardArgs<T>& a, int threads) {
    const Dims& d = a.d;
    const KernelTable<T>& kt = kernel_table<T>();
    const int relu = a.act == Nonlinearity::kRelu;

    Buffer<T> da(checked_mul(checked_mul(d.T, d.B), d.H));
    Buffer<T> dh_rec(checked_mul(d.B, d.H), true);
    Buffer<T> a_pack(gemm_packed_scratch<T>(d.B, d.H));
    PackedB<T> w_hh(ConstMat<T>{a.w_hh, Axis::plain(d.H), Axis::plain(1)}, d.H, d.H, threads);
    if (a.dh_n)
        for (int64_t b = 0; b < d.B; ++b)
            std::memcpy(dh_rec.data() + b * d.H, a.dh_n + b * a.ld_dh_n,
                        static_cast<size_t>(d.H) * sizeof(T));
    const int row_threads = threads_for(d.B * d.H, 8192, threads);

    for (int64_t t = d.T - 1; t >= 0; --t) {
        T* da_t = da.data() + t * d.B * d.H;
        parallel_for(d.B, row_threads, [&](int64_t b) {
            const T* dh_out = a.dh_seq.p ? a.dh_seq.row(t, b) : nullptr;
            kt.rnn_backward_row(d.H, a.h_seq.row(t, b), dh_out, dh_rec.data() + b * d.H,
                                da_t + b * d.H, relu);
        });
        gemm_packed<T>(d.B, ConstMat<T>{da_t, Axis::plain(d.H), Axis::plain(1)}, w_hh, T(0),
                       dh_rec.data(), d.H, a_pack.data(), threads);
    }
    std::memcpy(a.dh0, dh_rec.data(), static_cast<size_t>(d.B * d.H) * sizeof(T));
    sequence_grads<T>(d, d.H, da.data(), a.x, a.h0, a.ld_h0, a.h_seq, a.w_ih, a.dx, a.dw_ih,
                      a.dw_hh, a.db, threads);
}

template void rnn_forward<float>(const RnnForwardArgs<float>&, int);
template void rnn_forward<double>(const RnnForwardArgs<double>&, int);
template void rnn_backward<float>(const RnnBackwardArgs<float>&, int);
template void rnn_backward<double>(const RnnBackwardArgs<double>&, int);

}  // namespace fastrnn::core
