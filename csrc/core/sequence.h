// The GEMMs over all T*B rows that the Elman and LSTM loops share: the input projection
// before the recurrence and the input/weight gradients after the reverse recurrence.
#pragma once

#include "fastrnn/dims.h"
#include "fastrnn/gemm.h"

namespace fastrnn::core {

// out[(t - t0)*B + b, :] = x[t, b, :] * w_ih^T + bias for t in [t0, t0 + nt).
//   x:     (t, b, i) in;  w_ih: [GH, I] in;  bias: [GH] in;  out: [nt*B, GH] out
template <typename T>
void project_inputs(const Dims& d, int64_t GH, SeqView<const T> x, int64_t t0, int64_t nt,
                    const T* w_ih, const T* bias, T* out, int threads);

// Everything BPTT needs after the reverse loop, each as one GEMM or reduction over T*B:
// dx = dG*w_ih, dw_ih = dG^T*x, dw_hh = dG^T*h_prev, db = sum(dG).
//   dg:    [T, B, GH] in, gradients of the pre-activations
//   x:     (t, b, i) in;  h0: [B, H] in (row stride ld_h0) or nullptr;  h_seq: (t, b, :) in
//   w_ih:  [GH, I] in
//   dx:    (t, b, i) out;  dw_ih: [GH, I] out;  dw_hh: [GH, H] out;  db: [GH] out
template <typename T>
void sequence_grads(const Dims& d, int64_t GH, const T* dg, SeqView<const T> x, const T* h0,
                    ptrdiff_t ld_h0, SeqView<const T> h_seq, const T* w_ih, SeqView<T> dx,
                    T* dw_ih, T* dw_hh, T* db, int threads);

// Row r = t*B + b of a sequence view, as a GEMM operand axis.
template <typename T>
Axis seq_rows(const Dims& d, const SeqView<T>& v) {
    return Axis::nested(d.B, v.sb, v.st);
}

}  // namespace fastrnn::core
