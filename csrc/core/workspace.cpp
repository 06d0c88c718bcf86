// The per-thread scratch pool behind Buffer.
#include "fastrnn/workspace.h"

#include <vector>

namespace fastrnn {

namespace {

constexpr int64_t kMaxCachedBytes = int64_t(64) << 20;

struct Block {
    void* p;
    int64_t capacity;
};

// Free blocks of one thread, released to the OS when the thread ends.
struct Pool {
    std::vector<Block> free;
    int64_t cached = 0;
    ~Pool() {
        for (const Block& b : free) std::free(b.p);
    }
};

Pool& pool() {
    thread_local Pool p;
    return p;
}

}  // namespace

void* scratch_acquire(int64_t bytes, int64_t* capacity) {
    Pool& pl = pool();
    // The smallest cached block that fits without wasting more than its request.
    int best = -1;
    for (int i = 0; i < static_cast<int>(pl.free.size()); ++i) {
        const int64_t cap = pl.free[i].capacity;
        if (cap >= bytes && cap <= 2 * bytes + 4096 &&
            (best < 0 || cap < pl.free[best].capacity))
            best = i;
    }
    if (best >= 0) {
        const Block b = pl.free[best];
        pl.free.erase(pl.free.begin() + best);
        pl.cached -= b.capacity;
        *capacity = b.capacity;
        return b.p;
    }
    const int64_t cap = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, static_cast<size_t>(cap));
    if (!p) throw std::bad_alloc();
    *capacity = cap;
    return p;
}

void scratch_release(void* p, int64_t capacity) {
    Pool& pl = pool();
    if (capacity > kMaxCachedBytes) {
        std::free(p);
        return;
    }
    try {
        pl.free.push_back({p, capacity});
    } catch (...) {  // called from ~Buffer: never throw, just give the block back
        std::free(p);
        return;
    }
    pl.cached += capacity;
    // Over the limit: drop the oldest blocks first.
    while (pl.cached > kMaxCachedBytes) {
        pl.cached -= pl.free.front().capacity;
        std::free(pl.free.front().p);
        pl.free.erase(pl.free.begin());
    }
}

}  // namespace fastrnn
