// A few rows of a against w as stored (w^T without packing), plus a bias.
#include "step_common.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

namespace {

template <typename T, int R, bool kShifted>
void gemv_rows_r(int64_t N, int64_t K, const T* a, int64_t lda, const T* w, int64_t ldw,
                 const T* bias, T* out, int64_t ldo, const ShiftedA<T>* sa) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    for (int64_t n0 = 0; n0 < N; n0 += L) {
        const int n = N - n0 < L ? static_cast<int>(N - n0) : L;
        const T* rows[L];
        for (int r = 0; r < L; ++r) rows[r] = w + (n0 + (r < n ? r : n - 1)) * ldw;
        V dots[R];
        row_dots<T, R, kShifted>(K, a, lda, rows, dots, sa);
        const V bv = load_n(bias + n0, n);
        for (int b = 0; b < R; ++b) store_n(out + b * ldo + n0, dots[b] + bv, n);
    }
}

// Out of line, so that only calls that shift pay for the buffer's stack frame (probed
// page by page on entry: 2% of a one-step call when every call paid it).
template <typename T, int R>
__attribute__((noinline)) void gemv_shifted(int m, int64_t N, int64_t K, const T* a,
                                            int64_t lda, const T* w, int64_t ldw,
                                            const T* bias, T* out, int64_t ldo) {
    alignas(64) T buf[kShiftBytes / sizeof(T)];
    const ShiftedA<T> sa = shift_a(m, K, R, a, lda, buf);
    gemv_rows_r<T, R, true>(N, K, a, lda, w, ldw, bias, out, ldo, &sa);
}

template <typename T, int R>
void gemv_r(int64_t N, int64_t K, const T* a, int64_t lda, const T* w, int64_t ldw,
            const T* bias, T* out, int64_t ldo) {
    if (const int m = row_shift(w, ldw, K, R))
        return gemv_shifted<T, R>(m, N, K, a, lda, w, ldw, bias, out, ldo);
    gemv_rows_r<T, R, false>(N, K, a, lda, w, ldw, bias, out, ldo, nullptr);
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
