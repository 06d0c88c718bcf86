// How far apart the library's first two threads run, measured: the bench reports it
// beside every multi-thread row.
#pragma once

namespace fastrnn {

// Median nanoseconds for a cache line to go from thread 0 of the OpenMP team to thread 1
// and back, over `rounds` rounds of `trips` round trips. About 50 ns when the two cores
// share an L3, several times that when they do not (another CCD or socket), where every
// line one thread writes and the other reads costs that much more. Returns -1 without
// OpenMP, in a fork()ed child, or when the team has fewer than two threads.
double round_trip_ns(int trips, int rounds);

}  // namespace fastrnn
