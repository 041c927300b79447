// Frequentist building blocks of the stats engine, following Thumbtack's Abba library.
//
// Sources (see docs/stats.md for the formulas):
//   - Abba, Thumbtack Inc. 2012, python/abba/stats.py and abba/stats.js
//     (https://github.com/thumbtack/abba): every function here mirrors one of Abba's, with the
//     same floating-point order of operations so that floor/ceil land on the same integers.
//   - A. Agresti, B. A. Coull, "Approximate is better than 'exact' for interval estimation of
//     binomial proportions", The American Statistician 52(2), 1998: the adjusted-Wald interval.
//   - Z. Šidák, "Rectangular confidence regions for the means of multivariate normal
//     distributions", JASA 62, 1967: 1 - (1 - p)^k for k independent tests.
//   - C. E. Bonferroni, 1936: alpha / k for the interval confidence level.
//
// These are low-level pure functions; most callers want AnalyzeGoal() in stats.h, which
// sanitises counts first. Every function here returns finite numbers for any finite,
// non-negative input with successes <= trials.
//
// Thread-safety: pure functions, safe to call from any thread.
#pragma once

#include <cstdint>

namespace gimel::stats {

// A point estimate with a symmetric standard error (Abba's ValueWithError).
struct ValueWithError {
  double value = 0;
  double error = 0;
};

// Two-tailed critical value z with P(Z > z) = alpha / 2 for Z ~ N(0, 1).
// REQUIRES: 0 < alpha < 1. Returns 0 for alpha >= 1 and a large finite value for alpha <= 0.
double ZCriticalValue(double alpha);

// Agresti-Coull ("adjusted Wald") estimate of a proportion: z^2/2 pseudo-successes and z^2/2
// pseudo-failures are added; `value` is the centre of the interval and `error` its standard
// error. With z = 0 this is the plain MLE s/n and the Wald error (value 0, error 0 if n == 0).
// REQUIRES: 0 <= successes <= trials, z >= 0.
ValueWithError ProportionEstimate(double successes, double trials, double z);

// Variation minus baseline of the z-adjusted estimates; errors add in quadrature.
ValueWithError DifferenceEstimate(double baseline_successes, double baseline_trials,
                                  double variation_successes, double variation_trials, double z);

// DifferenceEstimate divided by the z-adjusted baseline estimate. With z = 0 and a baseline
// rate of 0 the ratio is undefined: returns {0, 0} then (callers must flag it).
ValueWithError DifferenceRatio(double baseline_successes, double baseline_trials,
                               double variation_successes, double variation_trials, double z);

// Abba's "iterated test": the p-value of H0 p_baseline == p_variation, summed over the
// possible baseline success counts under the pooled rate, each conditional p-value Šidák-
// corrected for `num_tests` comparisons. Two-tailed (H1: p_b != p_v) unless `one_tailed`
// (H1: p_v > p_b). `coverage_alpha` is Abba's P_VALUE_PRECISION (1e-5): baseline outcomes
// outside the central 1 - coverage_alpha mass are skipped and coverage_alpha is added.
//
// Exact binomial distributions are used while their variance n p (1 - p) is below
// kNormalApproxMinVariance, a continuity-corrected normal approximation above it, and at most
// kMaxIteratedSteps baseline outcomes are evaluated (wider ranges are grouped into equal-mass
// bins), so the cost is bounded for 10^9 trials.
//
// Returns a value in [0, 1]. Returns 1 if either side has no trials.
// REQUIRES: 0 <= successes <= trials for both sides (integral values), num_tests >= 1.
double IteratedTest(double baseline_successes, double baseline_trials, double variation_successes,
                    double variation_trials, int num_tests, bool one_tailed,
                    double coverage_alpha = 1e-5);

// Binomial distributions whose variance n p (1 - p) reaches this use the normal approximation.
inline constexpr double kNormalApproxMinVariance = 1e4;
// Upper bound on the baseline outcomes evaluated by IteratedTest.
inline constexpr std::int64_t kMaxIteratedSteps = 20000;
// Abba's P_VALUE_PRECISION.
inline constexpr double kAbbaPValuePrecision = 1e-5;

}  // namespace gimel::stats
