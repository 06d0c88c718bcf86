// Software prefetch of the cache lines that a run of elements spans, shared by the GEMM
// packing and the step kernels.
#pragma once

#include <cstdint>

namespace fastrnn {

// Asks for every cache line of p[0 .. n), Locality as for __builtin_prefetch (3: into L1,
// 2: into L2). Always a read prefetch, also for lines about to be written: a write
// prefetch becomes prefetchw where the CPU has it, which ignores the level and fills L1.
template <int Locality, typename T>
inline __attribute__((always_inline)) void prefetch_lines(const T* p, int64_t n) {
    constexpr uintptr_t kLine = 64;
    const uintptr_t end = reinterpret_cast<uintptr_t>(p + n);
    for (uintptr_t a = reinterpret_cast<uintptr_t>(p) & ~(kLine - 1); a < end; a += kLine)
        __builtin_prefetch(reinterpret_cast<const void*>(a), 0, Locality);
}

}  // namespace fastrnn
