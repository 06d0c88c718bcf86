// Flush-to-zero / denormals-are-zero for the current thread while a guard lives: denormal
// operands slow CPU LSTMs 10-25x (oneDNN#561, onnxruntime#7448). The caller's mode comes
// back when the guard ends, so Python and NumPy never see it changed.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <cstdint>

namespace fastrnn {

class FlushDenormals {
public:
#if defined(__x86_64__) || defined(__i386__)
    FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtz | kDaz); }
    ~FlushDenormals() { _mm_setcsr(saved_); }

private:
    static constexpr unsigned kFtz = 0x8000;  // MXCSR bit 15
    static constexpr unsigned kDaz = 0x0040;  // MXCSR bit 6
    unsigned saved_;
#elif defined(__aarch64__)
    FlushDenormals() {
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
        const uint64_t fz = saved_ | (uint64_t(1) << 24);  // FPCR.FZ
        __asm__ __volatile__("msr fpcr, %0" : : "r"(fz));
    }
    ~FlushDenormals() { __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_)); }

private:
    uint64_t saved_;
#else
    FlushDenormals() = default;
#endif
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;
};

}  // namespace fastrnn
