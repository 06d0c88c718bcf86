// A register-only FMA loop, to measure the machine's float32 FMA peak (the bench's 100%).
#include "simd.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

// iters x 12 independent vector FMAs (enough chains to cover the FMA latency on any of
// our ISAs). Returns the float32 flops done; *sink keeps the compiler from dropping them.
int64_t fma_burn(int64_t iters, float* sink) {
    constexpr int N = 12;
    VecF acc[N];
    for (int i = 0; i < N; ++i) acc[i] = splat(1.0f + 1e-3f * static_cast<float>(i));
    const VecF m = splat(0.999999f), c = splat(1e-7f);
    for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < N; ++i) acc[i] = fma(acc[i], m, c);
    VecF s = acc[0];
    for (int i = 1; i < N; ++i) s += acc[i];
    *sink = s[0];
    return iters * N * kLanes * 2;
}

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
