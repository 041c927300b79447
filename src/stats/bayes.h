// Bayesian comparison of two conversion rates with uniform priors.
//
// Sources (formulas in docs/stats.md):
//   - E. Miller, "Formulas for Bayesian A/B Testing", 2015
//     (https://www.evanmiller.org/bayesian-ab-testing.html): P(p_B > p_A) for Beta posteriors;
//     the closed-form sum is used by the tests as an independent check.
//   - C. Stucchio, "Bayesian A/B Testing at VWO", 2015: the expected loss
//     E[max(p_A - p_B, 0)].
//
// Posteriors are Beta(1 + s, 1 + n - s). Both numbers are one-dimensional integrals over the
// narrower posterior's density, evaluated by fixed 20-point Gauss-Legendre quadrature on
// kBayesSegments segments covering mean +- 20 standard deviations (clipped to [0, 1]). The
// other posterior enters only through its CDF, which is smooth on that scale. A narrower
// posterior with mean > 1/2 is reflected (x -> 1 - x) first, since doubles are sparse near 1.
// Accuracy is far better than 1e-3 for any counts (1e-6 or better in the tests); cost is about
// 1500 Beta function evaluations.
//
// Thread-safety: pure functions, safe to call from any thread.
#pragma once

namespace gimel::stats {

struct BayesResult {
  // P(p_variation > p_baseline). 0.5 when neither side has data.
  double chance_to_beat_baseline = 0.5;
  // E[max(p_baseline - p_variation, 0)]: the rate expected to be lost by choosing the variation.
  double expected_loss = 0;
};

// Compares Beta(1 + s_v, 1 + n_v - s_v) against Beta(1 + s_b, 1 + n_b - s_b). Always returns
// finite numbers (chance in [0, 1], loss in [0, 1]); falls back to a normal approximation of
// the posteriors if the quadrature yields a non-finite value.
// REQUIRES: 0 <= successes <= trials (finite) on both sides.
BayesResult CompareBetaPosteriors(double baseline_successes, double baseline_trials,
                                  double variation_successes, double variation_trials);

inline constexpr int kBayesSegments = 24;

}  // namespace gimel::stats
