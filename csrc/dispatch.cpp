// CPU detection and the one kernel table in use. The choice is made once, on first use;
// FASTRNN_ISA may only lower it, so a forced path never runs an instruction the CPU lacks.
#include "fastrnn/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace fastrnn {

#define FASTRNN_DECLARE_ISA(ns)                       \
    namespace kernels::ns {                           \
    const KernelTable<float>& table_f32();            \
    const KernelTable<double>& table_f64();           \
    }
FASTRNN_DECLARE_ISA(generic)
#ifdef FASTRNN_BUILD_AVX2
FASTRNN_DECLARE_ISA(avx2)
#endif
#ifdef FASTRNN_BUILD_AVX512
FASTRNN_DECLARE_ISA(avx512)
#endif
#ifdef FASTRNN_BUILD_NEON
FASTRNN_DECLARE_ISA(neon)
#endif
#undef FASTRNN_DECLARE_ISA

namespace {

bool cpu_has(Isa isa) {
    switch (isa) {
        case Isa::kGeneric:
            return true;
#if defined(__x86_64__) || defined(__i386__)
        // libgcc's checks include the OS's XSAVE support for the wider registers.
        case Isa::kAvx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case Isa::kAvx512:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
#if defined(__aarch64__)
        case Isa::kNeon:
            return true;  // Advanced SIMD is part of the AArch64 baseline.
#endif
        default:
            return false;
    }
}

bool compiled(Isa isa) {
    switch (isa) {
        case Isa::kGeneric:
            return true;
#ifdef FASTRNN_BUILD_AVX2
        case Isa::kAvx2:
            return true;
#endif
#ifdef FASTRNN_BUILD_AVX512
        case Isa::kAvx512:
            return true;
#endif
#ifdef FASTRNN_BUILD_NEON
        case Isa::kNeon:
            return true;
#endif
        default:
            return false;
    }
}

template <typename T>
const KernelTable<T>* table_for(Isa isa) {
    constexpr bool f32 = std::is_same<T, float>::value;
#define FASTRNN_TABLE(ns)                                                              \
    if constexpr (f32) return &kernels::ns::table_f32(); else return &kernels::ns::table_f64();
    switch (isa) {
#ifdef FASTRNN_BUILD_AVX2
        case Isa::kAvx2: FASTRNN_TABLE(avx2)
#endif
#ifdef FASTRNN_BUILD_AVX512
        case Isa::kAvx512: FASTRNN_TABLE(avx512)
#endif
#ifdef FASTRNN_BUILD_NEON
        case Isa::kNeon: FASTRNN_TABLE(neon)
#endif
        default: FASTRNN_TABLE(generic)
    }
#undef FASTRNN_TABLE
}

Isa parse_isa(const std::string& name) {
    for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512, Isa::kNeon})
        if (name == isa_name(isa)) return isa;
    throw std::invalid_argument("FASTRNN_ISA must be one of generic, avx2, avx512, neon; got '" +
                                name + "'");
}

std::atomic<int> g_active{-1};
std::once_flag g_once;

void pick_default() {
    std::vector<Isa> ok = supported_isas();
    Isa best = ok.back();
    if (const char* env = std::getenv("FASTRNN_ISA"); env && *env) {
        Isa wanted = Isa::kGeneric;
        try {
            wanted = parse_isa(env);
        } catch (const std::invalid_argument&) {
            wanted = best;  // An unknown name must not break import; build_info() shows the ISA.
        }
        for (Isa isa : ok)
            if (isa == wanted) best = isa;
        // An ISA this CPU or build lacks is "higher" than what we have: keep the best.
    }
    g_active.store(static_cast<int>(best));
}

}  // namespace

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::kAvx2: return "avx2";
        case Isa::kAvx512: return "avx512";
        case Isa::kNeon: return "neon";
        default: return "generic";
    }
}

std::vector<Isa> supported_isas() {
    std::vector<Isa> out;
    for (Isa isa : {Isa::kGeneric, Isa::kNeon, Isa::kAvx2, Isa::kAvx512})
        if (compiled(isa) && cpu_has(isa)) out.push_back(isa);
    return out;
}

Isa active_isa() {
    std::call_once(g_once, pick_default);
    return static_cast<Isa>(g_active.load());
}

void select_isa(const std::string& name) {
    Isa wanted = parse_isa(name);
    std::call_once(g_once, pick_default);
    for (Isa isa : supported_isas())
        if (isa == wanted) {
            g_active.store(static_cast<int>(isa));
            return;
        }
    throw std::invalid_argument(std::string("ISA '") + name +
                                "' is not supported by this CPU or build");
}

template <typename T>
const KernelTable<T>& kernel_table() {
    return *table_for<T>(active_isa());
}

template const KernelTable<float>& kernel_table<float>();
template const KernelTable<double>& kernel_table<double>();

}  // namespace fastrnn
