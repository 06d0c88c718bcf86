// GEMM blocking driver: packs operands into the active micro-kernel's panels and walks
// the C tiles. Threads split C, never K, so every element is reduced in one fixed order.
#include "fastrnn/gemm.h"

#include <algorithm>
#include <cstring>

#include "fastrnn/dispatch.h"
#include "fastrnn/parallel.h"
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
        for (int64_t kk = 0; kk < kc; ++kk) {
            const T* src = base + (plain_cols ? (k0 + kk) * cs : A.cols.at(k0 + kk));
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

// Panels [jp0, jp1) of B[k0 .. k0+kc, jc .. n) into kc x nr panels at dst (panel jp at
// dst + (jp - jp0) * kc * nr), zero columns past n. Rows are walked outside: each row's
// run of the panels' columns is read once, in order. Walking one panel's strip down the
// rows instead read lines a row stride apart (4 KiB for dG at H = 256), across a page
// each time, which the prefetcher does not follow: packing dG took 4.6% of a B=16
// training call at 5 GB/s.
template <typename T>
void pack_b_panels(const ConstMat<T>& B, int64_t k0, int64_t kc, int64_t jc, int64_t n,
                   int64_t jp0, int64_t jp1, int nr, T* dst) {
    const int64_t c_end = jc + jp1 * nr < n ? jc + jp1 * nr : n;
    const bool plain_cols = B.cols.inner >= c_end;  // one stride along n: no division
    const ptrdiff_t cs = B.cols.stride;
    for (int64_t kk = 0; kk < kc; ++kk) {
        const T* row = B.p + B.rows.at(k0 + kk);
        for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int64_t c0 = jc + jp * nr;
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

}  // namespace

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, ConstMat<T> A, ConstMat<T> B, T beta, T* C,
          ptrdiff_t ldc, int threads) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) return scale(M, N, beta, C, ldc);
    const KernelTable<T>& kt = kernel_table<T>();
    // A with unit stride along k is read in place (row pointers) instead of packed.
    const bool direct = A.cols.inner >= K && A.cols.stride == 1;
    const int mr = direct ? kt.gemm_direct_mr : kt.gemm_mr;
    const int nr = direct ? kt.gemm_direct_nr : kt.gemm_nr;
    const int64_t mc = ceil_div(kMc, mr) * mr;
    const int64_t nc_max = ceil_div(kNc, nr) * nr;
    const int64_t kc_max = K < kKc ? K : kKc;
    const int64_t m_blocks = ceil_div(M, mc);
    // Work items are (A block, slice of B panels). With fewer A blocks than threads, the
    // B panels are split too; each item packs its own copy of its A block.
    const int64_t n_panels_max = ceil_div(N < nc_max ? N : nc_max, nr);
    int64_t n_split = 1;
    if (m_blocks < threads) n_split = std::min<int64_t>(n_panels_max, ceil_div(2 * threads, m_blocks));
    threads = threads_for(m_blocks * n_split, 1, threads);
    // Below ~2 MFLOP per thread (~20 us), waking a second thread costs more than it saves.
    threads = std::min(threads, threads_for(2 * M * N * K, int64_t(1) << 21, threads));

    Buffer<T> b_pack(checked_mul(kc_max, n_panels_max * nr));
    Buffer<T> a_pack(direct ? 0 : checked_mul(checked_mul(threads, mc), kc_max));

    for (int64_t jc = 0; jc < N; jc += nc_max) {
        const int64_t nc = N - jc < nc_max ? N - jc : nc_max;
        const int64_t n_panels = ceil_div(nc, nr);
        for (int64_t pc = 0; pc < K; pc += kc_max) {
            const int64_t kc = K - pc < kc_max ? K - pc : kc_max;
            const T beta_k = pc == 0 ? beta : T(1);  // later K blocks accumulate
            T* bp = b_pack.data();
            // B stored transposed (w_ih^T): unit stride along k, one stride along n.
            const bool b_transposed = B.rows.inner >= K && B.rows.stride == 1 &&
                                      B.cols.inner >= N;
            if (b_transposed) {
                parallel_for(n_panels, threads, [&](int64_t jp) {
                    const int64_t c0 = jc + jp * nr;
                    const int cols = static_cast<int>(jc + nc - c0 < nr ? jc + nc - c0 : nr);
                    kt.pack_b_transposed(kc, cols, nr, B.p + c0 * B.cols.stride + pc,
                                         B.cols.stride, bp + jp * kc * nr, nr);
                });
            } else {
                // Each thread packs one contiguous range of panels, row by row.
                const int team = static_cast<int>(std::min<int64_t>(threads, n_panels));
                parallel_for(team, team, [&](int64_t part) {
                    const int64_t jp0 = n_panels * part / team;
                    const int64_t jp1 = n_panels * (part + 1) / team;
                    pack_b_panels(B, pc, kc, jc, jc + nc, jp0, jp1, nr, bp + jp0 * kc * nr);
                });
            }
            parallel_for(m_blocks * n_split, threads, [&](int64_t item) {
                const int64_t ib = item / n_split, js = item % n_split;
                const int64_t ic = ib * mc;
                const int64_t m = M - ic < mc ? M - ic : mc;
                const int64_t jp0 = n_panels * js / n_split, jp1 = n_panels * (js + 1) / n_split;
                if (jp0 == jp1) return;
                T* ap = nullptr;
                if (!direct) {
                    ap = a_pack.data() + thread_id() * mc * kc_max;
                    pack_a(A, ic, m, pc, kc, mr, ap);
                }
                for (int64_t jp = jp0; jp < jp1; ++jp) {
                    const int n = static_cast<int>(nc - jp * nr < nr ? nc - jp * nr : nr);
                    for (int64_t ir = 0; ir < m; ir += mr) {
                        const int mm = static_cast<int>(m - ir < mr ? m - ir : mr);
                        T* c = C + (ic + ir) * ldc + jc + jp * nr;
                        if (direct) {
                            const T* rows[kMaxDirectMr];
                            for (int i = 0; i < mm; ++i) rows[i] = A.p + A.rows.at(ic + ir + i) + pc;
                            kt.gemm_tile_direct(kc, rows, bp + jp * kc * nr, c, ldc, beta_k, mm, n);
                        } else {
                            kt.gemm_tile(kc, ap + ir * kc, bp + jp * kc * nr, c, ldc, beta_k, mm, n);
                        }
                    }
                }
            });
        }
    }
}

template void gemm<float>(int64_t, int64_t, int64_t, ConstMat<float>, ConstMat<float>, float,
                          float*, ptrdiff_t, int);
template void gemm<double>(int64_t, int64_t, int64_t, ConstMat<double>, ConstMat<double>, double,
                           double*, ptrdiff_t, int);

}  // namespace fastrnn
