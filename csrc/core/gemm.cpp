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
constexpr int kMaxDirectMr = 16;  // bound of the direct tile's rows (kernels: 3 or 6)

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
    constexpr int kMaxMr = 32;
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
void scale(int64_t M, int64_t N, T beta, T* C, ptrdiff_t ldc) {
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

// How the threads split C: p_n groups of B panels times p_m groups of A row tiles, one
// thread per (row group, panel group). Each thread packs its own copy of the B panels it
// uses into its own cache lines, so no thread writes a packed line that another has read.
// Writing lines that the other core holds (shared, after both threads read the same
// packed B) ran at 6-8 GB/s against 40 for lines only this core held: packing dG took a
// sixth of a 2-thread LSTM backward. With p_m > 1 a panel group is packed p_m times, with
// p_n > 1 an A row group p_n times (unless A is read in place).
struct Grid {
    int64_t p_m = 1, p_n = 1;
};

// The split of `team` threads with the least work on its busiest thread: multiply-adds of
// its share of C per k, plus its packing at ten multiply-adds an element (packing ran at
// 7-40 GB/s, against ~50 G multiply-adds/s on one core).
Grid split_c(int64_t m_tiles, int mr, int64_t panels, int nr, bool direct, int team) {
    Grid best;
    double best_cost = -1;
    for (int64_t p_n = 1; p_n <= team; ++p_n) {
        if (team % p_n != 0 || p_n > panels) continue;
        const int64_t p_m = team / p_n;
        if (p_m > m_tiles) continue;
        const double rows = static_cast<double>(ceil_div(m_tiles, p_m) * mr);
        const double cols = static_cast<double>(ceil_div(panels, p_n) * nr);
        const double cost = rows * cols + 10 * (cols + (direct ? 0 : rows));
        if (best_cost < 0 || cost < best_cost) {
            best = Grid{p_m, p_n};
            best_cost = cost;
        }
    }
    return best;
}

}  // namespace

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, ConstMat<T> A, ConstMat<T> B, T beta, T* C,
          ptrdiff_t ldc, int threads) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) return scale(M, N, beta, C, ldc);
    const KernelTable<T>& kt = kernel_table<T>();
    // A with unit stride along k is read in place (row pointers) instead of packed.
    const bool direct = A.cols.inner >= K && A.cols.stride == 1;
    // B stored transposed (w_ih^T): unit stride along k, one stride along n.
    const bool b_transposed = B.rows.inner >= K && B.rows.stride == 1 && B.cols.inner >= N;
    const int mr = direct ? kt.gemm_direct_mr : kt.gemm_mr;
    const int nr = direct ? kt.gemm_direct_nr : kt.gemm_nr;
    const int64_t mc = ceil_div(kMc, mr) * mr;
    const int64_t nc_panels = ceil_div(kNc, nr);
    const int64_t kc_max = K < kKc ? K : kKc;
    const int64_t m_tiles = ceil_div(M, mr), panels = ceil_div(N, nr);

    if (threads < 1) threads = 1;  // 0 would leave no split of C to settle on below
    // Below ~1 MFLOP per thread (~10 us), waking a second thread costs more than it
    // saves. A floor of 2 MFLOP kept the 2.1 MFLOP GEMMs of Elman training at B=16, T=1,
    // H=256 on one thread: lowering it took that call from 93-104 to 74-85 us on 2
    // threads (three A/Bs, every round faster), the shapes around it unchanged.
    int team = threads_for(m_tiles * panels, 1, threads);
    team = std::min(team, threads_for(2 * M * N * K, int64_t(1) << 20, threads));
    Grid grid = split_c(m_tiles, mr, panels, nr, direct, team);
    while (grid.p_m * grid.p_n != team) grid = split_c(m_tiles, mr, panels, nr, direct, --team);

    const int64_t part_panels = std::min(ceil_div(panels, grid.p_n), nc_panels);
    // Each thread's slices start on a cache line of their own.
    constexpr int64_t kLine = 64 / sizeof(T);
    const auto whole_lines = [](int64_t n) { return ceil_div(n, kLine) * kLine; };
    const int64_t b_size = whole_lines(checked_mul(kc_max, part_panels * nr));
    const int64_t a_size = direct ? 0 : whole_lines(checked_mul(mc, kc_max));
    Buffer<T> b_pack(checked_mul(b_size, team));
    Buffer<T> a_pack(checked_mul(a_size, team));

    // Thread `part` computes C[r0 .. r1, panels jp_begin .. jp_end) with no other thread:
    // no barrier between packing and the tiles, none between K blocks.
    parallel_for(team, team, [&](int64_t part) {
        const int64_t gm = part / grid.p_n, gn = part % grid.p_n;
        const int64_t r0 = std::min(M, m_tiles * gm / grid.p_m * mr);
        const int64_t r1 = std::min(M, m_tiles * (gm + 1) / grid.p_m * mr);
        const int64_t jp_begin = panels * gn / grid.p_n, jp_end = panels * (gn + 1) / grid.p_n;
        T* bp = b_pack.data() + part * b_size;
        T* ap = direct ? nullptr : a_pack.data() + part * a_size;
        for (int64_t jb = jp_begin; jb < jp_end; jb += nc_panels) {
            const int64_t je = std::min(jp_end, jb + nc_panels);
            for (int64_t pc = 0; pc < K; pc += kc_max) {
                const int64_t kc = K - pc < kc_max ? K - pc : kc_max;
                const T beta_k = pc == 0 ? beta : T(1);  // later K blocks accumulate
                if (b_transposed) {
                    for (int64_t jp = jb; jp < je; ++jp) {
                        const int64_t c0 = jp * nr;
                        const int cols = static_cast<int>(N - c0 < nr ? N - c0 : nr);
                        kt.pack_b_transposed(kc, cols, nr, B.p + c0 * B.cols.stride + pc,
                                             B.cols.stride, bp + (jp - jb) * kc * nr, nr);
                    }
                } else {
                    pack_b_panels(B, pc, kc, N, jb, je, nr, bp);
                }
                for (int64_t ic = r0; ic < r1; ic += mc) {
                    const int64_t m = r1 - ic < mc ? r1 - ic : mc;
                    if (!direct) pack_a(A, ic, m, pc, kc, mr, ap);
                    for (int64_t jp = jb; jp < je; ++jp) {
                        const int n = static_cast<int>(N - jp * nr < nr ? N - jp * nr : nr);
                        const T* b = bp + (jp - jb) * kc * nr;
                        for (int64_t ir = 0; ir < m; ir += mr) {
                            const int mm = static_cast<int>(m - ir < mr ? m - ir : mr);
                            T* c = C + (ic + ir) * ldc + jp * nr;
                            if (direct) {
                                const T* rows[kMaxDirectMr];
                                for (int i = 0; i < mm; ++i)
                                    rows[i] = A.p + A.rows.at(ic + ir + i) + pc;
                                kt.gemm_tile_direct(kc, rows, b, c, ldc, beta_k, mm, n);
                            } else {
                                kt.gemm_tile(kc, ap + ir * kc, b, c, ldc, beta_k, mm, n);
                            }
                        }
                    }
                }
            }
        }
    });
}

template void gemm<float>(int64_t, int64_t, int64_t, ConstMat<float>, ConstMat<float>, float,
                          float*, ptrdiff_t, int);
template void gemm<double>(int64_t, int64_t, int64_t, ConstMat<double>, ConstMat<double>, double,
                           double*, ptrdiff_t, int);

}  // namespace fastrnn
