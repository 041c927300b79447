// PipelinePool: a few connections to one Redis server shared by every request, pipelined.
// The standalone store sends the hot path's events from an HTTP I/O thread on that thread's own
// connection instead (redis_loop.h); the pool serves everything else (index writes, reports,
// callers that run no event loop) and the cluster store.
//
// Each of the pool's N worker threads owns one RedisConnection and loops: take everything
// queued (up to kMaxBatchCommands), append all of it, flush once, read all replies, run the
// callbacks. Under load, requests that arrive while a batch is on the wire form the next
// batch, so one round trip serves many requests; idle, a request costs one round trip.
//
// Failure: an op is completed with kUnavailable when its connection cannot be (re)opened,
// breaks or times out before its replies arrive, when it waited past its deadline, or when the
// pool is destroyed. An op is completed exactly once.
//
// Thread-safety: Submit may be called from any thread, including from a callback. Callbacks
// run on a worker thread and must not block.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "store/redis_conn.h"

namespace gimel::store::redis {

// A unit of work: commands sent back to back on one connection, completed exactly once. The
// hot path derives its own op (one allocation holds the commands, the state and the callback);
// MakeOp wraps a function for everything else.
class PipelineOp {
 public:
  virtual ~PipelineOp() = default;

  // OK: `replies` has one Value per command (error replies are values), valid during the call
  // only (move out what is kept). Otherwise the op failed as a whole (kUnavailable) and
  // `replies` is empty. Runs on a worker thread, or in Submit/Shutdown; must not block.
  virtual void Done(Status s, std::span<Value> replies) = 0;

  std::string commands;        // RESP-encoded (AppendCommand), back to back
  size_t count = 0;            // the number of commands in `commands`
  Clock::time_point deadline;  // fail with kUnavailable if not sent by then
};

// An op of `count` RESP-encoded `commands` whose completion calls `done` with the replies in
// a vector.
std::unique_ptr<PipelineOp> MakeOp(std::string commands, size_t count, Clock::time_point deadline,
                                   std::function<void(Status, std::vector<Value>)> done);

class PipelinePool {
 public:
  static constexpr size_t kMaxBatchCommands = 4096;

  // Starts `connections` (>= 1) workers. With connect_now, their connections are opened here
  // (blocking up to the connect timeout); otherwise, or if that fails, on their first op (with
  // backoff). Every connection established (the first of a worker too: it may reach a server
  // that restarted empty since another worker last talked to it) increments *connects, if given.
  PipelinePool(ConnectionOptions options, int connections,
               std::shared_ptr<std::atomic<uint64_t>> connects = nullptr, bool connect_now = false);
  // Shutdown().
  ~PipelinePool();

  // Completes every queued op with kUnavailable and joins the workers (a worker blocked on the
  // network returns within the command timeout); later Submits fail at once. Idempotent.
  // REQUIRES: not called from a callback of this pool.
  void Shutdown();
  PipelinePool(const PipelinePool&) = delete;
  PipelinePool& operator=(const PipelinePool&) = delete;

  void Submit(std::unique_ptr<PipelineOp> op);

  // Submit and wait. REQUIRES: not called from a callback (it would wait on itself).
  Result<std::vector<Value>> SubmitSync(std::vector<Argv> commands, Clock::time_point deadline);

  // Appends to *out every key of this server matching `pattern` (SCAN … MATCH … COUNT 1000 until
  // the cursor returns to 0; each call bounded by the command timeout). `what` names the server
  // in errors. Errors: as SubmitSync, or kIOError for an unexpected reply.
  Status ScanAll(std::string_view pattern, std::string_view what, std::vector<std::string>* out);

  const ConnectionOptions& options() const { return options_; }

 private:
  void WorkerLoop(std::unique_ptr<RedisConnection> conn);
  void NoteConnected();

  const ConnectionOptions options_;
  const std::shared_ptr<std::atomic<uint64_t>> connects_;
  std::atomic<Clock::time_point> last_connect_{Clock::time_point{}};  // by any worker
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<PipelineOp>> queue_;  // guarded by mu_
  bool stop_ = false;                              // guarded by mu_
  std::mutex join_mu_;                             // serialises Shutdown
  std::vector<std::thread> workers_;               // guarded by join_mu_ after construction
};

}  // namespace gimel::store::redis
