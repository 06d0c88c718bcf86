// Aligned, overflow-checked scratch buffers: sized once per call, freed on every path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace fastrnn {

// a * b, or std::length_error when the product of element counts overflows.
inline int64_t checked_mul(int64_t a, int64_t b) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        throw std::length_error("fastrnn: array size overflows int64");
    return r;
}

// A 64-byte aligned array of n elements. Not zeroed unless asked.
template <typename T>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(int64_t n, bool zero = false) { reset(n, zero); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
    ~Buffer() { std::free(p_); }

    void reset(int64_t n, bool zero = false) {
        std::free(p_);
        p_ = nullptr;
        n_ = 0;
        if (n <= 0) return;
        int64_t bytes = checked_mul(n, static_cast<int64_t>(sizeof(T)));
        bytes = (bytes + 63) / 64 * 64;
        p_ = static_cast<T*>(std::aligned_alloc(64, static_cast<size_t>(bytes)));
        if (!p_) throw std::bad_alloc();
        n_ = n;
        if (zero) std::memset(p_, 0, static_cast<size_t>(n) * sizeof(T));
    }
    T* data() { return p_; }
    const T* data() const { return p_; }
    int64_t size() const { return n_; }

private:
    T* p_ = nullptr;
    int64_t n_ = 0;
};

}  // namespace fastrnn
