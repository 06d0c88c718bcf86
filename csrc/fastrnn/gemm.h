// The GEMM entry points of the core: C = A * B (+ beta * C) over strided operands,
// packed into the active micro-kernel's panels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>


namespace fastrnn {

// Where element i of one matrix axis lies: (i / inner) * outer + (i % inner) * stride.
// A plain axis has inner = "infinity"; a nested one walks e.g. the (t, b) rows of a
// sequence view in t-major order, which is how the time loops read x in place.
struct Axis {
    int64_t inner = std::numeric_limits<int64_t>::max();
    ptrdiff_t stride = 0;
    ptrdiff_t outer = 0;

    static Axis plain(ptrdiff_t stride) { return {std::numeric_limits<int64_t>::max(), stride, 0}; }
    static Axis nested(int64_t inner, ptrdiff_t stride, ptrdiff_t outer) {
        return {inner, stride, outer};
    }
    ptrdiff_t at(int64_t i) const {
        if (i < inner) return i * stride;
        return (i / inner) * outer + (i % inner) * stride;
    }
};

// A read-only matrix operand: element (r, c) lies at p[rows.at(r) + cols.at(c)].
template <typename T>
struct ConstMat {
    const T* p = nullptr;
    Axis rows;
    Axis cols;
};

// C[M, N] = A[M, K] * B[K, N] + beta * C; C has row stride ldc and unit column stride.
// Each C tile is computed by one thread with K in a fixed order, so the result does not
// depend on the thread count. Packing buffers are allocated here, once per call.
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, ConstMat<T> A, ConstMat<T> B, T beta, T* C,
          ptrdiff_t ldc, int threads);

// The arguments of one product: C = A * B + beta * C, row r of C at C + c_rows.at(r) (unit
// column stride; a nested axis writes e.g. the (t, b) rows of a batch-first sequence).
template <typename T>
struct GemmArgs {
    int64_t M, N, K;
    ConstMat<T> A, B;
    T beta;
    T* C;
    Axis c_rows;
};

// gemm() with its arguments as one value, for a C whose rows are not one stride apart.
template <typename T>
void gemm(const GemmArgs<T>& g, int threads);

// Two independent gemm() calls (neither C overlaps the other C or an operand of the other
// call). On two threads, when they cost about the same, each runs whole on one thread,
// side by side; otherwise one after the other, each split over the threads. Split, a
// weight-gradient product (M and N are I, H or G*H; K runs over a chunk's (t, b) rows)
// makes each thread pack all of one operand, which the other packs too: Elman B=256 H=64
// backward took 1.56x less time on 2 threads than on 1 for these products, against 1.92x
// for dx. Side by side, each thread packs what one thread alone would. Either way every
// C tile is computed as gemm() computes it, so the results are the same bits.
template <typename T>
void gemm_pair(const GemmArgs<T>& g0, const GemmArgs<T>& g1, int threads);

}  // namespace fastrnn
