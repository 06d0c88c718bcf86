// The recurrent product shared by the fused step kernels: an R x (4 vectors) tile of
// a * panel in registers (or dot products along the rows of w as stored, which the GEMV
// of gemv.cpp shares), and the dispatch from a run-time row count to the compiled R.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#include "fastrnn/prefetch.h"
#include "simd.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

// Rows of a step tile. The tile keeps 4*R accumulators: R = 6 leaves AVX-512 room for the
// four panel loads and a broadcast in its 32 registers; 16-register ISAs take R = 3 and
// fold the panel loads into the FMAs.
#if defined(FASTRNN_ISA_AVX512)
constexpr int kStepMr = 6;
#else
constexpr int kStepMr = 3;
#endif

// Asks for the cache lines of p[0 .. n) in L2 before the product loop of a step tile,
// which takes long enough to bring them in. The epilogue after it touches rows that no
// cache holds: the activations, states and gradients of a step are written (forward) or
// read (backward) once each, and the product streams the panel through L1 meanwhile.
// LSTM training, B=256 H=64: 10% faster per call on 1 thread; prefetching into L1 instead
// was 2-10% slower.
template <typename T>
FASTRNN_INLINE void prefetch_l2(const T* p, int n) {
    prefetch_lines<2>(p, n);
}

// Lanes of unit vector q that lie inside the block's nu valid units.
inline int lanes_in(int nu, int q, int L) {
    const int n = nu - q * L;
    return n < 0 ? 0 : (n > L ? L : n);
}

// Pairwise folding of per-row dot-product accumulators into one vector of row sums.
// A vector in "S-segments" form holds L/S segments of S lanes, segment j a partial sum
// of row j: lanes carry equal weight, so the row's dot product is the sum of its segment.
// fold_pair(p, q) halves the segments of both (adding each segment's upper half to its
// lower half) and packs p's halves before q's: 2L/S segments of S/2 lanes. log2(L)
// levels of it turn L accumulators into one vector of L row sums, in (L-1) * 3
// instructions, instead of a log2(L)-step sum and a scalar store per row.
template <typename T, int S>
struct FoldIndex {
    static constexpr int L = Simd<T>::lanes;
    // Source lane (0..2L-1 over p then q) of output lane n, from the upper half if hi.
    static constexpr int at(int n, bool hi) {
        const int half = S / 2, seg = n / half, off = n % half, p_segs = L / S;
        const int base = seg < p_segs ? seg * S : L + (seg - p_segs) * S;
        return base + off + (hi ? half : 0);
    }
};

template <typename T, int S, size_t... I>
FASTRNN_INLINE typename Simd<T>::V fold_pair(typename Simd<T>::V p, typename Simd<T>::V q,
                                             std::index_sequence<I...>) {
    using F = FoldIndex<T, S>;
#if defined(__clang__)
    return __builtin_shufflevector(p, q, F::at(I, false)...) +
           __builtin_shufflevector(p, q, F::at(I, true)...);
#else
    using Idx = typename Simd<T>::Idx;
    using E = typename Simd<T>::IdxElem;
    return __builtin_shuffle(p, q, Idx{static_cast<E>(F::at(I, false))...}) +
           __builtin_shuffle(p, q, Idx{static_cast<E>(F::at(I, true))...});
#endif
}

template <typename T, int S>
FASTRNN_INLINE typename Simd<T>::V fold_pair(typename Simd<T>::V p, typename Simd<T>::V q) {
    return fold_pair<T, S>(p, q, std::make_index_sequence<Simd<T>::lanes>{});
}

// The G x R accumulators of a group of dot products, folded to (L/G)-segments form.
template <typename T, int R, int G>
FASTRNN_INLINE void fold_group(typename Simd<T>::V (&acc)[G][R], typename Simd<T>::V (&out)[R]) {
    constexpr int L = Simd<T>::lanes;
    for (int b = 0; b < R; ++b) {
        if constexpr (G == 2) {
            out[b] = fold_pair<T, L>(acc[0][b], acc[1][b]);
        } else {
            static_assert(G == 4, "groups of two or four rows");
            out[b] = fold_pair<T, L / 2>(fold_pair<T, L>(acc[0][b], acc[1][b]),
                                        fold_pair<T, L>(acc[2][b], acc[3][b]));
        }
    }
}

// Dot products of G rows of w (rows[r], r < G) with the R rows of a ([R, K], stride
// lda), folded to (L/G)-segments form (see fold_pair): out[b].
template <typename T, int R, int G>
FASTRNN_INLINE void dot_group(int64_t K, const T* a, int64_t lda, const T* const* rows,
                              typename Simd<T>::V (&out)[R]) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    V acc[G][R];
    for (int r = 0; r < G; ++r)
        for (int b = 0; b < R; ++b) acc[r][b] = V{};
    int64_t k = 0;
    for (; k + L <= K; k += L) {
        V av[R];
        for (int b = 0; b < R; ++b) av[b] = load(a + b * lda + k);
        for (int r = 0; r < G; ++r) {
            V wv = load(rows[r] + k);
            in_register(wv);
            for (int b = 0; b < R; ++b) acc[r][b] = fma(wv, av[b], acc[r][b]);
        }
    }
    if (k < K) {
        const int n = static_cast<int>(K - k);
        V av[R];
        for (int b = 0; b < R; ++b) av[b] = load_n(a + b * lda + k, n);
        for (int r = 0; r < G; ++r) {
            const V wv = load_n(rows[r] + k, n);
            for (int b = 0; b < R; ++b) acc[r][b] = fma(wv, av[b], acc[r][b]);
        }
    }
    fold_group<T, R, G>(acc, out);
}

// Weight rows that all start m elements past a vector boundary (w off a 64-byte line),
// read as they are, make every vector load span two cache lines: the B=1 GEMV over 1 MiB
// of w_ih took 12.5 us with w 16 bytes past a line against 10.5 on one. ShiftedA holds
// the rows of a moved m elements along k and zero-padded to whole vectors, so that
// dot_group_shifted reads each weight row with aligned loads from the boundary before
// it, masked at its two ends. Lane (l + m) % L then sums, in the same order, what lane l
// of dot_group's read sums (plus zero terms, which change no sum). The fold adds lane i
// to lane i + S/2 at every level, which a cyclic rotation of the lanes maps onto the same
// pairs, so each row's dot product is the same additions of the same numbers: the same
// bits wherever w starts, for every result but a NaN. (Some pairs come with their
// operands swapped, and of two NaNs x86 keeps the first: a NaN's sign and payload may
// move with w, as they may with the compiler, which is free to swap them anyway.
// Rotating the accumulators back first fixed that on AVX2 and AVX-512, not on SSE2.)
// It serves weights read once or a few times: the GEMV's w_ih, and w_hh in calls of
// fewer steps than core::StoredRows needs to repay copying w_hh onto lines.
template <typename T>
struct ShiftedA {
    int m = 0;              // 0: dot_group reads the rows as they are
    int tail = 0;           // lanes of a row's last vector that hold elements
    int64_t nvec = 0;       // vectors per row from its boundary: ceil((K + m) / L)
    const T* a = nullptr;   // row b at a + b * nvec * L: a[b, k] at m + k, zeros around
};

// Bytes of the caller's buffer for ShiftedA::a, on its stack: a step loop may not allocate.
constexpr int64_t kShiftBytes = 16384;

// Elements past a vector boundary at which the weight rows w + n * ldw start, when all
// start there and dot_group_shifted pays and fits for R rows of length K; else 0. It pays
// where streaming w bounds the product, at R <= 2 (LSTM H=256 on 1 thread, w 16 bytes
// past a line: T=1 17.1 -> 14.9 us, T=1 with h0 37.9 -> 32.0, B=2 T=4 134 -> 116); at
// R = 6 it ran out of registers and spilled (B=16 T=1: 101 -> 157 us), while w read as
// it is costs less there, each vector serving R rows.
template <typename T>
inline int row_shift(const T* w, int64_t ldw, int64_t K, int R) {
    constexpr int L = Simd<T>::lanes;
    const auto addr = reinterpret_cast<uintptr_t>(w);
    if (R > 2 || addr % kVecBytes == 0 || addr % sizeof(T) != 0 ||
        ldw * sizeof(T) % kVecBytes != 0 || K < 2 * L)
        return 0;
    const int m = static_cast<int>(addr % kVecBytes / sizeof(T));
    const int64_t nvec = (K + m + L - 1) / L;
    return R * nvec * L * static_cast<int64_t>(sizeof(T)) <= kShiftBytes ? m : 0;
}

// The ShiftedA of a ([R, K], row stride lda) for a row_shift m > 0, in buf (kShiftBytes,
// vector-aligned).
template <typename T>
inline ShiftedA<T> shift_a(int m, int64_t K, int R, const T* a, int64_t lda, T* buf) {
    constexpr int L = Simd<T>::lanes;
    const int64_t nvec = (K + m + L - 1) / L;
    for (int b = 0; b < R; ++b) {
        T* row = buf + b * nvec * L;
        for (int i = 0; i < m; ++i) row[i] = T(0);
        std::memcpy(row + m, a + b * lda, static_cast<size_t>(K) * sizeof(T));
        for (int64_t i = m + K; i < nvec * L; ++i) row[i] = T(0);
    }
    ShiftedA<T> sa;
    sa.m = m;
    sa.tail = static_cast<int>(K + m - (nvec - 1) * L);
    sa.nvec = nvec;
    sa.a = buf;
    return sa;
}

// dot_group for weight rows m = sa.m elements past a vector boundary (ShiftedA).
template <typename T, int R, int G>
FASTRNN_INLINE void dot_group_shifted(const ShiftedA<T>& sa, const T* const* rows,
                                      typename Simd<T>::V (&out)[R]) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    const int64_t stride = sa.nvec * L, last = sa.nvec - 1;
    const T* w[G];
    V acc[G][R];
    for (int r = 0; r < G; ++r) {
        w[r] = rows[r] - sa.m;
        for (int b = 0; b < R; ++b) acc[r][b] = V{};
    }
    auto step = [&](int64_t v, int lo, int hi) {
        V av[R];
        for (int b = 0; b < R; ++b) av[b] = load(sa.a + b * stride + v * L);
        for (int r = 0; r < G; ++r) {
            V wv = lo == 0 && hi == L ? load(w[r] + v * L) : load_lanes(w[r] + v * L, lo, hi);
            in_register(wv);
            for (int b = 0; b < R; ++b) acc[r][b] = fma(wv, av[b], acc[r][b]);
        }
    };
    step(0, sa.m, L);  // nvec >= 2 (row_shift wants K >= 2L)
    for (int64_t v = 1; v < last; ++v) step(v, 0, L);
    step(last, 0, sa.tail);
    fold_group<T, R, G>(acc, out);
}

// Folds N vectors part[0..N) in S-segments form into one in (S/N)-segments form, pairwise.
template <typename T, int N, int S>
FASTRNN_INLINE typename Simd<T>::V fold_parts(const typename Simd<T>::V* part) {
    if constexpr (N == 1) {
        return part[0];
    } else {
        return fold_pair<T, 2 * S / N>(fold_parts<T, N / 2, S>(part),
                                       fold_parts<T, N / 2, S>(part + N / 2));
    }
}

// out[b][l] = sum_k a[b, k] * rows[l][k] for the L rows of w at rows[l] (the GEMV shape
// of a few rows of a against w as stored). Groups of up to four rows stream their
// contiguous weights together (more concurrent streams outrun the prefetcher). A group's
// folded sums wait in `part` while the next group runs, so only the group's own
// accumulators need registers in its loop (R = 6 rows of a keep 24 of them).
// With kShifted the rows are read from their vector boundaries, through sa (ShiftedA).
template <typename T, int R, bool kShifted = false>
inline void row_dots(int64_t K, const T* a, int64_t lda, const T* const* rows,
                     typename Simd<T>::V (&out)[R], const ShiftedA<T>* sa = nullptr) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    constexpr int G = L < 4 ? L : 4;
    V part[R][L / G];
    for (int g = 0; g < L / G; ++g) {
        V o[R];
        if constexpr (kShifted)
            dot_group_shifted<T, R, G>(*sa, rows + g * G, o);
        else
            dot_group<T, R, G>(K, a, lda, rows + g * G, o);
        for (int b = 0; b < R; ++b) part[b][g] = o[b];
    }
    for (int b = 0; b < R; ++b) out[b] = fold_parts<T, L / G, L / G>(part[b]);
}

// The product of step_product from w_hh as stored (s.w, rows of length K, stride ldw):
// lane l of acc[i][q] is unit q*w_units_per_q + l, weight row q*w_gate_stride + l. Rows
// of units past nu are never read (lanes past them repeat the last valid row). No
// packing, so a short call pays nothing up front.
template <typename T, int R, bool kShifted>
inline void natural_product_rows(const StepTile<T>& s, typename Simd<T>::V (&acc)[R][4],
                                 const ShiftedA<T>* sa) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    for (int q = 0; q < 4; ++q) {
        int valid = s.nu - q * s.w_units_per_q;  // lanes of acc[.][q] that hold units
        valid = valid < 0 ? 0 : (valid > L ? L : valid);
        if (valid == 0) {
            for (int b = 0; b < R; ++b) acc[b][q] = V{};
            continue;
        }
        const T* rows[L];
        for (int l = 0; l < L; ++l)
            rows[l] = s.w + (q * s.w_gate_stride + (l < valid ? l : valid - 1)) * s.ldw;
        V out[R];
        row_dots<T, R, kShifted>(s.K, s.a, s.lda, rows, out, sa);
        for (int b = 0; b < R; ++b) acc[b][q] = out[b];
    }
}

// Out of line: only a step that shifts pays for the buffer's stack frame (gemv.cpp).
template <typename T, int R>
__attribute__((noinline)) void natural_product_shifted(int m, const StepTile<T>& s,
                                                       typename Simd<T>::V (&acc)[R][4]) {
    alignas(64) T buf[kShiftBytes / sizeof(T)];
    const ShiftedA<T> sa = shift_a(m, s.K, R, s.a, s.lda, buf);
    natural_product_rows<T, R, true>(s, acc, &sa);
}

template <typename T, int R>
inline void natural_product(const StepTile<T>& s, typename Simd<T>::V (&acc)[R][4]) {
    if (const int m = row_shift(s.w, s.ldw, s.K, R)) return natural_product_shifted(m, s, acc);
    natural_product_rows<T, R, false>(s, acc, nullptr);
}

// acc[i][q] += sum_k a[i, k] * panel[k, q*L .. q*L + L) over K panel rows ldb apart.
// A panel of K = I + H rows (128 KiB at I = H = 256) outgrows L1 and every row tile
// streams it from L2 again. With two full-width FMA ports (Intel, AVX-512) a row's 256
// bytes are due every 12 cycles, faster than the hardware prefetcher brings them: asking
// for the row kPanelAhead rows ahead, into L1, made H=256 calls faster on 1 thread (A/B
// of two builds): LSTM inference B=16 -6%, B=64 -1%, its backward -2.4%, Elman -2.4%.
// 4 and 16 rows ahead were within noise of 8.
template <typename T, int R>
FASTRNN_INLINE void panel_product(int64_t K, const T* a, int64_t lda, const T* b, int64_t ldb,
                                  typename Simd<T>::V (&acc)[R][4]) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    constexpr int64_t kPanelAhead = 8;
    for (int64_t k = 0; k < K; ++k, b += ldb) {
        // Lines past the panel's end are only asked for, never read.
        const char* ahead = reinterpret_cast<const char*>(b + kPanelAhead * ldb);
        for (int j = 0; j < 4 * L * static_cast<int>(sizeof(T)); j += 64)
            __builtin_prefetch(ahead + j, 0, 3);
        const V b0 = load(b), b1 = load(b + L), b2 = load(b + 2 * L), b3 = load(b + 3 * L);
        for (int i = 0; i < R; ++i) {
            const V ai = splat(a[i * lda + k]);
            acc[i][0] = fma(ai, b0, acc[i][0]);
            acc[i][1] = fma(ai, b1, acc[i][1]);
            acc[i][2] = fma(ai, b2, acc[i][2]);
            acc[i][3] = fma(ai, b3, acc[i][3]);
        }
    }
}

// The tile's product into acc[i][q]: x * (w_ih rows of the panel) when s.x is set, plus
// a * (w_hh rows), from packed panels or from w_hh as stored (natural_product). With
// neither x nor a, acc starts from acc_init (or zeros).
template <typename T, int R>
inline void step_product(const StepTile<T>& s, typename Simd<T>::V (&acc)[R][4]) {
    using V = typename Simd<T>::V;
    constexpr int L = Simd<T>::lanes;
    if (!s.a && !s.x) {
        for (int i = 0; i < R; ++i)
            for (int q = 0; q < 4; ++q) {
                const int n = lanes_in(s.nu, q, L);
                acc[i][q] = s.acc_init ? load_n(s.acc_init + i * s.ld_acc_init + q * L, n) : V{};
            }
        return;
    }
    if (!s.panel) return natural_product<T, R>(s, acc);
    for (int i = 0; i < R; ++i)
        for (int q = 0; q < 4; ++q) acc[i][q] = V{};
    const int64_t ldp = s.ldp ? s.ldp : 4 * L;
    if (s.x) panel_product<T, R>(s.Kx, s.x, s.ldx, s.panel, ldp, acc);
    if (s.a) panel_product<T, R>(s.K, s.a, s.lda, s.panel + s.Kx * ldp, ldp, acc);
}

// Calls Tile<R>::run(s) for R = s.m, from a table built at compile time.
template <template <int> class Tile, typename T, int... R>
inline void dispatch_rows(const StepTile<T>& s, std::integer_sequence<int, R...>) {
    using Fn = void (*)(const StepTile<T>&);
    static constexpr Fn table[] = {&Tile<R + 1>::run...};
    table[s.m - 1](s);
}

template <template <int> class Tile, typename T>
inline void run_tile(const StepTile<T>& s) {
    dispatch_rows<Tile>(s, std::make_integer_sequence<int, kStepMr>{});
}

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
