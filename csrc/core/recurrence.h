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

// Whether the backward reads w_hh as stored: its panels are plain column blocks of w_hh
// (row stride H), so a call that would not repay packing (the forward's rule) skips the
// copy, when the blocks tile H exactly (no block reads past a row's end).
inline bool backward_reads_w_hh_as_stored(int64_t B, int64_t T, int64_t H, int vec) {
    return forward_reads_w_hh_as_stored(B, T) && H % (4 * vec) == 0;
}

// Bytes of one core's L2 cache (sysconf; 1 MiB where the system does not say).
int64_t l2_cache_bytes();

// Whether the packed forward fuses the input projection into each step (K = I + H): it
// skips the separate GEMM's packing of x and w_ih, the pre-activation buffer's round trip
// and the bias pass. It needs rows of x with unit stride along I. But every step then
// reads w_ih's panels as well (`fused_bytes` in all), from beyond L2 once they outgrow
// half of it, for only B rows: with 256 KiB or more of them per row (2 MiB L2; L2 / 8)
// the separate GEMM, which reads w_ih once per call, wins. Unfused against fused, 1 / 2
// threads: LSTM B=4 H=256 -30% / +7%, B=8 H=256 -21% / +1%, B=8 H=512 -22% / -38%,
// B=16 H=512 -7% / -16%, Elman B=8 H=512 -25% / -7%; at 128 KiB a row, fused stays
// ahead on 2 threads (LSTM B=16 H=256 -3% / +5%, Elman B=16 H=512 -12% / +7%) and on 1
// from B=24. The rule reads no thread count, so neither do the results.
inline bool forward_fuses_projection(int64_t B, int64_t T, ptrdiff_t x_sk,
                                     int64_t fused_bytes) {
    const int64_t l2 = l2_cache_bytes();
    const bool streams = fused_bytes > l2 / 2 && fused_bytes / B >= l2 / 8;
    return !forward_reads_w_hh_as_stored(B, T) && x_sk == 1 && !streams;
}

template <typename T>
class StepPanels {
public:
    // w_hh: [G*H, H] in, C-contiguous. With w_ih ([G*H, I], forward kinds only) each panel
    // holds the I rows of w_ih^T first, then the H rows of w_hh^T: the input projection
    // fused into the step.
    StepPanels(const T* w_hh, int64_t H, int G, PanelKind kind, int vec, int threads,
               const T* w_ih = nullptr, int64_t I = 0);
    StepPanels() = default;  // empty: the step reads w_hh as stored
    StepPanels(StepPanels&&) = default;

    const T* panel(int64_t block) const { return data_.data() + block * K_ * width_; }

private:
    int64_t K_ = 0;
    int64_t width_ = 0;
    Buffer<T> data_;
};

// w_hh ([rows, cols], C-contiguous) where the steps that read it as stored find it: in
// place, or, when its rows do not all start on a 64-byte line and the call reads it in
// at least kAlignedCopyMinSteps steps, in a copy whose rows do (the row stride rounded up
// to a line). A B=1 step streams w_hh from L2 and L3, and rows off a line stream slower:
// LSTM B=1 T=100 H=256 inference on 1 thread took 1.93 ms with w_hh 4 or 16 bytes past a
// line, 1.79 at 32 and 1.70 on one (a NumPy array starts where malloc puts it: the bench's
// w_hh arrays lay 0, 16, 32 or 48 bytes past a line). A 1 MiB copy costs 25-60 us, a
// dozen steps' worth of the difference. The values are the same, so the results are too.
// Fewer steps do not repay the copy: there the kernels read rows that are all off a line
// by the same amount from the line before them (ShiftedA, kernels/step_common.h), which
// costs nothing up front but cannot serve rows off by different amounts (H = 100).
template <typename T>
class StoredRows {
public:
    static constexpr int64_t kAlignedCopyMinSteps = 32;

    // w == nullptr: no steps read w_hh as stored (data() is then nullptr too).
    StoredRows(const T* w, int64_t rows, int64_t cols, int64_t steps, int threads);
    const T* data() const { return p_; }
    int64_t ld() const { return ld_; }  // row stride, in elements

private:
    const T* p_;
    int64_t ld_;
    Buffer<T> copy_;
};

// One tile of a step: rows [r0, r0 + m) of the batch, units [u0, u0 + nu) of block `block`.
struct StepItem {
    int64_t block, r0, u0;
    int m, nu;
};

// Runs fn(step, item) for every tile of `steps` steps on `team` threads, in one of two
// partitions. With enough rows per thread (ONNX Runtime's batch-parallel mode), each thread
// owns whole rows: their recurrence needs no other thread, so there is no barrier at all,
// and a thread that loses its core to another process delays only itself. But each thread
// then reads all of a step's weights (`weight_bytes`: the panels, or w_hh as stored) every
// step, so rows are split only while those fit in half a core's L2. Otherwise each
// thread owns whole unit blocks for all rows (its slice of the weights stays in its own
// cache) and one barrier per step publishes h. On 2 threads (Intel, 2 MiB L2) units
// against rows: LSTM inference H=256 (2 MiB of fused panels) B=16 -21%, B=64 -5%; H=512
// -6%; Elman H=512 (2 MiB) -7%; but Elman H=256 (512 KiB) +11-22%, LSTM H=128 (512 KiB)
// +13%, H=64 +19%, and the LSTM backward at H=256 (1 MiB) +3-4%. Either way every output
// element is computed by one tile in the same order, so the partition never changes a
// result.
// With `alternate`, odd steps walk a thread's tiles backwards: the weights last read at
// step t are the first read at step t+1, so they are still in L2 when the thread's slice
// of the weights is about the size of L2 (a cyclic walk evicts each line just before its
// reuse). Callers set it when the step streams w_hh as stored (B <= 2), where it cut
// B=1 T=100 H=256 from 2.30 to 1.81 ms on 1 thread; compute-bound packed steps keep
// the forward walk, which the prefetcher follows best (1-2% faster there). Tile order
// never changes a result: the tiles of one step are independent.
template <typename Fn>
void run_steps(int64_t steps, int64_t B, int64_t H, int mr, int64_t units,
               int64_t weight_bytes, int team, bool alternate, const Fn& fn) {
    constexpr int64_t kMinRowsPerThread = 4;
    const int64_t blocks = (H + units - 1) / units;
    auto tile = [&](int64_t step, int64_t block, int64_t r0, int64_t r1) {
        const int64_t u0 = block * units;
        const int nu = static_cast<int>(H - u0 < units ? H - u0 : units);
        fn(step, StepItem{block, r0, u0, static_cast<int>(r1 - r0 < mr ? r1 - r0 : mr), nu});
    };
    if (team > 1 && B >= kMinRowsPerThread * team && weight_bytes <= l2_cache_bytes() / 2) {
        parallel_steps(steps, team, team, /*barrier=*/false,
                       [&](int64_t step, int64_t g0, int64_t g1) {
                           for (int64_t g = g0; g < g1; ++g) {
                               const int64_t r0 = B * g / team, rows = B * (g + 1) / team - r0;
                               // Tiles of equal height (8 rows: 4 + 4, not 6 + 2; a 2-row
                               // tile does a third of the FMAs per load of a 6-row one).
                               const int64_t n = (rows + mr - 1) / mr;
                               for (int64_t j = 0; j < blocks; ++j) {
                                   const int64_t blk = alternate && step % 2 ? blocks - 1 - j : j;
                                   for (int64_t k = 0; k < n; ++k)
                                       tile(step, blk, r0 + rows * k / n, r0 + rows * (k + 1) / n);
                               }
                           }
                       });
        return;
    }
    // Block-major items, so a thread's contiguous range covers whole blocks.
    const int64_t row_tiles = (B + mr - 1) / mr;
    parallel_steps(steps, row_tiles * blocks, team, /*barrier=*/true,
                   [&](int64_t step, int64_t begin, int64_t end) {
                       for (int64_t j = begin; j < end; ++j) {
                           const int64_t i = alternate && step % 2 ? end - 1 - (j - begin) : j;
                           const int64_t k = i % row_tiles;  // equal heights, as above
                           tile(step, i / row_tiles, B * k / row_tiles, B * (k + 1) / row_tiles);
                       }
                   });
}

// Threads worth using for `steps` steps that cost `flops` each: a thread should get at
// least ~256k flops of each step (a barrier costs a microsecond or more, far more when
// another process holds a core), and a whole call under ~0.5 MFLOP stays on one thread.
// One step of B=1, H=256 (0.5 MFLOP, 1 MiB of w_hh) still splits: it is bound by how fast
// one core streams the weights, and two cores stream twice as much (B1 T1 with h0:
// 41 -> 23 us on 2 threads).
int step_threads(int64_t flops, int64_t steps, int threads);

}  // namespace fastrnn::core
