// AnalyzeGoal: sanitises counts, then assembles Abba's frequentist numbers (abba.h), the
// Bayesian numbers (bayes.h) and the SRM check (srm.h). Sources are cited in those headers and
// in docs/stats.md.
#include "stats/stats.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <set>
#include <string>

#include "stats/abba.h"
#include "stats/bayes.h"
#include "stats/math_util.h"

namespace gimel::stats {

namespace {

// ---------------------------------------------------------------------------------------------
// Input sanitising
// ---------------------------------------------------------------------------------------------

struct CleanCounts {
  double successes = 0;
  double trials = 0;
  std::vector<std::string> warnings;
};

void AddWarning(std::vector<std::string>& warnings, std::string_view warning) {
  if (std::find(warnings.begin(), warnings.end(), warning) == warnings.end()) {
    warnings.emplace_back(warning);
  }
}

double CleanCount(double x, std::vector<std::string>& warnings) {
  if (!std::isfinite(x) || x < 0) {
    AddWarning(warnings, kWarningInvalidCount);
    return 0;
  }
  if (x > kMaxCount) {
    AddWarning(warnings, kWarningInvalidCount);
    return kMaxCount;
  }
  return std::round(x);
}

CleanCounts Clean(const VariantCounts& counts) {
  CleanCounts clean;
  clean.trials = CleanCount(counts.trials, clean.warnings);
  clean.successes = CleanCount(counts.successes, clean.warnings);
  if (clean.successes > clean.trials) {
    clean.successes = clean.trials;
    AddWarning(clean.warnings, kWarningSuccessesExceedTrials);
  }
  if (clean.trials == 0) {
    AddWarning(clean.warnings, kWarningNoTrials);
  } else if (clean.trials < kMinTrialsWithoutWarning) {
    AddWarning(clean.warnings, kWarningTooFewTrials);
  }
  return clean;
}

// ---------------------------------------------------------------------------------------------
// Per-variant numbers
// ---------------------------------------------------------------------------------------------

// Abba's ValueWithError.value_with_interval: centre +- z * error around the adjusted estimate,
// reported with a separately estimated value.
Interval WithInterval(const ValueWithError& adjusted, double z, double value) {
  const double width = z * adjusted.error;
  return {internal::Finite(value, 0), internal::Finite(adjusted.value - width, 0),
          internal::Finite(adjusted.value + width, 0)};
}

Interval Rate(const CleanCounts& c, double z) {
  const double value = c.trials > 0 ? c.successes / c.trials : 0;
  if (c.trials == 0) return {0, 0, 1};  // Agresti-Coull gives 1/2 +- 1/2; avoid rounding
  Interval rate = WithInterval(ProportionEstimate(c.successes, c.trials, z), z, value);
  // Abba does not clip; a rate interval outside [0, 1] is meaningless, so we do.
  rate.lower = std::clamp(rate.lower, 0.0, 1.0);
  rate.upper = std::clamp(rate.upper, 0.0, 1.0);
  return rate;
}

VariantStats Compare(const VariantCounts& input, const CleanCounts& v, const CleanCounts& b,
                     double z, int num_comparisons) {
  VariantStats out;
  out.label = input.label;
  out.successes = v.successes;
  out.trials = v.trials;
  out.warnings = v.warnings;
  out.rate = Rate(v, z);

  const bool comparable = b.trials > 0 && v.trials > 0;
  if (b.trials == 0) AddWarning(out.warnings, kWarningBaselineNoTrials);

  const double improvement =
      comparable ? DifferenceEstimate(b.successes, b.trials, v.successes, v.trials, 0).value : 0;
  out.improvement = WithInterval(
      DifferenceEstimate(b.successes, b.trials, v.successes, v.trials, z), z, improvement);

  const ValueWithError ratio = DifferenceRatio(b.successes, b.trials, v.successes, v.trials, z);
  double relative = 0;
  if (comparable) {
    if (b.successes > 0) {
      relative = DifferenceRatio(b.successes, b.trials, v.successes, v.trials, 0).value;
    } else {
      relative = ratio.value;
      AddWarning(out.warnings, kWarningBaselineZeroRate);
    }
  }
  out.relative_improvement = WithInterval(ratio, z, relative);

  out.p_value = IteratedTest(b.successes, b.trials, v.successes, v.trials, num_comparisons,
                             /*one_tailed=*/false, kAbbaPValuePrecision);
  out.p_value_one_tailed = IteratedTest(b.successes, b.trials, v.successes, v.trials,
                                        num_comparisons, /*one_tailed=*/true, kAbbaPValuePrecision);

  const BayesResult bayes = CompareBetaPosteriors(b.successes, b.trials, v.successes, v.trials);
  out.chance_to_beat_baseline = bayes.chance_to_beat_baseline;
  out.expected_loss = bayes.expected_loss;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Glue
// ---------------------------------------------------------------------------------------------

GoalStats AnalyzeGoalImpl(const std::vector<VariantCounts>& variants, const Options& options) {
  GoalStats out;
  if (variants.empty()) {
    out.error = kErrorNoVariants;
    return out;
  }
  if (!(options.confidence > 0 && options.confidence < 1)) {
    out.error = kErrorInvalidConfidence;
    return out;
  }
  std::set<std::string> labels;
  for (const VariantCounts& v : variants) {
    if (!labels.insert(v.label).second) {
      out.error = std::string(kErrorDuplicateLabel) + ": " + v.label;
      return out;
    }
  }
  std::size_t baseline_index = 0;
  if (!options.baseline.empty()) {
    auto it = std::find_if(variants.begin(), variants.end(),
                           [&](const VariantCounts& v) { return v.label == options.baseline; });
    if (it == variants.end()) {
      out.error = std::string(kErrorUnknownBaseline) + ": " + options.baseline;
      return out;
    }
    baseline_index = static_cast<std::size_t>(it - variants.begin());
  }
  if (!ValidSplitWeights(options.expected_split, variants.size())) {
    out.error = kErrorInvalidSplit;
    return out;
  }
  out.baseline = variants[baseline_index].label;

  std::vector<CleanCounts> clean;
  std::vector<double> trials;
  for (const VariantCounts& v : variants) {
    clean.push_back(Clean(v));
    trials.push_back(clean.back().trials);
  }
  out.srm = SampleRatioMismatch(trials, options.expected_split, options.srm_alpha,
                                options.count_relative_error);

  // Abba's Experiment: Bonferroni-corrected z for all intervals, Šidák for the p-values.
  const int num_comparisons = std::max(1, static_cast<int>(variants.size()) - 1);
  const double z = ZCriticalValue((1 - options.confidence) / num_comparisons);

  const CleanCounts& base = clean[baseline_index];
  for (std::size_t i = 0; i < variants.size(); ++i) {
    if (i == baseline_index) {
      VariantStats stats;
      stats.label = variants[i].label;
      stats.successes = base.successes;
      stats.trials = base.trials;
      stats.rate = Rate(base, z);
      stats.warnings = base.warnings;
      out.results.push_back(std::move(stats));
    } else {
      out.results.push_back(Compare(variants[i], clean[i], base, z, num_comparisons));
    }
  }
  return out;
}

}  // namespace

GoalStats AnalyzeGoal(const std::vector<VariantCounts>& variants, const Options& options) {
  try {
    return AnalyzeGoalImpl(variants, options);
  } catch (const std::exception&) {  // bad_alloc; Boost is configured not to throw
    GoalStats out;
    out.error = kErrorInternal;
    return out;
  }
}

}  // namespace gimel::stats
