#include "hll/hash.h"

#include <string>

#include "gtest/gtest.h"
#include "hll/format.h"
#include "hll/hll.h"
#include "hll/testing.h"

namespace gimel::hll {
namespace {

TEST(HllHash, MapsKnownElementsToTheRegistersRedisUses) {
  // Recorded from redis-server 7.0.15: PFADD k <element>; PFDEBUG GETREG k.
  struct Known {
    std::string element;
    uint32_t index;
    uint8_t rank;
  };
  const Known known[] = {
      {"", 5938, 2},
      {"a", 12711, 2},
      {"hello", 9216, 1},
      {"foo", 7348, 5},
      {"gimel", 4881, 1},
      {"abcdefgh", 1383, 1},
      {"abcdefghi", 6903, 1},
      {"0123456789abcdef0", 16236, 1},
      {"user:12345", 10661, 3},
  };
  for (const Known& k : known) {
    const Register r = Hash(k.element);
    EXPECT_EQ(r.index, k.index) << '"' << k.element << '"';
    EXPECT_EQ(r.rank, k.rank) << '"' << k.element << '"';
  }
}

TEST(HllHash, RankIsOnePlusTrailingZerosAboveTheIndexCappedAt51) {
  using testing::KeyWithHash;
  EXPECT_EQ(MurmurHash64A(KeyWithHash(0x1234), format::kHashSeed), 0x1234u);
  EXPECT_EQ(Hash(KeyWithHash(0)).index, 0u);
  EXPECT_EQ(Hash(KeyWithHash(0)).rank, 51);  // all 50 bits zero: the sentinel bit counts
  EXPECT_EQ(Hash(KeyWithHash(0x3fff)).index, 0x3fffu);
  EXPECT_EQ(Hash(KeyWithHash(0x3fff)).rank, 51);
  EXPECT_EQ(Hash(KeyWithHash(uint64_t{1} << 14)).rank, 1);
  EXPECT_EQ(Hash(KeyWithHash(uint64_t{3} << 15 | 7)).rank, 2);
  EXPECT_EQ(Hash(KeyWithHash(uint64_t{1} << 63)).rank, 50);
  EXPECT_EQ(Hash(KeyWithHash(~uint64_t{0})).rank, 1);
}

TEST(HllHash, CraftedElementsHitTheChosenRegisterAndRank) {
  for (uint8_t rank = 1; rank <= format::kMaxRank; ++rank) {
    for (uint32_t index : {0u, 1u, 4095u, 16383u}) {
      const Register r = Hash(testing::ElementFor(index, rank, rank * 31 + index));
      EXPECT_EQ(r.index, index);
      EXPECT_EQ(r.rank, rank);
    }
  }
}

TEST(HllHash, EveryTailLengthIsHashed) {
  // Elements of length 0..16 that differ only in their last byte must (almost surely) differ
  // in hash: a tail byte that was ignored would make them collide.
  std::string base(16, 'x');
  for (size_t len = 1; len <= base.size(); ++len) {
    std::string a = base.substr(0, len), b = a;
    b.back() = 'y';
    EXPECT_NE(MurmurHash64A(a, format::kHashSeed), MurmurHash64A(b, format::kHashSeed)) << len;
  }
}

}  // namespace
}  // namespace gimel::hll
