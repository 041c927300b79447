#include "hll/estimator.h"

#include <array>
#include <cmath>

#include "gtest/gtest.h"
#include "hll/format.h"

namespace gimel::hll {
namespace {

TEST(HllEstimator, SigmaAndTauAtTheirEndpoints) {
  EXPECT_EQ(Sigma(0.0), 0.0);
  EXPECT_TRUE(std::isinf(Sigma(1.0)));
  EXPECT_EQ(Tau(0.0), 0.0);
  EXPECT_EQ(Tau(1.0), 0.0);
  // sigma(x) = x + x^2 + 2x^4 + 4x^8 + 8x^16 + 16x^32 + ...
  EXPECT_NEAR(Sigma(0.5), 0.5 + 0.25 + 2 * 0x1p-4 + 4 * 0x1p-8 + 8 * 0x1p-16 + 16 * 0x1p-32, 1e-15);
  // tau(x) = (1 - x - sum_k (1 - x^(2^-k))^2 2^-k) / 3; for x = 1/2 the sum is 0.0502115...
  EXPECT_NEAR(Tau(0.5), (0.5 - 0.05021151) / 3, 1e-8);
}

TEST(HllEstimator, EmptySketchCountsZero) {
  std::array<uint32_t, 64> histo{};
  histo[0] = format::kRegisterCount;
  EXPECT_EQ(Estimate(histo), 0u);
}

TEST(HllEstimator, MatchesRedisOnCraftedHistograms) {
  // PFCOUNT of crafted dense sketches, recorded from redis-server 7.0.15 (the redis test
  // EstimatorMatchesPfcountOnCraftedDenseRegisters prints them).
  struct Case {
    const char* name;
    std::array<uint32_t, 64> histo;
    uint64_t redis;
  };
  const auto with = [](std::initializer_list<std::pair<int, uint32_t>> counts) {
    std::array<uint32_t, 64> h{};
    for (auto [v, n] : counts) h[v] = n;
    return h;
  };
  constexpr uint32_t m = format::kRegisterCount;
  const Case cases[] = {
      {"one register at 1", with({{0, m - 1}, {1, 1}}), 1},
      {"all 1", with({{1, m}}), 23637},
      {"all 51", with({{51, m}}), uint64_t{1} << 63},
      {"all 63", with({{63, m}}), uint64_t{1} << 63},
      {"half 0, half 51", with({{0, m / 2}, {51, m / 2}}), 13268},
      {"one register at 51", with({{0, m - 1}, {51, 1}}), 1},
      {"all 50", with({{50, m}}), uint64_t{1} << 63},
      {"all 40", with({{40, m}}), 12994641697113596ULL},
  };
  for (const Case& c : cases) EXPECT_EQ(Estimate(c.histo), c.redis) << c.name;
}

}  // namespace
}  // namespace gimel::hll
