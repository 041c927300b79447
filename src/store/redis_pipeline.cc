#include "store/redis_pipeline.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <future>

#include "common/defer.h"

namespace gimel::store::redis {

namespace {

class FunctionOp final : public PipelineOp {
 public:
  explicit FunctionOp(std::function<void(Status, std::vector<Value>)> done)
      : done_(std::move(done)) {}
  void Done(Status s, std::span<Value> replies) override {
    done_(std::move(s), std::vector<Value>(std::make_move_iterator(replies.begin()),
                                           std::make_move_iterator(replies.end())));
  }

 private:
  std::function<void(Status, std::vector<Value>)> done_;
};

}  // namespace

std::unique_ptr<PipelineOp> MakeOp(std::string commands, size_t count, Clock::time_point deadline,
                                   std::function<void(Status, std::vector<Value>)> done) {
  auto op = std::make_unique<FunctionOp>(std::move(done));
  op->commands = std::move(commands);
  op->count = count;
  op->deadline = deadline;
  return op;
}

void PipelinePool::NoteConnected() {
  last_connect_.store(Clock::now());
  if (connects_ != nullptr) connects_->fetch_add(1);
}

PipelinePool::PipelinePool(ConnectionOptions options, int connections,
                           std::shared_ptr<std::atomic<uint64_t>> connects, bool connect_now)
    : options_(std::move(options)), connects_(std::move(connects)) {
  const int n = std::max(1, connections);
  workers_.reserve(n);
  // Connect up front (stopping at the first failure: the server is down, no need to wait for
  // more timeouts), so the connection count settles before the first request.
  bool reachable = connect_now;
  for (int i = 0; i < n; ++i) {
    auto conn = std::make_unique<RedisConnection>(options_);
    if (reachable) {
      reachable = conn->EnsureConnected().ok();
      if (reachable) NoteConnected();
    }
    workers_.emplace_back([this, c = std::move(conn)]() mutable { WorkerLoop(std::move(c)); });
  }
}

PipelinePool::~PipelinePool() { Shutdown(); }

void PipelinePool::Shutdown() {
  std::lock_guard<std::mutex> join_lock(join_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  // Workers drain the queue before exiting; anything submitted during shutdown is failed here.
  std::deque<std::unique_ptr<PipelineOp>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (auto& op : left) op->Done(Status::Unavailable("redis store closed"), {});
}

void PipelinePool::Submit(std::unique_ptr<PipelineOp> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) {
      queue_.push_back(std::move(op));
      cv_.notify_one();
      return;
    }
  }
  op->Done(Status::Unavailable("redis store closed"), {});
}

Result<std::vector<Value>> PipelinePool::SubmitSync(std::vector<Argv> commands,
                                                    Clock::time_point deadline) {
  std::promise<Result<std::vector<Value>>> promise;
  auto future = promise.get_future();
  std::string wire;
  for (const Argv& c : commands) AppendCommand(&wire, c);
  Submit(MakeOp(std::move(wire), commands.size(), deadline,
                [&promise](Status s, std::vector<Value> replies) {
                  if (s.ok()) {
                    promise.set_value(std::move(replies));
                  } else {
                    promise.set_value(std::move(s));
                  }
                }));
  return future.get();
}

void PipelinePool::WorkerLoop(std::unique_ptr<RedisConnection> owned) {
  // SCHED_BATCH: a Submit that wakes this worker on the submitting I/O thread's core does not
  // preempt that thread, so the worker's next pipeline takes everything the I/O thread queued
  // meanwhile instead of one op (Linux; else a no-op).
  sched_param param{};
  (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  RedisConnection& conn = *owned;
  std::vector<std::unique_ptr<PipelineOp>> batch;
  std::vector<std::string_view> chunks;
  std::vector<Value> replies;
  for (;;) {
    batch.clear();
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      stopping = stop_;
      size_t n = 0;
      while (!queue_.empty() && (batch.empty() || n + queue_.front()->count <= kMaxBatchCommands)) {
        n += queue_.front()->count;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (!queue_.empty()) cv_.notify_one();  // let another worker take the rest
    }
    if (batch.empty()) {
      if (stopping) return;
      continue;
    }
    if (stopping) {
      for (auto& op : batch) op->Done(Status::Unavailable("redis store closed"), {});
      continue;
    }

    // Ops that waited past their deadline are failed without being sent.
    const Clock::time_point now = Clock::now();
    auto expired = std::stable_partition(batch.begin(), batch.end(),
                                         [now](const auto& op) { return op->deadline > now; });
    for (auto it = expired; it != batch.end(); ++it) {
      (*it)->Done(Status::Unavailable("redis " + options_.endpoint.ToString() +
                                      ": timed out waiting for a connection"),
                  {});
    }
    batch.erase(expired, batch.end());
    if (batch.empty()) continue;

    const bool reused = conn.connected();
    // Skip this connection's backoff if another worker has connected since it last failed:
    // the server is back.
    const bool server_back = !reused && last_connect_.load() > conn.failed_at();
    Status s = conn.EnsureConnected(server_back);
    if (s.ok() && !reused) NoteConnected();
    if (!s.ok()) {
      Status failure = s.IsUnavailable() ? s : Status::Unavailable(s.message());
      for (auto& op : batch) op->Done(failure, {});
      continue;
    }
    chunks.clear();
    size_t count = 0;
    for (const auto& op : batch) {
      chunks.push_back(op->commands);
      count += op->count;
    }
    replies.clear();
    replies.reserve(count);
    s = conn.Pipeline(chunks, count, &replies);
    if (!s.ok() && reused && replies.empty() && !conn.timed_out() &&
        conn.EnsureConnected(true).ok()) {
      NoteConnected();
      // The connection went stale while idle (e.g. the server restarted). Nothing was
      // acknowledged and every command gimel sends is idempotent, so send the batch again once.
      s = conn.Pipeline(chunks, count, &replies);
    }
    // Ops whose replies all arrived are complete (acknowledged by the server) even if a later
    // op's read failed; the rest fail with s. One hand-over per I/O thread for the batch.
    DeferScope scope;
    size_t next = 0;
    for (auto& op : batch) {
      const size_t n = op->count;
      if (next + n <= replies.size()) {
        op->Done(Status::Ok(), std::span<Value>(replies.data() + next, n));
      } else {
        op->Done(s, {});
      }
      op.reset();  // its state (e.g. a pool reference, see cluster_store.cc) goes now
      next += n;
    }
  }
}

Status PipelinePool::ScanAll(std::string_view pattern, std::string_view what,
                             std::vector<std::string>* out) {
  std::string cursor = "0";
  do {
    GIMEL_ASSIGN_OR_RETURN(
        std::vector<Value> r,
        SubmitSync({{"SCAN", cursor, "MATCH", std::string(pattern), "COUNT", "1000"}},
                   Clock::now() + options_.command_timeout));
    Value& v = r[0];
    if (v.is_error()) return ErrorReplyToStatus(v, what);
    if (v.type != Value::Type::kArray || v.elements.size() != 2 ||
        v.elements[1].type != Value::Type::kArray) {
      return Status::IOError("redis SCAN: unexpected reply");
    }
    cursor = v.elements[0].str;
    for (Value& k : v.elements[1].elements) out->push_back(std::move(k.str));
  } while (cursor != "0");
  return Status::Ok();
}

}  // namespace gimel::store::redis
