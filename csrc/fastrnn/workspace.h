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

// Blocks of scratch memory that a thread keeps between calls. Large blocks freed to glibc
// go back to the OS, so every call paid page faults and page zeroing for its workspaces
// (~5% of a training call); recycling them makes the second call of a shape fault-free.
// Buffers are made and dropped by the thread that calls the core, never inside a parallel
// region, so the pool needs no lock. A thread keeps at most 64 MiB.
void* scratch_acquire(int64_t bytes, int64_t* capacity);
void scratch_release(void* p, int64_t capacity);

// The same for the arrays a call returns (outputs and training caches), which die on
// whatever thread drops them last: one locked, process-wide pool of at most 256 MiB.
// Without it, a training call at B=64 H=512 zeroes ~100 MB of fresh pages every time.
void* output_acquire(int64_t bytes, int64_t* capacity);
void output_release(void* p, int64_t capacity) noexcept;

// A 64-byte aligned array of n elements from the calling thread's scratch pool. Not zeroed
// unless asked.
template <typename T>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(int64_t n, bool zero = false) { reset(n, zero); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_), cap_(o.cap_) {
        o.p_ = nullptr;
        o.n_ = o.cap_ = 0;
    }
    ~Buffer() { release(); }

    void reset(int64_t n, bool zero = false) {
        release();
        if (n <= 0) return;
        const int64_t bytes = checked_mul(n, static_cast<int64_t>(sizeof(T)));
        p_ = static_cast<T*>(scratch_acquire(bytes, &cap_));
        n_ = n;
        if (zero) std::memset(p_, 0, static_cast<size_t>(bytes));
    }
    T* data() { return p_; }
    const T* data() const { return p_; }
    int64_t size() const { return n_; }

private:
    void release() {
        if (p_) scratch_release(p_, cap_);
        p_ = nullptr;
        n_ = cap_ = 0;
    }

    T* p_ = nullptr;
    int64_t n_ = 0;
    int64_t cap_ = 0;
};

}  // namespace fastrnn
