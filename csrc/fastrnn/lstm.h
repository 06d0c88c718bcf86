// LSTM (optional diagonal peepholes) forward and full BPTT on raw pointers.
// Shapes use Dims {T, B, I, H}; gate order i, f, g, o; weights C-contiguous.
#pragma once

#include "fastrnn/dims.h"

namespace fastrnn::core {

template <typename T>
struct LstmWeights {
    const T* w_ih = nullptr;      // [4H, I] in
    const T* w_hh = nullptr;      // [4H, H] in
    const T* b = nullptr;         // [4H] in, fused bias
    const T* peephole = nullptr;  // [3H] in, rows i, f, o; nullptr = no peepholes
};

template <typename T>
struct LstmForwardArgs {
    Dims d;
    SeqView<const T> x;       // (t, b, i) in, read in place
    const T* h0 = nullptr;    // [B, H] in, row stride ld_h0; nullptr = zeros
    ptrdiff_t ld_h0 = 0;
    const T* c0 = nullptr;    // [B, H] in, row stride ld_c0; nullptr = zeros
    ptrdiff_t ld_c0 = 0;
    LstmWeights<T> w;
    SeqView<T> h_seq;         // (t, b, :) out, unit stride along H
    T* h_n = nullptr;         // [B, H] out, contiguous
    T* c_n = nullptr;         // [B, H] out, contiguous
    // Saved for backward, both nullptr in inference:
    T* gates = nullptr;       // [T, B, 4H] out, activations i, f, g, o
    T* c_seq = nullptr;       // [T, B, H] out, c_t
};

template <typename T>
struct LstmBackwardArgs {
    Dims d;
    SeqView<const T> x;         // (t, b, i) in, as given to the forward
    const T* h0 = nullptr;      // [B, H] in, row stride ld_h0; nullptr = zeros
    ptrdiff_t ld_h0 = 0;
    const T* c0 = nullptr;      // [B, H] in, row stride ld_c0; nullptr = zeros
    ptrdiff_t ld_c0 = 0;
    LstmWeights<T> w;
    SeqView<const T> h_seq;     // (t, b, :) in, the forward's output
    const T* gates = nullptr;   // [T, B, 4H] in, saved activations
    const T* c_seq = nullptr;   // [T, B, H] in, saved c_t
    SeqView<const T> dh_seq;    // (t, b, :) in; p == nullptr = zero gradient
    const T* dh_n = nullptr;    // [B, H] in, row stride ld_dh_n; nullptr = zero
    ptrdiff_t ld_dh_n = 0;
    const T* dc_n = nullptr;    // [B, H] in, row stride ld_dc_n; nullptr = zero
    ptrdiff_t ld_dc_n = 0;
    SeqView<T> dx;              // (t, b, i) out, unit stride along I
    T* dh0 = nullptr;           // [B, H] out, contiguous
    T* dc0 = nullptr;           // [B, H] out, contiguous
    T* dw_ih = nullptr;         // [4H, I] out
    T* dw_hh = nullptr;         // [4H, H] out
    T* db = nullptr;            // [4H] out
    T* dpeephole = nullptr;     // [3H] out; required iff w.peephole != nullptr
};

template <typename T>
void lstm_forward(const LstmForwardArgs<T>& a, int threads);

template <typename T>
void lstm_backward(const LstmBackwardArgs<T>& a, int threads);

}  // namespace fastrnn::core
