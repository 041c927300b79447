// Abba's frequentist statistics in C++. See abba.h for the contract and docs/stats.md for the
// formulas; the sources are cited at the top of abba.h.
//
// Faithfulness notes: the arithmetic mirrors python/abba/stats.py operation by operation
// (e.g. `baseline_successes / baseline_trials - ...` before multiplying by the variation's
// trials), because the iterated test rounds those products with floor/ceil and a different
// rounding order can move a boundary by one count. Python Abba uses exact binomials
// everywhere; the JS Abba uses a normal approximation above 100 trials. We use exact binomials
// below kNormalApproxMinVariance and the JS approximation above it, where the two agree far
// within the 1e-3 tolerance the tests enforce.
#include "stats/abba.h"

#include <algorithm>
#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <limits>

#include "stats/math_util.h"

namespace gimel::stats {

using internal::Clamp01;
using internal::Finite;
using internal::NormalCdf;
using internal::NormalSf;
using internal::NoThrowPolicy;

// ---------------------------------------------------------------------------------------------
// Critical values and proportion estimates
// ---------------------------------------------------------------------------------------------

double ZCriticalValue(double alpha) {
  if (!(alpha < 1)) return 0;  // also NaN
  alpha = std::max(alpha, 1e-300);
  boost::math::normal_distribution<double, NoThrowPolicy> normal;
  double z = boost::math::quantile(boost::math::complement(normal, alpha / 2));
  return Finite(z, 37.5);  // 37.5 ~ z for alpha 1e-300
}

ValueWithError ProportionEstimate(double successes, double trials, double z) {
  const double squared_z = z * z;
  const double adjusted_trials = trials + squared_z;
  if (!(adjusted_trials > 0)) return {0, 0};
  const double center = (successes + squared_z / 2) / adjusted_trials;
  const double error = std::sqrt(std::max(0.0, center * (1 - center) / adjusted_trials));
  return {Finite(center, 0), Finite(error, 0)};
}

ValueWithError DifferenceEstimate(double baseline_successes, double baseline_trials,
                                  double variation_successes, double variation_trials, double z) {
  const ValueWithError baseline = ProportionEstimate(baseline_successes, baseline_trials, z);
  const ValueWithError variation = ProportionEstimate(variation_successes, variation_trials, z);
  return {variation.value - baseline.value,
          std::sqrt(baseline.error * baseline.error + variation.error * variation.error)};
}

ValueWithError DifferenceRatio(double baseline_successes, double baseline_trials,
                               double variation_successes, double variation_trials, double z) {
  const double baseline_value = ProportionEstimate(baseline_successes, baseline_trials, z).value;
  if (!(baseline_value > 0)) return {0, 0};
  const ValueWithError difference = DifferenceEstimate(baseline_successes, baseline_trials,
                                                       variation_successes, variation_trials, z);
  return {Finite(difference.value / baseline_value, 0),
          Finite(difference.error / baseline_value, 0)};
}

// ---------------------------------------------------------------------------------------------
// Binomial distribution: exact (Boost) for small variance, normal approximation above
// ---------------------------------------------------------------------------------------------

namespace {

// Binomial(n, p) over integer counts. Exact while n p (1 - p) < kNormalApproxMinVariance;
// above it, Abba JS's continuity-corrected normal approximation, rescaled so the mass on
// [0, n] is 1 (abba/stats.js, BinomialDistribution).
class Binomial {
 public:
  Binomial(double trials, double probability)
      : n_(trials), p_(std::clamp(probability, 0.0, 1.0)), exact_(trials, p_) {
    mean_ = n_ * p_;
    const double variance = mean_ * (1 - p_);
    sd_ = std::sqrt(std::max(0.0, variance));
    if (!(variance > 0)) {
      mode_ = Mode::kPointMass;
    } else if (variance < kNormalApproxMinVariance) {
      mode_ = Mode::kExact;
    } else {
      mode_ = Mode::kNormal;
      lower_tail_ = NormalCdf((-0.5 - mean_) / sd_);
      upper_tail_ = NormalSf((n_ + 0.5 - mean_) / sd_);
      scale_ = 1 / (1 - lower_tail_ - upper_tail_);
    }
  }

  bool normal() const { return mode_ == Mode::kNormal; }
  double mean() const { return mean_; }
  double sd() const { return sd_; }

  // P(X <= k) for integer k.
  double Cdf(double k) const {
    if (k < 0) return 0;
    if (k >= n_) return 1;
    switch (mode_) {
      case Mode::kPointMass:
        return k >= mean_ ? 1 : 0;
      case Mode::kExact:
        return Clamp01(boost::math::cdf(exact_, k), 0);
      case Mode::kNormal:
        break;
    }
    return Clamp01((NormalCdf((k + 0.5 - mean_) / sd_) - lower_tail_) * scale_, 0);
  }

  // P(X > k) for integer k.
  double Sf(double k) const {
    if (k < 0) return 1;
    if (k >= n_) return 0;
    switch (mode_) {
      case Mode::kPointMass:
        return k >= mean_ ? 0 : 1;
      case Mode::kExact:
        return Clamp01(boost::math::cdf(boost::math::complement(exact_, k)), 0);
      case Mode::kNormal:
        break;
    }
    return Clamp01((NormalSf((k + 0.5 - mean_) / sd_) - upper_tail_) * scale_, 0);
  }

  // P(k0 <= X <= k1) for integers k0 <= k1.
  double Mass(double k0, double k1) const {
    if (k1 < 0 || k0 > n_ || k1 < k0) return 0;
    if (mode_ == Mode::kExact && k0 == k1) {
      return Clamp01(boost::math::pdf(exact_, k0), 0);
    }
    // Subtract on the side of the median where the tail is small, to keep precision.
    if (k0 > mean_) return std::max(0.0, Sf(k0 - 1) - Sf(k1));
    return std::max(0.0, Cdf(k1) - Cdf(k0 - 1));
  }

  // Smallest k with P(X <= k) >= q (scipy's ppf), for 0 < q < 1.
  double Ppf(double q) const {
    if (mode_ == Mode::kPointMass) return mean_;
    double k = std::clamp(std::floor(mean_ - sd_ * ZCriticalValue(2 * q)), 0.0, n_);
    if (mode_ == Mode::kNormal) return k;  // Abba JS: floor(normal.inverseCdf(q))
    for (int i = 0; i < 100000 && k < n_ && Cdf(k) < q; ++i) k += 1;
    for (int i = 0; i < 100000 && k > 0 && Cdf(k - 1) >= q; ++i) k -= 1;
    return k;
  }

  // Smallest k with P(X > k) <= q (scipy's isf), for 0 < q < 1.
  double Isf(double q) const {
    if (mode_ == Mode::kPointMass) return mean_;
    double k = std::clamp(std::ceil(mean_ + sd_ * ZCriticalValue(2 * q)), 0.0, n_);
    if (mode_ == Mode::kNormal) return k;  // Abba JS: ceil(normal.inverseSurvival(q))
    for (int i = 0; i < 100000 && k < n_ && Sf(k) > q; ++i) k += 1;
    for (int i = 0; i < 100000 && k > 0 && Sf(k - 1) <= q; ++i) k -= 1;
    return k;
  }

 private:
  enum class Mode { kPointMass, kExact, kNormal };
  double n_;
  double p_;
  boost::math::binomial_distribution<double, NoThrowPolicy> exact_;
  Mode mode_ = Mode::kPointMass;
  double mean_ = 0;
  double sd_ = 0;
  double lower_tail_ = 0;
  double upper_tail_ = 0;
  double scale_ = 1;
};

// Šidák: probability that an event of probability p happens at least once in k independent
// tests, 1 - (1 - p)^k, computed without cancellation for small p.
double ProbabilityUnion(double p, int num_tests) {
  if (p >= 1) return 1;
  if (p <= 0) return 0;
  return Clamp01(-std::expm1(num_tests * std::log1p(-p)), 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The iterated test
// ---------------------------------------------------------------------------------------------

double IteratedTest(double baseline_successes, double baseline_trials, double variation_successes,
                    double variation_trials, int num_tests, bool one_tailed,
                    double coverage_alpha) {
  if (!(baseline_trials > 0) || !(variation_trials > 0)) return 1;
  num_tests = std::max(1, num_tests);
  coverage_alpha = std::clamp(Finite(coverage_alpha, kAbbaPValuePrecision), 1e-15, 0.5);

  const double observed_delta = ProportionEstimate(variation_successes, variation_trials, 0).value -
                                ProportionEstimate(baseline_successes, baseline_trials, 0).value;
  if (observed_delta == 0 && !one_tailed) {
    return 1;  // Abba: "a trivial case that the code below does not handle well"
  }

  const double pooled_proportion =
      (baseline_successes + variation_successes) / (baseline_trials + variation_trials);
  const Binomial variation(variation_trials, pooled_proportion);
  const Binomial baseline(baseline_trials, pooled_proportion);

  // Baseline outcomes covering all but coverage_alpha of the mass (all of them below 1000
  // trials, as in Abba).
  double low = 0;
  double high = baseline_trials;
  if (baseline_trials >= 1000) {
    low = baseline.Ppf(coverage_alpha / 2);
    high = baseline.Isf(coverage_alpha / 2);
  }

  // p-value of variation counts "at least as extreme" as observed, given the baseline count.
  const double absolute_delta = std::fabs(observed_delta);
  auto conditional_p_value = [&](double baseline_count) {
    const double baseline_proportion = baseline_count / baseline_trials;
    double lower_count;
    double upper_count;
    if (one_tailed) {
      lower_count = -1;
      upper_count = std::ceil((baseline_proportion + observed_delta) * variation_trials);
    } else {
      lower_count = std::floor((baseline_proportion - absolute_delta) * variation_trials);
      upper_count = std::ceil((baseline_proportion + absolute_delta) * variation_trials);
    }
    const double p = variation.Cdf(lower_count) + variation.Sf(upper_count - 1);
    return ProbabilityUnion(std::min(1.0, p), num_tests);
  };

  double p_value = 0;
  const double count = high - low + 1;
  if (count <= static_cast<double>(kMaxIteratedSteps)) {
    for (double k = low; k <= high; k += 1) {
      p_value += baseline.Mass(k, k) * conditional_p_value(k);
    }
  } else {
    // Only reachable with the normal approximation (count ~ 8.8 sd > 20000 means the variance
    // is far above kNormalApproxMinVariance): group outcomes into bins of `width` counts and
    // evaluate each bin at its middle, weighted by the bin's mass.
    const double width = std::ceil(count / static_cast<double>(kMaxIteratedSteps));
    for (double k0 = low; k0 <= high; k0 += width) {
      const double k1 = std::min(high, k0 + width - 1);
      p_value += baseline.Mass(k0, k1) * conditional_p_value(std::floor((k0 + k1) / 2));
    }
  }
  // The skipped baseline outcomes contribute less than coverage_alpha: a conservative bound.
  return Clamp01(p_value + coverage_alpha, 1);
}

}  // namespace gimel::stats
