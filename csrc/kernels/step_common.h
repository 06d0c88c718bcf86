// The recurrent product shared by the fused step kernels: an R x (4 vectors) tile of
// a * panel in registers, and the dispatch from a run-time row count to the compiled R.
#pragma once

#include <utility>

#include "simd.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

// Rows of a step tile. The tile keeps 4*R accumulators: R = 6 leaves AVX-512 room for the
// four panel loads and a broadcast in its 32 registers; 16-register ISAs take R = 3 and
// fold the panel loads into the FMAs.
#if defined(FASTRNN_ISA_AVX512)
constexpr int kStepMr = 6;
#else
constexpr int kStepMr = 3;
#endif

// Lanes of unit vector q that lie inside the block's nu valid units.
inline int lanes_in(int nu, int q, int L) {
    const int n = nu - q * L;
    return n < 0 ? 0 : (n > L ? L : n);
}

// out[b][r] = sum_k a[b, k] * w[r][k] for R rows of a and 4 rows of w (dot products along
// contiguous rows: the GEMV shape of one batch row against w_hh or w_ih as stored).
template <typename T, int R>
inline void dot4(int64_t K, const T* a, int64_t lda, const T* const (&w)[4], T (&out)[R][4]) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    V acc[4][R];
    for (int r = 0; r < 4; ++r)
        for (int b = 0; b < R; ++b) acc[r][b] = V{};
    int64_t k = 0;
    for (; k + L <= K; k += L) {
        V av[R];
        for (int b = 0; b < R; ++b) av[b] = load(a + b * lda + k);
        for (int r = 0; r < 4; ++r) {
            const V wv = load(w[r] + k);
            for (int b = 0; b < R; ++b) acc[r][b] = fma(wv, av[b], acc[r][b]);
        }
    }
    if (k < K) {
        const int n = static_cast<int>(K - k);
        V av[R];
        for (int b = 0; b < R; ++b) av[b] = load_n(a + b * lda + k, n);
        for (int r = 0; r < 4; ++r) {
            const V wv = load_n(w[r] + k, n);
            for (int b = 0; b < R; ++b) acc[r][b] = fma(wv, av[b], acc[r][b]);
        }
    }
    for (int r = 0; r < 4; ++r)
        for (int b = 0; b < R; ++b) out[b][r] = hsum<T>(acc[r][b]);
}

// The product of step_product from w_hh as stored (s.w, rows of length K, stride ldw):
// lane l of acc[i][q] is unit q*w_units_per_q + l, weight row q*w_gate_stride + l. Rows
// of units past nu are never read. No packing, so a short call pays nothing up front.
template <typename T, int R>
inline void natural_product(const StepTile<T>& s, typename Simd<T>::V (&acc)[R][4]) {
    constexpr int L = Simd<T>::lanes;
    T tmp[R][4][L] = {};
    for (int q = 0; q < 4; ++q) {
        int valid = s.nu - q * s.w_units_per_q;  // lanes of acc[.][q] that hold units
        valid = valid < 0 ? 0 : (valid > L ? L : valid);
        for (int l0 = 0; l0 < valid; l0 += 4) {
            const T* rows[4];
            for (int r = 0; r < 4; ++r) {
                const int l = l0 + r < valid ? l0 + r : valid - 1;  // repeat a valid row
                rows[r] = s.w + (q * s.w_gate_stride + l) * s.ldw;
            }
            T out[R][4];
            dot4<T, R>(s.K, s.a, s.lda, rows, out);
            for (int b = 0; b < R; ++b)
                for (int r = 0; r < 4 && l0 + r < valid; ++r) tmp[b][q][l0 + r] = out[b][r];
        }
    }
    for (int b = 0; b < R; ++b)
        for (int q = 0; q < 4; ++q) acc[b][q] = load(tmp[b][q]);
}

// acc[i][q] += sum_k a[i, k] * panel[k, q*L .. q*L + L) over K panel rows ldb apart.
template <typename T, int R>
FASTRNN_INLINE void panel_product(int64_t K, const T* a, int64_t lda, const T* b, int64_t ldb,
                                  typename Simd<T>::V (&acc)[R][4]) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    for (int64_t k = 0; k < K; ++k, b += ldb) {
        const V b0 = load(b), b1 = load(b + L), b2 = load(b + 2 * L), b3 = load(b + 3 * L);
        for (int i = 0; i < R; ++i) {
            const V ai = splat(a[i * lda + k]);
            acc[i][0] = fma(ai, b0, acc[i][0]);
            acc[i][1] = fma(ai, b1, acc[i][1]);
            acc[i][2] = fma(ai, b2, acc[i][2]);
            acc[i][3] = fma(ai, b3, acc[i][3]);
        }
    }
}

// The tile's product into acc[i][q]: x * (w_ih rows of the panel) when s.x is set, plus
// a * (w_hh rows), from packed panels or from w_hh as stored (natural_product). With
// neither x nor a, acc starts from acc_init (or zeros).
template <typename T, int R>
inline void step_product(const StepTile<T>& s, typename Simd<T>::V (&acc)[R][4]) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    if (!s.a && !s.x) {
        for (int i = 0; i < R; ++i)
            for (int q = 0; q < 4; ++q) {
                const int n = lanes_in(s.nu, q, L);
                acc[i][q] = s.acc_init ? load_n(s.acc_init + i * s.ld_acc_init + q * L, n) : V{};
            }
        return;
    }
    if (!s.panel) return natural_product<T, R>(s, acc);
    for (int i = 0; i < R; ++i)
        for (int q = 0; q < 4; ++q) acc[i][q] = V{};
    const int64_t ldp = s.ldp ? s.ldp : 4 * L;
    if (s.x) panel_product<T, R>(s.Kx, s.x, s.ldx, s.panel, ldp, acc);
    if (s.a) panel_product<T, R>(s.K, s.a, s.lda, s.panel + s.Kx * ldp, ldp, acc);
}

// Calls Tile<R>::run(s) for R = s.m, from a table built at compile time.
template <template <int> class Tile, typename T, int... R>
inline void dispatch_rows(const StepTile<T>& s, std::integer_sequence<int, R...>) {
    using Fn = void (*)(const StepTile<T>&);
    static constexpr Fn table[] = {&Tile<R + 1>::run...};
    table[s.m - 1](s);
}

template <template <int> class Tile, typename T>
inline void run_tile(const StepTile<T>& s) {
    dispatch_rows<Tile>(s, std::make_integer_sequence<int, kStepMr>{});
}

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
