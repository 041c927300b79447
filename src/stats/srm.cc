// Sample-ratio-mismatch check; see srm.h for the contract and sources.
#include "stats/srm.h"

#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>

#include "stats/math_util.h"

namespace gimel::stats {

bool ValidSplitWeights(const std::vector<double>& weights, std::size_t num_variants) {
  if (weights.empty()) return true;
  if (weights.size() != num_variants) return false;
  double sum = 0;
  for (double w : weights) {
    if (!std::isfinite(w) || w < 0) return false;
    sum += w;
  }
  return std::isfinite(sum) && sum > 0;
}

SrmResult SampleRatioMismatch(const std::vector<double>& trials, const std::vector<double>& weights,
                              double alpha, double count_relative_error) {
  SrmResult result;
  const std::size_t k = trials.size();
  if (k < 2 || !ValidSplitWeights(weights, k)) return result;

  double total_trials = 0;
  for (double n : trials) {
    if (std::isfinite(n) && n > 0) total_trials += n;
  }
  double total_weight = 0;
  for (std::size_t i = 0; i < k; ++i) total_weight += weights.empty() ? 1.0 : weights[i];
  if (!(total_trials > 0) || !std::isfinite(total_trials)) return result;

  const double r = std::isfinite(count_relative_error) ? std::fabs(count_relative_error) : 0.0;
  double statistic = 0;
  int positive = 0;
  for (std::size_t i = 0; i < k; ++i) {
    const double observed = std::isfinite(trials[i]) && trials[i] > 0 ? trials[i] : 0.0;
    const double share = (weights.empty() ? 1.0 : weights[i]) / total_weight;
    if (!(share > 0)) {
      if (observed > 0) return {0, 0 < alpha};  // traffic where none was expected
      continue;
    }
    ++positive;
    const double expected = total_trials * share;
    const double deviation = observed - expected;
    statistic += deviation * deviation / (expected + (r * expected) * (r * expected));
  }
  if (positive < 2) return result;

  boost::math::chi_squared_distribution<double, internal::NoThrowPolicy> chi2(positive - 1);
  const double p = boost::math::cdf(boost::math::complement(chi2, statistic));
  // A non-finite statistic can only come from an astronomically large deviation.
  result.p_value = std::isfinite(statistic) ? internal::Clamp01(p, 1) : 0.0;
  result.mismatch = result.p_value < alpha;
  return result;
}

}  // namespace gimel::stats
