#include "hll/sparse.h"

#include <array>
#include <string>

#include "gtest/gtest.h"
#include "hll/hll.h"
#include "hll/testing.h"

namespace gimel::hll {
namespace {

using testing::SplitMix64;

std::string OpsOf(const std::string& hll) { return hll.substr(format::kHeaderSize); }

std::string Bytes(std::initializer_list<uint8_t> b) { return std::string(b.begin(), b.end()); }

std::array<uint8_t, kRegisters> RegistersOf(std::string_view hll) {
  std::array<uint8_t, kRegisters> regs{};
  EXPECT_TRUE(DecodeRegisters(hll, regs).ok());
  return regs;
}

TEST(HllSparse, OpcodesHaveTheDocumentedBitPatterns) {
  EXPECT_EQ(sparse::ZeroOp(1), 0x00);
  EXPECT_EQ(sparse::ZeroOp(64), 0x3f);
  uint8_t x[2];
  sparse::PutXZero(x, 1);
  EXPECT_EQ(x[0], 0x40);
  EXPECT_EQ(x[1], 0x00);
  sparse::PutXZero(x, 16384);
  EXPECT_EQ(x[0], 0x7f);
  EXPECT_EQ(x[1], 0xff);
  EXPECT_EQ(sparse::XZeroLen(0x43, 0xe0), 993u);
  EXPECT_EQ(sparse::ValOp(1, 1), 0x80);
  EXPECT_EQ(sparse::ValOp(32, 4), 0xff);
  EXPECT_EQ(sparse::ValOp(3, 2), 0x89);
  EXPECT_EQ(sparse::ValValue(0x89), 3);
  EXPECT_EQ(sparse::ValLen(0x89), 2u);
}

TEST(HllSparse, WorkedExampleFromTheFormatDocument) {
  // docs/hll_format.md: registers 5 and 6 = 3, register 1000 = 1.
  std::string hll = Empty();
  EXPECT_EQ(OpsOf(hll), Bytes({0x7f, 0xff}));
  EXPECT_TRUE(SetRegister(&hll, 5, 3));
  EXPECT_EQ(OpsOf(hll), Bytes({0x04, 0x88, 0x7f, 0xf9}));
  EXPECT_TRUE(SetRegister(&hll, 6, 3));  // VAL(3,1) VAL(3,1) merge into VAL(3,2)
  EXPECT_EQ(OpsOf(hll), Bytes({0x04, 0x89, 0x7f, 0xf8}));
  EXPECT_TRUE(SetRegister(&hll, 1000, 1));
  EXPECT_EQ(OpsOf(hll), Bytes({0x04, 0x89, 0x43, 0xe0, 0x80, 0x7c, 0x16}));
  EXPECT_EQ(hll.size(), 23u);
  EXPECT_TRUE(Validate(hll).ok());
  EXPECT_FALSE(SetRegister(&hll, 6, 2));
  EXPECT_EQ(*Count(hll), 3u);
}

TEST(HllSparse, PromotesToDenseWhenValueExceeds32) {
  std::string hll = Empty();
  ASSERT_TRUE(SetRegister(&hll, 10, 32));
  EXPECT_FALSE(IsDense(hll));
  ASSERT_TRUE(SetRegister(&hll, 11, 33));
  EXPECT_TRUE(IsDense(hll));
  EXPECT_EQ(hll.size(), format::kDenseSize);
  const auto regs = RegistersOf(hll);
  EXPECT_EQ(regs[10], 32);
  EXPECT_EQ(regs[11], 33);
  EXPECT_EQ(static_cast<uint8_t>(hll[15]) & 0x80, 0x80);  // stale
}

TEST(HllSparse, PromotesToDenseRatherThanGrowPast3000Bytes) {
  // Every 5th register: each update splits the trailing XZERO into ZERO VAL XZERO (+2 bytes).
  std::string hll = Empty();
  size_t last_sparse_size = 0;
  uint32_t i = 0;
  for (; !IsDense(hll); i += 5) {
    last_sparse_size = hll.size();
    ASSERT_LE(last_sparse_size, format::kSparseMaxBytes);
    ASSERT_TRUE(SetRegister(&hll, i, 1 + i % 7));
  }
  EXPECT_GT(last_sparse_size + 2, format::kSparseMaxBytes);  // the next split would not fit
  const auto regs = RegistersOf(hll);
  for (uint32_t j = 0; j < kRegisters; ++j) {
    ASSERT_EQ(regs[j], j % 5 == 0 && j < i ? 1 + j % 7 : 0) << j;
  }
}

TEST(HllSparse, AgreesWithAPlainRegisterArrayUnderRandomUpdates) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::string hll = Empty();
    std::array<uint8_t, kRegisters> want{};
    const uint32_t spread = seed % 2 == 0 ? 400 : kRegisters;  // crowded or spread out
    for (uint64_t k = 0; k < 3000 && !IsDense(hll); ++k) {
      const uint64_t x = SplitMix64(seed * 100000 + k);
      const auto index = static_cast<uint32_t>(x % spread);
      const auto rank = static_cast<uint8_t>(1 + (x >> 32) % (k == 2500 ? 40 : 4));
      const bool changed = rank > want[index];
      want[index] = std::max(want[index], rank);
      ASSERT_EQ(SetRegister(&hll, index, rank), changed);
      ASSERT_TRUE(Validate(hll).ok());
      ASSERT_EQ(RegistersOf(hll), want) << "seed " << seed << " step " << k;
    }
  }
}

TEST(HllSparse, NeverLeavesTwoMergeableValsInsideTheWindow) {
  // Not a Redis guarantee in general, but after setting registers 0..3 to one value the four
  // must have been merged into a single VAL(v,4).
  std::string hll = Empty();
  for (uint32_t i : {2u, 0u, 3u, 1u}) SetRegister(&hll, i, 7);
  EXPECT_EQ(OpsOf(hll), Bytes({sparse::ValOp(7, 4), 0x7f, 0xfb}));
}

TEST(HllSparse, CursorGivesTheSameBytesAsAFullScan) {
  // Merge() walks registers in ascending order with a cursor; it must change nothing but speed.
  for (uint64_t seed = 0; seed < 40; ++seed) {
    std::string with = Empty(), without = Empty();
    // Start from a random sparse sketch, then apply ascending updates.
    for (int k = 0; k < 200; ++k) {
      const uint64_t x = SplitMix64(seed * 7919 + k);
      SetRegister(&with, x % (seed % 3 == 0 ? 300 : kRegisters), 1 + (x >> 40) % 3);
    }
    without = with;
    sparse::Cursor cursor;
    uint32_t index = 0;
    for (int k = 0; k < 2000; ++k) {
      const uint64_t x = SplitMix64(seed * 104729 + k + 1);
      index += x % (seed % 3 == 0 ? 3 : 12);
      if (index >= kRegisters) break;
      const auto value = static_cast<uint8_t>(1 + (x >> 33) % 4);
      const sparse::SetResult a = sparse::Set(&with, index, value, &cursor);
      const sparse::SetResult b = sparse::Set(&without, index, value);
      ASSERT_EQ(a, b) << "seed " << seed << " step " << k;
      if (a == sparse::SetResult::kPromote) break;
      ASSERT_EQ(with, without) << "seed " << seed << " step " << k;
    }
  }
}

TEST(HllSparse, ValidateOpsCountsRunsWithoutOverflow) {
  EXPECT_TRUE(sparse::ValidateOps(Bytes({0x7f, 0xff})).ok());
  EXPECT_TRUE(sparse::ValidateOps(Bytes({0x04, 0x89, 0x43, 0xe0, 0x80, 0x7c, 0x16})).ok());
  EXPECT_TRUE(sparse::ValidateOps("").IsCorruption());
  EXPECT_TRUE(sparse::ValidateOps(Bytes({0x7f})).IsCorruption());              // truncated
  EXPECT_TRUE(sparse::ValidateOps(Bytes({0x7f, 0xfe})).IsCorruption());        // 16383
  EXPECT_TRUE(sparse::ValidateOps(Bytes({0x7f, 0xff, 0x80})).IsCorruption());  // 16385
  EXPECT_TRUE(sparse::ValidateOps(Bytes({0x7f, 0xff, 0x7f, 0xff})).IsCorruption());
}

}  // namespace
}  // namespace gimel::hll
