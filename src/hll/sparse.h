// The sparse encoding: run-length opcodes ZERO / XZERO / VAL (docs/hll_format.md).
//
// Internal to src/hll/. Functions taking `ops` see only the opcode bytes after the header;
// functions taking the whole HLL string say so.
// Thread-safety: pure functions over caller-owned memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "hll/format.h"

namespace gimel::hll::sparse {

// ---- Opcodes ---------------------------------------------------------------------------------

inline bool IsZero(uint8_t op) { return (op & format::kSparseTagMask) == format::kSparseZeroTag; }
inline bool IsXZero(uint8_t op) { return (op & format::kSparseTagMask) == format::kSparseXZeroTag; }
inline bool IsVal(uint8_t op) { return (op & format::kSparseValTag) != 0; }
inline uint32_t ZeroLen(uint8_t op) { return (op & 0x3f) + 1u; }
inline uint32_t XZeroLen(uint8_t op, uint8_t op2) { return ((op & 0x3fu) << 8 | op2) + 1u; }
inline uint8_t ValValue(uint8_t op) { return static_cast<uint8_t>(((op >> 2) & 0x1f) + 1); }
inline uint32_t ValLen(uint8_t op) { return (op & 0x3u) + 1u; }
// REQUIRES: 1 <= len <= 64.
inline uint8_t ZeroOp(uint32_t len) { return static_cast<uint8_t>(len - 1); }
// Writes the two XZERO bytes. REQUIRES: 1 <= len <= 16384.
inline void PutXZero(uint8_t* p, uint32_t len) {
  p[0] = static_cast<uint8_t>(format::kSparseXZeroTag | ((len - 1) >> 8));
  p[1] = static_cast<uint8_t>((len - 1) & 0xff);
}
// REQUIRES: 1 <= value <= 32, 1 <= len <= 4.
inline uint8_t ValOp(uint8_t value, uint32_t len) {
  return static_cast<uint8_t>(format::kSparseValTag | ((value - 1) << 2) | (len - 1));
}

// ---- Whole-sketch operations -------------------------------------------------------------------

// Opcodes well formed (no truncated XZERO) and runs covering exactly kRegisterCount registers,
// never overflowing on the way. Error: kCorruption with a reason.
Status ValidateOps(std::string_view ops);

// The error of ForEachRunValidating for runs that ended after `covered` registers, or
// kTruncated.
inline constexpr uint32_t kTruncated = ~0u;
Status CorruptRuns(uint32_t covered);

// ValidateOps, calling fn(first_register, run_length, value) for each run on the way (one pass
// instead of two). On an error, fn has seen the runs before it.
template <typename Fn>
Status ForEachRunValidating(std::string_view ops, Fn&& fn) {
  const auto* p = reinterpret_cast<const uint8_t*>(ops.data());
  const uint8_t* end = p + ops.size();
  uint32_t covered = 0;  // never exceeds kRegisterCount: each run is checked before adding
  while (p < end) {
    uint32_t len;
    uint8_t value = 0;
    if (IsZero(*p)) {
      len = ZeroLen(*p);
      p += 1;
    } else if (IsXZero(*p)) {
      if (end - p < 2) return CorruptRuns(kTruncated);
      len = XZeroLen(p[0], p[1]);
      p += 2;
    } else {
      len = ValLen(*p);
      value = ValValue(*p);
      p += 1;
    }
    if (len > format::kRegisterCount - covered) return CorruptRuns(format::kRegisterCount + 1);
    fn(covered, len, value);
    covered += len;
  }
  if (covered != format::kRegisterCount) return CorruptRuns(covered);
  return Status::Ok();
}

// Visits the runs of validated ops in order: fn(first_register, run_length, value). On ops
// that are not valid it stops at the first malformed run (ForEachRunValidating's walk).
template <typename Fn>
void ForEachRun(std::string_view ops, Fn&& fn) {
  (void)ForEachRunValidating(ops, std::forward<Fn>(fn));
}

// Where a run of ascending SparseSet calls may resume scanning (see SparseSet). Value-initialise
// it before the first call; it is only valid for the string it was last used with.
struct Cursor {
  size_t pos = 0;      // offset (in the HLL string) of an opcode; 0 = start at the beginning
  uint32_t first = 0;  // first register that opcode covers
  size_t prev = 0;     // offset of the opcode before it; 0 = none
};

enum class SetResult {
  kUnchanged,  // the register already held >= value
  kChanged,    // updated in place, cache marked stale
  kPromote,    // Redis promotes here: value > 32, or the sparse form would pass 3000 bytes
  kInvalid,    // the opcodes did not cover the register (only on unvalidated input)
};

// Redis hllSparseSet on a whole sparse HLL string: register index = max(register, value),
// splitting a ZERO/XZERO/VAL run as Redis does and merging equal adjacent VALs in the same
// 5-opcode window, so the resulting bytes equal Redis's. Does not promote: on kPromote *hll is
// unchanged and the caller converts to dense. With a cursor, calls with ascending indices
// resume the opcode scan where the last one left off (same result, linear total cost).
// REQUIRES: *hll is a validated sparse HLL, index < kRegisterCount, 1 <= value <= 63.
SetResult Set(std::string* hll, uint32_t index, uint8_t value, Cursor* cursor = nullptr);

}  // namespace gimel::hll::sparse
