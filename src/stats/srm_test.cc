// SRM check: chi-squared goodness of fit against the expected split. Expected p-values were
// computed once with scipy.stats.chisquare (scipy 1.10.1).
#include "stats/srm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "stats/stats.h"

namespace gimel::stats {
namespace {

TEST(StatsSrm, KnownPValuesFromScipy) {
  EXPECT_NEAR(SampleRatioMismatch({1000, 1100}, {}, 0.001).p_value, 0.029096331741252267, 1e-9);
  EXPECT_NEAR(SampleRatioMismatch({1000, 1100, 950}, {}, 0.001).p_value, 0.0032221549052224925,
              1e-9);
  EXPECT_NEAR(SampleRatioMismatch({250, 760}, {1, 3}, 0.001).p_value, 0.8558431980266548, 1e-9);
  EXPECT_NEAR(SampleRatioMismatch({10000, 10500}, {}, 0.001).p_value, 0.00047914643458730067, 1e-9);
}

TEST(StatsSrm, SkewedSplitIsFlagged) {
  const SrmResult r = SampleRatioMismatch({10000, 10500}, {}, 0.001);
  EXPECT_TRUE(r.mismatch);
  EXPECT_TRUE(SampleRatioMismatch({5000, 4000, 5000}, {}, 0.001).mismatch);
}

TEST(StatsSrm, EvenSplitIsNotFlagged) {
  const SrmResult r = SampleRatioMismatch({10000, 10040, 9980}, {}, 0.001);
  EXPECT_FALSE(r.mismatch);
  EXPECT_GT(r.p_value, 0.5);
  EXPECT_DOUBLE_EQ(SampleRatioMismatch({777, 777}, {}, 0.001).p_value, 1.0);
}

TEST(StatsSrm, UnequalExpectedSplitIsRespected) {
  EXPECT_FALSE(SampleRatioMismatch({2500, 7500}, {1, 3}, 0.001).mismatch);
  EXPECT_TRUE(SampleRatioMismatch({5000, 5000}, {1, 3}, 0.001).mismatch);
}

TEST(StatsSrm, UntestableInputsGiveNoMismatch) {
  for (const auto& trials : std::vector<std::vector<double>>{{}, {100}, {0, 0}, {0, 0, 0}}) {
    const SrmResult r = SampleRatioMismatch(trials, {}, 0.001);
    EXPECT_EQ(r.p_value, 1);
    EXPECT_FALSE(r.mismatch);
  }
  // Invalid weights: not testable rather than an exception or NaN.
  EXPECT_EQ(SampleRatioMismatch({10, 1000}, {1}, 0.001).p_value, 1);
  EXPECT_EQ(SampleRatioMismatch({10, 1000}, {-1, 2}, 0.001).p_value, 1);
  EXPECT_EQ(SampleRatioMismatch({10, 1000}, {0, 0}, 0.001).p_value, 1);
  EXPECT_EQ(SampleRatioMismatch({10, 1000}, {NAN, 1}, 0.001).p_value, 1);
}

TEST(StatsSrm, TrafficToAZeroWeightVariantIsAMismatch) {
  const SrmResult r = SampleRatioMismatch({100, 100, 3}, {1, 1, 0}, 0.001);
  EXPECT_EQ(r.p_value, 0);
  EXPECT_TRUE(r.mismatch);
  EXPECT_FALSE(SampleRatioMismatch({100, 100, 0}, {1, 1, 0}, 0.001).mismatch);
}

TEST(StatsSrm, HugeCountsStayFinite) {
  const SrmResult r = SampleRatioMismatch({1e9, 1.001e9}, {}, 0.001);
  EXPECT_TRUE(std::isfinite(r.p_value));
  EXPECT_TRUE(r.mismatch);  // 0.1 % at 10^9 is 22 standard deviations
  EXPECT_EQ(SampleRatioMismatch({9e15, 0}, {}, 0.001).p_value, 0);
}

// HyperLogLog counts are off by ~0.81 %: at 10^8 users that alone exceeds sampling noise by
// two orders of magnitude, so an exact test flags every experiment. Widening by the HLL error
// keeps such a split unflagged while a real 10 % skew is still caught.
TEST(StatsSrm, CountRelativeErrorAbsorbsHllNoise) {
  const std::vector<double> trials = {1.0e8, 1.01e8};  // 1 % apart, within HLL error
  EXPECT_TRUE(SampleRatioMismatch(trials, {}, 0.001).mismatch);
  EXPECT_FALSE(SampleRatioMismatch(trials, {}, 0.001, kHllRelativeError).mismatch);
  EXPECT_TRUE(SampleRatioMismatch({1.0e8, 1.1e8}, {}, 0.001, kHllRelativeError).mismatch);
}

}  // namespace
}  // namespace gimel::stats
