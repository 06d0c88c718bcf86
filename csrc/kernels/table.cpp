// This ISA's kernel table, handed to dispatch.cpp.
#include "step_common.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

namespace {
template <typename T>
KernelTable<T> make_table() {
    KernelTable<T> t;
    t.isa = FASTRNN_STR(FASTRNN_ISA_NS);
    t.gemm_mr = Tile<T>::mr;
    t.gemm_nr = Tile<T>::nr;
    t.gemm_tile = &gemm_tile<T>;
    t.gemm_direct_mr = kStepMr;
    t.gemm_direct_nr = 4 * Simd<T>::lanes;
    t.gemm_tile_direct = &gemm_tile_direct<T>;
    t.pack_b_transposed = &pack_b_transposed<T>;
    t.step_mr = kStepMr;
    t.step_vec = Simd<T>::lanes;
    t.lstm_forward_tile = &lstm_forward_tile<T>;
    t.lstm_backward_tile = &lstm_backward_tile<T>;
    t.rnn_forward_tile = &rnn_forward_tile<T>;
    t.rnn_backward_tile = &rnn_backward_tile<T>;
    t.gemv_rows = &gemv_rows<T>;
    t.fma_burn = &fma_burn;
    return t;
}
}  // namespace

const KernelTable<float>& table_f32() {
    static const KernelTable<float> t = make_table<float>();
    return t;
}
const KernelTable<double>& table_f64() {
    static const KernelTable<double> t = make_table<double>();
    return t;
}

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
