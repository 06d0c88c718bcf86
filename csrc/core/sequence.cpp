// The GEMMs over many (t, b) rows shared by rnn.cpp and lstm.cpp.
#include "sequence.h"

#include "fastrnn/dispatch.h"
#include "fastrnn/parallel.h"
#include "fastrnn/workspace.h"

#include <atomic>

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

// db[j] = sum_r dg[r, j] (+ db[j] when accumulating). Each thread sums its own range of
// columns, walking the rows in order (so the result does not depend on the thread count)
// and reading each row's range as one contiguous run; 16-column strips read with a row
// stride of 4H starved the prefetcher (4% of a small-H training call).
template <typename T>
void sum_columns(int64_t rows, int64_t GH, const T* dg, bool accumulate, T* db, int threads) {
    const int team = threads_for(rows * GH, 1 << 16, threads);
    parallel_for(team, team, [&](int64_t part) {
        auto edge = [&](int64_t p) { return p == team ? GH : (GH * p / team) & ~int64_t(15); };
        const int64_t j0 = edge(part), j1 = edge(part + 1);
        T* __restrict out = db + j0;
        const int64_t n = j1 - j0;
        if (!accumulate)
            for (int64_t j = 0; j < n; ++j) out[j] = T(0);
        for (int64_t r = 0; r < rows; ++r) {
            const T* __restrict row = dg + r * GH + j0;
            for (int64_t j = 0; j < n; ++j) out[j] += row[j];
        }
    });
}

// Rows of dG (T*B) from which the weight gradients are computed transposed.
constexpr int64_t kTransposedGradsMinRows = 1024;

// Bytes of dG a chunk aims at (SequenceGrads::chunk_steps). The GEMMs read a chunk's dG
// four times right after the reverse loop writes it (packed for dw_ih and for dw_hh, in
// place for dx, and for db), so a chunk about the size of L2 (1 MiB per core here) is read
// from there: 4 MiB -> 1 MiB made backward calls 4-6% faster at H = 64-256 (A/B).
constexpr int64_t kGradChunkBytes = 1 << 20;

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
        // off early). Each block serves all rows, so a call reads w_ih once; every other
        // call (counted process-wide) walks each thread's blocks backwards, starting on
        // the lines the last call read last, which L2 still holds when w_ih is about its
        // size (one direction evicts each line just before its reuse; the steps that
        // read w_hh as stored alternate the same way, step by step). LSTM B=1 T=1 H=256
        // from a zero state, 1 thread: 18.7-19.6 -> 17.1-17.7 us (three A/Bs).
        static std::atomic<int64_t> calls{0};  // relaxed: a hint for the cache only
        const bool backwards = calls.fetch_add(1, std::memory_order_relaxed) & 1;
        const int64_t n_blocks = (GH + 63) / 64;
        const int team = threads_for(2 * rows * GH * d.I, int64_t(1) << 18, threads);
        auto block = [&](int64_t nb) {
            const int64_t n0 = nb * 64, n = GH - n0 < 64 ? GH - n0 : 64;
            for (int64_t t = t0; t < t0 + nt; ++t)
                for (int64_t b0 = 0; b0 < d.B; b0 += kt.step_mr) {
                    const int m = static_cast<int>(d.B - b0 < kt.step_mr ? d.B - b0 : kt.step_mr);
                    kt.gemv_rows(m, n, d.I, x.row(t, b0), x.sb, w_ih + n0 * d.I, d.I, bias + n0,
                                 out + ((t - t0) * d.B + b0) * GH + n0, GH);
                }
        };
        parallel_steps(1, n_blocks, team, /*barrier=*/false,
                       [&](int64_t, int64_t begin, int64_t end) {
                           for (int64_t j = begin; j < end; ++j)
                               block(backwards ? end - 1 - (j - begin) : j);
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
SequenceGrads<T>::SequenceGrads(const Dims& d, int64_t GH, SeqView<const T> x, const T* h0,
                                ptrdiff_t ld_h0, SeqView<const T> h_seq, const T* w_ih,
                                SeqView<T> dx, T* dw_ih, T* dw_hh, T* db, int threads)
    : d_(d), GH_(GH), x_(x), h_seq_(h_seq), h0_(h0), ld_h0_(ld_h0), w_ih_(w_ih), dx_(dx),
      dw_ih_(dw_ih), dw_hh_(dw_hh), db_(db), threads_(threads),
      transposed_(checked_mul(d.T, d.B) >= kTransposedGradsMinRows) {
    if (transposed_) {
        wt_ih_.reset(checked_mul(d.I, GH));
        wt_hh_.reset(checked_mul(d.H, GH));
    }
}

template <typename T>
int64_t SequenceGrads<T>::chunk_steps(const Dims& d, int64_t GH) {
    const int64_t row_bytes = checked_mul(checked_mul(d.B, GH), sizeof(T));
    const int64_t by_rows = (kTransposedGradsMinRows + d.B - 1) / d.B;
    const int64_t by_bytes = kGradChunkBytes / row_bytes;
    const int64_t steps = by_rows > by_bytes ? by_rows : by_bytes;
    return steps < d.T ? steps : d.T;
}

template <typename T>
void SequenceGrads<T>::add(int64_t t0, int64_t nt, const T* dg) {
    const Dims& d = d_;
    const int64_t GH = GH_, rows = nt * d.B;
    const T beta = first_ ? T(0) : T(1);
    // dx[t, b] = dG[t, b] * w_ih, written where dx's (t, b) rows lie, batch-first or not.
    // Written to a time-major chunk and then copied row by row, batch-first dx cost up to
    // 1.6% more of a backward call on 1 thread and 2-5% on 2 (Elman and LSTM, H = 256).
    ConstMat<T> dgm{dg, Axis::plain(GH), Axis::plain(1)};
    ConstMat<T> w{w_ih_, Axis::plain(d.I), Axis::plain(1)};
    gemm<T>({rows, d.I, GH, dgm, w, T(0), dx_.row(t0, 0), seq_rows(d, dx_)}, threads_);
    // dw_ih += dG^T x and dw_hh += sum_t dG_t^T h_{t-1}; K runs over the chunk's rows in
    // t-major order. Step 0 reads h0 (a zero state adds nothing), later steps h_seq.
    const SeqView<const T>& x = x_;
    const ConstMat<T> xm{x.row(t0, 0), seq_rows(d, x), Axis::plain(x.sk)};
    const int64_t s0 = t0 == 0 ? 1 : 0;  // the chunk's first step with h_{t-1} in h_seq
    const T* dg1 = dg + s0 * d.B * GH;
    const int64_t k1 = (nt - s0) * d.B;
    const T* hp = h_seq_.row(t0 + s0 - 1, 0);
    const ConstMat<T> hm{hp, seq_rows(d, h_seq_), Axis::plain(1)};
    const bool with_h0 = t0 == 0 && h0_;
    if (!transposed_) {
        // Few rows: dG^T is the A side and the results come out in place.
        ConstMat<T> dgT{dg, Axis::plain(1), Axis::plain(GH)};
        ConstMat<T> dgT1{dg1, Axis::plain(1), Axis::plain(GH)};
        gemm_pair<T>({GH, d.I, rows, dgT, xm, beta, dw_ih_, Axis::plain(d.I)},
                     {GH, d.H, k1, dgT1, hm, beta, dw_hh_, Axis::plain(d.H)}, threads_);
        if (with_h0) {
            ConstMat<T> h0m{h0_, Axis::plain(ld_h0_), Axis::plain(1)};
            gemm<T>(GH, d.H, d.B, dgT, h0m, T(1), dw_hh_, d.H, threads_);
        }
    } else {
        // Many rows: x^T dG and h^T dG, so that dG, the large operand, is the GEMM's B
        // side, packed by contiguous row copies (4% faster at B=256 T=50 H=64); finish()
        // transposes the small results. With few rows the transposes would cost more than
        // the GEMMs (B=1 T=1: 1.1 ms against 0.14).
        ConstMat<T> dgm1{dg1, Axis::plain(GH), Axis::plain(1)};
        gemm_pair<T>({d.I, GH, rows, ConstMat<T>{xm.p, xm.cols, xm.rows}, dgm, beta,
                      wt_ih_.data(), Axis::plain(GH)},
                     {d.H, GH, k1, ConstMat<T>{hm.p, hm.cols, hm.rows}, dgm1, beta,
                      wt_hh_.data(), Axis::plain(GH)},
                     threads_);
        if (with_h0) {
            ConstMat<T> h0t{h0_, Axis::plain(1), Axis::plain(ld_h0_)};
            gemm<T>(d.H, GH, d.B, h0t, dgm, T(1), wt_hh_.data(), GH, threads_);
        }
    }
    sum_columns(rows, GH, dg, !first_, db_, threads_);
    first_ = false;
}

template <typename T>
void SequenceGrads<T>::finish() {
    if (!transposed_) return;
    transpose_into(d_.I, GH_, wt_ih_.data(), dw_ih_, threads_);
    transpose_into(d_.H, GH_, wt_hh_.data(), dw_hh_, threads_);
}

#define FASTRNN_INSTANTIATE(T)                                                                 \
    template void project_inputs<T>(const Dims&, int64_t, SeqView<const T>, int64_t, int64_t,  \
                                    const T*, const T*, T*, int);                              \
    template class SequenceGrads<T>;
FASTRNN_INSTANTIATE(float)
FASTRNN_INSTANTIATE(double)
#undef FASTRNN_INSTANTIATE

}  // namespace fastrnn::core
