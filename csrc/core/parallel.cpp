// Thread-count policy shared by every core loop.
#include "fastrnn/parallel.h"

#include <pthread.h>

#include <atomic>
#include <stdexcept>

namespace fastrnn {

namespace {
std::atomic<int> g_threads{0};  // 0 = the OpenMP default of the calling thread

// GNU OpenMP cannot run a parallel region in a child of fork() once the parent has used
// its thread pool: the child waits forever for workers that fork did not copy. A child
// therefore runs everything on its calling thread (PyTorch does the same).
std::atomic<bool> g_forked_child{false};
void mark_forked_child() { g_forked_child.store(true); }
[[maybe_unused]] const int g_atfork_registered =
    pthread_atfork(nullptr, nullptr, &mark_forked_child);
}  // namespace

bool in_forked_child() { return g_forked_child.load(std::memory_order_relaxed); }

int max_threads() {
    if (in_forked_child()) return 1;
    const int n = g_threads.load(std::memory_order_relaxed);
    if (n > 0) return n;
#ifdef FASTRNN_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_max_threads(int n) {
    // The Python API checks first; this keeps direct _core callers inside the same range.
    if (n < 0 || n > 1024) throw std::invalid_argument("number of threads must be in [0, 1024]");
    g_threads.store(n, std::memory_order_relaxed);
}

bool have_openmp() {
#ifdef FASTRNN_HAVE_OPENMP
    return true;
#else
    return false;
#endif
}

}  // namespace fastrnn
