// RedisKeyspaceStore: the Store logic shared by the redis and redis-cluster stores: the
// original Gimel's keyspace (store/keys.h), the index cache, reading/validating counters. The
// transport underneath (one server, or a cluster with slot routing) is a Backend.
//
// Hot path (Add): one PFADD; for a counter this process has not indexed in the last
// kIndexRefresh, also the index writes (SADD ×3, and the HSET of the name index when the event
// or variant contains ':'):
//   - standalone: all in one MULTI/EXEC, in the original's order: one round trip, atomic;
//   - cluster (keys in different slots, no MULTI): PFADD (+HSET) first, then the SADDs once
//     those are acknowledged, so an index entry never names a counter that was not written.
// Readers tolerate index entries whose counter is missing (skipped) either way.
// The cache of indexed counters is tagged with Backend::generation(): any new connection (the
// server may have restarted empty) invalidates it, and an Add that saw the generation change
// while in flight writes its index before completing.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/redis_conn.h"
#include "store/redis_pipeline.h"
#include "store/store.h"

namespace gimel::store::redis {

// A command and the key that routes it (cluster); key is empty for keyless commands.
struct KeyedCommand {
  std::string key;
  Argv argv;
};

using ValuesCallback = std::function<void(Status, std::vector<Value>)>;

// The transport under RedisKeyspaceStore.
//
// Thread-safety: all methods may be called concurrently; callbacks run on transport threads.
class Backend {
 public:
  virtual ~Backend() = default;

  // Runs independent commands (any order; each routed by its key). `done` is called exactly
  // once: OK with one reply per command, in order (error replies are values), or kUnavailable
  // if some command could not be completed by the server (not sent by `deadline`, connection
  // lost, too many redirections).
  virtual void Run(std::vector<KeyedCommand> cmds, Clock::time_point deadline,
                   ValuesCallback done) = 0;

  // Runs commands in one MULTI/EXEC; `done` gets the EXEC's replies (one per command), or a
  // Status if the transaction failed (an error queuing a command → that error as kIOError/
  // kUnavailable). REQUIRES: atomic_across_keys() or every key in one hash slot.
  virtual void RunAtomic(std::vector<KeyedCommand> cmds, Clock::time_point deadline,
                         ValuesCallback done) = 0;

  // The hot path's Run, without copies: sends op's commands (RESP-encoded, each routed by
  // `key`, none a MULTI) and completes the op through op->Done exactly once, with the same
  // outcomes as Run.
  virtual void Send(std::unique_ptr<PipelineOp> op, std::string_view key) = 0;

  // True if RunAtomic accepts keys of different slots (one server).
  virtual bool atomic_across_keys() const = 0;

  // Incremented whenever a connection is established: the server at the other end may have
  // restarted empty, so index entries acknowledged before may be gone.
  virtual uint64_t generation() const = 0;

  // Every key matching a SCAN pattern (on every master of a cluster), possibly with duplicates.
  virtual Result<std::vector<std::string>> ScanKeys(std::string_view pattern) = 0;

  // OK if every server answers PING (and, for a cluster, every slot is served).
  virtual Status Ping() = 0;

  // Completes every pending command (kUnavailable) and stops the transport threads; later
  // calls complete at once with kUnavailable. Idempotent. Called before destruction so that
  // callbacks still running may use their store.
  virtual void Shutdown() = 0;
};

class RedisKeyspaceStore final : public Store {
 public:
  // Index entries are re-sent after this long, so an experiment deleted by another gimel
  // process is re-indexed by this one's next events within it.
  static constexpr std::chrono::seconds kIndexRefresh{60};
  // The index cache is cleared when it grows past this many counters (bounded memory).
  static constexpr size_t kMaxIndexCache = 1 << 20;
  // Bulk reads (ReadExperiments) are sent in pipelines of at most this many commands: the
  // PipelinePool's batch size (redis_pipeline.h), so that one report neither sends an unbounded
  // pipeline nor holds a connection much longer than a batch of concurrent requests would.
  static constexpr size_t kMaxReadPipeline = 4096;

  RedisKeyspaceStore(std::unique_ptr<Backend> backend, std::chrono::milliseconds command_timeout,
                     std::string_view name);
  ~RedisKeyspaceStore() override;

  void Add(const TrackEvent& event, AddCallback done) override;
  Result<std::vector<std::string>> ListNamespaces() override;
  Result<std::vector<std::string>> ListExperiments(std::string_view ns) override;
  Result<std::vector<Counter>> ReadExperiment(std::string_view ns,
                                              std::string_view experiment) override;
  // Two phases whatever the number of experiments: every experiment's index reads (SMEMBERS +
  // HGETALL) in one pipeline, then every counter's GET; each phase is split into pipelines of
  // at most kMaxReadPipeline commands.
  Result<std::vector<std::vector<Counter>>> ReadExperiments(
      std::string_view ns, const std::vector<std::string>& experiments) override;
  Status DeleteExperiment(std::string_view ns, std::string_view experiment) override;
  Status MergeCounter(std::string_view ns, std::string_view experiment, std::string_view event,
                      std::string_view variant, std::string_view hll) override;
  Status Health() override;
  std::string_view name() const override { return name_; }

 private:
  // Blocking Run / RunAtomic.
  Result<std::vector<Value>> RunSync(std::vector<KeyedCommand> cmds, bool atomic);
  // RunSync(cmds, false) in consecutive pipelines of at most kMaxReadPipeline commands, each
  // with its own deadline; the replies of all, in order.
  Result<std::vector<Value>> RunSyncChunked(std::vector<KeyedCommand> cmds);
  Clock::time_point Deadline() const { return Clock::now() + command_timeout_; }

  // True if the tuple's index entries were acknowledged less than kIndexRefresh ago, in
  // backend generation `generation`.
  bool IsIndexed(std::string_view tuple_id, uint64_t generation);
  void MarkIndexed(std::string tuple_id, uint64_t generation);
  class AddOp;
  // Sends the PFADD of `uuid` to the counter `tuple` (a keys::TupleId) with its index writes,
  // then calls done (Add's contract); on success, marks the tuple indexed in `generation`.
  void AddWithIndex(std::string_view tuple, std::string_view uuid, uint64_t generation,
                    Clock::time_point deadline, AddCallback done);
  void ForgetExperiment(std::string_view ns, std::string_view experiment);

  const std::unique_ptr<Backend> backend_;
  const std::chrono::milliseconds command_timeout_;
  const std::string name_;

  std::mutex index_mu_;
  struct Indexed {
    Clock::time_point at;  // when its index entries were acknowledged
    uint64_t generation;   // Backend::generation() before they were sent
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  // keys::TupleId → Indexed. Guarded by index_mu_.
  std::unordered_map<std::string, Indexed, StringHash, std::equal_to<>> indexed_;
};

// Status of the first error reply among `replies` (ErrorReplyToStatus), or OK. `what` names
// the operation in the message.
Status FirstError(std::span<const Value> replies, std::string_view what);

}  // namespace gimel::store::redis
