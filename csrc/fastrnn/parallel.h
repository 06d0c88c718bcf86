// The only OpenMP helper: thread-count policy and a static parallel-for that degrades to
// a plain loop when the build has no OpenMP.
#pragma once

#include <cstdint>

#include "fastrnn/fpmode.h"

#ifdef FASTRNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastrnn {

// Threads the next call may use: the count set by set_num_threads(), or, when that is 0,
// the calling thread's OpenMP default (so OMP_NUM_THREADS and threadpoolctl apply).
int max_threads();
void set_max_threads(int n);  // n >= 0; 0 restores the OpenMP default
bool have_openmp();
// True in a child of fork(): max_threads() is then 1 (see parallel.cpp).
bool in_forked_child();

// Threads worth using for `work` units when one thread should get at least `min_work`.
inline int threads_for(int64_t work, int64_t min_work, int requested) {
    int64_t useful = min_work > 0 ? work / min_work : work;
    if (useful < 1) useful = 1;
    return useful < requested ? static_cast<int>(useful) : requested;
}

// Calls fn(i) for i in [0, n), split statically over `threads` threads: each index is
// handled by exactly one thread, so results never depend on the thread count as long as
// fn(i) writes only its own outputs. fn must not throw. Workers flush denormals, like the
// calling thread inside a core entry point.
template <typename Fn>
void parallel_for(int64_t n, int threads, const Fn& fn) {
#ifdef FASTRNN_HAVE_OPENMP
    if (threads > 1 && n > 1) {
#pragma omp parallel num_threads(threads)
        {
            FlushDenormals ftz;  // each worker has its own FP mode
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; ++i) fn(i);
        }
        return;
    }
#endif
    (void)threads;
    for (int64_t i = 0; i < n; ++i) fn(i);
}

// The persistent region of a recurrence: one team of threads for all `steps`. Thread k of
// n always gets the same contiguous range of the `items` and calls fn(step, begin, end).
// With `barrier`, all threads finish a step before any starts the next (items depend on
// the whole previous step); without it, each thread runs its steps on its own (its items
// depend only on themselves). With one step it is a parallel for over contiguous ranges.
// fn must not throw.
template <typename Fn>
void parallel_steps(int64_t steps, int64_t items, int threads, bool barrier, const Fn& fn) {
#ifdef FASTRNN_HAVE_OPENMP
    if (threads > 1 && items > 1) {
#pragma omp parallel num_threads(threads)
        {
            FlushDenormals ftz;
            const int64_t n = omp_get_num_threads(), k = omp_get_thread_num();
            const int64_t begin = items * k / n, end = items * (k + 1) / n;
            for (int64_t s = 0; s < steps; ++s) {
                fn(s, begin, end);
                if (barrier) {
#pragma omp barrier
                }
            }
        }
        return;
    }
#endif
    (void)threads;
    (void)barrier;
    for (int64_t s = 0; s < steps; ++s) fn(s, int64_t(0), items);
}

}  // namespace fastrnn
