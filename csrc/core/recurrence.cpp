// Packing of w_hh into the fused step kernels' panels.
#include "recurrence.h"

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
    // Walk each source row contiguously: the forward panels transpose it, so the writes
    // stride by the panel width, but every cache line of the weights is read once.
    parallel_for(blocks, threads_for(blocks * K_ * width_, 1 << 16, threads), [&](int64_t blk) {
        const int64_t u0 = blk * units;
        T* p = out + blk * K_ * width_;
        for (int64_t j = 0; j < width_; ++j) {
            // Unit and gate row of column j; units past H are zero padding.
            const int64_t unit = kind == PanelKind::kLstmForward ? u0 + j % vec : u0 + j;
            const int64_t row = kind == PanelKind::kLstmForward ? (j / vec) * H + unit : unit;
            if (unit >= H) {
                for (int64_t k = 0; k < K_; ++k) p[k * width_ + j] = T(0);
            } else if (kind == PanelKind::kBackward) {
                for (int64_t k = 0; k < K_; ++k) p[k * width_ + j] = w_hh[k * H + unit];
            } else {
                const T* src_x = w_ih ? w_ih + row * I : nullptr;
                for (int64_t k = 0; k < Kx; ++k) p[k * width_ + j] = src_x[k];
                const T* src = w_hh + row * H;
                for (int64_t k = 0; k < H; ++k) p[(Kx + k) * width_ + j] = src[k];
            }
        }
    });
}

int step_threads(int64_t flops, int64_t steps, int threads) {
    if (flops * steps < (int64_t(1) << 19)) return 1;
    return threads_for(flops, 1 << 18, threads);
}

template class StepPanels<float>;
template class StepPanels<double>;

}  // namespace fastrnn::core
