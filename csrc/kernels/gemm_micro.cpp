// GEMM micro-kernel: one register tile of C from packed A and B panels. Plain C++ that
// the compiler vectorises with this ISA's flags along the nr columns.
#include "isa.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

template <typename T>
void gemm_tile(int64_t k, const T* a, const T* b, T* c, int64_t ldc, T beta, int m, int n) {
    constexpr int MR = Tile<T>::mr;
    constexpr int NR = Tile<T>::nr;
    T acc[MR][NR] = {};
    for (int64_t p = 0; p < k; ++p) {
        const T* ap = a + p * MR;
        const T* bp = b + p * NR;
        for (int i = 0; i < MR; ++i) {
            const T ai = ap[i];
            for (int j = 0; j < NR; ++j) acc[i][j] += ai * bp[j];
        }
    }
    // beta == 0 must not read C: it may hold uninitialised memory.
    if (beta == T(0)) {
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) c[i * ldc + j] = acc[i][j];
    } else {
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) c[i * ldc + j] = acc[i][j] + beta * c[i * ldc + j];
    }
}

template void gemm_tile<float>(int64_t, const float*, const float*, float*, int64_t, float, int,
                               int);
template void gemm_tile<double>(int64_t, const double*, const double*, double*, int64_t, double,
                                int, int);

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
