// This ISA's kernel table, handed to dispatch.cpp.
#include "isa.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

namespace {
template <typename T>
KernelTable<T> make_table() {
    KernelTable<T> t;
    t.isa = FASTRNN_STR(FASTRNN_ISA_NS);
    t.gemm_mr = Tile<T>::mr;
    t.gemm_nr = Tile<T>::nr;
    t.gemm_tile = &gemm_tile<T>;
    t.lstm_forward_row = &lstm_forward_row<T>;
    t.lstm_backward_row = &lstm_backward_row<T>;
    t.rnn_forward_row = &rnn_forward_row<T>;
    t.rnn_backward_row = &rnn_backward_row<T>;
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
