// The per-ISA kernel table: every function the time loops call on their hot path.
// Each csrc/kernels/*.cpp file is compiled once per ISA; dispatch.cpp picks one table.
// The table holds plain pointers and counts only (no vector types cross it).
#pragma once

#include <cstdint>

namespace fastrnn {

template <typename T>
struct KernelTable {
    const char* isa = "";

    // GEMM micro-kernel: the mr x nr tile C = a_panel * b_panel (+ beta*C).
    //   a:   [k, mr] in, packed A panel (a[kk*mr + ii]), rows past m are zero
    //   b:   [k, nr] in, packed B panel (b[kk*nr + jj]), columns past n are zero
    //   c:   [m, n]  in/out, row stride ldc, unit column stride; read only if beta != 0
    // Only the m x n corner (m <= mr, n <= nr) of the tile is written.
    int gemm_mr = 0;
    int gemm_nr = 0;
    void (*gemm_tile)(int64_t k, const T* a, const T* b, T* c, int64_t ldc, T beta, int m,
                      int n) = nullptr;

    // LSTM step for one batch row, gate order i,f,g,o.
    //   gates:    [4H] in/out: pre-activations in, activations i,f,g,o out
    //   c_prev:   [H]  in, c_{t-1}; may alias c
    //   c:        [H]  out, c_t
    //   h:        [H]  out, h_t
    //   peephole: [3H] in (rows i,f,o) or nullptr
    void (*lstm_forward_row)(int64_t H, T* gates, const T* c_prev, T* c, T* h,
                             const T* peephole) = nullptr;

    // LSTM backward step for one batch row.
    //   act:      [4H] in, activations i,f,g,o saved by the forward
    //   c_prev:   [H]  in, c_{t-1};  c: [H] in, c_t
    //   dh_out:   [H]  in, dL/dh_t from the output sequence, or nullptr (zero)
    //   dh_rec:   [H]  in, dL/dh_t from step t+1
    //   dc:       [H]  in/out, dL/dc_t in, dL/dc_{t-1} out
    //   dgates:   [4H] out, dL/d(pre-activations)
    //   peephole: [3H] in or nullptr
    void (*lstm_backward_row)(int64_t H, const T* act, const T* c_prev, const T* c,
                              const T* dh_out, const T* dh_rec, T* dc, T* dgates,
                              const T* peephole) = nullptr;

    // Elman step for one batch row: h = act(pre).  pre: [H] in; h: [H] out (may alias pre).
    void (*rnn_forward_row)(int64_t H, const T* pre, T* h, int relu) = nullptr;

    // Elman backward step: da = (dh_out + dh_rec) * act'(h).
    //   h: [H] in (h_t); dh_out: [H] in or nullptr; dh_rec: [H] in; da: [H] out
    void (*rnn_backward_row)(int64_t H, const T* h, const T* dh_out, const T* dh_rec, T* da,
                             int relu) = nullptr;
};

}  // namespace fastrnn
