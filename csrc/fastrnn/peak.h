// The float32 FMA throughput of this machine with the active ISA, measured.
#pragma once

namespace fastrnn {

// GFLOP/s of `threads` threads each running independent FMAs in registers for about
// `seconds`; the best of three rounds.
double fma_peak_gflops(int threads, double seconds);

}  // namespace fastrnn
