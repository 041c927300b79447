// Redis-compatible HyperLogLog: the public operations, built on the codecs.
//
// Layers, low to high: hash.cc (MurmurHash64A), dense.cc / sparse.cc (the two encodings),
// estimator.cc (Ertl's estimator), and this file (validation, PFADD / PFCOUNT / PFMERGE
// semantics). Each operation below names the Redis command path it mirrors, because byte
// equality with Redis depends on doing the same steps in the same order.
#include "hll/hll.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "hll/dense.h"
#include "hll/estimator.h"
#include "hll/format.h"
#include "hll/sparse.h"

namespace gimel::hll {

static_assert(kRegisters == format::kRegisterCount);

namespace {

using format::kHeaderSize;

// ---- Header access -------------------------------------------------------------------------

inline uint8_t Byte(std::string_view s, size_t i) { return static_cast<uint8_t>(s[i]); }

inline bool Dense(std::string_view hll) {
  return Byte(hll, format::kEncodingOffset) == format::kEncodingDense;
}

inline bool CacheValid(std::string_view hll) {
  return (Byte(hll, format::kCardStaleByte) & format::kCardStaleBit) == 0;
}

inline uint64_t CachedCard(std::string_view hll) {
  uint64_t card = 0;
  for (size_t i = 0; i < format::kCardSize; ++i) {
    card |= uint64_t{Byte(hll, format::kCardOffset + i)} << (8 * i);
  }
  return card;
}

inline void StoreCard(std::string* hll, uint64_t card) {
  for (size_t i = 0; i < format::kCardSize; ++i) {
    (*hll)[format::kCardOffset + i] = static_cast<char>((card >> (8 * i)) & 0xff);
  }
}

inline void InvalidateCache(std::string* hll) {
  (*hll)[format::kCardStaleByte] =
      static_cast<char>(Byte(*hll, format::kCardStaleByte) | format::kCardStaleBit);
}

inline uint8_t* MutableRegs(std::string* hll) {
  return reinterpret_cast<uint8_t*>(hll->data()) + kHeaderSize;
}

inline dense::ConstRegisterBytes Regs(std::string_view hll) {
  return dense::ConstRegisterBytes(reinterpret_cast<const uint8_t*>(hll.data()) + kHeaderSize,
                                   format::kDenseRegistersSize);
}

inline std::string_view Ops(std::string_view hll) { return hll.substr(kHeaderSize); }

// ---- Registers of either encoding ------------------------------------------------------------

// max[i] = max(max[i], register i). REQUIRES: hll validated.
void MaxInto(std::string_view hll, dense::Registers max) {
  if (Dense(hll)) {
    dense::MaxInto(Regs(hll), max);
    return;
  }
  sparse::ForEachRun(Ops(hll), [&](uint32_t first, uint32_t len, uint8_t value) {
    if (value == 0) return;
    for (uint32_t i = first; i < first + len; ++i) max[i] = std::max(max[i], value);
  });
}

// hllCount: the estimate from the registers, ignoring the cache. REQUIRES: hll validated.
uint64_t EstimateOf(std::string_view hll) {
  std::array<uint32_t, 64> histo{};
  if (Dense(hll)) {
    dense::AddToHistogram(Regs(hll), histo);
  } else {
    sparse::ForEachRun(Ops(hll),
                       [&](uint32_t, uint32_t len, uint8_t value) { histo[value] += len; });
  }
  return Estimate(histo);
}

// Redis hllSparseToDense: a zeroed dense string, the old header copied (magic, reserved bytes,
// cached cardinality), the encoding byte set to dense, then the VAL runs written.
void SparseToDense(std::string* hll) {
  std::string out(format::kDenseSize, '\0');
  std::memcpy(out.data(), hll->data(), kHeaderSize);
  out[format::kEncodingOffset] = static_cast<char>(format::kEncodingDense);
  uint8_t* regs = MutableRegs(&out);
  sparse::ForEachRun(Ops(*hll), [&](uint32_t first, uint32_t len, uint8_t value) {
    if (value == 0) return;
    for (uint32_t i = first; i < first + len; ++i) dense::Put(regs, i, value);
  });
  hll->swap(out);
}

// The first index >= from holding a non-zero register, or kRegisterCount. Most registers of a
// sparse sketch are zero: skip them 64 then 16 bytes at a time (SSE2), or 8 at a time.
uint32_t NextNonZero(std::span<const uint8_t, format::kRegisterCount> registers, uint32_t from) {
  constexpr uint32_t to = format::kRegisterCount;
  uint32_t i = from;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  auto load = [&](uint32_t at) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(registers.data() + at));
  };
  while (i + 64 <= to) {
    const __m128i any =
        _mm_or_si128(_mm_or_si128(load(i), load(i + 16)), _mm_or_si128(load(i + 32), load(i + 48)));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, zero)) != 0xffff) break;
    i += 64;
  }
  while (i + 16 <= to) {
    const auto nonzero =
        static_cast<uint32_t>(~_mm_movemask_epi8(_mm_cmpeq_epi8(load(i), zero)) & 0xffff);
    if (nonzero != 0) return i + static_cast<uint32_t>(std::countr_zero(nonzero));
    i += 16;
  }
#else
  auto word_at = [&](uint32_t at) {
    uint64_t w;
    std::memcpy(&w, &registers[at], sizeof(w));
    return w;
  };
  while (i + 8 <= to && word_at(i) == 0) i += 8;
#endif
  while (i < to && registers[i] == 0) ++i;
  return i;
}

// The second half of Redis pfmergeCommand: *hll (valid, its registers <= max) becomes dense
// first if use_dense, then every non-zero max register is set in ascending order (sparse sets
// may promote midway); finally the cache is invalidated, changed or not.
void WriteMax(std::string* hll, std::span<const uint8_t, format::kRegisterCount> max,
              bool use_dense) {
  if (use_dense && !Dense(*hll)) SparseToDense(hll);
  if (!Dense(*hll)) {
    sparse::Cursor cursor;
    for (uint32_t i = 0; i < format::kRegisterCount; ++i) {
      if (max[i] == 0) continue;
      if (sparse::Set(hll, i, max[i], &cursor) == sparse::SetResult::kPromote) {
        SparseToDense(hll);
        break;  // the dense pass below writes this and every later register
      }
    }
  }
  if (Dense(*hll)) {
    // Every dense register ends as max(old, max[i]) = max[i], since max covers *hll.
    dense::Pack(max, dense::RegisterBytes(MutableRegs(hll), format::kDenseRegistersSize));
  }
  InvalidateCache(hll);
}

}  // namespace

// ---- Validation --------------------------------------------------------------------------------

Status Validate(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) {
    return Status::Corruption("hll: " + std::to_string(bytes.size()) +
                              " bytes, shorter than the 16-byte header");
  }
  if (bytes.substr(format::kMagicOffset, format::kMagic.size()) != format::kMagic) {
    return Status::Corruption("hll: bad magic (expected \"HYLL\")");
  }
  const uint8_t encoding = Byte(bytes, format::kEncodingOffset);
  if (encoding != format::kEncodingDense && encoding != format::kEncodingSparse) {
    return Status::Corruption("hll: unknown encoding " + std::to_string(encoding));
  }
  for (size_t i = 0; i < format::kReservedSize; ++i) {
    if (Byte(bytes, format::kReservedOffset + i) != 0) {
      return Status::Corruption("hll: reserved header byte " +
                                std::to_string(format::kReservedOffset + i) + " is not zero");
    }
  }
  if (encoding == format::kEncodingDense) {
    if (bytes.size() != format::kDenseSize) {
      return Status::Corruption("hll: dense HLL of " + std::to_string(bytes.size()) +
                                " bytes, expected 12304");
    }
    return Status::Ok();
  }
  return sparse::ValidateOps(Ops(bytes));
}

// ---- Construction and update (PFADD) ---------------------------------------------------------

std::string Empty() {
  // Redis createHLLObject: a zeroed header, then XZERO runs covering every register. PFADD
  // marks the new key's cache stale even when given no elements, so that is what Redis stores.
  std::string s(format::kEmptySize, '\0');
  std::memcpy(s.data() + format::kMagicOffset, format::kMagic.data(), format::kMagic.size());
  s[format::kEncodingOffset] = static_cast<char>(format::kEncodingSparse);
  sparse::PutXZero(MutableRegs(&s), format::kRegisterCount);
  InvalidateCache(&s);
  return s;
}

bool IsDense(std::string_view hll) { return Dense(hll); }

void ToDense(std::string* hll) {
  if (!Dense(*hll)) SparseToDense(hll);
}

bool SetRegister(std::string* hll, uint32_t index, uint8_t rank) {
  if (hll->empty()) *hll = Empty();  // no key yet: PFADD creates it
  // Cheap guards so that even unvalidated bytes are never written out of bounds.
  if (hll->size() < kHeaderSize || index >= format::kRegisterCount || rank == 0 ||
      rank > format::kRegisterMax) {
    return false;
  }
  if (Dense(*hll)) {
    if (hll->size() != format::kDenseSize) return false;
    // Redis hllDenseSet, then PFADD's cache invalidation.
    if (!dense::SetMax(MutableRegs(hll), index, rank)) return false;
    InvalidateCache(hll);
    return true;
  }
  switch (sparse::Set(hll, index, rank)) {
    case sparse::SetResult::kUnchanged:
    case sparse::SetResult::kInvalid:  // only on unvalidated input: leave it alone
      return false;
    case sparse::SetResult::kChanged:
      return true;
    case sparse::SetResult::kPromote:
      break;
  }
  // Redis promotes, then performs the update on the dense form (always a change).
  SparseToDense(hll);
  dense::SetMax(MutableRegs(hll), index, rank);
  InvalidateCache(hll);
  return true;
}

bool Add(std::string* hll, std::string_view element) {
  const Register r = Hash(element);
  return SetRegister(hll, r.index, r.rank);
}

// ---- Counting (PFCOUNT) ------------------------------------------------------------------------

Result<uint64_t> Count(std::string_view hll) {
  GIMEL_RETURN_IF_ERROR(Validate(hll));
  if (CacheValid(hll)) return CachedCard(hll);
  return EstimateOf(hll);
}

uint64_t CountValidated(std::string_view hll) {
  // Cheap guards only: enough that bytes breaking the precondition are never read out of
  // bounds (ForEachRun stops at malformed sparse opcodes).
  if (hll.size() < kHeaderSize) return 0;
  if (Dense(hll) && hll.size() != format::kDenseSize) return 0;
  if (CacheValid(hll)) return CachedCard(hll);
  return EstimateOf(hll);
}

Result<uint64_t> CountAndCache(std::string* hll) {
  GIMEL_RETURN_IF_ERROR(Validate(*hll));
  if (CacheValid(*hll)) return CachedCard(*hll);
  const uint64_t card = EstimateOf(*hll);
  StoreCard(hll, card);
  return card;
}

Result<uint64_t> CountUnion(std::span<const std::string_view> hlls) {
  // Redis pfcountCommand: one key takes the single-key path (cache honoured), several keys are
  // merged into a raw register array and estimated afresh. A missing key counts as empty.
  if (hlls.size() == 1) {
    if (hlls[0].empty()) return uint64_t{0};
    return Count(hlls[0]);
  }
  std::array<uint8_t, format::kRegisterCount> max{};
  for (std::string_view hll : hlls) {
    if (hll.empty()) continue;
    GIMEL_RETURN_IF_ERROR(Validate(hll));
    MaxInto(hll, max);
  }
  std::array<uint32_t, 64> histo{};
  for (uint8_t v : max) ++histo[v];
  return Estimate(histo);
}

// ---- Merging (PFMERGE) ------------------------------------------------------------------------

Status Merge(std::string* dst, std::string_view src) {
  // Redis pfmergeCommand with keys (dst, src): max over both inputs; the target is dst, or a
  // new empty HLL if dst does not exist; it becomes dense first if any input was dense; then
  // every non-zero max register is set in ascending order (sparse sets may promote midway);
  // finally the cache is invalidated, changed or not.
  GIMEL_RETURN_IF_ERROR(Validate(src));
  const bool dst_exists = !dst->empty();
  if (dst_exists) GIMEL_RETURN_IF_ERROR(Validate(*dst));

  std::array<uint8_t, format::kRegisterCount> max{};
  bool use_dense = Dense(src);
  MaxInto(src, max);
  if (dst_exists) {
    use_dense = use_dense || Dense(*dst);
    MaxInto(*dst, max);
  } else {
    *dst = Empty();
  }
  WriteMax(dst, max, use_dense);
  return Status::Ok();
}

namespace {

// FromRegisters for a non-dense result. One pass writing the opcodes that PFMERGE's ascending sets
// leave: each gap of zeros as one ZERO (<= 64) or XZERO, each run of equal values as VALs of 4 from
// the left (hllSparseSet merges a new VAL into its left neighbour while the length fits). Near the
// 3000-byte limit, where the moment Redis promotes depends on intermediate sizes, and for values
// above 32, replay the sets one by one instead.
std::string EncodeSparse(std::span<const uint8_t, kRegisters> registers) {
  std::string hll = Empty();
  std::string ops;
  ops.reserve(256);
  uint32_t i = 0;
  while (i < kRegisters) {
    const uint8_t value = registers[i];
    uint32_t run = 1;
    if (value == 0) {
      run = NextNonZero(registers, i) - i;
      if (run <= format::kSparseZeroMaxLen) {
        ops.push_back(static_cast<char>(sparse::ZeroOp(run)));
      } else {
        uint8_t op[2];
        sparse::PutXZero(op, run);
        ops.append(reinterpret_cast<const char*>(op), 2);
      }
    } else if (value > format::kSparseValMaxValue) {
      WriteMax(&hll, registers, false);
      return hll;
    } else {
      while (i + run < kRegisters && registers[i + run] == value) ++run;
      for (uint32_t left = run; left > 0;) {
        const uint32_t len = std::min(left, format::kSparseValMaxLen);
        ops.push_back(static_cast<char>(sparse::ValOp(value, len)));
        left -= len;
      }
    }
    i += run;
  }
  constexpr size_t kExactMargin = 8;  // intermediate sizes exceed the final one by <= 3 bytes
  if (kHeaderSize + ops.size() + kExactMargin > format::kSparseMaxBytes) {
    WriteMax(&hll, registers, false);
    return hll;
  }
  hll.resize(kHeaderSize);
  hll.append(ops);
  InvalidateCache(&hll);
  return hll;
}

}  // namespace

std::string FromRegisters(std::span<const uint8_t, kRegisters> registers, bool dense) {
  if (dense) {
    std::string hll = Empty();
    WriteMax(&hll, registers, true);
    return hll;
  }
  return EncodeSparse(registers);
}

// ---- Inspection -------------------------------------------------------------------------------

Status DecodeRegisters(std::string_view hll, std::span<uint8_t, kRegisters> registers) {
  std::fill(registers.begin(), registers.end(), uint8_t{0});
  return MaxRegisters(hll, registers);
}

Status MaxRegisters(std::string_view hll, std::span<uint8_t, kRegisters> registers) {
  GIMEL_RETURN_IF_ERROR(Validate(hll));
  MaxInto(hll, registers);
  return Status::Ok();
}

void MaxRegistersValidated(std::string_view hll, std::span<uint8_t, kRegisters> registers) {
  MaxInto(hll, registers);
}

}  // namespace gimel::hll
