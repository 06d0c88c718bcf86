// Core-to-core round trip between two threads of the OpenMP team.
#include "fastrnn/round_trip.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "fastrnn/parallel.h"

namespace fastrnn {

#ifdef FASTRNN_HAVE_OPENMP
namespace {

// Spins until `line` holds `want`. With fewer cores than threads the partner may not be
// running at all: after ~10 us of spinning, give it the core.
void wait_for(const std::atomic<int>& line, int want) {
    for (int spins = 0; line.load(std::memory_order_acquire) != want; ++spins)
        if (spins > (1 << 14)) std::this_thread::yield();
}

}  // namespace
#endif

double round_trip_ns(int trips, int rounds) {
#ifdef FASTRNN_HAVE_OPENMP
    if (in_forked_child() || trips < 1 || rounds < 1) return -1;
    struct alignas(64) Line {
        std::atomic<int> v{0};
    };
    std::vector<double> times;
    times.reserve(static_cast<size_t>(rounds));
    bool paired = true;
    for (int r = 0; r < rounds && paired; ++r) {
        Line line;
        double ns = -1;
#pragma omp parallel num_threads(2)
        {
            if (omp_get_num_threads() < 2) {
                paired = false;  // one thread alone: no partner to wait for
            } else if (omp_get_thread_num() == 0) {
                const auto t0 = std::chrono::steady_clock::now();
                for (int i = 0; i < trips; ++i) {
                    line.v.store(2 * i + 1, std::memory_order_release);
                    wait_for(line.v, 2 * i + 2);
                }
                ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() -
                                                              t0).count() / trips;
            } else if (omp_get_thread_num() == 1) {
                for (int i = 0; i < trips; ++i) {
                    wait_for(line.v, 2 * i + 1);
                    line.v.store(2 * i + 2, std::memory_order_release);
                }
            }
        }
        if (paired) times.push_back(ns);
    }
    if (!paired) return -1;
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    return times[times.size() / 2];
#else
    (void)trips;
    (void)rounds;
    return -1;
#endif
}

}  // namespace fastrnn
