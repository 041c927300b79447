// The redis-cluster store: RedisKeyspaceStore over ClusterBackend (see cluster_store.h).
#include "store/cluster_store.h"

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "store/keys.h"
#include "store/redis_keyspace_store.h"
#include "store/redis_pipeline.h"
#include "store/redis_store.h"

namespace gimel::store {
namespace redis {

// ---- Parsing --------------------------------------------------------------------------------

Result<std::vector<SlotRange>> ParseClusterSlots(const Value& reply, const Endpoint& asked) {
  if (reply.is_error()) return ErrorReplyToStatus(reply, "CLUSTER SLOTS");
  if (reply.type != Value::Type::kArray) {
    return Status::IOError("redis CLUSTER SLOTS: not an array");
  }
  std::vector<SlotRange> out;
  for (const Value& range : reply.elements) {
    if (range.type != Value::Type::kArray || range.elements.size() < 3 ||
        range.elements[0].type != Value::Type::kInteger ||
        range.elements[1].type != Value::Type::kInteger ||
        range.elements[2].type != Value::Type::kArray || range.elements[2].elements.size() < 2 ||
        range.elements[2].elements[1].type != Value::Type::kInteger) {
      return Status::IOError("redis CLUSTER SLOTS: malformed range");
    }
    SlotRange r;
    const long long first = range.elements[0].integer;
    const long long last = range.elements[1].integer;
    if (first < 0 || last < first || last >= keys::kClusterSlots) {
      return Status::IOError("redis CLUSTER SLOTS: slot out of range");
    }
    r.first = static_cast<uint32_t>(first);
    r.last = static_cast<uint32_t>(last);
    const Value& node = range.elements[2];
    r.master.host = node.elements[0].str;
    if (r.master.host.empty() || r.master.host == "?") r.master.host = asked.host;
    r.master.port = static_cast<int>(node.elements[1].integer);
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<Redirect> ParseRedirect(std::string_view error, const Endpoint& from) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto [ptr, ec] = std::from_chars(error.data(), error.data() + space, r.slot);
  if (ec != std::errc() || ptr != error.data() + space || r.slot >= keys::kClusterSlots) {
    return std::nullopt;
  }
  std::string_view addr = error.substr(space + 1);
  std::string filled;
  if (addr.starts_with(':')) {
    filled = from.host + std::string(addr);
    addr = filled;
  }
  Result<Endpoint> to = ParseEndpoint(addr);
  if (!to.ok()) return std::nullopt;
  r.to = std::move(to).value();
  return r;
}

namespace {

constexpr int kMaxRedirects = 16;
constexpr auto kTryAgainDelay = std::chrono::milliseconds(20);
constexpr auto kNotServedRetry = std::chrono::milliseconds(50);
constexpr auto kRefreshMinInterval = std::chrono::milliseconds(100);
constexpr auto kRefreshPeriod = std::chrono::seconds(30);
// While some retired pool is still in use, how often the background thread checks again.
constexpr auto kRetiredSweepInterval = std::chrono::milliseconds(500);

// ---- ClusterBackend -------------------------------------------------------------------------

class ClusterBackend final : public Backend {
 public:
  ClusterBackend(ConnectionOptions base, std::vector<Endpoint> seeds, int connections)
      : base_(std::move(base)),
        seeds_(std::move(seeds)),
        connections_(connections),
        connects_(std::make_shared<std::atomic<uint64_t>>(0)),
        slot_node_(keys::kClusterSlots, -1) {}

  ~ClusterBackend() override { Shutdown(); }

  // Learns the slot map from the seeds and starts the background thread.
  Status Start() {
    GIMEL_RETURN_IF_ERROR(Refresh());
    bg_ = std::thread([this] { BackgroundLoop(); });
    return Status::Ok();
  }

  void Run(std::vector<KeyedCommand> cmds, Clock::time_point deadline,
           ValuesCallback done) override {
    if (cmds.empty()) return done(Status::Ok(), {});
    struct Gather {
      std::mutex mu;
      std::vector<Value> replies;
      Status first_error;
      size_t pending;
      ValuesCallback done;
    };
    auto gather = std::make_shared<Gather>();
    gather->replies.resize(cmds.size());
    gather->pending = cmds.size();
    gather->done = std::move(done);
    for (size_t i = 0; i < cmds.size(); ++i) {
      auto req = std::make_shared<Request>();
      AppendCommand(&req->commands, cmds[i].argv);
      req->count = 1;
      req->key = std::move(cmds[i].key);
      req->deadline = deadline;
      req->done = [gather, i](Status s, std::vector<Value> replies) {
        std::unique_lock<std::mutex> lock(gather->mu);
        if (!s.ok()) {
          if (gather->first_error.ok()) gather->first_error = std::move(s);
        } else {
          gather->replies[i] = std::move(replies[0]);
        }
        if (--gather->pending > 0) return;
        lock.unlock();
        if (gather->first_error.ok()) {
          gather->done(Status::Ok(), std::move(gather->replies));
        } else {
          gather->done(gather->first_error, {});
        }
      };
      Dispatch(std::move(req));
    }
  }

  void RunAtomic(std::vector<KeyedCommand> cmds, Clock::time_point deadline,
                 ValuesCallback done) override {
    if (cmds.empty()) return done(Status::Ok(), {});
    auto req = std::make_shared<Request>();
    req->atomic = true;
    req->key = cmds[0].key;  // REQUIRES: every key in this slot
    for (const KeyedCommand& c : cmds) AppendCommand(&req->commands, c.argv);
    req->count = cmds.size();
    req->deadline = deadline;
    req->done = std::move(done);
    Dispatch(std::move(req));
  }

  void Send(std::unique_ptr<PipelineOp> op, std::string_view key) override {
    auto req = std::make_shared<Request>();
    req->commands = std::move(op->commands);
    req->count = op->count;
    req->key = key;
    req->deadline = op->deadline;
    req->done = [op = std::shared_ptr<PipelineOp>(std::move(op))](
                    Status s, std::vector<Value> replies) { op->Done(std::move(s), replies); };
    Dispatch(std::move(req));
  }

  bool atomic_across_keys() const override { return false; }

  uint64_t generation() const override { return connects_->load(); }

  Result<std::vector<std::string>> ScanKeys(std::string_view pattern) override {
    std::vector<std::string> out;
    for (const Endpoint& ep : Masters()) {
      std::shared_ptr<PipelinePool> pool = PoolFor(ep);
      if (pool == nullptr) return Status::Unavailable("redis cluster store closed");
      GIMEL_RETURN_IF_ERROR(pool->ScanAll(pattern, "SCAN on " + ep.ToString(), &out));
    }
    return out;
  }

  Status Ping() override {
    {
      std::shared_lock<std::shared_mutex> lock(slots_mu_);
      for (uint32_t slot = 0; slot < keys::kClusterSlots; ++slot) {
        if (slot_node_[slot] < 0) return NotServed(slot);
      }
    }
    for (const Endpoint& ep : Masters()) {
      std::shared_ptr<PipelinePool> pool = PoolFor(ep);
      if (pool == nullptr) return Status::Unavailable("redis cluster store closed");
      GIMEL_ASSIGN_OR_RETURN(std::vector<Value> r, pool->SubmitSync({{"PING"}}, Deadline()));
      if (r[0].is_error()) return ErrorReplyToStatus(r[0], "PING " + ep.ToString());
    }
    return Status::Ok();
  }

  void Shutdown() override {
    std::lock_guard<std::mutex> once(shutdown_mu_);
    {
      std::lock_guard<std::mutex> lock(pools_mu_);
      shut_down_ = true;  // from now on Dispatch fails at once
    }
    std::multimap<Clock::time_point, std::function<void()>> timers;
    {
      std::lock_guard<std::mutex> lock(bg_mu_);
      bg_stop_ = true;
      timers.swap(timers_);
    }
    bg_cv_.notify_all();
    if (bg_.joinable()) bg_.join();
    for (auto& [when, fn] : timers) fn();  // retries: they fail, the store being closed
    // PoolFor hands out no pool from now on, and SweepRetired destroys none: the maps keep
    // every pool (shut down) until the backend is destroyed, so no callback can drop the last
    // reference to a pool (which would destroy it on a worker thread, joining itself).
    std::vector<std::shared_ptr<PipelinePool>> pools;
    {
      std::lock_guard<std::mutex> lock(pools_mu_);
      for (auto& [name, pool] : pools_) pools.push_back(pool);
      for (auto& [name, pool] : retired_) pools.push_back(pool);
    }
    for (const std::shared_ptr<PipelinePool>& pool : pools) pool->Shutdown();
  }

 private:
  // One routed unit: a single command, or a single-slot MULTI/EXEC.
  struct Request {
    std::string commands;  // RESP-encoded (AppendCommand)
    size_t count = 0;      // commands in `commands`
    std::string key;       // routes the request
    bool atomic = false;
    Clock::time_point deadline;
    int redirects = 0;
    std::optional<Endpoint> ask;  // send once to this node, after ASKING
    ValuesCallback done;          // replies of `commands` (for atomic: the EXEC's)
  };

  Clock::time_point Deadline() const { return Clock::now() + base_.command_timeout; }

  ConnectionOptions OptionsFor(const Endpoint& ep) const {
    ConnectionOptions o = base_;
    o.endpoint = ep;
    o.endpoint.unix_socket.clear();
    o.db = 0;
    return o;
  }

  // True once Shutdown has begun: requests then fail at once.
  bool ShutDown() {
    std::lock_guard<std::mutex> lock(pools_mu_);
    return shut_down_;
  }

  // The pool of a node, created on first use (or taken back from the retired ones: the node is
  // a master again, or a redirection names a node the last refresh did not list); nullptr once
  // shut down. The caller keeps the reference for as long as it uses the pool: a pool retired
  // meanwhile is destroyed only once nobody else holds it (SweepRetired).
  std::shared_ptr<PipelinePool> PoolFor(const Endpoint& ep) {
    std::lock_guard<std::mutex> lock(pools_mu_);
    if (shut_down_) return nullptr;
    const std::string name = ep.ToString();
    std::shared_ptr<PipelinePool>& pool = pools_[name];
    if (!pool) {
      if (auto it = retired_.find(name); it != retired_.end()) {
        pool = std::move(it->second);
        retired_.erase(it);
      } else {
        pool = std::make_shared<PipelinePool>(OptionsFor(ep), connections_, connects_);
      }
    }
    return pool;
  }

  // Retires the pools of the nodes that are not masters in the slot map (a crashed master
  // replaced by its replica, a demoted or removed node): without this, each would keep its
  // workers (and their reconnection attempts) for the life of the store. Called after a
  // successful refresh.
  void RetireStalePools() {
    std::set<std::string> masters;
    for (const Endpoint& ep : Masters()) masters.insert(ep.ToString());
    std::lock_guard<std::mutex> lock(pools_mu_);
    if (shut_down_) return;  // Shutdown owns them
    for (auto it = pools_.begin(); it != pools_.end();) {
      if (masters.contains(it->first)) {
        ++it;
        continue;
      }
      retired_[it->first] = std::move(it->second);
      it = pools_.erase(it);
    }
  }

  // Destroys the retired pools nobody uses any more; returns whether some are left (in use).
  // A retired pool is in no map PoolFor hands pools out from, so once retired_ holds its only
  // reference no one can take a new one: destroying it is safe. Every other holder releases
  // its reference when done with it: a caller of PoolFor, and every op submitted to the pool
  // (its callback holds one until it has run), so ops still queued or in flight complete
  // normally (e.g. with MOVED, then resent) instead of failing as the pool is destroyed.
  // REQUIRES: not called on a pool's worker thread (destroying a pool joins its workers); it
  // runs on the background thread.
  bool SweepRetired() {
    std::vector<std::shared_ptr<PipelinePool>> unused;
    bool left = false;
    {
      std::lock_guard<std::mutex> lock(pools_mu_);
      if (shut_down_) return false;  // Shutdown owns them
      for (auto it = retired_.begin(); it != retired_.end();) {
        if (it->second.use_count() == 1) {
          // Pairs with the release of the other holders' references: their uses of the pool
          // happen before its destruction.
          std::atomic_thread_fence(std::memory_order_acquire);
          unused.push_back(std::move(it->second));
          it = retired_.erase(it);
        } else {
          ++it;
          left = true;
        }
      }
    }
    unused.clear();  // outside the lock: joins their (idle) workers
    return left;
  }

  std::optional<Endpoint> OwnerOf(uint32_t slot) {
    std::shared_lock<std::shared_mutex> lock(slots_mu_);
    const int node = slot_node_[slot];
    if (node < 0) return std::nullopt;
    return nodes_[node];
  }

  int NodeIndexLocked(const Endpoint& ep) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].host == ep.host && nodes_[i].port == ep.port) return static_cast<int>(i);
    }
    nodes_.push_back(ep);
    return static_cast<int>(nodes_.size() - 1);
  }

  void MovedSlot(uint32_t slot, const Endpoint& to) {
    std::unique_lock<std::shared_mutex> lock(slots_mu_);
    slot_node_[slot] = NodeIndexLocked(to);
  }

  std::vector<Endpoint> Masters() {
    std::shared_lock<std::shared_mutex> lock(slots_mu_);
    std::set<int> used(slot_node_.begin(), slot_node_.end());
    std::vector<Endpoint> out;
    for (int i : used) {
      if (i >= 0) out.push_back(nodes_[i]);
    }
    return out;
  }

  static Status NotServed(uint32_t slot) {
    return Status::Unavailable("redis cluster: slot " + std::to_string(slot) + " is not served");
  }

  void Dispatch(std::shared_ptr<Request> req) {
    if (Clock::now() >= req->deadline) {
      // A retry while the slot has no owner (below) may run late, past the deadline.
      const uint32_t slot = keys::HashSlot(req->key);
      return req->done(!req->ask && !OwnerOf(slot)
                           ? NotServed(slot)
                           : Status::Unavailable("redis cluster: timed out (slot moving?)"),
                       {});
    }
    Endpoint ep;
    if (req->ask) {
      ep = *req->ask;
    } else {
      const uint32_t slot = keys::HashSlot(req->key);
      std::optional<Endpoint> owner = OwnerOf(slot);
      if (!owner) {
        // No master for the slot in the topology last read: a failover or resharding under
        // way (a node that has seen the old master step down but not yet the new one's claim
        // lists no owner). Ask again, and retry until the request's deadline.
        if (ShutDown()) return req->done(Status::Unavailable("redis cluster store closed"), {});
        RequestRefresh();
        if (Clock::now() + kNotServedRetry < req->deadline) {
          return After(kNotServedRetry,
                       [this, req = std::move(req)]() mutable { Dispatch(std::move(req)); });
        }
        return req->done(NotServed(slot), {});
      }
      ep = std::move(*owner);
    }
    std::shared_ptr<PipelinePool> pool = PoolFor(ep);
    if (pool == nullptr) return req->done(Status::Unavailable("redis cluster store closed"), {});
    std::string wire;
    if (req->ask) AppendCommand(&wire, {"ASKING"});
    if (req->atomic) AppendCommand(&wire, {"MULTI"});
    wire.append(req->commands);  // kept for a resend
    if (req->atomic) AppendCommand(&wire, {"EXEC"});
    const size_t count = req->count + (req->ask ? 1 : 0) + (req->atomic ? 2 : 0);
    const Clock::time_point deadline = req->deadline;
    // The op holds its pool until its callback has run (see SweepRetired). The callback drops
    // it itself (the worker destroys a completed op right after its callback, but that is no
    // part of the pool's contract).
    pool->Submit(MakeOp(std::move(wire), count, deadline,
                        [this, req = std::move(req), ep, held = pool](
                            Status s, std::vector<Value> replies) mutable {
                          std::shared_ptr<PipelinePool> keep = std::move(held);
                          OnReplies(std::move(req), ep, std::move(s), std::move(replies));
                        }));
  }

  void OnReplies(std::shared_ptr<Request> req, const Endpoint& ep, Status s,
                 std::vector<Value> replies) {
    if (!s.ok()) {
      RequestRefresh();  // the node may be gone; the next requests may go elsewhere
      return req->done(std::move(s), {});
    }
    if (req->ask) {
      replies.erase(replies.begin());  // ASKING's +OK
      req->ask.reset();
    }
    for (const Value& v : replies) {
      if (!v.is_error()) continue;
      if (std::optional<Redirect> r = ParseRedirect(v.str, ep)) {
        if (++req->redirects > kMaxRedirects) {
          return req->done(Status::Unavailable("redis cluster: too many redirections: " + v.str),
                           {});
        }
        if (r->ask) {
          req->ask = r->to;
        } else {
          MovedSlot(r->slot, r->to);
          RequestRefresh();
        }
        return Dispatch(std::move(req));
      }
      if (v.str.starts_with("TRYAGAIN")) {
        // A multi-key command (MergeCounter's PFMERGE) while its slot migrates: wait a bit
        // (bounded by the deadline, not by the redirection count).
        req->redirects = 0;
        return After(kTryAgainDelay,
                     [this, req = std::move(req)]() mutable { Dispatch(std::move(req)); });
      }
    }
    if (req->atomic) {
      Status exec = ExecReplies(&replies);
      if (!exec.ok()) return req->done(std::move(exec), {});
    }
    req->done(Status::Ok(), std::move(replies));
  }

  // ---- Topology ---------------------------------------------------------------------------

  // Reads CLUSTER SLOTS from the known masters, then the seeds. The first answer that gives
  // every slot an owner is taken; if none does (a failover under way: some nodes have seen the
  // old master step down but not the new one's claim), the one that covers the most slots.
  Status Refresh() {
    std::vector<Endpoint> candidates = Masters();
    candidates.insert(candidates.end(), seeds_.begin(), seeds_.end());
    Status last = Status::Unavailable("redis cluster: no node to ask");
    std::set<std::string> tried;
    std::optional<std::vector<SlotRange>> best;
    uint32_t best_covered = 0;
    for (const Endpoint& ep : candidates) {
      if (!tried.insert(ep.ToString()).second) continue;
      RedisConnection conn(OptionsFor(ep));
      Result<Value> reply = conn.Command({"CLUSTER", "SLOTS"});
      if (!reply.ok()) {
        if (reply.status().code() == StatusCode::kPermissionDenied) return reply.status();
        last = reply.status();
        continue;
      }
      if (reply->is_error() && reply->str.starts_with("NOAUTH")) {
        return Status::PermissionDenied("redis " + ep.ToString() +
                                        " requires a password (redis.password): " + reply->str);
      }
      Result<std::vector<SlotRange>> ranges = ParseClusterSlots(*reply, ep);
      if (!ranges.ok()) {
        last = ranges.status();
        continue;
      }
      uint32_t covered = 0;
      for (const SlotRange& r : *ranges) covered += r.last - r.first + 1;
      if (!best || covered > best_covered) {
        best = std::move(ranges).value();
        best_covered = covered;
      }
      if (best_covered >= keys::kClusterSlots) break;
    }
    if (!best) {
      return Status::Unavailable("redis cluster: no node answered CLUSTER SLOTS: " +
                                 last.message());
    }
    std::unique_lock<std::shared_mutex> lock(slots_mu_);
    std::vector<int> table(keys::kClusterSlots, -1);
    for (const SlotRange& r : *best) {
      const int node = NodeIndexLocked(r.master);
      for (uint32_t slot = r.first; slot <= r.last; ++slot) table[slot] = node;
    }
    slot_node_.swap(table);
    lock.unlock();
    RetireStalePools();
    return Status::Ok();
  }

  void RequestRefresh() {
    {
      std::lock_guard<std::mutex> lock(bg_mu_);
      refresh_requested_ = true;
    }
    bg_cv_.notify_all();
  }

  // Runs fn on the background thread after d (at once, inline, if shutting down).
  void After(Clock::duration d, std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(bg_mu_);
      if (!bg_stop_) {
        timers_.emplace(Clock::now() + d, std::move(fn));
        bg_cv_.notify_all();
        return;
      }
    }
    fn();
  }

  void BackgroundLoop() {
    std::unique_lock<std::mutex> lock(bg_mu_);
    Clock::time_point last_refresh = Clock::now();
    // Retired pools still in use are checked again every kRetiredSweepInterval.
    bool sweep_pending = false;
    Clock::time_point last_sweep = last_refresh;
    while (!bg_stop_) {
      Clock::time_point now = Clock::now();
      if (!timers_.empty() && timers_.begin()->first <= now) {
        std::function<void()> fn = std::move(timers_.begin()->second);
        timers_.erase(timers_.begin());
        lock.unlock();
        fn();
        lock.lock();
        continue;
      }
      const bool due = (refresh_requested_ && now - last_refresh >= kRefreshMinInterval) ||
                       now - last_refresh >= kRefreshPeriod;
      if (due) {
        refresh_requested_ = false;
        lock.unlock();
        (void)Refresh();  // failures are retried on the next request or period
        sweep_pending = SweepRetired();
        lock.lock();
        last_refresh = last_sweep = Clock::now();
        continue;
      }
      if (sweep_pending && now - last_sweep >= kRetiredSweepInterval) {
        lock.unlock();
        sweep_pending = SweepRetired();
        lock.lock();
        last_sweep = Clock::now();
        continue;
      }
      Clock::time_point wake = last_refresh + kRefreshPeriod;
      if (refresh_requested_) wake = std::min(wake, last_refresh + kRefreshMinInterval);
      if (!timers_.empty()) wake = std::min(wake, timers_.begin()->first);
      if (sweep_pending) wake = std::min(wake, last_sweep + kRetiredSweepInterval);
      bg_cv_.wait_until(lock, wake);
    }
  }

  const ConnectionOptions base_;
  const std::vector<Endpoint> seeds_;
  const int connections_;
  const std::shared_ptr<std::atomic<uint64_t>> connects_;

  std::shared_mutex slots_mu_;
  std::vector<Endpoint> nodes_;  // append-only. Guarded by slots_mu_.
  std::vector<int> slot_node_;   // slot → index in nodes_, -1 if unserved. Guarded by slots_mu_.

  std::mutex pools_mu_;
  // Endpoint → its pool: the masters' (and those of nodes named by a redirection since the last
  // refresh). Guarded by pools_mu_.
  std::map<std::string, std::shared_ptr<PipelinePool>> pools_;
  // Pools of nodes no longer masters, destroyed by SweepRetired once unused. Guarded by
  // pools_mu_.
  std::map<std::string, std::shared_ptr<PipelinePool>> retired_;
  bool shut_down_ = false;  // Guarded by pools_mu_.
  std::mutex shutdown_mu_;

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool bg_stop_ = false;                                            // Guarded by bg_mu_.
  bool refresh_requested_ = false;                                  // Guarded by bg_mu_.
  std::multimap<Clock::time_point, std::function<void()>> timers_;  // Guarded by bg_mu_.
  std::thread bg_;
};

}  // namespace
}  // namespace redis

Result<std::unique_ptr<Store>> OpenRedisClusterStore(const StoreOptions& options) {
  const RedisOptions& o = options.redis;
  GIMEL_RETURN_IF_ERROR(redis::ValidateCommonOptions(o));
  if (options.cluster_nodes.empty()) {
    return Status::InvalidArgument("redis_cluster.nodes is empty (need host:port seeds)");
  }
  if (o.db != 0) return Status::InvalidArgument("redis.db must be 0 with redis-cluster");
  std::vector<redis::Endpoint> seeds;
  for (const std::string& node : options.cluster_nodes) {
    GIMEL_ASSIGN_OR_RETURN(redis::Endpoint ep, redis::ParseEndpoint(node));
    seeds.push_back(std::move(ep));
  }
  redis::IgnoreSigpipe();
  redis::ConnectionOptions base = redis::ConnectionOptions::From(o);
  base.db = 0;
  auto backend = std::make_unique<redis::ClusterBackend>(base, std::move(seeds), o.connections);
  GIMEL_RETURN_IF_ERROR(backend->Start());
  return std::unique_ptr<Store>(std::make_unique<redis::RedisKeyspaceStore>(
      std::move(backend), base.command_timeout, "redis-cluster"));
}

}  // namespace gimel::store
