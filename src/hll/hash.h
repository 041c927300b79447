// MurmurHash64A, the hash behind Redis's HyperLogLog (and therefore gimel's).
//
// Internal to src/hll/; other modules use hll::Hash() from hll.h.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace gimel::hll {

// MurmurHash64A by Austin Appleby (public domain algorithm), 64-bit blocks read little-endian
// whatever the host byte order, exactly as Redis's copy does, so hashes match Redis everywhere.
uint64_t MurmurHash64A(std::string_view key, uint64_t seed);

}  // namespace gimel::hll
