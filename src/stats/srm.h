// Sample-ratio-mismatch (SRM) check: do the variants' trial counts fit the intended split?
//
// Source: K. Pearson, 1900, chi-squared goodness-of-fit test; its use for SRM in A/B testing
// follows Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments",
// KDD 2019. The chi-squared survival function is Boost.Math's.
//
// Thread-safety: pure functions, safe to call from any thread.
#pragma once

#include <cstddef>
#include <vector>

namespace gimel::stats {

struct SrmResult {
  double p_value = 1;     // P(chi2_{k-1} >= observed statistic); 1 when not testable
  bool mismatch = false;  // p_value < alpha
};

// Pearson's chi-squared test of `trials` against the split `weights` (empty = equal; otherwise
// the same size as `trials`, non-negative, finite, positive sum; they are normalised). With
// `count_relative_error` r > 0, each expected count's variance E is widened to E + (r E)^2 to
// allow for counts that are estimates (HyperLogLog: r = 0.0081); the statistic is still
// referred to chi-squared with k - 1 degrees of freedom (an approximation, see docs/stats.md).
//
// Returns p_value 1 and no mismatch if fewer than two variants have a positive weight, no
// trials were observed, or the weights are invalid. An observed count in a variant of weight 0
// is a mismatch (p_value 0). Always finite.
SrmResult SampleRatioMismatch(const std::vector<double>& trials, const std::vector<double>& weights,
                              double alpha, double count_relative_error = 0);

// True if `weights` is empty or a valid split for `num_variants` variants (see above).
bool ValidSplitWeights(const std::vector<double>& weights, std::size_t num_variants);

}  // namespace gimel::stats
