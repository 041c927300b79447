// The standalone redis store: RedisKeyspaceStore over one PipelinePool, with the hot path
// (Send) on the calling I/O thread's own connection when there is one (redis_loop.h).
#include "store/redis_store.h"

#include "store/redis_keyspace_store.h"
#include "store/redis_loop.h"
#include "store/redis_pipeline.h"

namespace gimel::store {

namespace redis {

namespace {

// One server, one pool; MULTI/EXEC spans any keys.
class StandaloneBackend final : public Backend {
 public:
  StandaloneBackend(ConnectionOptions options, int connections)
      : connects_(std::make_shared<std::atomic<uint64_t>>(0)),
        pool_(options, connections, connects_, /*connect_now=*/true),
        loops_(std::move(options), connects_) {}

  uint64_t generation() const override { return connects_->load(); }

  void Run(std::vector<KeyedCommand> cmds, Clock::time_point deadline,
           ValuesCallback done) override {
    std::string wire;
    for (const KeyedCommand& c : cmds) AppendCommand(&wire, c.argv);
    pool_.Submit(MakeOp(std::move(wire), cmds.size(), deadline, std::move(done)));
  }

  void RunAtomic(std::vector<KeyedCommand> cmds, Clock::time_point deadline,
                 ValuesCallback done) override {
    std::string wire;
    AppendCommand(&wire, {"MULTI"});
    for (const KeyedCommand& c : cmds) AppendCommand(&wire, c.argv);
    AppendCommand(&wire, {"EXEC"});
    pool_.Submit(MakeOp(std::move(wire), cmds.size() + 2, deadline,
                        [done = std::move(done)](Status s, std::vector<Value> replies) {
                          if (!s.ok()) return done(std::move(s), {});
                          Status exec = ExecReplies(&replies);
                          done(std::move(exec), std::move(replies));
                        }));
  }

  void Send(std::unique_ptr<PipelineOp> op, std::string_view /*key*/) override {
    if (!loops_.SendOnThisThread(&op)) pool_.Submit(std::move(op));
  }

  bool atomic_across_keys() const override { return true; }

  Result<std::vector<std::string>> ScanKeys(std::string_view pattern) override {
    std::vector<std::string> out;
    GIMEL_RETURN_IF_ERROR(pool_.ScanAll(pattern, "SCAN", &out));
    return out;
  }

  Status Ping() override {
    GIMEL_ASSIGN_OR_RETURN(std::vector<Value> r, pool_.SubmitSync({{"PING"}}, Deadline()));
    if (r[0].is_error()) return ErrorReplyToStatus(r[0], "PING");
    return Status::Ok();
  }

  void Shutdown() override {
    loops_.Shutdown();
    pool_.Shutdown();
  }

 private:
  Clock::time_point Deadline() const { return Clock::now() + pool_.options().command_timeout; }

  std::shared_ptr<std::atomic<uint64_t>> connects_;
  PipelinePool pool_;
  LoopConnections loops_;
};

}  // namespace
}  // namespace redis

Result<std::unique_ptr<Store>> OpenRedisStore(const StoreOptions& options) {
  const RedisOptions& o = options.redis;
  GIMEL_RETURN_IF_ERROR(redis::ValidateCommonOptions(o));
  if (o.unix_socket.empty() && (o.port < 1 || o.port > 65535)) {
    return Status::InvalidArgument("redis.port must be in 1..65535");
  }
  if (o.unix_socket.empty() && o.host.empty()) {
    return Status::InvalidArgument("redis.host is empty");
  }
  if (o.db < 0) return Status::InvalidArgument("redis.db must be >= 0");
  redis::IgnoreSigpipe();
  redis::ConnectionOptions conn = redis::ConnectionOptions::From(o);
  {
    // Configuration errors (AUTH, SELECT) fail now; an unreachable server does not.
    redis::RedisConnection probe(conn);
    Status s = probe.EnsureConnected();
    if (!s.ok() && !s.IsUnavailable()) return s;
    if (s.ok()) {
      Result<redis::Value> pong = probe.Command({"PING"});
      if (pong.ok() && pong->is_error() && pong->str.starts_with("NOAUTH")) {
        return Status::PermissionDenied("redis " + conn.endpoint.ToString() +
                                        " requires a password (redis.password): " + pong->str);
      }
    }
  }
  auto backend = std::make_unique<redis::StandaloneBackend>(conn, o.connections);
  return std::unique_ptr<Store>(std::make_unique<redis::RedisKeyspaceStore>(
      std::move(backend), conn.command_timeout, "redis"));
}

}  // namespace gimel::store
