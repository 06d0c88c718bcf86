// SIMD vectors for one ISA through GCC/Clang vector extensions: the same source is
// compiled with each ISA's flags into its widest registers (64 bytes for AVX-512, 32 for
// AVX2, 16 for SSE2/NEON), so every kernel is written once, for float and double.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "isa.h"

#if defined(FASTRNN_ISA_AVX512) || defined(FASTRNN_ISA_AVX2)
#include <immintrin.h>
#elif defined(FASTRNN_ISA_NEON)
#include <arm_neon.h>
#endif

#define FASTRNN_INLINE inline __attribute__((always_inline))
// Unrolls the next loop fully (its trip count is a template constant), so that an array of
// vectors it indexes becomes registers: GCC scalarises such arrays only once the index is
// constant. Clang reads the GCC spelling too.
#define FASTRNN_UNROLL _Pragma("GCC unroll 32")

namespace fastrnn::kernels::FASTRNN_ISA_NS {

#if defined(FASTRNN_ISA_AVX512)
constexpr int kVecBytes = 64;
#elif defined(FASTRNN_ISA_AVX2)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
constexpr int kLanes = kVecBytes / 4;  // float lanes

typedef float VecF __attribute__((vector_size(kVecBytes)));
typedef int32_t VecI __attribute__((vector_size(kVecBytes)));
typedef double VecD __attribute__((vector_size(kVecBytes)));
// The same types aligned to one element, for loads and stores at any element address.
typedef float VecF_u __attribute__((vector_size(kVecBytes), aligned(4), may_alias));
typedef double VecD_u __attribute__((vector_size(kVecBytes), aligned(8), may_alias));

template <typename T>
struct Simd;
typedef int64_t VecL __attribute__((vector_size(kVecBytes)));

template <>
struct Simd<float> {
    using V = VecF;
    using U = VecF_u;
    using Idx = VecI;  // shuffle indices
    using IdxElem = int32_t;
    static constexpr int lanes = kVecBytes / 4;
};
template <>
struct Simd<double> {
    using V = VecD;
    using U = VecD_u;
    using Idx = VecL;
    using IdxElem = int64_t;
    static constexpr int lanes = kVecBytes / 8;
};

inline VecF load(const float* p) { return *reinterpret_cast<const VecF_u*>(p); }
inline VecD load(const double* p) { return *reinterpret_cast<const VecD_u*>(p); }
inline void store(float* p, VecF v) { *reinterpret_cast<VecF_u*>(p) = v; }
inline void store(double* p, VecD v) { *reinterpret_cast<VecD_u*>(p) = v; }
// a * b + c. The kernels are compiled with -ffp-contract=off, so FMAs happen exactly where
// written here and nowhere else: a contraction the compiler chose differently in two
// instantiations (a 2-row and a 3-row tile, say) would make a result depend on how rows
// were grouped into tiles, and so on the thread count.
FASTRNN_INLINE VecF fma(VecF a, VecF b, VecF c) {
#if defined(FASTRNN_ISA_AVX512)
    return reinterpret_cast<VecF>(_mm512_fmadd_ps(reinterpret_cast<__m512>(a),
                                                  reinterpret_cast<__m512>(b),
                                                  reinterpret_cast<__m512>(c)));
#elif defined(FASTRNN_ISA_AVX2)
    return reinterpret_cast<VecF>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a),
                                                  reinterpret_cast<__m256>(b),
                                                  reinterpret_cast<__m256>(c)));
#elif defined(FASTRNN_ISA_NEON)
    return reinterpret_cast<VecF>(vfmaq_f32(reinterpret_cast<float32x4_t>(c),
                                            reinterpret_cast<float32x4_t>(a),
                                            reinterpret_cast<float32x4_t>(b)));
#else
    return a * b + c;
#endif
}
FASTRNN_INLINE VecD fma(VecD a, VecD b, VecD c) {
#if defined(FASTRNN_ISA_AVX512)
    return reinterpret_cast<VecD>(_mm512_fmadd_pd(reinterpret_cast<__m512d>(a),
                                                  reinterpret_cast<__m512d>(b),
                                                  reinterpret_cast<__m512d>(c)));
#elif defined(FASTRNN_ISA_AVX2)
    return reinterpret_cast<VecD>(_mm256_fmadd_pd(reinterpret_cast<__m256d>(a),
                                                  reinterpret_cast<__m256d>(b),
                                                  reinterpret_cast<__m256d>(c)));
#elif defined(FASTRNN_ISA_NEON)
    return reinterpret_cast<VecD>(vfmaq_f64(reinterpret_cast<float64x2_t>(c),
                                            reinterpret_cast<float64x2_t>(a),
                                            reinterpret_cast<float64x2_t>(b)));
#else
    return a * b + c;
#endif
}

// A brace list, not `VecF{} + s`: the add of 0 would survive (it changes -0.0), costing an
// instruction per broadcast in the GEMM loop.
template <typename T, size_t... I>
inline typename Simd<T>::V splat_impl(T s, std::index_sequence<I...>) {
    return typename Simd<T>::V{((void)I, s)...};
}
inline VecF splat(float s) { return splat_impl(s, std::make_index_sequence<Simd<float>::lanes>{}); }
inline VecD splat(double s) {
    return splat_impl(s, std::make_index_sequence<Simd<double>::lanes>{});
}

inline VecF select(VecI mask, VecF a, VecF b) {
    return reinterpret_cast<VecF>((mask & reinterpret_cast<VecI>(a)) |
                                  (~mask & reinterpret_cast<VecI>(b)));
}

// Makes v live in a register from here on. GCC otherwise may fold one load into every FMA
// that uses it, as a memory operand, and so load a weight vector once per batch row: at
// B=2 that is 10 loads per 8 FMAs, and a core issues one 64-byte load per cycle (an
// Elman B=2 H=256 step ran 18% slower).
template <typename V>
FASTRNN_INLINE void in_register(V& v) {
#if defined(__x86_64__) && (defined(FASTRNN_ISA_AVX512) || defined(FASTRNN_ISA_AVX2))
    asm("" : "+v"(v));
#elif defined(FASTRNN_ISA_NEON)
    asm("" : "+w"(v));
#else
    (void)v;
#endif
}

// Helpers of exp: one or two instructions each on AVX-512 (clamp and round_near on AVX2
// too), where the portable forms take four or five; exp runs five times per LSTM unit
// and step.
// x clamped to [lo, hi]; a NaN stays NaN (MINPS/MAXPS return their second operand then).
FASTRNN_INLINE VecF clamp(VecF x, float lo, float hi) {
#if defined(FASTRNN_ISA_AVX512)
    return reinterpret_cast<VecF>(_mm512_max_ps(_mm512_set1_ps(lo),
                                                _mm512_min_ps(_mm512_set1_ps(hi),
                                                              reinterpret_cast<__m512>(x))));
#elif defined(FASTRNN_ISA_AVX2)
    return reinterpret_cast<VecF>(_mm256_max_ps(_mm256_set1_ps(lo),
                                                _mm256_min_ps(_mm256_set1_ps(hi),
                                                              reinterpret_cast<__m256>(x))));
#else
    x = select(x > hi, splat(hi), x);
    return select(x < lo, splat(lo), x);
#endif
}

// x rounded to a nearby integer (ties either way; exp only needs |x - n| <= 1/2).
FASTRNN_INLINE VecF round_near(VecF x) {
#if defined(FASTRNN_ISA_AVX512)
    return reinterpret_cast<VecF>(_mm512_roundscale_ps(reinterpret_cast<__m512>(x),
                                                       _MM_FROUND_TO_NEAREST_INT |
                                                           _MM_FROUND_NO_EXC));
#elif defined(FASTRNN_ISA_AVX2)
    return reinterpret_cast<VecF>(_mm256_round_ps(reinterpret_cast<__m256>(x),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
    // +/- 0.5 then truncate toward zero.
    return __builtin_convertvector(
        __builtin_convertvector(x + select(x < splat(0.0f), splat(-0.5f), splat(0.5f)), VecI),
        VecF);
#endif
}

// p * 2^n for integral n with 2^n a normal float.
FASTRNN_INLINE VecF times_pow2(VecF p, VecF n) {
#if defined(FASTRNN_ISA_AVX512)
    return reinterpret_cast<VecF>(
        _mm512_scalef_ps(reinterpret_cast<__m512>(p), reinterpret_cast<__m512>(n)));
#else
    const VecI bits = (__builtin_convertvector(n, VecI) + 127) << 23;
    return p * reinterpret_cast<VecF>(bits);
#endif
}

// e^x for float32: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6
// polynomial (Cephes expf). Max relative error ~2 ulp on [-87.3, 88]; inputs are clamped
// there, so e^x saturates to ~1.2e-38 / ~1.7e38 instead of 0 / inf. NaN propagates.
FASTRNN_INLINE VecF exp(VecF x) {
    x = clamp(x, -87.3365f, 88.0f);  // 2^n stays a normal float
    const VecF n = round_near(x * 1.44269504088896341f);
    VecF r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    VecF p = splat(1.9875691500e-4f);
    p = fma(p, r, splat(1.3981999507e-3f));
    p = fma(p, r, splat(8.3334519073e-3f));
    p = fma(p, r, splat(4.1665795894e-2f));
    p = fma(p, r, splat(1.6666665459e-1f));
    p = fma(p, r, splat(5.0000001201e-1f));
    p = fma(p * r, r, r + 1.0f);
    return times_pow2(p, n);
}

// 1 / (1 + e^-x). Max abs error 1.2e-7 over all floats (measured 8.9e-8; the bound is
// tested in tests/test_activations.py).
FASTRNN_INLINE VecF sigmoid(VecF x) { return 1.0f / (1.0f + exp(-x)); }

// tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)); below |x| = 0.0625 that form cancels, so a
// Taylor series (error < 4e-11 relative there) takes over. Max abs error 1.5e-7 over all
// floats (measured 1.0e-7; tested in tests/test_activations.py).
FASTRNN_INLINE VecF tanh(VecF x) {
    const VecI sign = reinterpret_cast<VecI>(x) & int32_t(0x80000000);
    const VecF ax = reinterpret_cast<VecF>(reinterpret_cast<VecI>(x) & int32_t(0x7fffffff));
    VecF big = 1.0f - 2.0f / (exp(ax + ax) + 1.0f);
    const VecF x2 = ax * ax;
    VecF small = ax + ax * x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315)));
    VecF t = select(ax < splat(0.0625f), small, big);
    t = select(ax != ax, x, t);  // NaN in, NaN out
    return reinterpret_cast<VecF>(reinterpret_cast<VecI>(t) | sign);
}

// float64 activations lane by lane through libm: the double path serves gradient checks
// and 1e-10 parity, so it stays as exact as the NumPy oracle.
inline VecD sigmoid(VecD x) {
    for (int i = 0; i < Simd<double>::lanes; ++i) x[i] = 1.0 / (1.0 + std::exp(-x[i]));
    return x;
}
inline VecD tanh(VecD x) {
    for (int i = 0; i < Simd<double>::lanes; ++i) x[i] = std::tanh(x[i]);
    return x;
}

// Moves of the lanes below count through a mask, which never touch (or fault on) the
// lanes past it; loaded lanes past count are zero.
#if defined(FASTRNN_ISA_AVX512)
#define FASTRNN_MASKED_TAILS 1
inline __mmask16 mask_ps(int count) { return static_cast<__mmask16>((1u << count) - 1); }
inline __mmask8 mask_pd(int count) { return static_cast<__mmask8>((1u << count) - 1); }
inline VecF masked_load(const float* p, int count) {
    return reinterpret_cast<VecF>(_mm512_maskz_loadu_ps(mask_ps(count), p));
}
inline VecD masked_load(const double* p, int count) {
    return reinterpret_cast<VecD>(_mm512_maskz_loadu_pd(mask_pd(count), p));
}
inline VecF masked_load(const float* p, int lo, int hi) {
    return reinterpret_cast<VecF>(
        _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask_ps(hi) & ~mask_ps(lo)), p));
}
inline VecD masked_load(const double* p, int lo, int hi) {
    return reinterpret_cast<VecD>(
        _mm512_maskz_loadu_pd(static_cast<__mmask8>(mask_pd(hi) & ~mask_pd(lo)), p));
}
inline void masked_store(float* p, VecF v, int count) {
    _mm512_mask_storeu_ps(p, mask_ps(count), reinterpret_cast<__m512>(v));
}
inline void masked_store(double* p, VecD v, int count) {
    _mm512_mask_storeu_pd(p, mask_pd(count), reinterpret_cast<__m512d>(v));
}
#elif defined(FASTRNN_ISA_AVX2)
#define FASTRNN_MASKED_TAILS 1
// Lane i is on (sign bit set) when i < count.
inline __m256i mask_ps(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256i mask_pd(int count) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), _mm256_setr_epi64x(0, 1, 2, 3));
}
inline VecF masked_load(const float* p, int count) {
    return reinterpret_cast<VecF>(_mm256_maskload_ps(p, mask_ps(count)));
}
inline VecD masked_load(const double* p, int count) {
    return reinterpret_cast<VecD>(_mm256_maskload_pd(p, mask_pd(count)));
}
inline VecF masked_load(const float* p, int lo, int hi) {
    return reinterpret_cast<VecF>(
        _mm256_maskload_ps(p, _mm256_andnot_si256(mask_ps(lo), mask_ps(hi))));
}
inline VecD masked_load(const double* p, int lo, int hi) {
    return reinterpret_cast<VecD>(
        _mm256_maskload_pd(p, _mm256_andnot_si256(mask_pd(lo), mask_pd(hi))));
}
inline void masked_store(float* p, VecF v, int count) {
    _mm256_maskstore_ps(p, mask_ps(count), reinterpret_cast<__m256>(v));
}
inline void masked_store(double* p, VecD v, int count) {
    _mm256_maskstore_pd(p, mask_pd(count), reinterpret_cast<__m256d>(v));
}
#endif

// Load/store of the first `count` lanes (count < lanes at a tail, count == 0 allowed); a
// tail goes through a zero-padded vector, so every element sees the same arithmetic
// wherever it lies. Without masked moves a tail copies through a small array, a memset
// and a memcpy call of ~15 ns: a T=1 call with I=1 and H=256, whose input projection
// meets 1024 one-element tails, took 21 us that way, as long as one with I=256.
template <typename T>
inline typename Simd<T>::V load_n(const T* p, int count) {
    constexpr int L = Simd<T>::lanes;
    if (count == L) return load(p);
#ifdef FASTRNN_MASKED_TAILS
    return masked_load(p, count);
#else
    T tmp[L] = {};
    for (int i = 0; i < count; ++i) tmp[i] = p[i];
    return load(tmp);
#endif
}
// Lanes [lo, hi) of the vector at p, the others zero; the memory of the others is never
// touched (it may lie outside the array, or hold a NaN that a zero would not cancel).
template <typename T>
inline typename Simd<T>::V load_lanes(const T* p, int lo, int hi) {
#ifdef FASTRNN_MASKED_TAILS
    return masked_load(p, lo, hi);
#else
    typename Simd<T>::V v{};
    for (int i = lo; i < hi; ++i) v[i] = p[i];
    return v;
#endif
}
template <typename T>
inline void store_n(T* p, typename Simd<T>::V v, int count) {
    constexpr int L = Simd<T>::lanes;
    if (count == L) return store(p, v);
#ifdef FASTRNN_MASKED_TAILS
    masked_store(p, v, count);
#else
    T tmp[L];
    store(tmp, v);
    for (int i = 0; i < count; ++i) p[i] = tmp[i];
#endif
}

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
