// Elman RNN (tanh or relu) forward and full BPTT on raw pointers.
// Shapes use Dims {T, B, I, H}; weights C-contiguous.
#pragma once

#include "fastrnn/dims.h"

namespace fastrnn::core {

template <typename T>
struct RnnForwardArgs {
    Dims d;
    Nonlinearity act = Nonlinearity::kTanh;
    SeqView<const T> x;      // (t, b, i) in, read in place
    const T* h0 = nullptr;   // [B, H] in, row stride ld_h0; nullptr = zeros
    ptrdiff_t ld_h0 = 0;
    const T* w_ih = nullptr; // [H, I] in
    const T* w_hh = nullptr; // [H, H] in
    const T* b = nullptr;    // [H] in
    SeqView<T> h_seq;        // (t, b, :) out, unit stride along H; also saved for backward
    T* h_n = nullptr;        // [B, H] out, contiguous
};

template <typename T>
struct RnnBackwardArgs {
    Dims d;
    Nonlinearity act = Nonlinearity::kTanh;
    SeqView<const T> x;       // (t, b, i) in, as given to the forward
    const T* h0 = nullptr;    // [B, H] in, row stride ld_h0; nullptr = zeros
    ptrdiff_t ld_h0 = 0;
    const T* w_ih = nullptr;  // [H, I] in
    const T* w_hh = nullptr;  // [H, H] in
    SeqView<const T> h_seq;   // (t, b, :) in, the forward's output
    SeqView<const T> dh_seq;  // (t, b, :) in; p == nullptr = zero gradient
    const T* dh_n = nullptr;  // [B, H] in, row stride ld_dh_n; nullptr = zero
    ptrdiff_t ld_dh_n = 0;
    SeqView<T> dx;            // (t, b, i) out, unit stride along I
    T* dh0 = nullptr;         // [B, H] out, contiguous
    T* dw_ih = nullptr;       // [H, I] out
    T* dw_hh = nullptr;       // [H, H] out
    T* db = nullptr;          // [H] out
};

template <typename T>
void rnn_forward(const RnnForwardArgs<T>& a, int threads);

template <typename T>
void rnn_backward(const RnnBackwardArgs<T>& a, int threads);

}  // namespace fastrnn::core
