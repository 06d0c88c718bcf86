// Included first by every file in csrc/kernels/, which CMake compiles once per ISA with
// FASTRNN_ISA_NS set (generic, avx2, avx512, neon) and that ISA's compiler flags.
// Everything here lives in fastrnn::kernels::FASTRNN_ISA_NS, so no symbol compiled
// with one ISA's flags can be merged with another's by the linker; for the same reason
// these files call no inline std:: templates (std::min, std::vector, ...) — only
// non-template libm functions.
#pragma once

#include <cstdint>

#include "fastrnn/kernels.h"

#ifndef FASTRNN_ISA_NS
#error "csrc/kernels/ files are compiled once per ISA with -DFASTRNN_ISA_NS=<isa>"
#endif

#define FASTRNN_STR2(x) #x
#define FASTRNN_STR(x) FASTRNN_STR2(x)

namespace fastrnn::kernels::FASTRNN_ISA_NS {

// Register tile of the GEMM micro-kernel, sized to the ISA's vector registers.
template <typename T>
struct Tile;

// float: nr = two vectors, mr rows, so 2*mr accumulators + 2 loads + 1 broadcast fit the
// register file (32 zmm for AVX-512, 16 ymm/xmm otherwise).
#if defined(FASTRNN_ISA_AVX512)
template <> struct Tile<float> { static constexpr int mr = 12, nr = 32; };
template <> struct Tile<double> { static constexpr int mr = 8, nr = 16; };
#elif defined(FASTRNN_ISA_AVX2)
template <> struct Tile<float> { static constexpr int mr = 6, nr = 16; };
template <> struct Tile<double> { static constexpr int mr = 6, nr = 8; };
#else
template <> struct Tile<float> { static constexpr int mr = 6, nr = 8; };
template <> struct Tile<double> { static constexpr int mr = 4, nr = 4; };
#endif

template <typename T>
void gemm_tile(int64_t k, const T* a, const T* b, int64_t ldb, T* const* c, T beta, int m, int n);

template <typename T>
void pack_b_transposed(int64_t kc, int cols, int width, const T* src, int64_t ld, T* dst,
                       int64_t ldd);

template <typename T>
void gemm_tile_direct(int64_t k, const T* const* a_rows, const T* b, T* const* c, T beta, int m,
                      int n);

template <typename T>
void lstm_forward_tile(const StepTile<T>& s);
template <typename T>
void lstm_backward_tile(const StepTile<T>& s);
template <typename T>
void rnn_forward_tile(const StepTile<T>& s);
template <typename T>
void rnn_backward_tile(const StepTile<T>& s);

template <typename T>
void gemv_rows(int m, int64_t N, int64_t K, const T* a, int64_t lda, const T* w, int64_t ldw,
               const T* bias, T* out, int64_t ldo);

int64_t fma_burn(int64_t iters, float* sink);

const KernelTable<float>& table_f32();
const KernelTable<double>& table_f64();

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
