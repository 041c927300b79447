// Private helpers shared by the stats sources: a Boost.Math policy that never throws, and
// small numeric utilities. Not part of the module's interface.
//
// Thread-safety: pure functions, safe to call from any thread.
#pragma once

#include <algorithm>
#include <boost/math/policies/policy.hpp>
#include <cmath>

namespace gimel::stats::internal {

// Every Boost.Math error is ignored: the function returns NaN, +-inf or a clamped value
// instead of throwing, and callers pass results through Finite()/Clamp01().
using NoThrowPolicy = boost::math::policies::policy<
    boost::math::policies::domain_error<boost::math::policies::ignore_error>,
    boost::math::policies::pole_error<boost::math::policies::ignore_error>,
    boost::math::policies::overflow_error<boost::math::policies::ignore_error>,
    boost::math::policies::underflow_error<boost::math::policies::ignore_error>,
    boost::math::policies::denorm_error<boost::math::policies::ignore_error>,
    boost::math::policies::evaluation_error<boost::math::policies::ignore_error>,
    boost::math::policies::rounding_error<boost::math::policies::ignore_error>,
    boost::math::policies::indeterminate_result_error<boost::math::policies::ignore_error>>;

// `x` if finite, else `fallback`.
inline double Finite(double x, double fallback) { return std::isfinite(x) ? x : fallback; }

// `x` clamped to [0, 1]; NaN becomes `fallback`.
inline double Clamp01(double x, double fallback) {
  if (std::isnan(x)) return fallback;
  return std::clamp(x, 0.0, 1.0);
}

// Standard normal lower tail P(Z <= x) and upper tail P(Z > x), accurate in both tails.
inline double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
inline double NormalSf(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }

}  // namespace gimel::stats::internal
