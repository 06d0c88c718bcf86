// A few rows of a against w as stored (w^T without packing), plus a bias.
#include "step_common.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

namespace {

template <typename T, int R>
void gemv_r(int64_t N, int64_t K, const T* a, int64_t lda, const T* w, int64_t ldw,
            const T* bias, T* out, int64_t ldo) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    for (int64_t n0 = 0; n0 < N; n0 += L) {
        const int n = N - n0 < L ? static_cast<int>(N - n0) : L;
        const T* rows[L];
        for (int r = 0; r < L; ++r) rows[r] = w + (n0 + (r < n ? r : n - 1)) * ldw;
        V dots[R];
        row_dots<T, R>(K, a, lda, rows, dots);
        const V bv = load_n(bias + n0, n);
        for (int b = 0; b < R; ++b) store_n(out + b * ldo + n0, dots[b] + bv, n);
    }
}

template <typename T, int... R>
void gemv_dispatch(int m, int64_t N, int64_t K, const T* a, int64_t lda, const T* w, int64_t ldw,
                   const T* bias, T* out, int64_t ldo, std::integer_sequence<int, R...>) {
    using Fn = void (*)(int64_t, int64_t, const T*, int64_t, const T*, int64_t, const T*, T*,
                        int64_t);
    static constexpr Fn table[] = {&gemv_r<T, R + 1>...};
    table[m - 1](N, K, a, lda, w, ldw, bias, out, ldo);
}

}  // namespace

template <typename T>
void gemv_rows(int m, int64_t N, int64_t K, const T* a, int64_t lda, const T* w, int64_t ldw,
               const T* bias, T* out, int64_t ldo) {
    gemv_dispatch(m, N, K, a, lda, w, ldw, bias, out, ldo,
                  std::make_integer_sequence<int, kStepMr>{});
}

template void gemv_rows<float>(int, int64_t, int64_t, const float*, int64_t, const float*,
                               int64_t, const float*, float*, int64_t);
template void gemv_rows<double>(int, int64_t, int64_t, const double*, int64_t, const double*,
                                int64_t, const double*, double*, int64_t);

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
