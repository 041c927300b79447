// The byte format of a gimel HyperLogLog, as constants.
//
// gimel's stored HLL IS Redis's "HYLL" string, byte for byte (Redis 7 PFADD / PFCOUNT /
// PFMERGE), so a sketch can be copied between the embedded store and Redis with GET/SET.
// docs/hll_format.md describes the same numbers with tables, bit pictures and a worked example;
// the static_asserts at the bottom of this file pin every number the document states, so the
// two cannot drift apart. Change one, change both.
//
// Thread-safety: constants only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gimel::hll::format {

// ---- Hash --------------------------------------------------------------------------------

// MurmurHash64A (Austin Appleby), 64-bit little-endian variant, with Redis's seed.
inline constexpr uint64_t kHashSeed = 0xadc83b19;
// P: the low kPrecision bits of the hash select the register.
inline constexpr int kPrecision = 14;
// Number of registers, m = 2^P.
inline constexpr uint32_t kRegisterCount = uint32_t{1} << kPrecision;
// Mask extracting the register index from the hash.
inline constexpr uint64_t kIndexMask = kRegisterCount - 1;
// Q: the hash bits left after the index; the rank counts their trailing zeros.
inline constexpr int kRankBits = 64 - kPrecision;
// A sentinel bit at position Q of the shifted hash caps the rank: all Q bits zero gives Q+1.
inline constexpr uint8_t kMaxRank = kRankBits + 1;

// ---- Header (16 bytes, both encodings) -------------------------------------------------

// "HYLL" at offset 0.
inline constexpr std::string_view kMagic = "HYLL";
inline constexpr size_t kMagicOffset = 0;
// Encoding byte at offset 4.
inline constexpr size_t kEncodingOffset = 4;
inline constexpr uint8_t kEncodingDense = 0;
inline constexpr uint8_t kEncodingSparse = 1;
// Bytes 5..7: unused by Redis, always written as zero; gimel rejects non-zero values.
inline constexpr size_t kReservedOffset = 5;
inline constexpr size_t kReservedSize = 3;
// Bytes 8..15: cached cardinality, unsigned 64-bit little-endian.
inline constexpr size_t kCardOffset = 8;
inline constexpr size_t kCardSize = 8;
// Bit 7 of byte 15 (the top bit of the cached value) set = cache stale; the other 63 bits are
// then meaningless (Redis leaves the old value there).
inline constexpr size_t kCardStaleByte = kCardOffset + kCardSize - 1;
inline constexpr uint8_t kCardStaleBit = 0x80;
// Registers (dense) or opcodes (sparse) start here.
inline constexpr size_t kHeaderSize = 16;

// ---- Dense encoding ------------------------------------------------------------------------

// Bits per register; a register holds 0..63 (ranks are at most kMaxRank = 51).
inline constexpr int kRegisterBits = 6;
inline constexpr uint8_t kRegisterMax = (1 << kRegisterBits) - 1;
// Register bytes: 16384 * 6 / 8. Registers are packed LSB first: register i occupies bits
// [6i, 6i+6) of the byte array read as one little-endian bit string.
inline constexpr size_t kDenseRegistersSize = (kRegisterCount * kRegisterBits + 7) / 8;
// A dense HLL is exactly this long; any other length is corrupt.
inline constexpr size_t kDenseSize = kHeaderSize + kDenseRegistersSize;

// ---- Sparse encoding ------------------------------------------------------------------------

// ZERO   00xxxxxx           : run of xxxxxx+1 (1..64) zero registers.
inline constexpr uint8_t kSparseZeroTag = 0x00;
inline constexpr uint32_t kSparseZeroMaxLen = 64;
// XZERO  01xxxxxx yyyyyyyy  : run of (xxxxxx<<8 | yyyyyyyy)+1 (1..16384) zero registers.
inline constexpr uint8_t kSparseXZeroTag = 0x40;
inline constexpr uint32_t kSparseXZeroMaxLen = 16384;
// VAL    1vvvvvxx           : run of xx+1 (1..4) registers of value vvvvv+1 (1..32).
inline constexpr uint8_t kSparseValTag = 0x80;
inline constexpr uint8_t kSparseValMaxValue = 32;
inline constexpr uint32_t kSparseValMaxLen = 4;
// Mask of the tag bits of ZERO and XZERO (VAL is recognised by its top bit alone).
inline constexpr uint8_t kSparseTagMask = 0xc0;
// Redis's hll-sparse-max-bytes default: a sparse HLL (header included) that would grow past
// this many bytes is promoted to dense instead.
inline constexpr size_t kSparseMaxBytes = 3000;
// Size of a new, empty HLL: the header and one XZERO covering all 16384 registers.
inline constexpr size_t kEmptySize = kHeaderSize + 2;

// ---- Estimator ---------------------------------------------------------------------------------

// alpha_inf = 1 / (2 ln 2), the constant of Ertl's improved estimator as written in Redis.
inline constexpr double kAlphaInf = 0.721347520444481703680;

// ---- The numbers docs/hll_format.md states ------------------------------------------------------

static_assert(kHashSeed == 0xadc83b19);
static_assert(kPrecision == 14 && kRegisterCount == 16384 && kIndexMask == 0x3fff);
static_assert(kRankBits == 50 && kMaxRank == 51);
static_assert(kMagic.size() == 4 && kMagicOffset == 0);
static_assert(kEncodingOffset == 4 && kEncodingDense == 0 && kEncodingSparse == 1);
static_assert(kReservedOffset == 5 && kReservedSize == 3);
static_assert(kCardOffset == 8 && kCardSize == 8 && kCardStaleByte == 15);
static_assert(kHeaderSize == 16 && kHeaderSize == kCardOffset + kCardSize);
static_assert(kRegisterBits == 6 && kRegisterMax == 63 && kMaxRank <= kRegisterMax);
static_assert(kDenseRegistersSize == 12288 && kDenseSize == 12304);
// Four registers fill exactly three bytes; the dense codec works in such groups.
static_assert(4 * kRegisterBits == 3 * 8 && kRegisterCount % 4 == 0);
static_assert(kSparseZeroMaxLen == 64 && kSparseXZeroMaxLen == 16384);
static_assert(kSparseXZeroMaxLen == kRegisterCount);  // one XZERO covers an empty HLL
static_assert(kSparseValMaxValue == 32 && kSparseValMaxLen == 4);
static_assert(kSparseMaxBytes == 3000 && kEmptySize == 18);

}  // namespace gimel::hll::format
