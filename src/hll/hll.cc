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

// The blocks of 64 registers that hold a non-zero register, in ascending order, and for each
// the bit mask of its non-zero registers; found without a branch per block (16 bytes per
// compare with SSE2). So the encoder's loops depend on the non-zero registers, not on where
// they are: the gaps of a sparse sketch are random, and a branch on each gap would be
// mispredicted about once per register.
constexpr uint32_t kBlocks = format::kRegisterCount / 64;
struct NonZeroBlocks {
  uint32_t count = 0;
  std::array<uint16_t, kBlocks> block;  // block[0 .. count)
  std::array<uint64_t, kBlocks> bits;   // bits[k]: bit j set iff register 64 * block[k] + j != 0
};

void FindNonZero(std::span<const uint8_t, format::kRegisterCount> registers, NonZeroBlocks* out) {
  const uint8_t* regs = registers.data();
  uint32_t count = 0;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  auto load = [&](uint32_t at) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(regs + at));
  };
  for (uint32_t b = 0; b < kBlocks; ++b) {
    const uint32_t at = 64 * b;
    const __m128i any = _mm_or_si128(_mm_or_si128(load(at), load(at + 16)),
                                     _mm_or_si128(load(at + 32), load(at + 48)));
    out->block[count] = static_cast<uint16_t>(b);
    count += _mm_movemask_epi8(_mm_cmpeq_epi8(any, zero)) != 0xffff ? 1 : 0;
  }
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t at = 64 * out->block[k];
    uint64_t is_zero = 0;
    for (uint32_t q = 0; q < 4; ++q) {
      is_zero |= uint64_t{static_cast<uint16_t>(
                     _mm_movemask_epi8(_mm_cmpeq_epi8(load(at + 16 * q), zero)))}
                 << (16 * q);
    }
    out->bits[k] = ~is_zero;
  }
#else
  for (uint32_t b = 0; b < kBlocks; ++b) {
    uint64_t bits = 0;
    for (uint32_t j = 0; j < 64; ++j) bits |= uint64_t{regs[64 * b + j] != 0} << j;
    out->block[count] = static_cast<uint16_t>(b);
    out->bits[count] = bits;
    count += bits != 0 ? 1 : 0;
  }
#endif
  out->count = count;
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

namespace {

// Everything Validate checks except the sparse opcodes.
Status ValidateHeader(std::string_view bytes) {
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
  }
  return Status::Ok();
}

// The estimate of bytes not yet validated, validating them in the same pass (Validate, then
// EstimateOf, walks a sparse HLL's opcodes once instead of twice). The cache is ignored.
Result<uint64_t> ValidateAndEstimate(std::string_view hll) {
  GIMEL_RETURN_IF_ERROR(ValidateHeader(hll));
  if (Dense(hll)) return EstimateOf(hll);
  std::array<uint32_t, 64> histo{};
  GIMEL_RETURN_IF_ERROR(sparse::ForEachRunValidating(
      Ops(hll), [&](uint32_t, uint32_t len, uint8_t value) { histo[value] += len; }));
  return Estimate(histo);
}

}  // namespace

Status Validate(std::string_view bytes) {
  GIMEL_RETURN_IF_ERROR(ValidateHeader(bytes));
  if (Dense(bytes)) return Status::Ok();
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

bool SetRegisters(std::string* hll, std::span<const Register> ascending) {
  if (hll->empty()) *hll = Empty();
  if (hll->size() < kHeaderSize) return false;
  bool changed = false;
  size_t i = 0;
  if (!Dense(*hll)) {
    sparse::Cursor cursor;  // resumes each scan where the last one stopped
    uint32_t last = 0;
    for (; i < ascending.size(); ++i) {
      const Register r = ascending[i];
      if (r.index >= format::kRegisterCount || r.rank == 0 || r.rank > format::kRegisterMax) {
        continue;  // SetRegister's guards
      }
      if (r.index < last) cursor = {};  // out of order: the cursor holds only going up
      last = r.index;
      const sparse::SetResult result = sparse::Set(hll, r.index, r.rank, &cursor);
      if (result == sparse::SetResult::kPromote) break;
      changed = changed || result == sparse::SetResult::kChanged;
    }
  }
  // What is left (from a promotion on) goes to the dense form, one register at a time.
  for (; i < ascending.size(); ++i) {
    changed = SetRegister(hll, ascending[i].index, ascending[i].rank) || changed;
  }
  return changed;
}

bool Add(std::string* hll, std::string_view element) {
  const Register r = Hash(element);
  return SetRegister(hll, r.index, r.rank);
}

// ---- Counting (PFCOUNT) ------------------------------------------------------------------------

Result<uint64_t> Count(std::string_view hll) {
  if (hll.size() >= kHeaderSize && CacheValid(hll)) {
    GIMEL_RETURN_IF_ERROR(Validate(hll));
    return CachedCard(hll);
  }
  return ValidateAndEstimate(hll);
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
  if (hll->size() >= kHeaderSize && CacheValid(*hll)) return Count(*hll);
  GIMEL_ASSIGN_OR_RETURN(const uint64_t card, ValidateAndEstimate(*hll));
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

// FromRegisters for a non-dense result. Writes, from the non-zero registers (FindNonZero), the
// opcodes that PFMERGE's ascending sets leave: each gap of zeros as one ZERO (<= 64) or XZERO, each
// run of equal values as VALs of 4 from the left (hllSparseSet merges a new VAL into its left
// neighbour while the length fits). Near the 3000-byte limit, where the moment Redis promotes
// depends on intermediate sizes, and for values above 32, replay the sets one by one instead.
std::string EncodeSparse(std::span<const uint8_t, kRegisters> registers) {
  constexpr size_t kExactMargin = 8;  // intermediate sizes exceed the final one by <= 3 bytes
  constexpr size_t kLimit = format::kSparseMaxBytes - kHeaderSize - kExactMargin;
  auto replay = [&] {
    std::string hll = Empty();
    WriteMax(&hll, registers, false);
    return hll;
  };
  NonZeroBlocks nonzero;
  FindNonZero(registers, &nonzero);
  // A zero run is at most 2 bytes and a VAL 1: kLimit + 3 bytes hold any prefix we keep.
  std::array<uint8_t, kLimit + 3> ops;
  size_t n = 0;
  auto put_zeros = [&](uint32_t len) {  // 1 <= len <= kRegisters; XZERO if ZERO cannot hold it
    const uint32_t l = len - 1;
    const bool x = len > format::kSparseZeroMaxLen;
    ops[n] = static_cast<uint8_t>(x ? (format::kSparseXZeroTag | (l >> 8)) : l);
    ops[n + 1] = static_cast<uint8_t>(l & 0xff);  // overwritten next unless x
    n += x ? 2 : 1;
  };
  uint32_t next = 0;  // the first register not encoded yet
  for (uint32_t k = 0; k < nonzero.count; ++k) {
    const uint32_t base = 64u * nonzero.block[k];
    for (uint64_t bits = nonzero.bits[k]; bits != 0; bits &= bits - 1) {
      const uint32_t i = base + static_cast<uint32_t>(std::countr_zero(bits));
      if (i < next) continue;  // inside a run of equal values already written
      const uint8_t value = registers[i];
      if (value > format::kSparseValMaxValue) return replay();
      if (i > next) put_zeros(i - next);
      uint32_t run = 1;
      while (i + run < kRegisters && registers[i + run] == value) ++run;
      for (uint32_t left = run;;) {
        const uint32_t len = std::min(left, format::kSparseValMaxLen);
        ops[n++] = sparse::ValOp(value, len);
        left -= len;
        if (left == 0 || n > kLimit) break;
      }
      if (n > kLimit) return replay();
      next = i + run;
    }
  }
  if (next < kRegisters) put_zeros(kRegisters - next);
  if (n > kLimit) return replay();
  static const std::string empty = Empty();
  std::string hll;
  hll.reserve(kHeaderSize + n);
  hll.assign(empty, 0, kHeaderSize);
  hll.append(reinterpret_cast<const char*>(ops.data()), n);
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
