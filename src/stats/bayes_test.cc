// Bayesian chance-to-beat and expected loss against closed forms computed independently here:
// Evan Miller's sum for P(p_B > p_A) and Stucchio's identity for the expected loss.
#include "stats/bayes.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <numbers>

namespace gimel::stats {
namespace {

double LogBeta(double a, double b) { return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b); }

// Evan Miller, "Formulas for Bayesian A/B testing": for A ~ Beta(a_a, b_a), B ~ Beta(a_b, b_b)
// with integer a_b, P(B > A) = sum_{i=0}^{a_b-1} B(a_a+i, b_a+b_b) / ((b_b+i) B(1+i, b_b)
// B(a_a, b_a)).
double MillerProbabilityBBeatsA(double a_a, double b_a, double a_b, double b_b) {
  double total = 0;
  for (double i = 0; i < a_b; i += 1) {
    total += std::exp(LogBeta(a_a + i, b_a + b_b) - std::log(b_b + i) - LogBeta(1 + i, b_b) -
                      LogBeta(a_a, b_a));
  }
  return total;
}

// Chance that the variation (s_v of n_v) beats the baseline (s_b of n_b), closed form.
double ClosedFormChance(double s_b, double n_b, double s_v, double n_v) {
  return MillerProbabilityBBeatsA(1 + s_b, 1 + n_b - s_b, 1 + s_v, 1 + n_v - s_v);
}

// Stucchio: E[max(X_b - X_v, 0)] = mean_b P(X_b' > X_v) - mean_v P(X_b > X_v'), where '
// increments alpha. Both probabilities via Miller's sum.
double ClosedFormLoss(double s_b, double n_b, double s_v, double n_v) {
  const double a_b = 1 + s_b, b_b = 1 + n_b - s_b, a_v = 1 + s_v, b_v = 1 + n_v - s_v;
  const double mean_b = a_b / (a_b + b_b), mean_v = a_v / (a_v + b_v);
  const double p1 = MillerProbabilityBBeatsA(a_v, b_v, a_b + 1, b_b);  // X_b' > X_v
  const double p2 = MillerProbabilityBBeatsA(a_v + 1, b_v, a_b, b_b);  // X_b > X_v'
  return mean_b * p1 - mean_v * p2;
}

struct Case {
  double s_b, n_b, s_v, n_v;
};

TEST(StatsBayes, ChanceAndLossMatchClosedForms) {
  const Case cases[] = {
      {20, 1000, 60, 2000},  // variation narrower
      {60, 2000, 20, 1000},  // baseline narrower
      {5, 10, 5, 10},        // symmetric: chance 1/2
      {0, 50, 3, 40},        // zero baseline successes
      {10, 10, 9, 10},       // all successes
      {3000, 100000, 3100, 100000},
      {120, 1000, 2500, 20000},  // very different widths
      {0, 0, 1, 1},
  };
  for (const Case& c : cases) {
    const BayesResult r = CompareBetaPosteriors(c.s_b, c.n_b, c.s_v, c.n_v);
    EXPECT_NEAR(r.chance_to_beat_baseline, ClosedFormChance(c.s_b, c.n_b, c.s_v, c.n_v), 1e-6)
        << c.s_b << "/" << c.n_b << " vs " << c.s_v << "/" << c.n_v;
    EXPECT_NEAR(r.expected_loss, ClosedFormLoss(c.s_b, c.n_b, c.s_v, c.n_v), 1e-7)
        << c.s_b << "/" << c.n_b << " vs " << c.s_v << "/" << c.n_v;
  }
}

TEST(StatsBayes, UniformAgainstOneSuccessByHand) {
  // X_b ~ Beta(1, 1), X_v ~ Beta(2, 1): P(X_v > X_b) = ∫ 2x * x dx = 2/3 and
  // E[max(X_b - X_v, 0)] = ∫ 2x (1 - x)^2 / 2 dx = 1/12.
  const BayesResult r = CompareBetaPosteriors(0, 0, 1, 1);
  EXPECT_NEAR(r.chance_to_beat_baseline, 2.0 / 3, 1e-9);
  EXPECT_NEAR(r.expected_loss, 1.0 / 12, 1e-9);
}

TEST(StatsBayes, NoDataIsACoinFlip) {
  const BayesResult r = CompareBetaPosteriors(0, 0, 0, 0);
  EXPECT_NEAR(r.chance_to_beat_baseline, 0.5, 1e-9);
  // E[max(U1 - U2, 0)] for independent uniforms = 1/6.
  EXPECT_NEAR(r.expected_loss, 1.0 / 6, 1e-9);
}

TEST(StatsBayes, OneBillionTrialsMatchesNormalApproximationQuickly) {
  const double n = 1e9;
  const auto start = std::chrono::steady_clock::now();
  const BayesResult r = CompareBetaPosteriors(0.1 * n, n, 0.1 * n + 20000, n);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Posterior sds ~ sqrt(0.09 / 1e9) = 9.49e-6 each; difference 2e-5.
  const double sd = std::sqrt(2 * 0.1 * 0.9 / n);
  const double m = -2e4 / n;  // mean of X_b - X_v
  const double z = m / sd;
  const double chance = 0.5 * std::erfc(z / std::sqrt(2.0));
  const double loss = sd * std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi) +
                      m * 0.5 * std::erfc(-z / std::sqrt(2.0));
  EXPECT_NEAR(r.chance_to_beat_baseline, chance, 1e-3);
  EXPECT_NEAR(r.expected_loss, loss, 1e-7);
  EXPECT_LT(seconds, 1.0);
}

TEST(StatsBayes, ExtremeCountsStayFiniteAndInRange) {
  const Case cases[] = {{0, 1e9, 0, 1e9},   {1e9, 1e9, 0, 1e9}, {0, 1e9, 1e9, 1e9},
                        {0, 0, 5e8, 1e9},   {1, 2, 5e8, 1e9},   {9e15, 9e15, 0, 9e15},
                        {0, 9e15, 1, 9e15}, {0, 1, 0, 1e12}};
  for (const Case& c : cases) {
    const BayesResult r = CompareBetaPosteriors(c.s_b, c.n_b, c.s_v, c.n_v);
    EXPECT_TRUE(std::isfinite(r.chance_to_beat_baseline));
    EXPECT_TRUE(std::isfinite(r.expected_loss));
    EXPECT_GE(r.chance_to_beat_baseline, 0);
    EXPECT_LE(r.chance_to_beat_baseline, 1);
    EXPECT_GE(r.expected_loss, 0);
    EXPECT_LE(r.expected_loss, 1);
  }
  EXPECT_NEAR(CompareBetaPosteriors(1e9, 1e9, 0, 1e9).chance_to_beat_baseline, 0, 1e-9);
  EXPECT_NEAR(CompareBetaPosteriors(1e9, 1e9, 0, 1e9).expected_loss, 1, 1e-6);
  EXPECT_NEAR(CompareBetaPosteriors(0, 1e9, 1e9, 1e9).chance_to_beat_baseline, 1, 1e-9);
}

}  // namespace
}  // namespace gimel::stats
