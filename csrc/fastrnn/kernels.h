// The per-ISA kernel table: every function the time loops call on their hot path.
// Each csrc/kernels/*.cpp file is compiled once per ISA; dispatch.cpp picks one table.
// The table holds plain pointers and counts only (no vector types cross it).
#pragma once

#include <cstdint>

namespace fastrnn {

// One tile of a fused recurrent step. Every pointer is already offset to the tile's first
// row and first unit u0; "(m, .)" arrays have the given row stride; gate q of a gate row
// lies at +q*H. Fields a kernel does not use are ignored.
template <typename T>
struct StepTile {
    int m = 0;                  // rows in the tile, 1..step_mr
    int nu = 0;                 // valid units in the block (the panel is zero-padded past them)
    int64_t K = 0;              // inner dimension: H forward, G*H backward
    int64_t H = 0;              // gate stride inside a gate row
    const T* a = nullptr;       // (m, K) in, stride lda: h_{t-1} forward, dG_t backward;
    int64_t lda = 0;            //   nullptr = no recurrent product (zero state; backward:
                                //   acc_init instead)
    const T* x = nullptr;       // (m, Kx) in, stride ldx, x_t (forward only): the input
    int64_t ldx = 0;            //   projection fused into the step; the panel then holds
    int64_t Kx = 0;             //   Kx rows of w_ih before the K rows of w_hh
    const T* bias = nullptr;    // [G*H] in (gate q of the block at +q*H), with x: the
                                //   pre-activations are product + bias, gates is not read
    const T* acc_init = nullptr;  // (m, units) in, stride ld_acc_init, or nullptr = zeros
    int64_t ld_acc_init = 0;
    const T* panel = nullptr;   // [K, 4*step_vec] in, packed w_hh block, row stride ldp
    int64_t ldp = 0;            //   (0: 4*step_vec); nullptr: the forward reads w_hh as
                                //   stored instead (see below)
    const T* w = nullptr;       // w_hh rows of the block's first unit, row stride ldw; lane
    int64_t ldw = 0;            //   l of product vector q is unit q*w_units_per_q + l and
    int64_t w_gate_stride = 0;  //   row q*w_gate_stride + l (LSTM: H and 0, Elman: V and V)
    int w_units_per_q = 0;
    T* gates = nullptr;         // (m, G*H) forward in/out: pre-activations in (unless x),
    int64_t ld_gates = 0;       //   LSTM activations out (nullptr with x: not kept); the
                                //   Elman forward writes no activations; backward in
    const T* c_prev = nullptr;  // (m, H) in, c_{t-1} (LSTM)
    int64_t ld_c_prev = 0;
    T* c = nullptr;             // (m, H) LSTM: c_t out forward (may alias c_prev), in backward
    int64_t ld_c = 0;
    T* h = nullptr;             // (m, H) h_t: out forward, in for the Elman backward
    int64_t ld_h = 0;
    const T* dh_out = nullptr;  // (m, H) in, dL/dh_t from the output sequence, or nullptr
    int64_t ld_dh_out = 0;
    T* dc = nullptr;            // (m, H) in/out, dL/dc_t in, dL/dc_{t-1} out (LSTM backward)
    int64_t ld_dc = 0;
    T* dg = nullptr;            // (m, G*H) out, dL/d(pre-activations) of step t (backward)
    int64_t ld_dg = 0;
    T* dh0 = nullptr;           // (m, H) out: past step 0 the backward stores dh here and
    int64_t ld_dh0 = 0;         //   runs no pointwise step
    const T* peephole = nullptr;  // [3, H] in (row stride H), rows i, f, o, or nullptr
    int relu = 0;               // Elman activation: 0 tanh, 1 relu
};

template <typename T>
struct KernelTable {
    const char* isa = "";

    // GEMM micro-kernel: the mr x nr tile C = a_panel * b_panel (+ beta*C).
    //   a:   [k, mr] in, packed A panel (a[kk*mr + ii]), rows past m are zero
    //   b:   [k, nr] in, B panel, row kk at b + kk*ldb: packed (ldb = nr, columns past n
    //        zero) or B itself, read where it lies (then n = nr)
    //   c:   [m, n]  in/out, row i at c[i] (unit column stride); read only if beta != 0
    // Only the m x n corner (m <= mr, n <= nr) of the tile is written.
    int gemm_mr = 0;
    int gemm_nr = 0;
    void (*gemm_tile)(int64_t k, const T* a, const T* b, int64_t ldb, T* const* c, T beta, int m,
                      int n) = nullptr;

    // The same tile with A read where it lies, for A with unit stride along k (no packing
    // of A: its gather-transpose cost 7% of a training call):
    //   a_rows: m pointers to rows of A (element kk of row i at a_rows[i][kk])
    //   b:      [k, gemm_direct_nr] packed B panel; c as above, m <= gemm_direct_mr
    // A panel from B stored transposed: dst[kk*ldd + j] = src[j*ld + kk] for kk < kc,
    // j < cols, zero for cols <= j < width (a GEMM panel: width = ldd = nr).
    void (*pack_b_transposed)(int64_t kc, int cols, int width, const T* src, int64_t ld,
                              T* dst, int64_t ldd) = nullptr;

    int gemm_direct_mr = 0;
    int gemm_direct_nr = 0;
    void (*gemm_tile_direct)(int64_t k, const T* const* a_rows, const T* b, T* const* c, T beta,
                             int m, int n) = nullptr;

    // Fused recurrent steps. Each computes one tile: m <= step_mr batch rows times one
    // block of hidden units, first the recurrent product a * w_hh^T (from packed panels, or
    // from w_hh as stored when the batch is too small to repay packing) into registers, then
    // the cell's pointwise math on it, so a gate value never goes back to memory between
    // the GEMM and its nonlinearity. Panel layouts (K rows, 4*step_vec columns each):
    //   lstm_forward:  step_vec units x gates i, f, g, o
    //                  panel[k][q*V + l] = w_hh[q*H + u0 + l][k]
    //   rnn_forward:   4*step_vec units                     panel[k][l] = w_hh[u0 + l][k]
    //   *_backward:    4*step_vec units of dh               panel[k][l] = w_hh[k][u0 + l]
    //                  (which is w_hh as stored, ldp = H, when H is a multiple of 4*step_vec)
    int step_mr = 0;
    int step_vec = 0;
    void (*lstm_forward_tile)(const StepTile<T>& s) = nullptr;
    void (*lstm_backward_tile)(const StepTile<T>& s) = nullptr;
    void (*rnn_forward_tile)(const StepTile<T>& s) = nullptr;
    void (*rnn_backward_tile)(const StepTile<T>& s) = nullptr;

    // out[m, n] = bias[n] + sum_k a[m, k] * w[n, k] for m <= step_mr rows of a (row
    // stride lda) and all N rows of w (row stride ldw): a product too short to repay
    // packing w (the input projection of one or two steps).
    void (*gemv_rows)(int m, int64_t N, int64_t K, const T* a, int64_t lda, const T* w,
                      int64_t ldw, const T* bias, T* out, int64_t ldo) = nullptr;

    // iters rounds of independent float32 FMAs in registers; returns the flops done.
    int64_t (*fma_burn)(int64_t iters, float* sink) = nullptr;
};

}  // namespace fastrnn
