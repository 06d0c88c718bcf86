// The recurrent weights packed into the fused step kernels' panels, and the tiling of
// one step into (row tile, unit block) items that threads own for a whole sequence.
#pragma once

#include <cstdint>

#include "fastrnn/kernels.h"
#include "fastrnn/workspace.h"

namespace fastrnn::core {

// Which product the panels serve (layouts in kernels.h, "Fused recurrent steps").
enum class PanelKind { kLstmForward, kRnnForward, kBackward };

// Hidden units per block of a step tile: one vector for the LSTM forward (four gates in
// the tile), four vectors otherwise.
inline int64_t block_units(PanelKind kind, int vec) {
    return kind == PanelKind::kLstmForward ? vec : 4 * vec;
}

// Whether the forward step reads w_hh as stored instead of packing it: a batch of one or
// two reuses each weight row too little to repay the copy, and neither do a few steps
// (the copy of a 4H x H w_hh costs about as much as ten of its B=1 steps).
// Measured at H=256, 1 thread: B=1 T=100 2.4 ms as stored vs 2.7 packed; B=4 T=100
// 4.6 ms either way; B=1 T=1 0.020 ms vs 0.18.
inline bool forward_reads_w_hh_as_stored(int64_t B, int64_t T) { return B <= 2 || T <= 8; }

template <typename T>
class StepPanels {
public:
    // w_hh: [G*H, H] in, C-contiguous.
    StepPanels(const T* w_hh, int64_t H, int G, PanelKind kind, int vec, int threads);
    StepPanels() = default;  // empty: the step reads w_hh as stored
    StepPanels(StepPanels&&) = default;

    int64_t units() const { return units_; }    // hidden units per block
    int64_t blocks() const { return blocks_; }
    int64_t K() const { return K_; }
    const T* panel(int64_t block) const { return data_.data() + block * K_ * width_; }

private:
    int64_t units_ = 0;
    int64_t blocks_ = 0;
    int64_t K_ = 0;
    int64_t width_ = 0;
    Buffer<T> data_;
};

// Items of one step: row tiles of the batch times unit blocks, block-major, so that a
// thread's contiguous range of items covers whole blocks (its slice of the weights).
struct StepGrid {
    int64_t B;
    int64_t H;
    int mr;
    int64_t units;
    int64_t row_tiles;
    int64_t blocks;

    StepGrid(int64_t B_, int64_t H_, int mr_, int64_t units_, int64_t blocks_)
        : B(B_), H(H_), mr(mr_), units(units_), row_tiles((B_ + mr_ - 1) / mr_), blocks(blocks_) {}
    int64_t items() const { return row_tiles * blocks; }

    struct Item {
        int64_t block, r0, u0;
        int m, nu;
    };
    Item item(int64_t i) const {
        Item it;
        it.block = i / row_tiles;
        it.r0 = (i % row_tiles) * mr;
        it.u0 = it.block * units;
        it.m = static_cast<int>(B - it.r0 < mr ? B - it.r0 : mr);
        it.nu = static_cast<int>(H - it.u0 < units ? H - it.u0 : units);
        return it;
    }
};

// Threads worth using for a recurrence whose step costs `flops`: a barrier per step costs
// about a microsecond, so a thread should get at least ~64k flops of each step.
int step_threads(int64_t flops, int64_t items, int threads);

}  // namespace fastrnn::core
