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

// acc[i][q] = sum_k a[i, k] * panel[k, q*L .. q*L + L) for R rows; with a == nullptr the
// product is replaced by acc_init (or zeros).
template <typename T, int R>
inline void step_product(const StepTile<T>& s, typename Simd<T>::V (&acc)[R][4]) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    if (!s.a) {
        for (int i = 0; i < R; ++i)
            for (int q = 0; q < 4; ++q) {
                const int n = s.nu - q * L < 0 ? 0 : (s.nu - q * L > L ? L : s.nu - q * L);
                acc[i][q] = s.acc_init ? load_n(s.acc_init + i * s.ld_acc_init + q * L, n) : V{};
            }
        return;
    }
    for (int i = 0; i < R; ++i)
        for (int q = 0; q < 4; ++q) acc[i][q] = V{};
    const T* a = s.a;
    const T* b = s.panel;
    for (int64_t k = 0; k < s.K; ++k, b += 4 * L) {
        const V b0 = load(b), b1 = load(b + L), b2 = load(b + 2 * L), b3 = load(b + 3 * L);
        for (int i = 0; i < R; ++i) {
            const V ai = splat(a[i * s.lda + k]);
            acc[i][0] += ai * b0;
            acc[i][1] += ai * b1;
            acc[i][2] += ai * b2;
            acc[i][3] += ai * b3;
        }
    }
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

// Lanes of unit vector q that lie inside the block's nu valid units.
inline int lanes_in(int nu, int q, int L) {
    const int n = nu - q * L;
    return n < 0 ? 0 : (n > L ? L : n);
}

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
