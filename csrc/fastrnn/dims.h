// Problem sizes, gate order and the strided views every layer of the core shares.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastrnn {

// Gate order inside the G*H axis of w_ih, w_hh, b and the gate buffers: i, f, g, o
// (PyTorch's and Keras's order). Peephole rows are (i, f, o).
enum LstmGate : int { kGateI = 0, kGateF = 1, kGateG = 2, kGateO = 3 };
constexpr int kLstmGates = 4;
constexpr int kRnnGates = 1;

// T = steps, B = batch, I = input features, H = hidden units.
struct Dims {
    int64_t T = 0;
    int64_t B = 0;
    int64_t I = 0;
    int64_t H = 0;
};

// A sequence tensor read in place: element (t, b, k) lies at p[t*st + b*sb + k*sk].
// Strides are in elements and may be negative (NumPy views of any kind).
template <typename T>
struct SeqView {
    T* p = nullptr;
    ptrdiff_t st = 0;
    ptrdiff_t sb = 0;
    ptrdiff_t sk = 1;

    T* row(int64_t t, int64_t b) const { return p + t * st + b * sb; }
};

enum class Nonlinearity : int { kTanh = 0, kRelu = 1 };

}  // namespace fastrnn
