// GEMM tile with A read in place (row pointers) against a packed B panel four vectors
// wide: the register tile of the fused step kernels, used by the GEMM driver when A has
// unit stride along k.
#include "step_common.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

namespace {

template <typename T, int R>
void direct_rows(int64_t k, const T* const* a_rows, const T* b, T* const* c, T beta, int n) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    V acc[R][4];
    const T* rows[R];
    for (int i = 0; i < R; ++i) {
        rows[i] = a_rows[i];
        for (int q = 0; q < 4; ++q) acc[i][q] = V{};
    }
    for (int64_t p = 0; p < k; ++p, b += 4 * L) {
        const V b0 = load(b), b1 = load(b + L), b2 = load(b + 2 * L), b3 = load(b + 3 * L);
        for (int i = 0; i < R; ++i) {
            const V ai = splat(rows[i][p]);
            acc[i][0] = fma(ai, b0, acc[i][0]);
            acc[i][1] = fma(ai, b1, acc[i][1]);
            acc[i][2] = fma(ai, b2, acc[i][2]);
            acc[i][3] = fma(ai, b3, acc[i][3]);
        }
    }
    for (int i = 0; i < R; ++i) {
        T* ci = c[i];
        for (int q = 0; q < 4; ++q) {
            const int cnt = lanes_in(n, q, L);
            if (cnt == 0) break;
            V v = acc[i][q];
            // beta == 0 must not read C: it may hold uninitialised memory.
            if (beta != T(0)) v = fma(splat(beta), load_n(ci + q * L, cnt), v);
            store_n(ci + q * L, v, cnt);
        }
    }
}

template <typename T, int... R>
void direct_dispatch(int m, int64_t k, const T* const* a_rows, const T* b, T* const* c, T beta,
                     int n, std::integer_sequence<int, R...>) {
    using Fn = void (*)(int64_t, const T* const*, const T*, T* const*, T, int);
    static constexpr Fn table[] = {&direct_rows<T, R + 1>...};
    table[m - 1](k, a_rows, b, c, beta, n);
}

}  // namespace

template <typename T>
void gemm_tile_direct(int64_t k, const T* const* a_rows, const T* b, T* const* c, T beta, int m,
                      int n) {
    direct_dispatch(m, k, a_rows, b, c, beta, n, std::make_integer_sequence<int, kStepMr>{});
}

template void gemm_tile_direct<float>(int64_t, const float* const*, const float*, float* const*,
                                      float, int, int);
template void gemm_tile_direct<double>(int64_t, const double* const*, const double*,
                                       double* const*, double, int, int);

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
