// AnalyzeGoal: glue, edge cases (no trials, no successes, successes > trials, one variant,
// 10^9 trials, garbage counts) and the "every number finite" guarantee.
#include "stats/stats.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace gimel::stats {
namespace {

bool Has(const std::vector<std::string>& warnings, std::string_view w) {
  for (const auto& x : warnings) {
    if (x == w) return true;
  }
  return false;
}

void ExpectFiniteInterval(const Interval& i, const std::string& what) {
  EXPECT_TRUE(std::isfinite(i.value)) << what;
  EXPECT_TRUE(std::isfinite(i.lower)) << what;
  EXPECT_TRUE(std::isfinite(i.upper)) << what;
  EXPECT_LE(i.lower, i.upper) << what;
}

// Every number finite and in its range; the baseline has no comparison fields, the others all.
void ExpectSane(const GoalStats& stats) {
  ASSERT_EQ(stats.error, "");
  EXPECT_TRUE(std::isfinite(stats.srm.p_value));
  EXPECT_GE(stats.srm.p_value, 0);
  EXPECT_LE(stats.srm.p_value, 1);
  for (const VariantStats& v : stats.results) {
    const std::string what = v.label;
    EXPECT_TRUE(std::isfinite(v.successes) && std::isfinite(v.trials)) << what;
    EXPECT_LE(v.successes, v.trials) << what;
    ExpectFiniteInterval(v.rate, what + " rate");
    EXPECT_GE(v.rate.lower, 0) << what;
    EXPECT_LE(v.rate.upper, 1) << what;
    EXPECT_GE(v.rate.value, 0) << what;
    EXPECT_LE(v.rate.value, 1) << what;
    if (v.label == stats.baseline) {
      EXPECT_FALSE(v.improvement || v.relative_improvement || v.p_value || v.p_value_one_tailed ||
                   v.chance_to_beat_baseline || v.expected_loss);
      continue;
    }
    ASSERT_TRUE(v.improvement && v.relative_improvement && v.p_value && v.p_value_one_tailed &&
                v.chance_to_beat_baseline && v.expected_loss)
        << what;
    ExpectFiniteInterval(*v.improvement, what + " improvement");
    ExpectFiniteInterval(*v.relative_improvement, what + " relative_improvement");
    for (double p :
         {*v.p_value, *v.p_value_one_tailed, *v.chance_to_beat_baseline, *v.expected_loss}) {
      EXPECT_TRUE(std::isfinite(p)) << what;
      EXPECT_GE(p, 0) << what;
      EXPECT_LE(p, 1) << what;
    }
  }
}

TEST(StatsAnalyze, TypicalGoal) {
  const GoalStats stats =
      AnalyzeGoal({{"red", 40, 1000}, {"blue", 57, 998}, {"green", 38, 1003}}, Options{});
  ExpectSane(stats);
  EXPECT_EQ(stats.baseline, "red");
  ASSERT_EQ(stats.results.size(), 3u);
  EXPECT_EQ(stats.results[1].label, "blue");
  EXPECT_NEAR(stats.results[1].rate.value, 57.0 / 998, 1e-12);
  EXPECT_NEAR(stats.results[1].improvement->value, 57.0 / 998 - 0.04, 1e-12);
  EXPECT_GT(*stats.results[1].chance_to_beat_baseline, 0.9);
  EXPECT_LT(*stats.results[2].chance_to_beat_baseline, 0.5);
  EXPECT_LT(*stats.results[1].p_value_one_tailed, *stats.results[1].p_value);
  EXPECT_FALSE(stats.srm.mismatch);
  for (const auto& v : stats.results) EXPECT_TRUE(v.warnings.empty()) << v.label;
}

TEST(StatsAnalyze, NamedBaselineNeedNotBeFirst) {
  Options options;
  options.baseline = "blue";
  const GoalStats stats = AnalyzeGoal({{"red", 40, 1000}, {"blue", 57, 998}}, options);
  ExpectSane(stats);
  EXPECT_EQ(stats.baseline, "blue");
  EXPECT_TRUE(stats.results[0].improvement.has_value());
  EXPECT_FALSE(stats.results[1].improvement.has_value());
  EXPECT_LT(stats.results[0].improvement->value, 0);
}

TEST(StatsAnalyze, RequestErrorsAreReportedNotThrown) {
  EXPECT_EQ(AnalyzeGoal({}, Options{}).error, kErrorNoVariants);
  Options bad_confidence;
  for (double c : {0.0, 1.0, -1.0, 2.0, std::numeric_limits<double>::quiet_NaN()}) {
    bad_confidence.confidence = c;
    const GoalStats s = AnalyzeGoal({{"a", 1, 10}}, bad_confidence);
    EXPECT_EQ(s.error, kErrorInvalidConfidence) << c;
    EXPECT_TRUE(s.results.empty());
  }
  Options unknown;
  unknown.baseline = "nope";
  EXPECT_NE(AnalyzeGoal({{"a", 1, 10}}, unknown).error.find(kErrorUnknownBaseline),
            std::string::npos);
  EXPECT_NE(AnalyzeGoal({{"a", 1, 10}, {"a", 2, 10}}, Options{}).error.find(kErrorDuplicateLabel),
            std::string::npos);
  Options split;
  split.expected_split = {1, 2, 3};
  EXPECT_EQ(AnalyzeGoal({{"a", 1, 10}, {"b", 2, 10}}, split).error, kErrorInvalidSplit);
}

TEST(StatsAnalyze, OneVariantOnly) {
  const GoalStats stats = AnalyzeGoal({{"only", 5, 100}}, Options{});
  ExpectSane(stats);
  ASSERT_EQ(stats.results.size(), 1u);
  EXPECT_EQ(stats.srm.p_value, 1);
  EXPECT_FALSE(stats.srm.mismatch);
}

TEST(StatsAnalyze, ZeroTrialsEverywhere) {
  const GoalStats stats = AnalyzeGoal({{"a", 0, 0}, {"b", 0, 0}}, Options{});
  ExpectSane(stats);
  const VariantStats& b = stats.results[1];
  EXPECT_EQ(b.rate.value, 0);
  EXPECT_EQ(*b.p_value, 1);
  EXPECT_EQ(*b.p_value_one_tailed, 1);
  EXPECT_NEAR(*b.chance_to_beat_baseline, 0.5, 1e-9);
  EXPECT_TRUE(Has(b.warnings, kWarningNoTrials));
  EXPECT_TRUE(Has(b.warnings, kWarningBaselineNoTrials));
  EXPECT_TRUE(Has(stats.results[0].warnings, kWarningNoTrials));
}

TEST(StatsAnalyze, ZeroTrialsInVariantOnly) {
  const GoalStats stats = AnalyzeGoal({{"a", 50, 1000}, {"b", 0, 0}}, Options{});
  ExpectSane(stats);
  EXPECT_EQ(stats.results[1].improvement->value, 0);
  EXPECT_EQ(*stats.results[1].p_value, 1);
  EXPECT_TRUE(stats.srm.mismatch);  // all traffic went to one side
}

TEST(StatsAnalyze, ZeroSuccesses) {
  const GoalStats stats = AnalyzeGoal({{"a", 0, 1000}, {"b", 0, 1000}}, Options{});
  ExpectSane(stats);
  EXPECT_EQ(stats.results[1].improvement->value, 0);
  EXPECT_EQ(*stats.results[1].p_value, 1);
  EXPECT_EQ(stats.results[0].rate.lower, 0);  // Agresti-Coull would dip below 0: clipped
}

TEST(StatsAnalyze, ZeroBaselineSuccessesGiveAFiniteRelativeImprovement) {
  const GoalStats stats = AnalyzeGoal({{"a", 0, 1000}, {"b", 10, 1000}}, Options{});
  ExpectSane(stats);
  const VariantStats& b = stats.results[1];
  EXPECT_TRUE(Has(b.warnings, kWarningBaselineZeroRate));
  EXPECT_GT(b.relative_improvement->value, 0);
  EXPECT_LT(*b.p_value, 0.01);
}

TEST(StatsAnalyze, SuccessesExceedingTrialsAreClampedAndFlagged) {
  // HLL estimates of two sets can cross: 1003 "converted" of 1000 "exposed".
  const GoalStats stats = AnalyzeGoal({{"a", 50, 1000}, {"b", 1003, 1000}}, Options{});
  ExpectSane(stats);
  const VariantStats& b = stats.results[1];
  EXPECT_EQ(b.successes, 1000);
  EXPECT_EQ(b.rate.value, 1);
  EXPECT_TRUE(Has(b.warnings, kWarningSuccessesExceedTrials));
}

TEST(StatsAnalyze, GarbageCountsAreClampedAndFlagged) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const GoalStats stats = AnalyzeGoal(
      {{"a", -5, 100}, {"b", nan, 100}, {"c", 5, inf}, {"d", 1e300, 1e300}, {"e", 2.6, 10.4}},
      Options{});
  ExpectSane(stats);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(Has(stats.results[i].warnings, kWarningInvalidCount)) << i;
  }
  EXPECT_EQ(stats.results[0].successes, 0);
  EXPECT_EQ(stats.results[2].trials, 0);
  EXPECT_EQ(stats.results[3].trials, kMaxCount);
  EXPECT_EQ(stats.results[4].successes, 3);  // rounded
  EXPECT_EQ(stats.results[4].trials, 10);
  EXPECT_TRUE(Has(stats.results[4].warnings, kWarningTooFewTrials));
}

TEST(StatsAnalyze, OneBillionTrialsIsFiniteAndFast) {
  const auto start = std::chrono::steady_clock::now();
  const GoalStats stats = AnalyzeGoal({{"a", 1e8, 1e9},
                                       {"b", 1e8 + 150000, 1e9},
                                       {"c", 1e8 - 3000, 1e9 + 1000},
                                       {"d", 0, 1e9},
                                       {"e", 1e9, 1e9}},
                                      Options{});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ExpectSane(stats);
  EXPECT_LT(*stats.results[1].p_value, 1.1e-5);  // Abba adds its 1e-5 coverage bound
  EXPECT_GT(*stats.results[1].chance_to_beat_baseline, 0.999);
  EXPECT_GT(*stats.results[2].p_value, 0.1);
  EXPECT_NEAR(*stats.results[3].chance_to_beat_baseline, 0, 1e-6);
  EXPECT_NEAR(*stats.results[4].chance_to_beat_baseline, 1, 1e-6);
  EXPECT_LT(seconds, 2.0) << "4 comparisons at 10^9 trials";
}

TEST(StatsAnalyze, MaximalCountsStayFinite) {
  ExpectSane(AnalyzeGoal({{"a", kMaxCount / 2, kMaxCount}, {"b", 1, kMaxCount}}, Options{}));
  ExpectSane(AnalyzeGoal({{"a", 0, kMaxCount}, {"b", kMaxCount, kMaxCount}}, Options{}));
  ExpectSane(AnalyzeGoal({{"a", 1, 1}, {"b", 1, kMaxCount}}, Options{}));
}

TEST(StatsAnalyze, ExtremeConfidenceStaysFinite) {
  for (double c : {1e-9, 0.5, 0.999999999}) {
    Options options;
    options.confidence = c;
    ExpectSane(AnalyzeGoal({{"a", 3, 10}, {"b", 0, 1}, {"c", 7, 7}}, options));
  }
}

// A small fuzz: random counts across magnitudes must always give sane output.
TEST(StatsAnalyze, RandomCountsAlwaysGiveSaneOutput) {
  const char* const kLabels[] = {"v0", "v1", "v2", "v3"};
  std::mt19937_64 rng(20240501);
  std::uniform_real_distribution<double> exponent(0, 9);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int round = 0; round < 150; ++round) {
    std::vector<VariantCounts> variants;
    const int k = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < k; ++i) {
      const double trials = std::floor(std::pow(10.0, exponent(rng))) - (rng() % 3 == 0 ? 1 : 0);
      const double rate = unit(rng) < 0.2 ? (rng() % 2) : std::pow(unit(rng), 3);
      double successes = std::round(trials * rate);
      if (rng() % 10 == 0) successes += 3;  // occasionally exceed trials
      VariantCounts counts;
      counts.label = kLabels[i];
      counts.successes = successes;
      counts.trials = trials;
      variants.push_back(counts);
    }
    Options options;
    options.confidence = 0.5 + 0.49 * unit(rng);
    ExpectSane(AnalyzeGoal(variants, options));
  }
}

}  // namespace
}  // namespace gimel::stats
