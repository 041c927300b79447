// Cardinality from a register histogram: Ertl's improved estimator, as Redis >= 5 computes it.
//
// Internal to src/hll/. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>

namespace gimel::hll {

// histo[v] = number of registers holding value v (sum kRegisterCount). Values above 51 (only
// possible in crafted dense bytes) are ignored, as Redis ignores them.
uint64_t Estimate(std::span<const uint32_t, 64> histo);

// The series sigma(x) and tau(x) of the estimator, exposed for tests.
double Sigma(double x);
double Tau(double x);

}  // namespace gimel::hll
