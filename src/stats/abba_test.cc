// Known-value tests against Thumbtack Abba: tests/data/stats/abba_cases.json holds Abba's
// published test values (and reference runs of Abba's Python code), compared at 1e-3.
#include "stats/abba.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stats/stats.h"

namespace gimel::stats {
namespace {

nlohmann::json LoadCases() {
  std::ifstream in(GIMEL_SOURCE_DIR "/tests/data/stats/abba_cases.json");
  EXPECT_TRUE(in.good()) << "missing tests/data/stats/abba_cases.json";
  return nlohmann::json::parse(in);
}

double Tolerance(const nlohmann::json& cases) { return cases.at("tolerance").get<double>(); }

TEST(StatsAbba, ZCriticalValueMatchesAbba) {
  const nlohmann::json cases = LoadCases();
  for (const auto& c : cases["published"]["z_critical_values"]) {
    EXPECT_NEAR(ZCriticalValue(c["alpha"]), c["z"].get<double>(), Tolerance(cases)) << c["source"];
  }
  EXPECT_NEAR(ZCriticalValue(0.05), 1.959963984540054, 1e-12);
  EXPECT_EQ(ZCriticalValue(1.0), 0.0);
  EXPECT_TRUE(std::isfinite(ZCriticalValue(0.0)));
  EXPECT_TRUE(std::isfinite(ZCriticalValue(std::nan(""))));
}

TEST(StatsAbba, ProportionEstimatesMatchAbba) {
  const nlohmann::json cases = LoadCases();
  for (const auto& c : cases["published"]["proportion_estimates"]) {
    const ValueWithError e = ProportionEstimate(c["successes"], c["trials"], c["z"]);
    EXPECT_NEAR(e.value, c["value"].get<double>(), Tolerance(cases)) << c["source"];
    EXPECT_NEAR(e.error, c["error"].get<double>(), Tolerance(cases)) << c["source"];
  }
}

TEST(StatsAbba, ProportionEstimateWithoutTrialsIsZero) {
  const ValueWithError wald = ProportionEstimate(0, 0, 0);
  EXPECT_EQ(wald.value, 0);
  EXPECT_EQ(wald.error, 0);
  // Agresti-Coull with no data: centre 1/2, interval 1/2 +- 1/2.
  const double z = ZCriticalValue(0.05);
  const ValueWithError adjusted = ProportionEstimate(0, 0, z);
  EXPECT_DOUBLE_EQ(adjusted.value, 0.5);
  EXPECT_DOUBLE_EQ(z * adjusted.error, 0.5);
}

TEST(StatsAbba, DifferencesMatchAbba) {
  const nlohmann::json cases = LoadCases();
  for (const auto& c : cases["published"]["differences"]) {
    const auto& b = c["baseline"];
    const auto& v = c["variant"];
    const ValueWithError d =
        DifferenceEstimate(b["successes"], b["trials"], v["successes"], v["trials"], c["z"]);
    const ValueWithError r =
        DifferenceRatio(b["successes"], b["trials"], v["successes"], v["trials"], c["z"]);
    EXPECT_NEAR(d.value, c["difference"].get<double>(), Tolerance(cases)) << c["source"];
    EXPECT_NEAR(d.error, c["difference_error"].get<double>(), Tolerance(cases)) << c["source"];
    EXPECT_NEAR(r.value, c["ratio"].get<double>(), Tolerance(cases)) << c["source"];
    EXPECT_NEAR(r.error, c["ratio_error"].get<double>(), Tolerance(cases)) << c["source"];
  }
}

TEST(StatsAbba, DifferenceRatioWithZeroBaselineRateIsZeroNotInfinite) {
  const ValueWithError r = DifferenceRatio(0, 100, 5, 100, 0);
  EXPECT_EQ(r.value, 0);
  EXPECT_EQ(r.error, 0);
}

TEST(StatsAbba, IteratedTestsMatchAbba) {
  const nlohmann::json cases = LoadCases();
  for (const auto& c : cases["published"]["iterated_tests"]) {
    const auto& b = c["baseline"];
    const auto& v = c["variant"];
    for (bool one_tailed : {false, true}) {
      const double p = IteratedTest(b["successes"], b["trials"], v["successes"], v["trials"],
                                    c["num_tests"], one_tailed, c["coverage_alpha"]);
      const char* key = one_tailed ? "p_value_one_tailed" : "p_value";
      EXPECT_NEAR(p, c[key].get<double>(), Tolerance(cases)) << c["source"] << " " << key;
    }
  }
}

// Runs an Abba Experiment case through AnalyzeGoal: the baseline, the variant under test and
// num_comparisons - 1 copies of it, so that Bonferroni and Šidák see num_comparisons tests.
void CheckExperiment(const nlohmann::json& c, double tolerance) {
  std::vector<VariantCounts> variants = {
      {"baseline", c["baseline"]["successes"], c["baseline"]["trials"]},
      {"variant", c["variant"]["successes"], c["variant"]["trials"]}};
  for (int i = 1; i < c["num_comparisons"].get<int>(); ++i) {
    variants.push_back({"copy" + std::to_string(i), variants[1].successes, variants[1].trials});
  }
  Options options;
  options.confidence = c["confidence"];
  const GoalStats stats = AnalyzeGoal(variants, options);
  ASSERT_EQ(stats.error, "");
  ASSERT_EQ(stats.results.size(), variants.size());
  const VariantStats& base = stats.results[0];
  const VariantStats& var = stats.results[1];
  const std::string name = c.contains("source") ? c["source"] : c["name"];
  const nlohmann::json& e = c["expected"];

  auto check_interval = [&](const char* key, const Interval& actual) {
    if (!e.contains(key)) return;
    for (const char* part : {"value", "lower", "upper"}) {
      if (!e[key].contains(part)) continue;
      const double got = std::string(part) == "value"   ? actual.value
                         : std::string(part) == "lower" ? actual.lower
                                                        : actual.upper;
      EXPECT_NEAR(got, e[key][part].get<double>(), tolerance) << name << " " << key << "." << part;
    }
  };
  check_interval("baseline_rate", base.rate);
  check_interval("rate", var.rate);
  ASSERT_TRUE(var.improvement && var.relative_improvement && var.p_value && var.p_value_one_tailed);
  check_interval("improvement", *var.improvement);
  check_interval("relative_improvement", *var.relative_improvement);
  if (e.contains("p_value")) {
    EXPECT_NEAR(*var.p_value, e["p_value"].get<double>(), tolerance) << name;
  }
  if (e.contains("p_value_one_tailed")) {
    EXPECT_NEAR(*var.p_value_one_tailed, e["p_value_one_tailed"].get<double>(), tolerance) << name;
  }
}

TEST(StatsAbba, PublishedConfidenceIntervalsMatchAbba) {
  const nlohmann::json cases = LoadCases();
  for (const auto& c : cases["published"]["confidence_intervals"]) {
    Options options;
    options.confidence = c["confidence"];
    const GoalStats stats = AnalyzeGoal({{"only", c["successes"], c["trials"]}}, options);
    ASSERT_EQ(stats.results.size(), 1u);
    EXPECT_NEAR(stats.results[0].rate.value, c["value"].get<double>(), Tolerance(cases));
    EXPECT_NEAR(stats.results[0].rate.lower, c["lower"].get<double>(), Tolerance(cases));
    EXPECT_NEAR(stats.results[0].rate.upper, c["upper"].get<double>(), Tolerance(cases));
  }
}

TEST(StatsAbba, PublishedExperimentsMatchAbba) {
  const nlohmann::json cases = LoadCases();
  ASSERT_FALSE(cases["published"]["experiments"].empty());
  for (const auto& c : cases["published"]["experiments"]) CheckExperiment(c, Tolerance(cases));
}

TEST(StatsAbba, ReferenceRunsOfAbbaPythonMatch) {
  const nlohmann::json cases = LoadCases();
  ASSERT_FALSE(cases["reference_runs"]["experiments"].empty());
  for (const auto& c : cases["reference_runs"]["experiments"]) {
    CheckExperiment(c, Tolerance(cases));
  }
}

TEST(StatsAbba, IteratedTestIsOneWithoutTrials) {
  EXPECT_EQ(IteratedTest(0, 0, 5, 10, 1, false), 1);
  EXPECT_EQ(IteratedTest(5, 10, 0, 0, 1, true), 1);
}

TEST(StatsAbba, IteratedTestWithNoSuccessesAnywhereIsOne) {
  EXPECT_EQ(IteratedTest(0, 1000, 0, 1000, 1, false), 1);
  EXPECT_EQ(IteratedTest(0, 1000, 0, 1000, 1, true), 1);
  EXPECT_EQ(IteratedTest(1000, 1000, 1000, 1000, 3, true), 1);
}

TEST(StatsAbba, SidakCorrectionGrowsWithComparisons) {
  const double one = IteratedTest(200, 10000, 260, 10000, 1, false);
  const double five = IteratedTest(200, 10000, 260, 10000, 5, false);
  EXPECT_LT(one, five);
  // Šidák on a continuous p would give 1 - (1 - p)^5; the iterated test is at most that.
  EXPECT_LE(five, 1 - std::pow(1 - one, 5) + 1e-3);
}

TEST(StatsAbba, IteratedTestAtOneBillionTrialsIsFastAndMatchesZTest) {
  // 2 * 10^9 trials: the baseline range is binned to kMaxIteratedSteps outcomes.
  const double n = 1e9;
  const double sb = 0.1 * n;
  const double sv = 0.1 * n + 40000;  // z ~ 4.2 / sqrt(2) ~ 2.98
  const double p = IteratedTest(sb, n, sv, n, 1, false);
  const double p1 = IteratedTest(sb, n, sv, n, 1, true);
  // Pooled two-proportion z-test, which the iterated test approaches for large counts.
  const double pooled = (sb + sv) / (2 * n);
  const double z = (sv / n - sb / n) / std::sqrt(pooled * (1 - pooled) * 2 / n);
  EXPECT_NEAR(p, std::erfc(z / std::sqrt(2.0)), 1e-3);
  EXPECT_NEAR(p1, 0.5 * std::erfc(z / std::sqrt(2.0)), 1e-3);
}

}  // namespace
}  // namespace gimel::stats
