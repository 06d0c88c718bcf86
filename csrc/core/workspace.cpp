// The block caches behind Buffer (per thread) and behind the arrays a call returns
// (process-wide).
#include "fastrnn/workspace.h"

#include <mutex>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include <vector>

// Under AddressSanitizer a cached block is poisoned until it is handed out again, so a
// read of memory already given back (a result NumPy has freed, a dropped Buffer) is
// reported like a use after free, the pool notwithstanding.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)  // clang's way of saying it
#define FASTRNN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(FASTRNN_ASAN)
#include <sanitizer/asan_interface.h>
#define FASTRNN_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define FASTRNN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define FASTRNN_POISON(p, n) ((void)(p), (void)(n))
#define FASTRNN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace fastrnn {

namespace {

constexpr int64_t kHugePage = int64_t(2) << 20;
constexpr int64_t kHugeBytes = int64_t(4) << 20;  // NumPy's threshold for huge pages

struct Block {
    void* p;
    int64_t capacity;
};

// Free blocks kept for reuse, at most `limit` bytes of them; the oldest go first.
class BlockCache {
public:
    explicit BlockCache(int64_t limit) : limit_(limit) {}
    BlockCache(const BlockCache&) = delete;
    BlockCache& operator=(const BlockCache&) = delete;
    ~BlockCache() {
        for (const Block& b : free_) {
            FASTRNN_UNPOISON(b.p, static_cast<size_t>(b.capacity));
            std::free(b.p);
        }
    }

    void* acquire(int64_t bytes, int64_t* capacity) {
        // The smallest cached block that fits without wasting more than its request.
        int best = -1;
        for (int i = 0; i < static_cast<int>(free_.size()); ++i) {
            const int64_t cap = free_[i].capacity;
            if (cap >= bytes && cap <= 2 * bytes + 4096 &&
                (best < 0 || cap < free_[best].capacity))
                best = i;
        }
        if (best >= 0) {
            const Block b = free_[best];
            free_.erase(free_.begin() + best);
            cached_ -= b.capacity;
            *capacity = b.capacity;
            FASTRNN_UNPOISON(b.p, static_cast<size_t>(b.capacity));
            return b.p;
        }
        const int64_t align = bytes >= kHugeBytes ? kHugePage : 64;
        const int64_t cap = (bytes + align - 1) / align * align;
        void* p = std::aligned_alloc(static_cast<size_t>(align), static_cast<size_t>(cap));
        if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
        // As NumPy does for its large arrays: with THP in "madvise" mode, huge pages take
        // a 50 MB array from ~12800 page faults to ~25 and spare the kernels TLB misses.
        if (align == kHugePage) madvise(p, static_cast<size_t>(cap), MADV_HUGEPAGE);
#endif
        *capacity = cap;
        return p;
    }

    // Never throws: it runs in destructors.
    void release(void* p, int64_t capacity) noexcept {
        if (capacity > limit_) {
            std::free(p);
            return;
        }
        try {
            free_.push_back({p, capacity});
        } catch (...) {
            std::free(p);
            return;
        }
        cached_ += capacity;
        FASTRNN_POISON(p, static_cast<size_t>(capacity));
        while (cached_ > limit_) {
            cached_ -= free_.front().capacity;
            FASTRNN_UNPOISON(free_.front().p, static_cast<size_t>(free_.front().capacity));
            std::free(free_.front().p);
            free_.erase(free_.begin());
        }
    }

private:
    std::vector<Block> free_;
    int64_t cached_ = 0;
    const int64_t limit_;
};

constexpr int64_t kScratchCacheBytes = int64_t(64) << 20;
constexpr int64_t kOutputCacheBytes = int64_t(256) << 20;

// Scratch is made and dropped by the thread that calls the core, never inside a parallel
// region, so a cache per thread needs no lock; it is freed when the thread ends.
BlockCache& scratch_cache() {
    thread_local BlockCache c(kScratchCacheBytes);
    return c;
}

// An output dies wherever its last reference goes, on any thread. The cache is never
// destroyed: arrays that outlive the module's static objects at exit still release into it.
struct OutputCache {
    std::mutex mu;
    BlockCache blocks{kOutputCacheBytes};
};

OutputCache& output_cache() {
    static OutputCache* c = new OutputCache;
    return *c;
}

}  // namespace

void* scratch_acquire(int64_t bytes, int64_t* capacity) {
    return scratch_cache().acquire(bytes, capacity);
}

void scratch_release(void* p, int64_t capacity) { scratch_cache().release(p, capacity); }

void* output_acquire(int64_t bytes, int64_t* capacity) {
    OutputCache& c = output_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    return c.blocks.acquire(bytes, capacity);
}

void output_release(void* p, int64_t capacity) noexcept {
    OutputCache& c = output_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.blocks.release(p, capacity);
}

}  // namespace fastrnn
