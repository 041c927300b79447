#include "store/redis_conn.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>

namespace gimel::store::redis {

namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

bool StartsWithWord(std::string_view s, std::string_view word) {
  return s.starts_with(word) && (s.size() == word.size() || s[word.size()] == ' ');
}

}  // namespace

namespace {

void AppendHeader(std::string* out, char type, size_t n) {
  char buf[24];
  buf[0] = type;
  const auto end = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n).ptr;
  end[0] = '\r';
  end[1] = '\n';
  out->append(buf, end + 2);
}

template <typename Args>
void AppendArgs(std::string* out, const Args& args) {
  size_t bytes = 16;
  for (std::string_view a : args) bytes += a.size() + 16;
  out->reserve(out->size() + bytes);
  AppendHeader(out, '*', args.size());
  for (std::string_view a : args) {
    AppendHeader(out, '$', a.size());
    out->append(a);
    out->append("\r\n", 2);
  }
}

}  // namespace

void AppendCommand(std::string* out, std::initializer_list<std::string_view> args) {
  AppendArgs(out, args);
}

void AppendCommand(std::string* out, const Argv& args) { AppendArgs(out, args); }

Value Value::FromHiredis(const redisReply& r) {
  Value v;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      v.type = Type::kString;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = Type::kStatus;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = Type::kError;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = Type::kInteger;
      v.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = Type::kArray;
      v.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) v.elements.push_back(FromHiredis(*r.element[i]));
      break;
    case REDIS_REPLY_NIL:
    default:
      v.type = Type::kNil;
      break;
  }
  return v;
}

Status ErrorReplyToStatus(const Value& error, std::string_view what) {
  std::string msg = "redis " + std::string(what) + ": " + error.str;
  static constexpr std::string_view kTransient[] = {
      "LOADING",    "BUSY",        "TRYAGAIN", "OOM",   "READONLY",
      "MASTERDOWN", "CLUSTERDOWN", "NOAUTH",   "MOVED", "ASK"};
  for (std::string_view word : kTransient) {
    if (StartsWithWord(error.str, word)) return Status::Unavailable(std::move(msg));
  }
  // A key of the wrong type, or a string that is not an HLL: the data is not what gimel wrote.
  if (StartsWithWord(error.str, "WRONGTYPE") || StartsWithWord(error.str, "INVALIDOBJ")) {
    return Status::Corruption(std::move(msg));
  }
  return Status::IOError(std::move(msg));
}

Status ExecReplies(std::vector<Value>* replies) {
  const size_t n = replies->size();
  if (n < 2) return Status::Unavailable("redis EXEC: missing reply");
  Value exec = std::move((*replies)[n - 1]);
  if (exec.type == Value::Type::kArray) {
    *replies = std::move(exec.elements);
    return Status::Ok();
  }
  // EXECABORT: a command was refused while queuing; report that command's error.
  for (size_t i = 1; i + 1 < n; ++i) {
    if ((*replies)[i].is_error()) return ErrorReplyToStatus((*replies)[i], "MULTI");
  }
  if (exec.is_error()) return ErrorReplyToStatus(exec, "EXEC");
  return Status::Unavailable("redis EXEC: transaction aborted");
}

std::string Endpoint::ToString() const {
  if (!unix_socket.empty()) return "unix:" + unix_socket;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument("redis node \"" + std::string(text) + "\" is not host:port");
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  std::string_view port_text = text.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port <= 0 ||
      port > 65535) {
    return Status::InvalidArgument("redis node \"" + std::string(text) + "\" has a bad port");
  }
  Endpoint e;
  e.host = std::string(host);
  e.port = port;
  return e;
}

ConnectionOptions ConnectionOptions::From(const RedisOptions& options) {
  ConnectionOptions c;
  c.endpoint.host = options.host;
  c.endpoint.port = options.port;
  c.endpoint.unix_socket = options.unix_socket;
  c.username = options.username;
  c.password = options.password;
  c.db = options.db;
  c.connect_timeout = std::chrono::milliseconds(std::max(1, options.connect_timeout_ms));
  c.command_timeout = std::chrono::milliseconds(std::max(1, options.command_timeout_ms));
  return c;
}

Status ValidateCommonOptions(const RedisOptions& o) {
  if (o.connections < 1 || o.connections > 64) {
    return Status::InvalidArgument("redis.connections must be in 1..64");
  }
  if (o.connect_timeout_ms < 1 || o.command_timeout_ms < 1) {
    return Status::InvalidArgument("redis timeouts must be positive");
  }
  return Status::Ok();
}

void IgnoreSigpipe() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    std::signal(SIGPIPE, SIG_IGN);
  }
}

RedisConnection::RedisConnection(ConnectionOptions options) : options_(std::move(options)) {}

RedisConnection::~RedisConnection() { Disconnect(); }

void RedisConnection::Disconnect() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

void Backoff::Failed(const ConnectionOptions& options, Status error) {
  delay_ = delay_.count() == 0 ? options.min_backoff : std::min(options.max_backoff, delay_ * 2);
  failed_at_ = Clock::now();
  retry_at_ = failed_at_ + delay_;
  last_error_ = std::move(error);
}

void Backoff::Succeeded() {
  last_error_ = Status::Ok();
  delay_ = std::chrono::milliseconds(0);
}

Status RedisConnection::EnsureConnected(bool ignore_backoff) {
  if (ctx_ != nullptr) return Status::Ok();
  if (!ignore_backoff && backoff_.Active()) return backoff_.last_error();
  Status s = Connect();
  if (s.ok()) {
    backoff_.Succeeded();
  } else {
    backoff_.Failed(options_, s);
  }
  return s;
}

Status RedisConnection::Connect() {
  const Endpoint& ep = options_.endpoint;
  const timeval connect_tv = ToTimeval(options_.connect_timeout);
  redisContext* c = ep.unix_socket.empty()
                        ? redisConnectWithTimeout(ep.host.c_str(), ep.port, connect_tv)
                        : redisConnectUnixWithTimeout(ep.unix_socket.c_str(), connect_tv);
  if (c == nullptr) return Status::Unavailable("redis " + ep.ToString() + ": out of memory");
  if (c->err != 0) {
    Status s = Status::Unavailable("redis " + ep.ToString() + ": cannot connect: " + c->errstr);
    redisFree(c);
    return s;
  }
  if (redisSetTimeout(c, ToTimeval(options_.command_timeout)) != REDIS_OK) {
    Status s = Status::Unavailable("redis " + ep.ToString() + ": cannot set timeout");
    redisFree(c);
    return s;
  }
  if (ep.unix_socket.empty()) redisEnableKeepAlive(c);
  ctx_ = c;

  // AUTH [username] password, then SELECT db, pipelined.
  std::vector<Argv> setup;
  if (!options_.password.empty() || !options_.username.empty()) {
    if (options_.username.empty()) {
      setup.push_back({"AUTH", options_.password});
    } else {
      setup.push_back({"AUTH", options_.username, options_.password});
    }
  }
  if (options_.db != 0) setup.push_back({"SELECT", std::to_string(options_.db)});
  if (setup.empty()) return Status::Ok();
  std::string wire;
  for (const Argv& a : setup) AppendCommand(&wire, a);
  std::vector<Value> replies;
  const std::string_view chunk = wire;
  Status s = Pipeline({&chunk, 1}, setup.size(), &replies);
  if (!s.ok()) return s;  // Pipeline disconnected
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].is_error()) continue;
    Disconnect();
    if (setup[i][0] == "AUTH") {
      return Status::PermissionDenied("redis " + ep.ToString() +
                                      ": authentication failed: " + replies[i].str);
    }
    return Status::InvalidArgument("redis " + ep.ToString() + ": SELECT " +
                                   std::to_string(options_.db) + " failed: " + replies[i].str);
  }
  return Status::Ok();
}

Status RedisConnection::Pipeline(std::span<const std::string_view> chunks, size_t count,
                                 std::vector<Value>* replies) {
  if (ctx_ == nullptr)
    return Status::Unavailable("redis " + options_.endpoint.ToString() + ": not connected");
  timed_out_ = false;
  for (std::string_view chunk : chunks) {
    if (redisAppendFormattedCommand(ctx_, chunk.data(), chunk.size()) != REDIS_OK) {
      Status s = Status::Unavailable("redis " + options_.endpoint.ToString() + ": " + ctx_->errstr);
      Disconnect();
      return s;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      timed_out_ = ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
      std::string why = timed_out_ ? "command timed out" : std::string(ctx_->errstr);
      if (why.empty()) why = "connection lost";
      Disconnect();
      return Status::Unavailable("redis " + options_.endpoint.ToString() + ": " + why);
    }
    auto* reply = static_cast<redisReply*>(raw);
    replies->push_back(Value::FromHiredis(*reply));
    freeReplyObject(reply);
  }
  return Status::Ok();
}

Result<Value> RedisConnection::Command(const Argv& argv) {
  GIMEL_RETURN_IF_ERROR(EnsureConnected());
  std::string wire;
  AppendCommand(&wire, argv);
  const std::string_view chunk = wire;
  std::vector<Value> replies;
  GIMEL_RETURN_IF_ERROR(Pipeline({&chunk, 1}, 1, &replies));
  return std::move(replies[0]);
}

}  // namespace gimel::store::redis
