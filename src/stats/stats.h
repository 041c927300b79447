// gimel::stats: A/B-test statistics for one goal, as pure functions over plain structs.
//
// For each variant against a baseline (the first variant unless Options::baseline names one):
//   - conversion rate with its Agresti-Coull interval,
//   - absolute and relative improvement with intervals,
//   - two-tailed and one-tailed p-values from Abba's iterated test, Šidák-corrected,
//   - the Bayesian chance to beat the baseline and the expected loss,
// plus a sample-ratio-mismatch check over all variants. Frequentist numbers match Thumbtack's
// Abba (https://github.com/thumbtack/abba) within 1e-3; intervals are Bonferroni-corrected for
// the number of comparisons, as in Abba. Formulas and sources: docs/stats.md, abba.h, bayes.h,
// srm.h.
//
// Counts are treated as exact, although gimel's are HyperLogLog estimates (±0.81 % standard
// error); see docs/stats.md.
//
// Error model (gbstats style): AnalyzeGoal never fails and never throws. Problems with the
// whole request (no variants, unknown baseline, invalid confidence...) set GoalStats::error and
// leave `results` empty; problems with one variant's data (no trials, successes > trials...)
// are repaired as documented and reported in VariantStats::warnings. Every number in the
// output is finite.
//
// Thread-safety: pure functions, safe to call from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stats/srm.h"

namespace gimel::stats {

// Sufficient statistics of one variant for one goal.
struct VariantCounts {
  std::string label;
  // Users who reached the goal and users exposed to the variant. Non-integral values are
  // rounded; negative, non-finite or huge (> kMaxCount) values are clamped with a warning.
  double successes = 0;
  double trials = 0;
};

struct Interval {
  double value = 0;
  double lower = 0;
  double upper = 0;
};

struct Options {
  // Confidence level of every interval, before the Bonferroni correction.
  // Default: 0.95. REQUIRES: 0 < confidence < 1 (else GoalStats::error).
  double confidence = 0.95;
  // Label of the baseline variant. Default: "" = the first variant.
  std::string baseline;
  // SRM is flagged when its p-value is below this. Default: 0.001.
  double srm_alpha = 0.001;
  // Intended traffic split, one weight per variant in input order. Default: empty = equal.
  std::vector<double> expected_split;
  // Relative standard error of the trial counts used to widen the SRM test (see srm.h).
  // Default: 0 = counts are exact. HyperLogLog counts would use kHllRelativeError.
  double count_relative_error = 0;
};

// Standard error of a 16384-register HyperLogLog estimate: 1.04 / sqrt(16384).
inline constexpr double kHllRelativeError = 0.008125;

struct VariantStats {
  std::string label;
  double successes = 0;  // as analysed (after clamping, see warnings)
  double trials = 0;
  // value: successes / trials (0 when trials == 0); Agresti-Coull interval clipped to [0, 1].
  Interval rate;
  // Variant minus baseline; nullopt for the baseline itself.
  std::optional<Interval> improvement;
  // (Variant minus baseline) / baseline; nullopt for the baseline itself.
  std::optional<Interval> relative_improvement;
  // Two-tailed (rates differ) and one-tailed (variant better) p-values, Šidák-corrected.
  std::optional<double> p_value;
  std::optional<double> p_value_one_tailed;
  // P(variant rate > baseline rate) and E[max(baseline - variant, 0)] under Beta posteriors.
  std::optional<double> chance_to_beat_baseline;
  std::optional<double> expected_loss;
  // Data problems found in this variant's counts; strings are the kWarning* constants.
  std::vector<std::string> warnings;
};

struct GoalStats {
  std::string baseline;  // label of the baseline variant
  SrmResult srm;
  std::vector<VariantStats> results;  // input order, baseline included
  std::string error;                  // empty unless the request as a whole was unusable
};

// Analyses one goal. REQUIRES nothing: any input gives a defined result (see the error model).
GoalStats AnalyzeGoal(const std::vector<VariantCounts>& variants, const Options& options);

// Below this many trials a variant gets kWarningTooFewTrials.
inline constexpr double kMinTrialsWithoutWarning = 30;
// Counts are clamped to this (2^53: beyond it doubles no longer hold every integer).
inline constexpr double kMaxCount = 9007199254740992.0;

// ---- User-visible strings (warnings in VariantStats, errors in GoalStats) ----
inline constexpr std::string_view kWarningNoTrials = "no trials";
inline constexpr std::string_view kWarningTooFewTrials = "too few trials";
inline constexpr std::string_view kWarningSuccessesExceedTrials =
    "successes exceed trials (clamped to trials)";
inline constexpr std::string_view kWarningInvalidCount =
    "invalid count (negative, not a number or too large; clamped)";
inline constexpr std::string_view kWarningBaselineNoTrials =
    "baseline has no trials: comparison not possible";
inline constexpr std::string_view kWarningBaselineZeroRate =
    "baseline rate is 0: relative improvement uses the adjusted (Agresti-Coull) estimate";
inline constexpr std::string_view kErrorNoVariants = "no variants";
inline constexpr std::string_view kErrorInvalidConfidence = "confidence must be in (0, 1)";
inline constexpr std::string_view kErrorUnknownBaseline = "baseline is not one of the variants";
inline constexpr std::string_view kErrorDuplicateLabel = "duplicate variant label";
inline constexpr std::string_view kErrorInvalidSplit =
    "expected_split must have one non-negative weight per variant with a positive sum";
inline constexpr std::string_view kErrorInternal = "internal error in statistics";

}  // namespace gimel::stats
