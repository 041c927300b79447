// The cardinality estimator.
//
// Reference: Otmar Ertl, "New cardinality estimation algorithms for HyperLogLog sketches",
// arXiv:1702.01284 (2017), Algorithm 6 ("improved raw estimator"): with C_k the number of
// registers holding k, m registers, q = 50 rank bits,
//
//   z = m*tau(1 - C_{q+1}/m);  for k = q..1: z = (z + C_k) / 2;  z += m*sigma(C_0/m)
//   estimate = alpha_inf * m^2 / z,   alpha_inf = 1 / (2 ln 2)
//
//   sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1)
//   tau(x)   = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3
//
// Redis (>= 5.0) evaluates these series in double precision in a fixed order and rounds the
// result with llroundl; gimel evaluates them in the same order, so the two agree to the last
// bit and PFCOUNT equals Count (the tests check this against a real redis-server). Do not
// "simplify" the arithmetic below: reordering changes rounding.
#include "hll/estimator.h"

#include <cmath>
#include <limits>

#include "hll/format.h"

namespace gimel::hll {

double Sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1.0;
  double z = x;
  double z_prev;
  do {
    x *= x;
    z_prev = z;
    z += x * y;
    y += y;
  } while (z_prev != z);
  return z;
}

double Tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0;
  double z = 1 - x;
  double z_prev;
  do {
    x = std::sqrt(x);
    z_prev = z;
    y *= 0.5;
    const double d = 1 - x;
    z -= d * d * y;
  } while (z_prev != z);
  return z / 3;
}

uint64_t Estimate(std::span<const uint32_t, 64> histo) {
  constexpr double m = format::kRegisterCount;
  constexpr int q = format::kRankBits;
  double z = m * Tau((m - histo[q + 1]) / m);
  for (int j = q; j >= 1; --j) {
    z += histo[j];
    z *= 0.5;
  }
  z += m * Sigma(histo[0] / m);
  const double estimate = format::kAlphaInf * m * m / z;  // 0 for an empty sketch (z = +inf)
  // Past 2^63 (every register >= 50, only in crafted bytes; z = 0 gives +inf) Redis's
  // llroundl overflows, which on x86-64 yields LLONG_MIN, and PFCOUNT answers 2^63. Say so
  // explicitly rather than rely on the overflow.
  if (!(estimate < 0x1p63)) return uint64_t{1} << 63;
  return static_cast<uint64_t>(std::llround(estimate));
}

}  // namespace gimel::hll
