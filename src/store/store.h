// Store: where counters live. One small interface, three implementations chosen by
// configuration (embedded RocksDB, standalone Redis, Redis Cluster) plus an in-memory one
// for tests; handlers never know which (leveldb's DB/Env pattern).
//
// A counter is identified by (namespace, experiment, event, variant) and holds a Redis
// HyperLogLog ("HYLL" bytes, see docs/hll_format.md) of the uuids seen for it. Names are
// arbitrary UTF-8 byte strings, including ':' and '/'; each implementation must store and
// report them exactly (docs/key_schema.md).
//
// Thread-safety: every method may be called concurrently from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gimel::store {

struct TrackEvent {
  std::string_view ns;          // namespace, e.g. "alephbet"
  std::string_view experiment;  // e.g. "button color"
  std::string_view event;       // "participate" or a goal name
  std::string_view variant;     // e.g. "red"
  std::string_view uuid;        // the element added to the counter's HLL
};

struct Counter {
  std::string event;
  std::string variant;
  // Redis HYLL bytes, validated by the store (hll::Validate). Stores that read them from
  // outside the process also fill the cardinality cache (hll::CountAndCache, one pass over the
  // bytes), so that counting them again is free.
  std::string hll;
};

// Invoked exactly once when an Add completes, possibly on a store-owned thread; must not block.
using AddCallback = std::function<void(Status)>;

struct RedisOptions {
  std::string host = "127.0.0.1";  // Default: 127.0.0.1
  int port = 6379;                 // Default: 6379
  std::string unix_socket;         // Default: "" (use TCP). When set, host/port are ignored.
  std::string username;            // Default: "" (AUTH with password only)
  std::string password;            // Default: "" (no AUTH)
  int db = 0;                      // Default: 0 (standalone only)
  int connect_timeout_ms = 1000;   // Default: 1000
  int command_timeout_ms = 2000;   // Default: 2000
  int connections = 2;             // Default: 2 pipelined connections shared by all requests
};

struct StoreOptions {
  enum class Kind { kEmbedded, kRedis, kRedisCluster, kMemory };
  Kind kind = Kind::kEmbedded;  // Default: embedded

  // Embedded store.
  std::string data_dir;  // REQUIRES: non-empty for kEmbedded
  bool sync = true;      // Default: true: an Add completes only after the WAL is fsynced.
                         // false: after the WAL write (survives a crash of gimel, not of the OS).
  int max_batch = 1024;  // Default: 1024 events per group commit
  // With "sync": a group commit starts at least this long after the previous one started
  // (0: as soon as events wait), or sooner once commit_early_events events wait (0: never).
  // Defaults: 2000 (2 ms) and 48, so that at moderate load one fsync covers more events and at
  // high load the interval holds nothing back (embedded_store.cc, WriterLoop).
  int min_commit_interval_us = 2000;
  int commit_early_events = 48;
  // Default: 8 MiB memtables (small: a fast WAL replay on opening), and as much WAL written
  // ahead as zeros (embedded_wal.h). Tests use small ones to rotate WAL files often.
  size_t write_buffer_bytes = 8 << 20;

  // Redis and Redis Cluster.
  RedisOptions redis;
  std::vector<std::string> cluster_nodes;  // "host:port" seeds for kRedisCluster
};

std::string_view KindName(StoreOptions::Kind kind);
// Parses "embedded", "redis", "redis-cluster", "memory". Error: kInvalidArgument.
Result<StoreOptions::Kind> ParseKind(std::string_view name);

class Store {
 public:
  // Opens the store described by `options`. Errors: kInvalidArgument (bad options),
  // kIOError (embedded: data directory unusable or locked by another process),
  // kUnavailable (redis: unreachable). Redis stores may also open successfully while the
  // server is down and report kUnavailable per call (they reconnect by themselves).
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);

  virtual ~Store() = default;

  // Adds event.uuid to the counter (ns, experiment, event, variant) and records the
  // experiment and counter in the namespace's index. `done` is called exactly once: with OK
  // only after the update is durable (embedded: in the WAL; redis: acknowledged by the
  // server); otherwise with kUnavailable/kIOError. The string_views need only live until
  // Add returns.
  virtual void Add(const TrackEvent& event, AddCallback done) = 0;

  // Synchronous Add, for the CLI and tests.
  Status AddSync(const TrackEvent& event);

  // Every namespace that has at least one experiment.
  virtual Result<std::vector<std::string>> ListNamespaces() = 0;
  // Every experiment of `ns` (unordered); empty if none.
  virtual Result<std::vector<std::string>> ListExperiments(std::string_view ns) = 0;
  // Every counter of the experiment; empty if the experiment does not exist.
  // Error: kCorruption if a stored HLL fails validation.
  virtual Result<std::vector<Counter>> ReadExperiment(std::string_view ns,
                                                      std::string_view experiment) = 0;
  // ReadExperiment of each of `experiments`, in the same order (one entry per name, duplicates
  // included; empty for an unknown experiment). Error: the error that calling ReadExperiment on
  // the names in order would give first. Stores that pay a round trip per read (redis) override
  // it to read all the experiments in a few pipelines, the embedded store to read them through
  // one iterator; the default reads them one by one.
  // Defined here, not in store.cc: the backend libraries do not link gimel_store.
  virtual Result<std::vector<std::vector<Counter>>> ReadExperiments(
      std::string_view ns, const std::vector<std::string>& experiments) {
    std::vector<std::vector<Counter>> out;
    out.reserve(experiments.size());
    for (const std::string& experiment : experiments) {
      GIMEL_ASSIGN_OR_RETURN(std::vector<Counter> counters, ReadExperiment(ns, experiment));
      out.push_back(std::move(counters));
    }
    return out;
  }
  // Removes the experiment's counters and index entries. OK if it did not exist.
  virtual Status DeleteExperiment(std::string_view ns, std::string_view experiment) = 0;
  // Unions `hll` (validated HYLL bytes) into the counter and indexes it, creating it if
  // needed: the register-wise max, so merging twice changes nothing (used by migrate).
  virtual Status MergeCounter(std::string_view ns, std::string_view experiment,
                              std::string_view event, std::string_view variant,
                              std::string_view hll) = 0;
  // OK if the store is usable right now (e.g. Redis answers PING).
  virtual Status Health() = 0;
  // Human-readable kind, e.g. "embedded".
  virtual std::string_view name() const = 0;
};

}  // namespace gimel::store
