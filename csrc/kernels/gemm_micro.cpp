// GEMM micro-kernel: one register tile of C from a packed A panel and a B panel, packed or
// read in place (row stride ldb). float32 keeps the tile in vector registers (simd.h);
// double is plain C++ the compiler vectorises.
#include "isa.h"
#include "simd.h"

#include <utility>

namespace fastrnn::kernels::FASTRNN_ISA_NS {

template <typename T>
void gemm_tile(int64_t k, const T* a, const T* b, int64_t ldb, T* const* c, T beta, int m, int n) {
    constexpr int MR = Tile<T>::mr;
    constexpr int NR = Tile<T>::nr;
    T acc[MR][NR] = {};
    for (int64_t p = 0; p < k; ++p) {
        const T* ap = a + p * MR;
        const T* bp = b + p * ldb;
        for (int i = 0; i < MR; ++i) {
            const T ai = ap[i];
            for (int j = 0; j < NR; ++j) acc[i][j] += ai * bp[j];
        }
    }
    // beta == 0 must not read C: it may hold uninitialised memory.
    if (beta == T(0)) {
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) c[i][j] = acc[i][j];
    } else {
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) c[i][j] = acc[i][j] + beta * c[i][j];
    }
}

namespace {

// R rows (R <= mr) of the float tile. With R <= 2 there are too few accumulators to hide
// the FMA latency, so even and odd k go to separate sums, added at the end. The loops over
// rows are unrolled (FASTRNN_UNROLL): without that, every AVX-512 tile zeroed 1.5 KiB of
// stack (rep stos) and stored and reloaded its 24 accumulators for the epilogue.
template <int R>
void tile_rows(int64_t k, const float* a, const float* b, int64_t ldb, float* const* c,
               float beta, int n) {
    constexpr int MR = Tile<float>::mr;
    constexpr int NR = Tile<float>::nr;
    static_assert(NR == 2 * kLanes, "a float tile is two vectors wide");
    constexpr int S = R <= 2 ? 2 : 1;
    VecF acc[S][R][2] = {};
    int64_t p = 0;
    for (; p + S <= k; p += S) {
        FASTRNN_UNROLL
        for (int s = 0; s < S; ++s) {
            const VecF b0 = load(b + (p + s) * ldb), b1 = load(b + (p + s) * ldb + kLanes);
            FASTRNN_UNROLL
            for (int i = 0; i < R; ++i) {
                const VecF ai = splat(a[(p + s) * MR + i]);
                acc[s][i][0] = fma(ai, b0, acc[s][i][0]);
                acc[s][i][1] = fma(ai, b1, acc[s][i][1]);
            }
        }
    }
    for (; p < k; ++p) {
        const VecF b0 = load(b + p * ldb), b1 = load(b + p * ldb + kLanes);
        FASTRNN_UNROLL
        for (int i = 0; i < R; ++i) {
            const VecF ai = splat(a[p * MR + i]);
            acc[0][i][0] = fma(ai, b0, acc[0][i][0]);
            acc[0][i][1] = fma(ai, b1, acc[0][i][1]);
        }
    }
    const int n0 = n < kLanes ? n : kLanes, n1 = n - n0;
    FASTRNN_UNROLL
    for (int i = 0; i < R; ++i) {
        VecF v0 = acc[0][i][0], v1 = acc[0][i][1];
        if (S == 2) {
            v0 += acc[S - 1][i][0];
            v1 += acc[S - 1][i][1];
        }
        float* ci = c[i];
        // beta == 0 must not read C: it may hold uninitialised memory.
        if (beta != 0.0f) {
            v0 += beta * load_n(ci, n0);
            if (n1 > 0) v1 += beta * load_n(ci + kLanes, n1);
        }
        store_n(ci, v0, n0);
        if (n1 > 0) store_n(ci + kLanes, v1, n1);
    }
}

template <int... R>
void tile_dispatch(int m, int64_t k, const float* a, const float* b, int64_t ldb,
                   float* const* c, float beta, int n, std::integer_sequence<int, R...>) {
    using Fn = void (*)(int64_t, const float*, const float*, int64_t, float* const*, float, int);
    static constexpr Fn table[] = {&tile_rows<R + 1>...};
    table[m - 1](k, a, b, ldb, c, beta, n);
}

}  // namespace

template <>
void gemm_tile<float>(int64_t k, const float* a, const float* b, int64_t ldb, float* const* c,
                      float beta, int m, int n) {
    tile_dispatch(m, k, a, b, ldb, c, beta, n,
                  std::make_integer_sequence<int, Tile<float>::mr>{});
}

template void gemm_tile<double>(int64_t, const double*, const double*, int64_t, double* const*,
                                double, int, int);

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
