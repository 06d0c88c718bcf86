// Run-time ISA selection: the best kernel table the CPU supports, chosen once;
// FASTRNN_ISA=generic|avx2|avx512|neon can only lower the choice.
#pragma once

#include <string>
#include <vector>

#include "fastrnn/kernels.h"

namespace fastrnn {

enum class Isa : int { kGeneric = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3 };

const char* isa_name(Isa isa);

// ISAs this build compiled and this CPU can run, best last.
std::vector<Isa> supported_isas();

// The ISA in use. The first call picks the best supported ISA, lowered by FASTRNN_ISA.
Isa active_isa();

// Switches to `name` (must be supported); throws std::invalid_argument otherwise.
// For tests and benchmarks; not meant to be called while kernels run in other threads.
void select_isa(const std::string& name);

template <typename T>
const KernelTable<T>& kernel_table();

}  // namespace fastrnn
