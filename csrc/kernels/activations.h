// Scalar activations shared by the pointwise kernels of one ISA.
#pragma once

#include <cmath>

#include "isa.h"

namespace fastrnn::kernels::FASTRNN_ISA_NS {

// 1 / (1 + e^-x): for x -> -inf, e^-x overflows to inf and the result is exactly 0,
// never NaN, so saturated gates stay finite.
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline float tanh_(float x) { return std::tanh(x); }
inline double tanh_(double x) { return std::tanh(x); }

}  // namespace fastrnn::kernels::FASTRNN_ISA_NS
