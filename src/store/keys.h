// The Redis keyspace of the redis and redis-cluster stores: the single place that spells every
// Redis key gimel reads or writes. docs/key_schema.md ("Redis keyspace") says the same in prose;
// keep the two in step.
//
// The layout is the original Gimel's (github.com/Alephbet/gimel, gimel.py track/delete), so a
// Python Gimel deployment can switch to gimel with its data, and back:
//
//   {ns}:experiments                              SET  of experiment names
//   {ns}:counter_keys                             SET  of every counter key of the namespace
//   {ns}:{experiment}:counter_keys                SET  of the experiment's counter keys
//   {ns}:counters:{experiment}:{event}:{variant}  STRING: Redis HLL (PFADD)
//
// plus one gimel addition, written only for counters whose event or variant contains ':'
// (so the keyspace of ordinary names is byte-for-byte the original's):
//
//   {ns}:{experiment}:counter_names               HASH counter key -> event name
//
// The original recovers (event, variant) by splitting a counter key on ':', which misreads
// names containing ':'. Knowing the event pins the split: the key is
// "{ns}:counters:{experiment}:" + event + ":" + variant, so the variant is what follows.
//
// Cluster: the keys carry no hash tags (the original has none), so one event's keys land in
// different slots; every cluster operation is single-key (or single-slot MULTI, see
// MergeTmpKey). HashSlot implements Redis Cluster's key → slot function.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace gimel::store::keys {

// ---- Pieces (DESIGN.md §3) ------------------------------------------------------------------

inline constexpr char kSeparator = ':';
inline constexpr std::string_view kSeparatorString = ":";
inline constexpr std::string_view kExperimentsSuffix = ":experiments";  // {ns}:experiments
// {ns}:counter_keys and {ns}:{experiment}:counter_keys
inline constexpr std::string_view kCounterKeysSuffix = ":counter_keys";
inline constexpr std::string_view kCountersInfix = ":counters:";  // {ns}:counters:{exp}:...
inline constexpr std::string_view kCounterNamesSuffix = ":counter_names";  // gimel addition
// Scratch key used only inside one MULTI/EXEC (never visible to other clients), see MergeTmpKey.
inline constexpr std::string_view kMergeTmpPrefix = "gimel:merge-tmp:";
// SCAN pattern that finds every namespace's experiments SET.
inline constexpr std::string_view kExperimentsPattern = "*:experiments";
// The event name meaning "joined the experiment".
inline constexpr std::string_view kParticipate = "participate";

// Redis Cluster: number of hash slots.
inline constexpr uint32_t kClusterSlots = 16384;

// ---- Keys -----------------------------------------------------------------------------------

// {ns}:experiments
std::string ExperimentsKey(std::string_view ns);
// {ns}:counter_keys
std::string NamespaceCounterKeysKey(std::string_view ns);
// {ns}:{experiment}:counter_keys
std::string ExperimentCounterKeysKey(std::string_view ns, std::string_view experiment);
// {ns}:{experiment}:counter_names (gimel's name index, see top of file)
std::string CounterNamesKey(std::string_view ns, std::string_view experiment);
// {ns}:counters:{experiment}:{event}:{variant}
std::string CounterKey(std::string_view ns, std::string_view experiment, std::string_view event,
                       std::string_view variant);
// CounterKey, appended to *out.
void AppendCounterKey(std::string* out, std::string_view ns, std::string_view experiment,
                      std::string_view event, std::string_view variant);
// {ns}:counters:{experiment}:  — every counter key of the experiment starts with it.
std::string CounterPrefix(std::string_view ns, std::string_view experiment);

// True if the counter needs an entry in CounterNamesKey: its key cannot be split back
// unambiguously (event or variant contains ':').
bool NeedsNameEntry(std::string_view event, std::string_view variant);

// Recovers (event, variant) from a counter key of the experiment whose CounterPrefix is
// `prefix`. `recorded_event` is the CounterNamesKey entry for the key, if any. Rules:
//   1. the key must start with prefix, else nullopt (a foreign key: skip it);
//   2. if recorded_event is set and the rest is recorded_event + ":" + v, the answer is
//      (recorded_event, v);
//   3. otherwise the rest is split at its last ':' (event may then contain ':', the variant
//      not: for data written by the original Gimel with ':' in names, this keeps every count
//      and agrees with the original on the variant); no ':' in the rest → nullopt.
std::optional<std::pair<std::string, std::string>> ParseCounterKey(
    std::string_view prefix, std::string_view key, std::optional<std::string_view> recorded_event);

// The namespace whose ExperimentsKey is `key`, or nullopt if key does not end in
// ":experiments". (A counter key whose variant is "experiments" also ends so: callers must
// check the key is a SET.)
std::optional<std::string> NamespaceFromExperimentsKey(std::string_view key);

// ---- Cluster --------------------------------------------------------------------------------

// CRC16 (XMODEM, as Redis Cluster) of bytes.
uint16_t Crc16(std::string_view bytes);
// Redis Cluster slot of a key: CRC16 of the hash tag ("{...}", the first '{' followed by a
// non-empty "...}") or of the whole key, mod 16384.
uint32_t HashSlot(std::string_view key);

// A scratch key in the same slot as `key` ("gimel:merge-tmp:{tag}" with a tag chosen so that
// HashSlot matches), so MergeCounter can run SET tmp / PFMERGE key tmp / DEL tmp in one MULTI
// even on a cluster. The key exists only inside that transaction.
std::string MergeTmpKey(std::string_view key);

// Length-prefixed, unambiguous identity of a counter tuple (for in-memory sets; not a Redis
// key: distinct tuples can share a Redis counter key when names contain ':').
std::string TupleId(std::string_view ns, std::string_view experiment, std::string_view event,
                    std::string_view variant);
// TupleId, appended to *out.
void AppendTupleId(std::string* out, std::string_view ns, std::string_view experiment,
                   std::string_view event, std::string_view variant);
// The names of the tuple `id` (a TupleId): {ns, experiment, event, variant}; nullopt if `id`
// is not a TupleId.
std::optional<std::array<std::string_view, 4>> ParseTupleId(std::string_view id);
// Every TupleId of the experiment starts with this, and no other experiment's does.
std::string TupleIdPrefix(std::string_view ns, std::string_view experiment);

}  // namespace gimel::store::keys
