// LoopConnections: the redis store's hot path on the I/O threads' own event loops.
//
// The PipelinePool (redis_pipeline.h) hands each event to a worker thread, which sends it and
// hands the reply back. On a machine with few cores those workers compete for the core with the
// I/O thread that waits for them, and the I/O thread's wait for the core shows in the tail
// latency (bench/README.md). A LoopConnection is instead one non-blocking connection per I/O
// thread (common/loop.h), driven by that thread's io_context: an event's PFADD is appended to the
// connection's output, everything appended during one turn of the loop goes out in one write,
// and replies are matched to their ops in order as they arrive, on the same thread. Idle, an
// event costs one round trip; under load, one write and one read serve many events.
//
// Connection: opened on first use (resolve, connect, AUTH/SELECT pipelined ahead of the first
// commands), asynchronously. After a failure, ops fail at once with that failure until the
// backoff ends (Backoff in redis_conn.h: 50 ms doubling to 1 s), or until another connection to the
// server has been established since (it is back). A closed connection is noticed when it
// closes, idle or not (a read is always pending), so a server restart costs no failed event.
//
// Failure: every op not complete fails with kUnavailable when the connection breaks, when a
// connect or the handshake fails, when no reply has arrived for the command timeout while
// replies are awaited, when the loop stops, or when Shutdown is called. Each op is completed
// exactly once.
//
// Thread-safety: SendOnThisThread and Shutdown from any thread; Shutdown not from an op's
// callback.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "common/loop.h"
#include "store/redis_conn.h"
#include "store/redis_pipeline.h"

namespace gimel::store::redis {

class LoopConnection;  // redis_loop.cc

class LoopConnections {
 public:
  // Every connection established increments *connects (the backend's generation).
  LoopConnections(ConnectionOptions options, std::shared_ptr<std::atomic<uint64_t>> connects);
  ~LoopConnections();  // Shutdown()
  LoopConnections(const LoopConnections&) = delete;
  LoopConnections& operator=(const LoopConnections&) = delete;

  // On a thread that runs a Loop: sends op's commands on that loop's connection (created on
  // first use), completes the op through op->Done (PipelineOp's contract; possibly before
  // returning, for a failure known at once) and returns true. Elsewhere returns false and
  // leaves *op untouched.
  bool SendOnThisThread(std::unique_ptr<PipelineOp>* op);

  // Fails every op of every connection that is not complete (kUnavailable), waiting for
  // completions running on other threads; later sends fail at once. Each connection's socket is
  // closed by its own thread, when that thread next handles it or when its loop ends.
  // Idempotent. REQUIRES: not called from an op's callback.
  void Shutdown();

 private:
  const uint64_t key_ = Loop::NewKey();
  const ConnectionOptions options_;
  const std::shared_ptr<std::atomic<uint64_t>> connects_;
  std::mutex mu_;
  bool closed_ = false;                             // guarded by mu_
  std::vector<std::weak_ptr<LoopConnection>> all_;  // guarded by mu_
};

}  // namespace gimel::store::redis
