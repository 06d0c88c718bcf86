// Whole-sequence GEMMs shared by rnn.cpp and lstm.cpp.
#include "sequence.h"

#include "fastrnn/dispatch.h"
#include "fastrnn/parallel.h"
#include "fastrnn/workspace.h"

namespace fastrnn::core {

namespace {
// The input projection skips the GEMM (and its packing of w_ih, a transpose that costs as
// much as ~12 streams of w_ih from L3) when dot products along the rows of w_ih as stored
// need at most this many passes over it (one per step and tile of step_mr rows).
constexpr int64_t kGemvMaxPasses = 12;

// dst[c, r] = src[r, c] for src [rows, cols] (both C-contiguous). Blocks of 8 source
// rows: at cols = 1024 the rows lie 4 KiB apart, so taller blocks put more lines in one
// L1 set than it has ways.
template <typename T>
void transpose_into(int64_t rows, int64_t cols, const T* src, T* dst, int threads) {
    constexpr int64_t kRows = 8, kCols = 64;
    const int64_t row_blocks = (rows + kRows - 1) / kRows;
    parallel_for(row_blocks, threads_for(rows * cols, 1 << 16, threads), [&](int64_t rb) {
        const int64_t r0 = rb * kRows, r1 = r0 + kRows < rows ? r0 + kRows : rows;
        for (int64_t c0 = 0; c0 < cols; c0 += kCols) {
            const int64_t c1 = c0 + kCols < cols ? c0 + kCols : cols;
            for (int64_t c = c0; c < c1; ++c)
                for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
        }
    });
}

// db[j] = sum_r dg[r, j]. Each thread sums its own range of columns, walking the rows
// in order (so the result does not depend on the thread count) and reading each row's
// range as one contiguous run; 16-column strips read with a row stride of 4H starved
// the prefetcher (4% of a small-H training call).
template <typename T>
void sum_columns(int64_t rows, int64_t GH, const T* dg, T* db, int threads) {
    const int team = threads_for(rows * GH, 1 << 16, threads);
    parallel_for(team, team, [&](int64_t part) {
        auto edge = [&](int64_t p) { return p == team ? GH : (GH * p / team) & ~int64_t(15); };
        const int64_t j0 = edge(part), j1 = edge(part + 1);
        T* __restrict out = db + j0;
        const int64_t n = j1 - j0;
        for (int64_t j = 0; j < n; ++j) out[j] = T(0);
        for (int64_t r = 0; r < rows; ++r) {
            const T* __restrict row = dg + r * GH + j0;
            for (int64_t j = 0; j < n; ++j) out[j] += row[j];
        }
    });
}

// Rows of dG (T*B) from which the weight gradients are computed transposed.
constexpr int64_t kTransposedGradsMinRows = 1024;

}  // namespace

template <typename T>
void project_inputs(const Dims& d, int64_t GH, SeqView<const T> x, int64_t t0, int64_t nt,
                    const T* w_ih, const T* bias, T* out, int threads) {
    const int64_t rows = nt * d.B;
    const KernelTable<T>& kt = kernel_table<T>();
    const int64_t passes = nt * ((d.B + kt.step_mr - 1) / kt.step_mr);
    if (passes <= kGemvMaxPasses && x.sk == 1) {
        // Too few rows to repay packing w_ih: dot them against its rows as stored, each
        // block of outputs by one thread (bound by streaming w_ih, so a second core pays
        // off early).
        const int64_t n_blocks = (GH + 63) / 64;
        const int team = threads_for(2 * rows * GH * d.I, int64_t(1) << 18, threads);
        parallel_for(n_blocks, team, [&](int64_t nb) {
            const int64_t n0 = nb * 64, n = GH - n0 < 64 ? GH - n0 : 64;
            for (int64_t t = t0; t < t0 + nt; ++t)
                for (int64_t b0 = 0; b0 < d.B; b0 += kt.step_mr) {
                    const int m = static_cast<int>(d.B - b0 < kt.step_mr ? d.B - b0 : kt.step_mr);
                    kt.gemv_rows(m, n, d.I, x.row(t, b0), x.sb, w_ih + n0 * d.I, d.I, bias + n0,
                                 out + ((t - t0) * d.B + b0) * GH + n0, GH);
                }
        });
        return;
    }
    parallel_for(rows, threads_for(rows * GH, 1 << 15, threads), [&](int64_t r) {
        T* o = out + r * GH;
        for (int64_t j = 0; j < GH; ++j) o[j] = bias[j];
    });
    ConstMat<T> A{x.row(t0, 0), seq_rows(d, x), Axis::plain(x.sk)};
    ConstMat<T> B{w_ih, Axis::plain(1), Axis::plain(d.I)};  // B(i, j) = w_ih[j, i]
    gemm<T>(rows, GH, d.I, A, B, T(1), out, GH, threads);
}

template <typename T>
void sequence_grads(const Dims& d, int64_t GH, const T* dg, SeqView<const T> x, const T* h0,
                    ptrdiff_t ld_h0, SeqView<const T> h_seq, const T* w_ih, SeqView<T> dx,
                    T* dw_ih, T* dw_hh, T* db, int threads) {
    const int64_t TB = d.T * d.B;
    // dx[t, b] = dG[t, b] * w_ih. C must have one row stride: when dx is batch-first
    // (rows b-major), walk dG in b-major order instead.
    if (dx.st == d.B * dx.sb) {
        ConstMat<T> A{dg, Axis::plain(GH), Axis::plain(1)};
        ConstMat<T> B{w_ih, Axis::plain(d.I), Axis::plain(1)};
        gemm<T>(TB, d.I, GH, A, B, T(0), dx.p, dx.sb, threads);
    } else {  // dx.sb == T * dx.st: row r = b*T + t
        ConstMat<T> A{dg, Axis::nested(d.T, d.B * GH, GH), Axis::plain(1)};
        ConstMat<T> B{w_ih, Axis::plain(d.I), Axis::plain(1)};
        gemm<T>(TB, d.I, GH, A, B, T(0), dx.p, dx.st, threads);
    }
    // dw_ih = dG^T x and dw_hh = sum_t dG_t^T h_{t-1}. K runs over the T*B rows in t-major
    // order. With many rows they are computed transposed (x^T dG, then h^T dG, and a
    // transpose of the small result) so that dG, the large operand, is the GEMM's B side,
    // packed by contiguous row copies: 4% faster at B=256 T=50 H=64. With few rows the
    // transposes would cost more than the GEMMs (B=1 T=1: 1.1 ms against 0.14).
    if (TB < kTransposedGradsMinRows) {
        ConstMat<T> dgT{dg, Axis::plain(1), Axis::plain(GH)};
        gemm<T>(GH, d.I, TB, dgT, ConstMat<T>{x.p, seq_rows(d, x), Axis::plain(x.sk)}, T(0),
                dw_ih, d.I, threads);
        ConstMat<T> dgT1{dg + d.B * GH, Axis::plain(1), Axis::plain(GH)};
        gemm<T>(GH, d.H, (d.T - 1) * d.B, dgT1,
                ConstMat<T>{h_seq.p, seq_rows(d, h_seq), Axis::plain(1)}, T(0), dw_hh, d.H,
                threads);
        if (h0) {
            ConstMat<T> h0m{h0, Axis::plain(ld_h0), Axis::plain(1)};
            gemm<T>(GH, d.H, d.B, dgT, h0m, T(1), dw_hh, d.H, threads);
        }
        sum_columns(TB, GH, dg, db, threads);
        return;
    }
    Buffer<T> wt(checked_mul(d.I > d.H ? d.I : d.H, GH));
    ConstMat<T> dgm{dg, Axis::plain(GH), Axis::plain(1)};
    gemm<T>(d.I, GH, TB, ConstMat<T>{x.p, Axis::plain(x.sk), seq_rows(d, x)}, dgm, T(0),
            wt.data(), GH, threads);
    transpose_into(d.I, GH, wt.data(), dw_ih, threads);
    // Steps 1..T-1 read h_seq; step 0 reads h0 (a zero state adds nothing).
    ConstMat<T> dgm1{dg + d.B * GH, Axis::plain(GH), Axis::plain(1)};
    gemm<T>(d.H, GH, (d.T - 1) * d.B, ConstMat<T>{h_seq.p, Axis::plain(1), seq_rows(d, h_seq)},
            dgm1, T(0), wt.data(), GH, threads);
    if (h0) {
        ConstMat<T> h0t{h0, Axis::plain(1), Axis::plain(ld_h0)};
        gemm<T>(d.H, GH, d.B, h0t, dgm, T(1), wt.data(), GH, threads);
    }
    transpose_into(d.H, GH, wt.data(), dw_hh, threads);
    sum_columns(TB, GH, dg, db, threads);
}

#define FASTRNN_INSTANTIATE(T)                                                                 \
    template void project_inputs<T>(const Dims&, int64_t, SeqView<const T>, int64_t, int64_t,  \
                                    const T*, const T*, T*, int);                              \
    template void sequence_grads<T>(const Dims&, int64_t, const T*, SeqView<const T>, const T*, \
                                    ptrdiff_t, SeqView<const T>, const T*, SeqView<T>, T*, T*,  \
                                    T*, int);
FASTRNN_INSTANTIATE(float)
FASTRNN_INSTANTIATE(double)
#undef FASTRNN_INSTANTIATE

}  // namespace fastrnn::core
