// MurmurHash64A and the (register, rank) split of the hash.
//
// Reference: Austin Appleby, SMHasher, MurmurHash2.cpp, "MurmurHash64A" (public domain).
// Redis feeds elements to it with seed 0xadc83b19; the low 14 bits of the result select the
// register and 1 + the trailing zeros of the other 50 bits (a sentinel bit at 50 caps it at 51)
// is the rank (docs/hll_format.md, "Hash").
#include "hll/hash.h"

#include <bit>
#include <cstring>

#include "hll/format.h"
#include "hll/hll.h"

namespace gimel::hll {

namespace {

inline uint64_t LoadLittleEndian64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

}  // namespace

uint64_t MurmurHash64A(std::string_view key, uint64_t seed) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const size_t len = key.size();
  uint64_t h = seed ^ (len * m);

  const unsigned char* end = data + (len & ~size_t{7});
  for (; data != end; data += 8) {
    uint64_t k = LoadLittleEndian64(data);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  switch (len & 7) {
    case 7:
      h ^= uint64_t{data[6]} << 48;
      [[fallthrough]];
    case 6:
      h ^= uint64_t{data[5]} << 40;
      [[fallthrough]];
    case 5:
      h ^= uint64_t{data[4]} << 32;
      [[fallthrough]];
    case 4:
      h ^= uint64_t{data[3]} << 24;
      [[fallthrough]];
    case 3:
      h ^= uint64_t{data[2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= uint64_t{data[1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= uint64_t{data[0]};
      h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

Register Hash(std::string_view element) {
  const uint64_t hash = MurmurHash64A(element, format::kHashSeed);
  const auto index = static_cast<uint32_t>(hash & format::kIndexMask);
  const uint64_t rest = (hash >> format::kPrecision) | (uint64_t{1} << format::kRankBits);
  return {index, static_cast<uint8_t>(std::countr_zero(rest) + 1)};
}

}  // namespace gimel::hll
