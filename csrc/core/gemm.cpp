// GEMM blocking driver: packs operands into the active micro-kernel's panels and walks
// the C tiles. Threads split C, never K, so every element is reduced in one fixed order.
#include "fastrnn/gemm.h"

#include <algorithm>
#include <cstring>

#include "fastrnn/dispatch.h"
#include "fastrnn/parallel.h"
#include "fastrnn/prefetch.h"
#include "fastrnn/workspace.h"

namespace fastrnn {

namespace {

// Measured on Zen 4 (AVX-512, 12x32 tile): KC 256 / MC 132 / NC 2048 was the best of the
// combinations tried (KC 128-512, MC 48-264, NC 512-2048) across square, tall and
// small-M shapes.
constexpr int64_t kKc = 256;   // K block: one packed B panel (KC x nr) stays near L1
constexpr int64_t kMc = 128;   // rows of A packed per block (rounded up to mr), in L2
constexpr int64_t kNc = 2048;  // columns of B packed per block (rounded up to nr)
constexpr int kMaxMr = 32;  // bound of a tile's rows (kernels: 3-12)
// A row-major B is read where it lies, not packed, when its rows lie at most
// kInPlaceMaxRowBytes apart and C has at most kInPlaceMaxM rows. Packing writes and rereads
// all of B, which repays itself only when many row tiles of A reuse each panel; rows far
// apart put a K block's lines of one panel into few cache sets. A/B of the backward on 1
// thread, in place against packed: LSTM B=256 T=50 H=64 (the weight gradients' dG rows 1
// KiB apart, M = 64) -4.5%, Elman B=64 T=100 H=256 (1 KiB, M = 256) -1.6%; but LSTM
// B=64 H=256 (4 KiB) +1-4%, LSTM H=512 (8 KiB) +7%, Elman H=512 (2 KiB, M = 512) +2%.
constexpr ptrdiff_t kInPlaceMaxRowBytes = 2048;
constexpr int64_t kInPlaceMaxM = 256;
// gemm_pair runs two products side by side only when the smaller holds at least this share
// of the larger's multiply-adds: otherwise one thread would idle through much of the pair.
constexpr double kPairBalance = 0.75;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// memcpy of `bytes`: a constant size compiles to a few vector moves, a run-time one is a
// libc call, which cost more than the copy itself for the 24-256 byte runs that packing
// copies (the panel widths of every kernel): memmove was a tenth of a small-H backward.
inline void copy_run(void* dst, const void* src, size_t bytes) {
    switch (bytes) {
        case 24: std::memcpy(dst, src, 24); return;
        case 32: std::memcpy(dst, src, 32); return;
        case 48: std::memcpy(dst, src, 48); return;
        case 64: std::memcpy(dst, src, 64); return;
        case 128: std::memcpy(dst, src, 128); return;
        case 256: std::memcpy(dst, src, 256); return;
        default: std::memcpy(dst, src, bytes);
    }
}

// A[r0 .. r0+m, k0 .. k0+kc] into ceil(m/mr) panels of kc x mr, zero rows past m. The
// loop runs along k outside so the writes are contiguous; the mr row streams are read in
// step (a strided-write transpose was a fifth of a tall GEMM's time).
template <typename T>
void pack_a(const ConstMat<T>& A, int64_t r0, int64_t m, int64_t k0, int64_t kc, int mr,
            T* dst) {
    const bool plain_cols = A.cols.inner > k0 + kc;  // one stride along k: no division
    const ptrdiff_t cs = A.cols.stride;
    if (A.rows.inner > r0 + m && A.rows.stride == 1) {
        // A stored transposed (x^T, h^T in the weight gradients): the m elements of one k
        // are contiguous. Walk k outside and copy the whole block's run for that k, so
        // each source row is visited once per block, not once per panel.
        const T* base = A.p + A.rows.at(r0);
        const auto run_at = [&](int64_t kk) {
            return base + (plain_cols ? (k0 + kk) * cs : A.cols.at(k0 + kk));
        };
        // The runs of x and h_seq batch-first lie a page or more apart, where the hardware
        // prefetcher does not follow: ask for the run kAhead ahead, into L1, since it is
        // copied kAhead runs later (batch-first backward, B=256 H=64: 3-5% faster on 1
        // thread; time-major, where the runs are adjacent, it costs a few instructions).
        constexpr int64_t kAhead = 8;
        for (int64_t kk = 0; kk < kc; ++kk) {
            const T* src = run_at(kk);
            if (kk + kAhead < kc) prefetch_lines<3>(run_at(kk + kAhead), m);
            for (int64_t p0 = 0; p0 < m; p0 += mr) {
                const int nrows = static_cast<int>(m - p0 < mr ? m - p0 : mr);
                T* d = dst + (p0 / mr) * kc * mr + kk * mr;
                copy_run(d, src + p0, static_cast<size_t>(nrows) * sizeof(T));
                for (int ii = nrows; ii < mr; ++ii) d[ii] = T(0);
            }
        }
        return;
    }
    const T* rows[kMaxMr];
    for (int64_t p0 = 0; p0 < m; p0 += mr, dst += kc * mr) {
        const int nrows = static_cast<int>(m - p0 < mr ? m - p0 : mr);
        for (int ii = 0; ii < nrows; ++ii) rows[ii] = A.p + A.rows.at(r0 + p0 + ii);
        for (int64_t kk = 0; kk < kc; ++kk) {
            T* d = dst + kk * mr;
            if (plain_cols) {
                const ptrdiff_t off = (k0 + kk) * cs;
                for (int ii = 0; ii < nrows; ++ii) d[ii] = rows[ii][off];
            } else {
                const ptrdiff_t off = A.cols.at(k0 + kk);
                for (int ii = 0; ii < nrows; ++ii) d[ii] = rows[ii][off];
            }
            for (int ii = nrows; ii < mr; ++ii) d[ii] = T(0);
        }
    }
}

// Panels [jp0, jp1) of B[k0 .. k0+kc, 0 .. n) into kc x nr panels at dst (panel jp at
// dst + (jp - jp0) * kc * nr), zero columns past n. Rows are walked outside: each row's
// run of the panels' columns is read once, in order. Walking one panel's strip down the
// rows instead read lines a row stride apart (4 KiB for dG at H = 256), across a page
// each time, which the prefetcher does not follow: packing dG took 4.6% of a B=16
// training call at 5 GB/s.
template <typename T>
void pack_b_panels(const ConstMat<T>& B, int64_t k0, int64_t kc, int64_t n,
                   int64_t jp0, int64_t jp1, int nr, T* dst) {
    const int64_t c_end = jp1 * nr < n ? jp1 * nr : n;
    const bool plain_cols = B.cols.inner >= c_end;  // one stride along n: no division
    const ptrdiff_t cs = B.cols.stride;
    for (int64_t kk = 0; kk < kc; ++kk) {
        const T* row = B.p + B.rows.at(k0 + kk);
        for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int64_t c0 = jp * nr;
            const int cols = static_cast<int>(n - c0 < nr ? n - c0 : nr);
            T* d = dst + (jp - jp0) * kc * nr + kk * nr;
            if (plain_cols && cs == 1) {
                // A copy: the element loop stayed scalar (the compiler could not rule out
                // overlap), which made packing dG a sixth of a small-H training call.
                copy_run(d, row + c0, static_cast<size_t>(cols) * sizeof(T));
            } else if (plain_cols) {
                const T* src = row + c0 * cs;
                for (int jj = 0; jj < cols; ++jj) d[jj] = src[jj * cs];
            } else {
                for (int jj = 0; jj < cols; ++jj) d[jj] = row[B.cols.at(c0 + jj)];
            }
            for (int jj = cols; jj < nr; ++jj) d[jj] = T(0);
        }
    }
}

template <typename T>
void scale(int64_t M, int64_t N, T beta, T* C, const Axis& c_rows) {
    for (int64_t i = 0; i < M; ++i) {
        T* c = C + c_rows.at(i);
        for (int64_t j = 0; j < N; ++j) c[j] = beta == T(0) ? T(0) : beta * c[j];
    }
}

// How the threads split C: p_n groups of B panels times p_m groups of A row tiles, one
// thread per (row group, panel group). Each thread packs its own copy of the B panels it
// uses (when B is packed) into its own cache lines, so no thread writes a packed line
// that another has read. Writing lines that the other core holds (shared, after both
// threads read the same packed B) ran at 6-8 GB/s against 40 for lines only this core
// held: packing dG took a sixth of a 2-thread LSTM backward. With p_m > 1 a panel group is
// packed p_m times, with p_n > 1 an A row group p_n times (unless read in place).
struct Grid {
    int64_t p_m = 1, p_n = 1;
};

// The split of `team` threads with the least work on its busiest thread: multiply-adds of
// its share of C per k, plus its packing at ten multiply-adds an element (packing ran at
// 7-40 GB/s, against ~50 G multiply-adds/s on one core).
Grid split_c(int64_t m_tiles, int mr, int64_t panels, int nr, bool pack_a, bool pack_b,
             int team) {
    Grid best;
    double best_cost = -1;
    for (int64_t p_n = 1; p_n <= team; ++p_n) {
        if (team % p_n != 0 || p_n > panels) continue;
        const int64_t p_m = team / p_n;
        if (p_m > m_tiles) continue;
        const double rows = static_cast<double>(ceil_div(m_tiles, p_m) * mr);
        const double cols = static_cast<double>(ceil_div(panels, p_n) * nr);
        const double cost = rows * cols + 10 * ((pack_b ? cols : 0) + (pack_a ? rows : 0));
        if (best_cost < 0 || cost < best_cost) {
            best = Grid{p_m, p_n};
            best_cost = cost;
        }
    }
    return best;
}

// One gemm() call planned for `threads` threads: the split of C, the blocking, and the
// packing buffers, allocated here, on the calling thread, before any parallel region.
template <typename T>
class GemmPlan {
public:
    GemmPlan(const GemmArgs<T>& g, int threads) : g_(g), kt_(kernel_table<T>()) {
        // A with unit stride along k is read in place (row pointers) instead of packed.
        direct_ = g.A.cols.inner >= g.K && g.A.cols.stride == 1;
        // B stored transposed (w_ih^T): unit stride along k, one stride along n.
        b_transposed_ = g.B.rows.inner >= g.K && g.B.rows.stride == 1 && g.B.cols.inner >= g.N;
        mr_ = direct_ ? kt_.gemm_direct_mr : kt_.gemm_mr;
        nr_ = direct_ ? kt_.gemm_direct_nr : kt_.gemm_nr;
        // B in place: a tile reads nr columns of each row, so N must be whole panels.
        const ptrdiff_t row_bytes = g.B.rows.stride * static_cast<ptrdiff_t>(sizeof(T));
        b_in_place_ = !direct_ && !b_transposed_ && g.B.cols.inner >= g.N &&
                      g.B.cols.stride == 1 && g.B.rows.inner >= g.K && g.N % nr_ == 0 &&
                      row_bytes > 0 && row_bytes <= kInPlaceMaxRowBytes &&
                      g.M <= kInPlaceMaxM;
        mc_ = ceil_div(kMc, mr_) * mr_;
        nc_panels_ = ceil_div(kNc, nr_);
        kc_max_ = g.K < kKc ? g.K : kKc;
        m_tiles_ = ceil_div(g.M, mr_);
        panels_ = ceil_div(g.N, nr_);

        if (threads < 1) threads = 1;  // 0 would leave no split of C to settle on below
        // Below ~1 MFLOP per thread (~10 us), waking a second thread costs more than it
        // saves. A floor of 2 MFLOP kept the 2.1 MFLOP GEMMs of Elman training at B=16,
        // T=1, H=256 on one thread: lowering it took that call from 93-104 to 74-85 us on
        // 2 threads (three A/Bs, every round faster), the shapes around it unchanged.
        int team = threads_for(m_tiles_ * panels_, 1, threads);
        team = std::min(team, threads_for(2 * g.M * g.N * g.K, int64_t(1) << 20, threads));
        grid_ = split_c(m_tiles_, mr_, panels_, nr_, !direct_, !b_in_place_, team);
        while (grid_.p_m * grid_.p_n != team)
            grid_ = split_c(m_tiles_, mr_, panels_, nr_, !direct_, !b_in_place_, --team);
        team_ = team;

        const int64_t part_panels = std::min(ceil_div(panels_, grid_.p_n), nc_panels_);
        // Each thread's slices start on a cache line of their own.
        constexpr int64_t kLine = 64 / sizeof(T);
        const auto whole_lines = [](int64_t n) { return ceil_div(n, kLine) * kLine; };
        b_size_ = b_in_place_ ? 0 : whole_lines(checked_mul(kc_max_, part_panels * nr_));
        a_size_ = direct_ ? 0 : whole_lines(checked_mul(mc_, kc_max_));
        b_pack_.reset(checked_mul(b_size_, team));
        a_pack_.reset(checked_mul(a_size_, team));
    }

    int team() const { return team_; }

    // Part `part` (< team()) computes C[r0 .. r1, panels jp_begin .. jp_end) with no other
    // part: no barrier between packing and the tiles, none between K blocks.
    void run(int64_t part) {
        const GemmArgs<T>& g = g_;
        const KernelTable<T>& kt = kt_;
        const ConstMat<T>& A = g.A;
        const ConstMat<T>& B = g.B;
        const int64_t M = g.M, N = g.N, K = g.K;
        const int mr = mr_, nr = nr_;
        const int64_t gm = part / grid_.p_n, gn = part % grid_.p_n;
        const int64_t r0 = std::min(M, m_tiles_ * gm / grid_.p_m * mr);
        const int64_t r1 = std::min(M, m_tiles_ * (gm + 1) / grid_.p_m * mr);
        const int64_t jp_begin = panels_ * gn / grid_.p_n;
        const int64_t jp_end = panels_ * (gn + 1) / grid_.p_n;
        T* bp = b_pack_.data() + part * b_size_;
        T* ap = direct_ ? nullptr : a_pack_.data() + part * a_size_;
        for (int64_t jb = jp_begin; jb < jp_end; jb += nc_panels_) {
            const int64_t je = std::min(jp_end, jb + nc_panels_);
            for (int64_t pc = 0; pc < K; pc += kc_max_) {
                const int64_t kc = K - pc < kc_max_ ? K - pc : kc_max_;
                const T beta_k = pc == 0 ? g.beta : T(1);  // later K blocks accumulate
                if (b_transposed_) {
                    for (int64_t jp = jb; jp < je; ++jp) {
                        const int64_t c0 = jp * nr;
                        const int cols = static_cast<int>(N - c0 < nr ? N - c0 : nr);
                        kt.pack_b_transposed(kc, cols, nr, B.p + c0 * B.cols.stride + pc,
                                             B.cols.stride, bp + (jp - jb) * kc * nr, nr);
                    }
                } else if (!b_in_place_) {
                    pack_b_panels(B, pc, kc, N, jb, je, nr, bp);
                }
                for (int64_t ic = r0; ic < r1; ic += mc_) {
                    const int64_t m = r1 - ic < mc_ ? r1 - ic : mc_;
                    if (!direct_) pack_a(A, ic, m, pc, kc, mr, ap);
                    for (int64_t jp = jb; jp < je; ++jp) {
                        const int n = static_cast<int>(N - jp * nr < nr ? N - jp * nr : nr);
                        const T* b = b_in_place_ ? B.p + pc * B.rows.stride + jp * nr
                                                 : bp + (jp - jb) * kc * nr;
                        const int64_t ldb = b_in_place_ ? B.rows.stride : nr;
                        for (int64_t ir = 0; ir < m; ir += mr) {
                            const int mm = static_cast<int>(m - ir < mr ? m - ir : mr);
                            T* c[kMaxMr];
                            for (int i = 0; i < mm; ++i)
                                c[i] = g.C + g.c_rows.at(ic + ir + i) + jp * nr;
                            if (direct_) {
                                const T* rows[kMaxMr];
                                for (int i = 0; i < mm; ++i)
                                    rows[i] = A.p + A.rows.at(ic + ir + i) + pc;
                                kt.gemm_tile_direct(kc, rows, b, c, beta_k, mm, n);
                            } else {
                                kt.gemm_tile(kc, ap + ir * kc, b, ldb, c, beta_k, mm, n);
                            }
                        }
                    }
                }
            }
        }
    }

private:
    GemmArgs<T> g_;
    const KernelTable<T>& kt_;
    bool direct_ = false, b_transposed_ = false, b_in_place_ = false;
    int mr_ = 0, nr_ = 0;
    int64_t mc_ = 0, nc_panels_ = 0, kc_max_ = 0, m_tiles_ = 0, panels_ = 0;
    Grid grid_;
    int team_ = 1;
    int64_t b_size_ = 0, a_size_ = 0;
    Buffer<T> b_pack_, a_pack_;
};

// Multiply-adds of a call, the cost gemm_pair balances.
template <typename T>
double madds(const GemmArgs<T>& g) {
    return static_cast<double>(g.M) * static_cast<double>(g.N) * static_cast<double>(g.K);
}

}  // namespace

template <typename T>
void gemm(const GemmArgs<T>& g, int threads) {
    if (g.M <= 0 || g.N <= 0) return;
    if (g.K <= 0) return scale(g.M, g.N, g.beta, g.C, g.c_rows);
    GemmPlan<T> plan(g, threads);
    parallel_for(plan.team(), plan.team(), [&](int64_t part) { plan.run(part); });
}

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, ConstMat<T> A, ConstMat<T> B, T beta, T* C,
          ptrdiff_t ldc, int threads) {
    gemm(GemmArgs<T>{M, N, K, A, B, beta, C, Axis::plain(ldc)}, threads);
}

template <typename T>
void gemm_pair(const GemmArgs<T>& g0, const GemmArgs<T>& g1, int threads) {
    const auto empty = [](const GemmArgs<T>& g) { return g.M <= 0 || g.N <= 0 || g.K <= 0; };
    const double m0 = madds(g0), m1 = madds(g1);
    // The floor of gemm()'s split: ~1 MFLOP (2^19 multiply-adds) per thread.
    const bool side_by_side = threads == 2 && !empty(g0) && !empty(g1) &&
                              std::min(m0, m1) >= kPairBalance * std::max(m0, m1) &&
                              m0 + m1 >= double(1 << 20);
    if (!side_by_side) {
        gemm(g0, threads);
        gemm(g1, threads);
        return;
    }
    GemmPlan<T> p0(g0, 1), p1(g1, 1);
    parallel_for(2, 2, [&](int64_t i) { (i == 0 ? p0 : p1).run(0); });
}

template void gemm<float>(int64_t, int64_t, int64_t, ConstMat<float>, ConstMat<float>, float,
                          float*, ptrdiff_t, int);
template void gemm<double>(int64_t, int64_t, int64_t, ConstMat<double>, ConstMat<double>, double,
                           double*, ptrdiff_t, int);
template void gemm<float>(const GemmArgs<float>&, int);
template void gemm<double>(const GemmArgs<double>&, int);
template void gemm_pair<float>(const GemmArgs<float>&, const GemmArgs<float>&, int);
template void gemm_pair<double>(const GemmArgs<double>&, const GemmArgs<double>&, int);

}  // namespace fastrnn
