// w_hh for the fused step kernels: packed into panels, or its rows put on cache lines.
#include "recurrence.h"

#include <cstdint>
#include <cstring>

#include <unistd.h>

#include "fastrnn/dispatch.h"
#include "fastrnn/parallel.h"

namespace fastrnn::core {

template <typename T>
StepPanels<T>::StepPanels(const T* w_hh, int64_t H, int G, PanelKind kind, int vec, int threads,
                          const T* w_ih, int64_t I) {
    width_ = 4 * vec;
    const int64_t units = block_units(kind, vec);
    const int64_t blocks = (H + units - 1) / units;
    const int64_t Kx = w_ih ? I : 0;
    K_ = kind == PanelKind::kBackward ? G * H : Kx + H;
    data_.reset(checked_mul(checked_mul(blocks, K_), width_));
    T* out = data_.data();
    const KernelTable<T>& kt = kernel_table<T>();
    parallel_for(blocks, threads_for(blocks * K_ * width_, 1 << 16, threads), [&](int64_t blk) {
        const int64_t u0 = blk * units;
        T* p = out + blk * K_ * width_;
        if (kind == PanelKind::kBackward) {
            // Columns u0 .. of w_hh, row by row; units past H are zero padding.
            const int64_t live = H - u0 < width_ ? H - u0 : width_;
            for (int64_t k = 0; k < K_; ++k) {
                T* d = p + k * width_;
                const T* src = w_hh + k * H + u0;
                for (int64_t j = 0; j < live; ++j) d[j] = src[j];
                for (int64_t j = live; j < width_; ++j) d[j] = T(0);
            }
            return;
        }
        // Forward panels hold weight rows transposed. The LSTM's four slices of vec columns
        // are gates i, f, g, o of the block's units; the Elman panel is one slice.
        const int slices = kind == PanelKind::kLstmForward ? 4 : 1;
        const int slice = static_cast<int>(width_ / slices);
        const int cols = static_cast<int>(H - u0 < slice ? H - u0 : slice);
        for (int q = 0; q < slices; ++q) {
            const int64_t row0 = q * H + u0;
            T* d = p + q * slice;
            if (Kx) kt.pack_b_transposed(Kx, cols, slice, w_ih + row0 * I, I, d, width_);
            kt.pack_b_transposed(H, cols, slice, w_hh + row0 * H, H, d + Kx * width_, width_);
        }
    });
}

template <typename T>
StoredRows<T>::StoredRows(const T* w, int64_t rows, int64_t cols, int64_t steps, int threads)
    : p_(w), ld_(cols) {
    constexpr int64_t kLine = 64 / sizeof(T);
    const bool on_lines = reinterpret_cast<uintptr_t>(w) % 64 == 0 && cols % kLine == 0;
    if (!w || on_lines || steps < kAlignedCopyMinSteps) return;
    ld_ = (cols + kLine - 1) / kLine * kLine;
    copy_.reset(checked_mul(rows, ld_));
    T* out = copy_.data();
    parallel_for(rows, threads_for(rows * cols, 1 << 16, threads), [&](int64_t r) {
        std::memcpy(out + r * ld_, w + r * cols, static_cast<size_t>(cols) * sizeof(T));
    });
    p_ = out;
}

int64_t l2_cache_bytes() {
    static const int64_t bytes = [] {
#ifdef _SC_LEVEL2_CACHE_SIZE
        const long n = sysconf(_SC_LEVEL2_CACHE_SIZE);  // glibc; 0 or -1 when unknown
#else
        const long n = 0;
#endif
        return n > 0 ? static_cast<int64_t>(n) : int64_t(1) << 20;
    }();
    return bytes;
}

int step_threads(int64_t flops, int64_t steps, int threads) {
    if (flops * steps < (int64_t(1) << 19)) return 1;
    return threads_for(flops, 1 << 18, threads);
}

template class StepPanels<float>;
template class StepPanels<double>;
template class StoredRows<float>;
template class StoredRows<double>;

}  // namespace fastrnn::core
