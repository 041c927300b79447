#include "hll/dense.h"

#include <array>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "hll/testing.h"

namespace gimel::hll::dense {
namespace {

TEST(HllDense, PacksRegistersLsbFirst) {
  std::array<uint8_t, format::kDenseRegistersSize> regs{};
  Put(regs.data(), 0, 1);
  EXPECT_EQ(regs[0], 0x01);
  Put(regs.data(), 1, 63);  // bits 6..11: top two bits of byte 0, low four of byte 1
  EXPECT_EQ(regs[0], 0xc1);
  EXPECT_EQ(regs[1], 0x0f);
  Put(regs.data(), 2, 0x2a);  // bits 12..17
  EXPECT_EQ(regs[1], 0xaf);
  EXPECT_EQ(regs[2], 0x02);
  Put(regs.data(), 3, 0x15);  // bits 18..23
  EXPECT_EQ(regs[2], 0x56);
  EXPECT_EQ(Get(regs.data(), 0), 1);
  EXPECT_EQ(Get(regs.data(), 1), 63);
  EXPECT_EQ(Get(regs.data(), 2), 0x2a);
  EXPECT_EQ(Get(regs.data(), 3), 0x15);
}

TEST(HllDense, SetGetRoundTripForEveryRegisterLeavesNeighboursAlone) {
  std::array<uint8_t, format::kDenseRegistersSize> regs{};
  std::array<uint8_t, format::kRegisterCount> want{};
  for (uint32_t i = 0; i < format::kRegisterCount; ++i) {
    want[i] = static_cast<uint8_t>(testing::SplitMix64(i) & 63);
    Put(regs.data(), i, want[i]);
  }
  for (uint32_t i = 0; i < format::kRegisterCount; ++i) ASSERT_EQ(Get(regs.data(), i), want[i]);
  std::array<uint8_t, format::kRegisterCount> unpacked{};
  Unpack(regs, unpacked);
  EXPECT_EQ(unpacked, want);
  std::array<uint8_t, format::kDenseRegistersSize> packed{};
  Pack(want, packed);
  EXPECT_EQ(packed, regs);
}

TEST(HllDense, LastRegisterStaysInsideTheArray) {
  // Exactly sized heap buffer, so AddressSanitizer flags any access past the end.
  auto regs = std::make_unique<uint8_t[]>(format::kDenseRegistersSize);
  Put(regs.get(), format::kRegisterCount - 1, 63);
  EXPECT_EQ(regs[format::kDenseRegistersSize - 1], 0xfc);
  EXPECT_EQ(Get(regs.get(), format::kRegisterCount - 1), 63);
  EXPECT_FALSE(SetMax(regs.get(), format::kRegisterCount - 1, 5));
  EXPECT_TRUE(SetMax(regs.get(), format::kRegisterCount - 2, 5));
  EXPECT_EQ(Get(regs.get(), format::kRegisterCount - 2), 5);
  EXPECT_EQ(Get(regs.get(), format::kRegisterCount - 1), 63);
}

TEST(HllDense, HistogramAndMaxSeeEveryRegister) {
  std::array<uint8_t, format::kRegisterCount> values{};
  for (uint32_t i = 0; i < format::kRegisterCount; ++i) values[i] = i % 64;
  std::array<uint8_t, format::kDenseRegistersSize> regs{};
  Pack(values, regs);
  std::array<uint32_t, 64> histo{};
  AddToHistogram(regs, histo);
  for (uint32_t v = 0; v < 64; ++v) EXPECT_EQ(histo[v], format::kRegisterCount / 64);
  std::array<uint8_t, format::kRegisterCount> max{};
  max.fill(30);
  MaxInto(regs, max);
  for (uint32_t i = 0; i < format::kRegisterCount; ++i)
    EXPECT_EQ(max[i], std::max(values[i], uint8_t{30}));
}

}  // namespace
}  // namespace gimel::hll::dense
