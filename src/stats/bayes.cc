// Bayesian chance-to-beat and expected loss; see bayes.h for the contract and sources.
//
// With X_b ~ Beta(a_b, b_b) (baseline) and X_v ~ Beta(a_v, b_v) (variation), both numbers are
// integrals over the density f of the narrower posterior, the other entering via its CDF F or
// survival function Q = 1 - F (a "+" marks the Beta with a + 1, whose use comes from
// x f_{a,b}(x) = mean * f_{a+1,b}(x)):
//
//   narrower = variation (integrate over y):
//     chance = ∫ f_v(y) F_b(y) dy
//     loss   = ∫ f_v(y) E[(X_b - y)^+] dy,   E[(X_b - y)^+] = mean_b Q_b+(y) - y Q_b(y)
//   narrower = baseline (integrate over x):
//     chance = ∫ f_b(x) Q_v(x) dx
//     loss   = ∫ f_b(x) E[(x - X_v)^+] dx,   E[(x - X_v)^+] = x F_v(x) - mean_v F_v+(x)
#include "stats/bayes.h"

#include <algorithm>
#include <boost/math/distributions/beta.hpp>
#include <boost/math/quadrature/gauss.hpp>
#include <cmath>
#include <cstddef>
#include <numbers>

#include "stats/math_util.h"

namespace gimel::stats {

namespace {

using Beta = boost::math::beta_distribution<double, internal::NoThrowPolicy>;

struct BetaParams {
  double a;
  double b;
  double mean() const { return a / (a + b); }
  double sd() const { return std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1))); }
};

BetaParams Posterior(double successes, double trials) {
  return {1 + successes, 1 + std::max(0.0, trials - successes)};
}

// Integrates pdf(x) * f(x) over [mean +- 20 sd] of `dist` clipped to [0, 1], for both
// components of f's BayesResult, by 20-point Gauss-Legendre on kBayesSegments segments.
template <typename F>
BayesResult Integrate(const BetaParams& dist, F f) {
  using Gauss = boost::math::quadrature::gauss<double, 20>;  // even N: no node at 0
  const Beta density(dist.a, dist.b);
  const double lo = std::max(0.0, dist.mean() - 20 * dist.sd());
  const double hi = std::min(1.0, dist.mean() + 20 * dist.sd());
  const double half_width = (hi - lo) / kBayesSegments / 2;
  BayesResult sum{0, 0};
  for (int segment = 0; segment < kBayesSegments; ++segment) {
    const double mid = lo + (2 * segment + 1) * half_width;
    for (std::size_t i = 0; i < Gauss::abscissa().size(); ++i) {
      for (double sign : {-1.0, 1.0}) {
        const double x = std::clamp(mid + sign * half_width * Gauss::abscissa()[i], 0.0, 1.0);
        const double weight = Gauss::weights()[i] * half_width * boost::math::pdf(density, x);
        const BayesResult value = f(x);
        sum.chance_to_beat_baseline += weight * value.chance_to_beat_baseline;
        sum.expected_loss += weight * value.expected_loss;
      }
    }
  }
  return sum;
}

// Normal approximation of both posteriors: the fallback if quadrature fails.
BayesResult NormalApproximation(const BetaParams& baseline, const BetaParams& variation) {
  const double m = baseline.mean() - variation.mean();  // mean of X_b - X_v
  const double s = std::hypot(baseline.sd(), variation.sd());
  if (!(s > 0)) return {m < 0 ? 1.0 : m > 0 ? 0.0 : 0.5, std::max(0.0, m)};
  const double z = m / s;
  const double density = std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi);
  return {internal::NormalSf(z), std::max(0.0, s * density + m * internal::NormalCdf(z))};
}

// Chance and loss for posteriors given as parameters, integrating over the density of the
// variation (over_variation) or of the baseline; see the top of the file.
BayesResult IntegrateOver(const BetaParams& baseline, const BetaParams& variation,
                          bool over_variation) {
  if (over_variation) {
    const Beta base(baseline.a, baseline.b);
    const Beta base_plus(baseline.a + 1, baseline.b);
    const double mean_b = baseline.mean();
    return Integrate(variation, [&](double y) {
      const double q_b = boost::math::cdf(boost::math::complement(base, y));
      const double q_b_plus = boost::math::cdf(boost::math::complement(base_plus, y));
      return BayesResult{1 - q_b, std::max(0.0, mean_b * q_b_plus - y * q_b)};
    });
  }
  const Beta var(variation.a, variation.b);
  const Beta var_plus(variation.a + 1, variation.b);
  const double mean_v = variation.mean();
  return Integrate(baseline, [&](double x) {
    const double f_v = boost::math::cdf(var, x);
    const double f_v_plus = boost::math::cdf(var_plus, x);
    return BayesResult{1 - f_v, std::max(0.0, x * f_v - mean_v * f_v_plus)};
  });
}

BayesResult Compare(const BetaParams& baseline, const BetaParams& variation) {
  const bool over_variation = variation.sd() <= baseline.sd();  // the narrower density
  const BetaParams& narrow = over_variation ? variation : baseline;
  if (narrow.mean() > 0.5) {
    // Doubles are sparse near 1, where a narrow density would lose digits: reflect x -> 1 - x.
    // P(X_v > X_b) = P(1 - X_b > 1 - X_v) and E[(X_b - X_v)^+] = E[((1 - X_v) - (1 - X_b))^+],
    // so the reflected variation plays the baseline and vice versa.
    return IntegrateOver(BetaParams{variation.b, variation.a}, BetaParams{baseline.b, baseline.a},
                         !over_variation);
  }
  return IntegrateOver(baseline, variation, over_variation);
}

}  // namespace

BayesResult CompareBetaPosteriors(double baseline_successes, double baseline_trials,
                                  double variation_successes, double variation_trials) {
  const BetaParams baseline = Posterior(baseline_successes, baseline_trials);
  const BetaParams variation = Posterior(variation_successes, variation_trials);
  BayesResult result = Compare(baseline, variation);
  if (!std::isfinite(result.chance_to_beat_baseline) || !std::isfinite(result.expected_loss)) {
    result = NormalApproximation(baseline, variation);
  }
  result.chance_to_beat_baseline = internal::Clamp01(result.chance_to_beat_baseline, 0.5);
  result.expected_loss = internal::Clamp01(result.expected_loss, 0);
  return result;
}

}  // namespace gimel::stats
