// The public API: construction, validation of untrusted bytes (corruption cases and a fuzz
// loop), counting and its cache, merging, unions, and accuracy.
#include "hll/hll.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hll/format.h"
#include "hll/testing.h"

namespace gimel::hll {
namespace {

using testing::ElementFor;
using testing::SplitMix64;

std::string Uuid(uint64_t i) {
  char buf[40];
  const uint64_t a = SplitMix64(i), b = SplitMix64(~i);
  snprintf(buf, sizeof buf, "%016llx-%016llx", static_cast<unsigned long long>(a),
           static_cast<unsigned long long>(b));
  return buf;
}

std::string WithUuids(uint64_t from, uint64_t n) {
  std::string hll = Empty();
  for (uint64_t i = from; i < from + n; ++i) Add(&hll, Uuid(i));
  return hll;
}

std::array<uint8_t, kRegisters> RegistersOf(std::string_view hll) {
  std::array<uint8_t, kRegisters> regs{};
  EXPECT_TRUE(DecodeRegisters(hll, regs).ok());
  return regs;
}

// ---- Construction -------------------------------------------------------------------------------

TEST(HllEmpty, IsRedisEighteenByteSparseSketch) {
  const std::string e = Empty();
  EXPECT_EQ(e, std::string("HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff", 18));
  EXPECT_TRUE(Validate(e).ok());
  EXPECT_FALSE(IsDense(e));
  EXPECT_EQ(*Count(e), 0u);
  std::array<uint8_t, kRegisters> zero{};
  EXPECT_EQ(RegistersOf(e), zero);
}

TEST(HllAdd, ReportsChangesOnlyForNewMaxima) {
  std::string hll = Empty();
  EXPECT_TRUE(Add(&hll, "alice"));
  EXPECT_FALSE(Add(&hll, "alice"));
  const Register r = Hash("alice");
  EXPECT_FALSE(SetRegister(&hll, r.index, r.rank));
  EXPECT_TRUE(SetRegister(&hll, r.index, r.rank + 1));
  EXPECT_EQ(RegistersOf(hll)[r.index], r.rank + 1);
}

TEST(HllAdd, ToAMissingKeyCreatesItLikePfadd) {
  std::string hll;
  EXPECT_TRUE(Add(&hll, "first"));
  std::string expected = Empty();
  Add(&expected, "first");
  EXPECT_EQ(hll, expected);
}

TEST(HllAdd, NeverWritesOutOfBoundsOnBytesThatBreakItsPrecondition) {
  std::string short_dense = Empty();
  ToDense(&short_dense);
  short_dense.resize(100);  // REQUIRES violated: not validated
  EXPECT_FALSE(SetRegister(&short_dense, 16383, 5));
  EXPECT_EQ(short_dense.size(), 100u);
  std::string tiny = "HYLL";
  EXPECT_FALSE(Add(&tiny, "x"));
  std::string bad_ops = Empty().substr(0, 17);  // truncated XZERO
  EXPECT_FALSE(SetRegister(&bad_ops, 100, 3));
}

TEST(HllAdd, DenseAndSparseHoldTheSameRegisters) {
  std::string sparse = Empty(), dense = Empty();
  ToDense(&dense);
  EXPECT_EQ(dense.size(), format::kDenseSize);
  for (uint64_t i = 0; i < 500; ++i) {
    EXPECT_EQ(Add(&sparse, Uuid(i)), Add(&dense, Uuid(i)));
  }
  ASSERT_FALSE(IsDense(sparse));
  EXPECT_EQ(RegistersOf(sparse), RegistersOf(dense));
  EXPECT_EQ(*Count(sparse), *Count(dense));
  ToDense(&sparse);
  EXPECT_EQ(sparse, dense);
}

// ---- Counting and the cache ---------------------------------------------------------------------

TEST(HllCount, ReturnsAValidCacheAndRecomputesAStaleOne) {
  std::string hll = WithUuids(0, 1000);
  const uint64_t estimate = *Count(hll);
  std::string cached = hll;
  for (int i = 0; i < 8; ++i) cached[8 + i] = static_cast<char>((12345ULL >> (8 * i)) & 0xff);
  EXPECT_EQ(*Count(cached), 12345u);  // valid cache wins, as in Redis
  cached[15] = static_cast<char>(0x80);
  EXPECT_EQ(*Count(cached), estimate);
}

TEST(HllCount, CountAndCacheWritesLittleEndianCardinality) {
  std::string hll = WithUuids(0, 5000);
  ASSERT_TRUE(IsDense(hll));
  const uint64_t n = *Count(hll);
  EXPECT_EQ(*CountAndCache(&hll), n);
  uint64_t stored = 0;
  for (int i = 0; i < 8; ++i) stored |= uint64_t{static_cast<uint8_t>(hll[8 + i])} << (8 * i);
  EXPECT_EQ(stored, n);
  EXPECT_EQ(*Count(hll), n);
  Add(&hll, "one more, surely new");
  EXPECT_EQ(static_cast<uint8_t>(hll[15]) & 0x80, 0x80);
}

TEST(HllCount, EstimatesWithinThreeStandardErrors) {
  const double se = 1.04 / std::sqrt(double{kRegisters});
  std::string hll = Empty();
  uint64_t added = 0;
  for (uint64_t n : {1, 10, 100, 1000, 5000, 20000, 100000, 1000000}) {
    for (; added < n; ++added) Add(&hll, Uuid(added + 1'000'000'000));
    const double est = static_cast<double>(*Count(hll));
    EXPECT_LE(std::abs(est - n), 3 * se * n) << "n=" << n << " estimate=" << est;
  }
}

// ---- Validation: every kind of corruption is an error, never a crash ---------------------------

void ExpectCorrupt(std::string_view bytes, const char* why) {
  SCOPED_TRACE(why);
  EXPECT_TRUE(Validate(bytes).IsCorruption());
  EXPECT_TRUE(Count(bytes).status().IsCorruption());
  std::string copy(bytes);
  EXPECT_TRUE(CountAndCache(&copy).status().IsCorruption());
  EXPECT_EQ(copy, bytes);
  std::string dst = Empty();
  EXPECT_TRUE(Merge(&dst, bytes).IsCorruption());
  EXPECT_EQ(dst, Empty());
  if (!bytes.empty()) {
    std::string bad(bytes);
    EXPECT_TRUE(Merge(&bad, Empty()).IsCorruption());
    EXPECT_EQ(bad, bytes);
  }
  const std::string empty = Empty();
  const std::string_view two[] = {empty, bytes};
  if (!bytes.empty()) {
    EXPECT_TRUE(CountUnion(two).status().IsCorruption());
  }
  std::array<uint8_t, kRegisters> regs{};
  EXPECT_TRUE(DecodeRegisters(bytes, regs).IsCorruption());
}

TEST(HllValidate, RejectsEveryKindOfCorruption) {
  const std::string sparse = Empty();
  std::string dense = Empty();
  ToDense(&dense);
  for (size_t n = 0; n < 16; ++n) ExpectCorrupt(sparse.substr(0, n), "shorter than a header");

  std::string s = sparse;
  s[0] = 'h';
  ExpectCorrupt(s, "bad magic");
  s = dense;
  s[3] = 'X';
  ExpectCorrupt(s, "bad magic (dense)");
  for (int enc : {2, 3, 0x7f, 0xff}) {
    s = sparse;
    s[4] = static_cast<char>(enc);
    ExpectCorrupt(s, "bad encoding");
  }
  for (int i = 5; i < 8; ++i) {
    s = sparse;
    s[i] = 1;
    ExpectCorrupt(s, "reserved byte not zero");
    s = dense;
    s[i] = static_cast<char>(0x80);
    ExpectCorrupt(s, "reserved byte not zero (dense)");
  }
  for (size_t n : {size_t{16}, size_t{18}, format::kDenseSize - 1, format::kDenseSize + 1}) {
    s = dense;
    s.resize(n);
    ExpectCorrupt(s, "wrong dense size");
  }
  ExpectCorrupt(sparse.substr(0, 16), "sparse without opcodes");
  ExpectCorrupt(sparse.substr(0, 17), "truncated XZERO");
  ExpectCorrupt(sparse.substr(0, 16) + "\x7f\xfe", "runs short of 16384");
  ExpectCorrupt(sparse + "\x80", "runs past 16384 by one");
  ExpectCorrupt(sparse + sparse.substr(16), "runs of 2 x 16384");
  s = sparse.substr(0, 16) + std::string(300, '\x3f') + "\x7f";  // 19200 registers, truncated
  ExpectCorrupt(s, "overflow before truncation");
}

TEST(HllValidate, RunsThatWouldWrapA32BitCounterAreRejected) {
  // 2^18 + 1 XZERO runs of 16384 cover 2^32 + 16384 registers: a 32-bit sum would wrap to
  // exactly 16384. The check happens before each addition, so it never wraps.
  std::string s = Empty().substr(0, 16);
  for (int i = 0; i < (1 << 18) + 1; ++i) s += "\x7f\xff";
  EXPECT_TRUE(Validate(s).IsCorruption());
}

TEST(HllValidate, AcceptsDenseRegistersAbove51LikeRedis) {
  std::string dense = Empty();
  ToDense(&dense);
  dense[format::kDenseSize - 1] = static_cast<char>(0xff);  // register 16383 = 63
  EXPECT_TRUE(Validate(dense).ok());
  EXPECT_TRUE(Count(dense).ok());
}

TEST(HllValidate, FuzzedBytesNeverCrash) {
  std::vector<std::string> seeds = {Empty(), WithUuids(0, 10), WithUuids(0, 700),
                                    WithUuids(0, 1400), WithUuids(0, 3000)};
  seeds.push_back(seeds[2]);
  (void)CountAndCache(&seeds.back());
  std::string crafted = Empty();
  for (uint32_t i = 0; i < 64; ++i) SetRegister(&crafted, i, 1 + i % 4);  // VAL-dense region
  seeds.push_back(crafted);

  uint64_t valid = 0;
  for (uint64_t iter = 0; iter < 30000; ++iter) {
    const std::string& seed = seeds[iter % seeds.size()];
    std::string m = seed;
    const int edits = 1 + static_cast<int>(SplitMix64(iter) % 4);
    for (int e = 0; e < edits; ++e) {
      const uint64_t x = SplitMix64(iter * 31 + e);
      // Mostly hit the opcodes, sometimes the header.
      const size_t pos = (x >> 8) % 4 == 0 ? (x >> 16) % 16 : (x >> 16) % (m.size() + 1);
      switch (x % 6) {
        case 0:
          if (pos < m.size()) m[pos] ^= static_cast<char>(1 << ((x >> 40) % 8));
          break;
        case 1:
          if (pos < m.size()) m[pos] = static_cast<char>(x >> 48);
          break;
        case 2:
          m.resize(pos);
          break;
        case 3:
          m.insert(std::min(pos, m.size()), 1, static_cast<char>(x >> 24));
          break;
        case 4:
          if (pos < m.size()) m.erase(pos, 1 + (x >> 50) % 3);
          break;
        case 5:
          m.append(1 + (x >> 52) % 4, static_cast<char>(x >> 32));
          break;
      }
    }
    const bool ok = Validate(m).ok();
    Result<uint64_t> n = Count(m);  // validates while it counts: must agree with Validate
    ASSERT_EQ(n.ok(), ok);
    if (ok) {
      ASSERT_EQ(*n, CountValidated(m));
    }
    std::string cached = m;
    ASSERT_EQ(CountAndCache(&cached).ok(), ok);
    if (!ok) {
      ASSERT_EQ(cached, m);  // left unchanged
    }
    const std::string_view both[] = {seed, m};
    ASSERT_EQ(CountUnion(both).ok(), ok || m.empty());  // an empty view is a missing key
    std::string dst = seed;
    ASSERT_EQ(Merge(&dst, m).ok(), ok);
    if (!ok) continue;
    ++valid;
    // Valid mutants must stay valid under every mutation gimel itself makes.
    ASSERT_TRUE(Validate(dst).ok());
    std::string grown = m;
    for (int k = 0; k < 20; ++k) Add(&grown, Uuid(iter * 100 + k));
    SetRegister(&grown, static_cast<uint32_t>(SplitMix64(iter) % kRegisters), 33);
    ASSERT_TRUE(Validate(grown).ok()) << "iteration " << iter;
    ASSERT_TRUE(CountAndCache(&grown).ok());
    std::string merged = m;
    ASSERT_TRUE(Merge(&merged, seed).ok());
    ASSERT_TRUE(Validate(merged).ok());
  }
  EXPECT_GT(valid, 1000u);  // the fuzzer also exercises the valid paths
}

// ---- Merge and union
// -----------------------------------------------------------------------------

TEST(HllMerge, TakesTheRegisterWiseMaximum) {
  const std::string a = WithUuids(0, 600), b = WithUuids(400, 600), big = WithUuids(0, 20000);
  for (const auto& [x, y] : {std::pair{a, b}, {a, big}, {big, a}, {b, b}}) {
    std::string dst = x;
    ASSERT_TRUE(Merge(&dst, y).ok());
    ASSERT_TRUE(Validate(dst).ok());
    const auto rx = RegistersOf(x), ry = RegistersOf(y), rd = RegistersOf(dst);
    for (uint32_t i = 0; i < kRegisters; ++i) ASSERT_EQ(rd[i], std::max(rx[i], ry[i]));
    EXPECT_EQ(IsDense(dst), IsDense(x) || IsDense(y) || dst.size() > format::kSparseMaxBytes);
    EXPECT_EQ(static_cast<uint8_t>(dst[15]) & 0x80, 0x80);  // cache stale, like PFMERGE
  }
}

TEST(HllMerge, OfASketchIntoItselfOnlyMarksTheCacheStale) {
  std::string hll = WithUuids(0, 900);
  ASSERT_TRUE(CountAndCache(&hll).ok());
  const std::string before = hll;
  ASSERT_TRUE(Merge(&hll, hll).ok());  // src aliases *dst
  EXPECT_EQ(hll.substr(16), before.substr(16));
  EXPECT_EQ(static_cast<uint8_t>(hll[15]), static_cast<uint8_t>(before[15]) | 0x80);
}

TEST(HllMerge, IntoAMissingKeyCopiesTheRegisters) {
  const std::string src = WithUuids(0, 300);
  std::string dst;
  ASSERT_TRUE(Merge(&dst, src).ok());
  EXPECT_EQ(RegistersOf(dst), RegistersOf(src));
  EXPECT_EQ(*Count(dst), *Count(src));
}

TEST(HllMerge, OfTwoSparseSketchesPromotesWhenTheUnionOutgrowsSparse) {
  const std::string a = WithUuids(0, 1000), b = WithUuids(5000, 1000);
  ASSERT_FALSE(IsDense(a));
  ASSERT_FALSE(IsDense(b));
  std::string dst = a;
  ASSERT_TRUE(Merge(&dst, b).ok());
  EXPECT_TRUE(IsDense(dst));
  std::string both = a;
  for (uint64_t i = 5000; i < 6000; ++i) Add(&both, Uuid(i));
  EXPECT_EQ(RegistersOf(dst), RegistersOf(both));
  EXPECT_EQ(*Count(dst), *Count(both));
}

TEST(HllCountValidated, EqualsCountOnValidBytesAndStaysInBoundsOnOthers) {
  for (uint64_t n : {0, 1, 500, 5000, 50000}) {
    std::string hll = WithUuids(3, n);
    EXPECT_EQ(CountValidated(hll), *Count(hll)) << n;
    ASSERT_TRUE(CountAndCache(&hll).ok());
    EXPECT_EQ(CountValidated(hll), *Count(hll)) << n;  // the cached value
  }
  // Bytes breaking the precondition: any answer, but no read past the end (ASan checks).
  std::string dense = WithUuids(0, 50000);
  ASSERT_TRUE(IsDense(dense));
  for (size_t cut : {size_t{0}, size_t{5}, size_t{16}, size_t{17}, dense.size() - 1}) {
    (void)CountValidated(std::string_view(dense).substr(0, cut));
  }
  std::string sparse = WithUuids(0, 300);
  for (size_t cut = 16; cut < sparse.size(); cut += 7) {
    (void)CountValidated(std::string_view(sparse).substr(0, cut));
  }
}

TEST(HllSetRegisters, EqualsOneByOneSetsInTheSameOrder) {
  // Bases: missing, small, near the 3000-byte promotion, dense. Lists: ascending (with equal
  // indices), some values above 32 (a sparse set promotes midway), some out of order.
  const std::vector<std::string> bases = {"", WithUuids(0, 40), WithUuids(0, 1400),
                                          WithUuids(0, 50000)};
  uint64_t seed = 7;
  auto next = [&] { return SplitMix64(seed++); };
  for (int round = 0; round < 600; ++round) {
    const std::string& base = bases[round % bases.size()];
    std::vector<Register> list(1 + next() % 60);
    for (Register& r : list) {
      r.index = static_cast<uint32_t>(next() % kRegisters);
      r.rank = static_cast<uint8_t>(1 + next() % (round % 5 == 0 ? 40 : 20));
    }
    if (round % 7 != 0) {
      std::sort(list.begin(), list.end(),
                [](const Register& a, const Register& b) { return a.index < b.index; });
    }
    if (round % 3 == 0) list.push_back(list.back());  // an equal index
    std::string expected = base, got = base;
    bool changed = false;
    for (const Register& r : list) changed = SetRegister(&expected, r.index, r.rank) || changed;
    ASSERT_EQ(SetRegisters(&got, list), changed) << "round " << round;
    ASSERT_EQ(got, expected) << "round " << round;
  }
}

TEST(HllCountUnion, EqualsTheCountOfTheMerge) {
  const std::string a = WithUuids(0, 700), b = WithUuids(300, 3000), c = WithUuids(0, 0);
  std::string ab = a;
  ASSERT_TRUE(Merge(&ab, b).ok());
  const std::string_view two[] = {a, b};
  EXPECT_EQ(*CountUnion(two), *Count(ab));
  const std::string_view with_missing[] = {a, {}, b, c};
  EXPECT_EQ(*CountUnion(with_missing), *Count(ab));
  EXPECT_EQ(*CountUnion({}), 0u);
  const std::string_view missing[] = {std::string_view()};
  EXPECT_EQ(*CountUnion(missing), 0u);
  std::string cached = a;
  for (int i = 8; i < 16; ++i) cached[i] = 0;
  cached[8] = 42;  // a valid cache of 42: the single-key path honours it, like PFCOUNT
  const std::string_view one[] = {cached};
  EXPECT_EQ(*CountUnion(one), 42u);
}

TEST(HllFromRegisters, EqualsAMergeIntoANewKey) {
  // Byte for byte what Merge (PFMERGE) writes into a missing key, sparse or dense.
  for (uint64_t n : {0, 1, 2, 3, 10, 50, 100, 300, 600, 900, 1000, 1100, 1150, 1200, 1250, 1300,
                     1400, 1600, 20000}) {
    for (const std::string& src : {WithUuids(7, n), [&] {
                                     std::string d = WithUuids(7, n);
                                     ToDense(&d);
                                     return d;
                                   }()}) {
      std::array<uint8_t, kRegisters> registers{};
      ASSERT_TRUE(MaxRegisters(src, registers).ok());
      std::string merged;
      ASSERT_TRUE(Merge(&merged, src).ok());
      EXPECT_EQ(FromRegisters(registers, IsDense(src)), merged) << n;
    }
  }
}

TEST(HllFromRegisters, EqualsAMergeForRunsOfEqualValuesAndLongZeroGaps) {
  // Runs of 1..9 equal registers (VAL opcodes hold at most 4) separated by gaps around the
  // ZERO/XZERO boundary (64), laid out with ElementFor; every prefix of the layout is checked.
  std::string src = Empty();
  uint32_t index = 0;
  for (uint32_t k = 0; index < kRegisters - 200; ++k) {
    const uint32_t run = 1 + k % 9;
    const auto value = static_cast<uint8_t>(1 + k % 5);
    for (uint32_t j = 0; j < run; ++j) Add(&src, testing::ElementFor(index + j, value));
    index += run + (k % 3 == 0 ? 64 : k % 3 == 1 ? 65 : 1 + k % 7);
    if (k % 16 != 0) continue;
    std::array<uint8_t, kRegisters> registers{};
    ASSERT_TRUE(MaxRegisters(src, registers).ok());
    std::string merged;
    ASSERT_TRUE(Merge(&merged, src).ok());
    ASSERT_EQ(FromRegisters(registers, false), merged) << k;
  }
}

TEST(HllFromRegisters, EqualsAscendingSetsForEveryLayout) {
  // FromRegisters encodes directly; what it must equal is Redis's sequence of sets into a new
  // key in ascending register order. Random layouts of every density up to past the 3000-byte
  // limit, with registers at both ends, adjacent registers of different values, runs of equal
  // values crossing 64-register blocks, gaps of exactly 64 and 65, and values near 32.
  uint64_t seed = 1;
  auto next = [&] { return SplitMix64(seed++); };
  for (int round = 0; round < 400; ++round) {
    std::array<uint8_t, kRegisters> registers{};
    const uint64_t set = next() % 1500;
    const uint8_t top = round % 10 == 0 ? 33 : 1 + static_cast<uint8_t>(next() % 32);
    for (uint64_t k = 0; k < set; ++k) {
      const auto i = static_cast<uint32_t>(next() % kRegisters);
      const auto v = static_cast<uint8_t>(1 + next() % top);
      const uint32_t len = next() % 4 == 0 ? 1 + static_cast<uint32_t>(next() % 9) : 1;
      for (uint32_t j = i; j < std::min(kRegisters, i + len); ++j) registers[j] = v;
    }
    if (round % 3 == 0) registers[0] = 1 + static_cast<uint8_t>(round % 32);
    if (round % 5 == 0) registers[kRegisters - 1] = 2;
    if (round % 7 == 0) {  // a gap of 64, then one of 65, then a run over a block boundary
      registers[1000] = registers[1065] = registers[1131] = 4;
      for (uint32_t j = 1210; j < 1222; ++j) registers[j] = 5;
    }
    std::string expected = Empty();
    for (uint32_t i = 0; i < kRegisters; ++i) {
      if (registers[i] != 0) SetRegister(&expected, i, registers[i]);
    }
    ASSERT_EQ(FromRegisters(registers, false), expected) << "round " << round;
  }
}

TEST(HllFromRegisters, PromotesWhereRedisWould) {
  std::array<uint8_t, kRegisters> registers{};
  registers[5] = 33;  // above the sparse VAL limit
  std::string hll = FromRegisters(registers, false);
  ASSERT_TRUE(Validate(hll).ok());
  EXPECT_TRUE(IsDense(hll));
  EXPECT_EQ(RegistersOf(hll), registers);

  registers.fill(0);
  for (uint32_t i = 0; i < kRegisters; i += 3) registers[i] = static_cast<uint8_t>(1 + i % 32);
  hll = FromRegisters(registers, false);  // thousands of VAL opcodes: past 3000 bytes
  EXPECT_TRUE(IsDense(hll));
  EXPECT_EQ(RegistersOf(hll), registers);

  registers.fill(0);
  registers[100] = 3;
  hll = FromRegisters(registers, false);
  EXPECT_FALSE(IsDense(hll));
  EXPECT_EQ(RegistersOf(hll), registers);
}

TEST(HllMaxRegisters, FoldsSeveralSketchesAndRejectsCorruptOnes) {
  const std::string a = WithUuids(0, 700), b = WithUuids(300, 3000);
  std::array<uint8_t, kRegisters> registers{};
  ASSERT_TRUE(MaxRegisters(a, registers).ok());
  ASSERT_TRUE(MaxRegisters(b, registers).ok());
  std::string ab = a;
  ASSERT_TRUE(Merge(&ab, b).ok());
  EXPECT_EQ(RegistersOf(ab), registers);
  const auto before = registers;
  EXPECT_TRUE(MaxRegisters("HYLL\x01garbage", registers).IsCorruption());
  EXPECT_EQ(registers, before);
}

}  // namespace
}  // namespace gimel::hll
