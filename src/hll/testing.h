// Test helpers for src/hll/ tests (not part of gimel_hll's interface).
//
// ElementFor() builds an 8-byte element that hashes to a chosen (register, rank) by running
// MurmurHash64A backwards: for an 8-byte key every step (multiplication by an odd constant,
// xor-shift by 47) is a bijection on 64-bit words, so any hash value has exactly one key.
// This reaches ranks a random search would need ~2^32 tries for (e.g. > 32, forcing a sparse
// HLL to dense), and lets tests lay registers out at will, against gimel and Redis alike.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "hll/format.h"

namespace gimel::hll::testing {

// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator for test data.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The 8-byte key whose MurmurHash64A (seed 0xadc83b19) is `hash`.
inline std::string KeyWithHash(uint64_t hash) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  uint64_t m_inv = m;  // Newton's iteration for the inverse mod 2^64
  for (int i = 0; i < 6; ++i) m_inv *= 2 - m * m_inv;
  uint64_t h = hash;
  h ^= h >> r;  // x ^= x >> 47 is its own inverse for shifts >= 32
  h *= m_inv;
  h ^= h >> r;
  h *= m_inv;
  uint64_t k = h ^ (format::kHashSeed ^ (8 * m));
  k *= m_inv;
  k ^= k >> r;
  k *= m_inv;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((k >> (8 * i)) & 0xff);
  return out;
}

// An element that maps to register `index` with rank `rank` (1..51); `salt` picks among the
// many such elements (it fills the hash bits above the rank's one bit).
inline std::string ElementFor(uint32_t index, uint8_t rank, uint64_t salt = 0) {
  uint64_t hash = index & format::kIndexMask;
  if (rank <= format::kRankBits) {
    const int one = format::kPrecision + rank - 1;  // the lowest set bit above the index
    hash |= uint64_t{1} << one;
    if (one < 63) hash |= (SplitMix64(salt) << (one + 1));
  }
  return KeyWithHash(hash);
}

}  // namespace gimel::hll::testing
