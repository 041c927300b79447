// Redis-compatible HyperLogLog: gimel's counting sketch.
//
// An HLL is a plain byte string in Redis's "HYLL" format (docs/hll_format.md, src/hll/format.h):
// the same bytes Redis 7 stores for PFADD, so sketches move between gimel's stores and Redis
// with GET/SET, and every operation here answers exactly what PFADD / PFCOUNT / PFMERGE answer
// for the same input (same hash, same sparse/dense transitions, same estimator).
//
// Untrusted bytes (from disk, from Redis, from a user) must pass Validate() before the mutating
// calls, whose REQUIRES say so; the reading calls (Count, Merge's src, CountUnion) validate
// themselves and return kCorruption. No function here allocates on the dense Add path, does
// I/O, or throws (other than std::bad_alloc from std::string growth).
//
// Thread-safety: all functions are pure functions of their arguments; concurrent calls on
// distinct strings are safe, and on one string only if none of them mutates it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gimel::hll {

inline constexpr uint32_t kRegisters = 16384;

// Checks magic, encoding, reserved bytes, exact dense size, sparse opcodes and that sparse runs
// cover exactly kRegisters (overflow-safe). Error: kCorruption with a reason. Never crashes.
// Stricter than Redis in one point: the three unused header bytes must be zero (Redis only
// ever writes zeros there).
Status Validate(std::string_view bytes);

// A new empty HLL exactly as Redis PFADD creates it (sparse, one XZERO run): 18 bytes, the
// cached cardinality marked stale (what `PFADD key` with no elements leaves in Redis).
std::string Empty();

struct Register {
  uint32_t index;  // 0 .. kRegisters-1
  uint8_t rank;    // 1 .. 51
};

// The register and rank that `element` maps to (MurmurHash64A, seed 0xadc83b19).
Register Hash(std::string_view element);

// Sets register index to max(current, rank). Returns true if it changed (then the cached
// cardinality is marked stale). May promote sparse to dense exactly as Redis does. An empty
// *hll means "no key yet": it becomes Empty() first, as PFADD creates the key.
// REQUIRES: Validate(*hll).ok() or hll->empty(), index < kRegisters, 1 <= rank <= 51.
// (Violations never write out of bounds; they may leave *hll unchanged and return false.)
bool SetRegister(std::string* hll, uint32_t index, uint8_t rank);

// SetRegister of each register in turn, in one scan of a sparse HLL's opcodes (resumed where
// the last set stopped) instead of one scan per register: the same bytes as the same calls to
// SetRegister. Returns true if any register changed.
// REQUIRES: as SetRegister, and indices in ascending order (equal ones allowed); out of order,
// the result is still right, only slower.
bool SetRegisters(std::string* hll, std::span<const Register> ascending);

// PFADD semantics: SetRegister(Hash(element)). Returns true if a register changed.
// REQUIRES: Validate(*hll).ok() or hll->empty().
bool Add(std::string* hll, std::string_view element);

// PFCOUNT semantics on validated bytes: the cached cardinality if valid, else the estimate.
// Error: kCorruption if bytes fail Validate.
Result<uint64_t> Count(std::string_view hll);

// Count of bytes already validated, as every Store returns them: skips the validation pass.
// REQUIRES: Validate(hll).ok(). On bytes that are not valid the result is unspecified, but no
// byte outside `hll` is read.
uint64_t CountValidated(std::string_view hll);

// As Count, and also writes the cardinality cache into *hll (as Redis PFCOUNT does).
// Error: kCorruption if *hll fails Validate (then *hll is unchanged).
Result<uint64_t> CountAndCache(std::string* hll);

// dst = union(dst, src) register-wise max, like PFMERGE dst src. Validates src (kCorruption).
// An empty dst string means "no key yet" (becomes a copy-equivalent union). The result is
// byte-identical to Redis 7.0's PFMERGE: dense if dst or src is dense, otherwise dst's sparse
// form updated register by register (promoted past 3000 bytes), cache marked stale.
// src may view *dst's own bytes. Error: kCorruption if src or a non-empty *dst fails Validate
// (then *dst is unchanged).
Status Merge(std::string* dst, std::string_view src);

// PFCOUNT k1 k2 ...: cardinality of the union without modifying inputs. An empty string_view
// stands for a missing key (PFCOUNT treats it as an empty HLL). With exactly one input this is
// Count (the cache is honoured, as Redis's single-key PFCOUNT does); with several, the union is
// estimated from scratch. Error: kCorruption if any non-empty input fails Validate.
Result<uint64_t> CountUnion(std::span<const std::string_view> hlls);

// ---- Beyond the Redis commands -------------------------------------------------------------

// True if validated bytes use the dense encoding. REQUIRES: Validate(hll).ok().
bool IsDense(std::string_view hll);

// The register values (0..63) of an HLL, e.g. for inspection and tests.
// Error: kCorruption if hll fails Validate (then *registers is unspecified).
Status DecodeRegisters(std::string_view hll, std::span<uint8_t, kRegisters> registers);

// registers[i] = max(registers[i], register i of hll): folds many HLLs into one register array
// (then FromRegisters) at the cost of a single decode each.
// Error: kCorruption if hll fails Validate (then registers is unchanged).
Status MaxRegisters(std::string_view hll, std::span<uint8_t, kRegisters> registers);
// MaxRegisters without validating again. REQUIRES: Validate(hll).ok().
void MaxRegistersValidated(std::string_view hll, std::span<uint8_t, kRegisters> registers);

// The HLL holding exactly `registers`, as Redis PFMERGE writes them into a new key: sparse,
// set in ascending register order, unless `dense` is true (PFMERGE's "an input was dense") or
// Redis would promote on the way (a value above 32, or past 3000 bytes); cache marked stale.
// REQUIRES: every value <= 63.
std::string FromRegisters(std::span<const uint8_t, kRegisters> registers, bool dense);

// Converts to the dense encoding in place, as Redis `PFDEBUG TODENSE` does: header (and cached
// cardinality) kept, encoding byte set to dense. No-op on a dense HLL.
// REQUIRES: Validate(*hll).ok().
void ToDense(std::string* hll);

}  // namespace gimel::hll
