// On-disk format of the embedded (RocksDB) store: key encoding and HLL merge operands.
//
// docs/key_schema.md ("Embedded store (RocksDB)") describes the same layout in prose; keep
// the two in step. In short, every key is one tag byte followed by length-prefixed names:
//
//   'c' name(ns) name(experiment) name(event) name(variant)  -> counter: Redis HYLL bytes
//   'e' name(ns) name(experiment)                            -> experiment index: ""
//   'm' "format"                                             -> format version: "1"
//
//   name(s) = varint32(len(s)) s        (LEB128, as leveldb's PutVarint32)
//
// Each name is self-delimiting, so a prefix made of whole names matches exactly the keys
// below it ("ab" and "ab:c" never share a prefix) and any byte string (NUL, ':', '/',
// non-UTF-8) round-trips.
//
// Counter values are only ever written through the merge operator (NewHllMergeOperator), with
// two kinds of operand:
//   - 3 bytes: a register update: index (little-endian 16 bits, < 16384), rank (1..51);
//   - anything else: a Redis HYLL string, unioned into the counter (register-wise max).
// Both are commutative and idempotent, so replaying or duplicating an operand changes nothing.
//
// Thread-safety: pure functions; the merge operator is stateless and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rocksdb {
class MergeOperator;
}  // namespace rocksdb

namespace gimel::store::embedded {

inline constexpr char kCounterTag = 'c';
inline constexpr char kExperimentTag = 'e';
inline constexpr char kMetaTag = 'm';

// Key 'm' "format" holds kFormatVersion; Open upgrades kPreviousFormatVersion (whose data
// reads the same) and refuses any other value. Version 2 introduced register lists (merge
// operands of several entries), which a version-1 gimel would skip: it must refuse to open.
inline constexpr std::string_view kFormatKey = "mformat";
inline constexpr std::string_view kFormatVersion = "2";
inline constexpr std::string_view kPreviousFormatVersion = "1";

// A register operand is a list of 3-byte entries: 2 bytes index (little-endian) + 1 byte rank
// (docs/key_schema.md). An HLL operand starts with "HYLL", which no register list can: its
// first entry's index would be 'H' | 'Y' << 8 = 22856, not a register.
inline constexpr size_t kRegisterEntrySize = 3;
inline constexpr uint32_t kRegisterCount = 16384;  // 2^14 registers (Redis HLL_REGISTERS)
inline constexpr uint8_t kMaxRank = 51;            // 64 - 14 + 1 (Redis HLL_Q + 1)

// Appends varint32(len(name)) + name. REQUIRES: name.size() < 2^32.
void PutName(std::string* dst, std::string_view name);
// Reads one name from the front of *input and advances it. false if *input is malformed.
bool GetName(std::string_view* input, std::string_view* name);

std::string CounterKey(std::string_view ns, std::string_view experiment, std::string_view event,
                       std::string_view variant);
// Prefix of every counter key of one experiment.
std::string CounterPrefix(std::string_view ns, std::string_view experiment);
std::string ExperimentKey(std::string_view ns, std::string_view experiment);
// Prefix of every experiment index key of one namespace.
std::string ExperimentPrefix(std::string_view ns);

// Parses a full key. false if it has the wrong tag or is malformed; the outputs then are
// unspecified. Outputs point into `key`.
bool ParseCounterKey(std::string_view key, std::string_view* ns, std::string_view* experiment,
                     std::string_view* event, std::string_view* variant);
bool ParseExperimentKey(std::string_view key, std::string_view* ns, std::string_view* experiment);

// The smallest string greater than every string starting with `prefix`; "" if there is none
// (prefix empty or all 0xff).
std::string PrefixSuccessor(std::string_view prefix);

// Appends one register entry to a register operand. REQUIRES: index < 16384, 1 <= rank <= 51.
void AppendRegisterEntry(std::string* operand, uint32_t index, uint8_t rank);
// A register operand of one entry.
std::string EncodeRegisterOperand(uint32_t index, uint8_t rank);
// false if `entry` is not one well-formed entry (size, index or rank out of range).
bool DecodeRegisterOperand(std::string_view entry, uint32_t* index, uint8_t* rank);
// True if the operand is HLL bytes (starts with "HYLL"), false if it is a register list.
bool IsHllOperand(std::string_view operand);

// The merge operator of counter values (Name(): "gimel.hll.v1"). It never fails: invalid
// operands are skipped, and an existing value that fails hll::Validate is kept unchanged (and
// reported as kCorruption when read) rather than silently replaced.
std::shared_ptr<rocksdb::MergeOperator> NewHllMergeOperator();

}  // namespace gimel::store::embedded
