// The GEMMs over many (t, b) rows that the Elman and LSTM loops share: the input
// projection before the recurrence and the input/weight gradients of the reverse one.
#pragma once

#include <cstring>

#include "fastrnn/dims.h"
#include "fastrnn/gemm.h"
#include "fastrnn/workspace.h"

namespace fastrnn::core {

// out[(t - t0)*B + b, :] = x[t, b, :] * w_ih^T + bias for t in [t0, t0 + nt).
//   x:     (t, b, i) in;  w_ih: [GH, I] in;  bias: [GH] in;  out: [nt*B, GH] out
template <typename T>
void project_inputs(const Dims& d, int64_t GH, SeqView<const T> x, int64_t t0, int64_t nt,
                    const T* w_ih, const T* bias, T* out, int threads);

// The input and weight gradients of BPTT, accumulated chunk by chunk while the reverse
// loop produces dG: dx = dG*w_ih, dw_ih = dG^T*x, dw_hh = dG^T*h_prev, db = sum(dG).
// Taking each chunk while it is still in cache means dG is never held whole: a call keeps
// [chunk_steps + 1, B, GH] of it, not [T, B, GH] (65 MB at B=64 T=500 H=128, which the
// GEMMs then read four times from memory and which was page-faulted in on every call).
// The chunking depends only on the shapes, so results do not depend on the thread count.
//   x:     (t, b, i) in;  h0: [B, H] in (row stride ld_h0) or nullptr;  h_seq: (t, b, :) in
//   w_ih:  [GH, I] in
//   dx:    (t, b, i) out, unit stride along i;  dw_ih: [GH, I] out;  dw_hh: [GH, H] out;
//   db:    [GH] out
template <typename T>
class SequenceGrads {
public:
    SequenceGrads(const Dims& d, int64_t GH, SeqView<const T> x, const T* h0, ptrdiff_t ld_h0,
                  SeqView<const T> h_seq, const T* w_ih, SeqView<T> dx, T* dw_ih, T* dw_hh,
                  T* db, int threads);

    // Steps per chunk: enough rows (steps * B) for full-size GEMM K blocks, and a dG
    // chunk of a few MiB, which stays in L3 between the loop that writes it and the GEMMs.
    static int64_t chunk_steps(const Dims& d, int64_t GH);

    // Adds the gradients of steps [t0, t0 + nt); dg: [nt, B, GH] in. Each step comes once,
    // chunks in any order.
    void add(int64_t t0, int64_t nt, const T* dg);

    // Writes dw_ih and dw_hh; call once, after the last chunk.
    void finish();

private:
    Dims d_;
    int64_t GH_;
    SeqView<const T> x_, h_seq_;
    const T* h0_;
    ptrdiff_t ld_h0_;
    const T* w_ih_;
    SeqView<T> dx_;
    T *dw_ih_, *dw_hh_, *db_;
    int threads_;
    bool transposed_;        // weight gradients as (x^T dG)^T, (h^T dG)^T
    bool first_ = true;      // no chunk added yet: the GEMMs overwrite instead of adding
    Buffer<T> wt_ih_, wt_hh_;  // the transposed weight gradients, [I, GH] and [H, GH]
};

// dG of the reverse loop, one chunk of steps at a time (SequenceGrads::chunk_steps): the
// rows of the chunk's steps [t0, t1) and, behind them, of step t1 (the previous chunk's
// first), which the chunk's first product reads.
template <typename T>
class GradChunks {
public:
    GradChunks(const Dims& d, int64_t GH)
        : B_(d.B), GH_(GH), T_(d.T), chunk_(SequenceGrads<T>::chunk_steps(d, GH)),
          buf_(checked_mul(checked_mul(chunk_ + 1, d.B), GH)), t0_(d.T) {}

    // Row r of step t, for t in the current chunk or its carried step t1.
    T* row(int64_t t, int64_t r) { return buf_.data() + ((t - t0_) * B_ + r) * GH_; }

    // Chunks from the end. Phase p = T - t multiplies dG_t (none for p = 0) and writes dG of
    // step t - 1 (phase T: dh0). For each chunk, run(p0, count) runs phases p0 .. p0 +
    // count - 1, which write dG of steps t1 - 1 .. t0 (the last chunk also runs phase T);
    // then done(t0, n) takes the chunk's n steps.
    template <typename Run, typename Done>
    void reverse(const Run& run, const Done& done) {
        for (int64_t t1 = T_; t1 > 0; t1 = t0_) {
            const int64_t n = chunk_ < t1 ? chunk_ : t1;
            t0_ = t1 - n;
            if (t1 < T_)  // the previous chunk's first step, read by this chunk's first phase
                std::memcpy(buf_.data() + n * B_ * GH_, buf_.data(),
                            static_cast<size_t>(B_ * GH_) * sizeof(T));
            run(T_ - t1, n + (t0_ == 0));
            done(t0_, n);
        }
    }

private:
    int64_t B_, GH_, T_, chunk_;
    Buffer<T> buf_;
    int64_t t0_;
};

// Row r = t*B + b of a sequence view, as a GEMM operand axis.
template <typename T>
Axis seq_rows(const Dims& d, const SeqView<T>& v) {
    return Axis::nested(d.B, v.sb, v.st);
}

}  // namespace fastrnn::core
