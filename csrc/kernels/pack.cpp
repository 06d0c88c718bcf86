// Packing of a B operand stored transposed (B(k, n) = src[n*ld + k], e.g. w_ih^T) into a
// GEMM panel or a slice of a step panel: L x L blocks transposed in registers instead of
// one scalar gather per element (the gather was ~8% of a B=1 LSTM forward).
#include "simd.h"

#include <utility>

namespace fastrnn::kernels::FASTRNN_ISA_NS {

namespace {

// One butterfly stage of an in-register L x L transpose: rows i and i + D trade their
// D-wide lane blocks.
template <typename T, int D, size_t... I>
FASTRNN_INLINE void stage(typename Simd<T>::V* v, std::index_sequence<I...>) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
#if !defined(__clang__)
    using Idx = typename Simd<T>::Idx;
    using E = typename Simd<T>::IdxElem;
    constexpr Idx lo{static_cast<E>((I & D) ? L + (I - D) : I)...};
    constexpr Idx hi{static_cast<E>((I & D) ? L + I : I + D)...};
#endif
    for (int i = 0; i < L; ++i) {
        if (i & D) continue;
        const V a = v[i], b = v[i + D];
#if defined(__clang__)
        v[i] = __builtin_shufflevector(a, b, ((I & D) ? L + (I - D) : I)...);
        v[i + D] = __builtin_shufflevector(a, b, ((I & D) ? L + I : I + D)...);
#else
        v[i] = __builtin_shuffle(a, b, lo);
        v[i + D] = __builtin_shuffle(a, b, hi);
#endif
    }
}

template <typename T, int D>
FASTRNN_INLINE void transpose(typename Simd<T>::V* v) {
    if constexpr (D >= 1) {
        stage<T, D>(v, std::make_index_sequence<Simd<T>::lanes>{});
        transpose<T, D / 2>(v);
    }
}

}  // namespace

template <typename T>
void pack_b_transposed(int64_t kc, int cols, int width, const T* src, int64_t ld, T* dst,
                       int64_t ldd) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    const int full_cols = cols / L * L;
    const int64_t full_k = kc / L * L;
    for (int j0 = 0; j0 < full_cols; j0 += L) {
        for (int64_t k0 = 0; k0 < full_k; k0 += L) {
            V v[L];
            for (int r = 0; r < L; ++r) v[r] = load(src + (j0 + r) * ld + k0);
            transpose<T, L / 2>(v);
            for (int kk = 0; kk < L; ++kk) store(dst + (k0 + kk) * ldd + j0, v[kk]);
        }
        for (int64_t k = full_k; k < kc; ++k)
            for (int r = 0; r < L; ++r) dst[k * ldd + j0 + r] = src[(j0 + r) * ld + k];
    }
    for (int64_t k = 0; k < kc; ++k) {
        T* d = dst + k * ldd;
        for (int j = full_cols; j < cols; ++j) d[j] = src[j * ld + k];
        for (int j = cols; j < width; ++j) d[j] = T(0);
    }
}

template void pack_b_transposed<float>(int64_t, int, int, const float*, int64_t, float*,
                                       int64_t);
template void pack_b_transposed<double>(int64_t, int, int, const double*, int64_t, double*,
                                        int64_t);

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
