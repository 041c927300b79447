// RedisConnection: one blocking hiredis connection with AUTH/SELECT on connect, timeouts,
// pipelining, and reconnection with exponential backoff. Internal to gimel_store_redis.
//
// Errors: a connection that cannot be established or breaks (refused, reset, timed out) gives
// kUnavailable and is dropped; the next call reconnects, unless it falls inside the backoff
// window, in which case it fails fast with the last error (so callers of a dead server get
// their answer quickly instead of queueing behind connect timeouts). A rejected AUTH or
// SELECT gives kPermissionDenied / kInvalidArgument with the server's message.
//
// Thread-safety: a RedisConnection is not thread-safe; each is owned by one thread (a
// PipelinePool worker) or guarded by its owner's mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/store.h"

struct redisContext;
struct redisReply;

namespace gimel::store::redis {

using Clock = std::chrono::steady_clock;

// One command: its arguments, binary-safe.
using Argv = std::vector<std::string>;

// An owned Redis reply (a copy of hiredis's redisReply tree).
struct Value {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<Value> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
  static Value FromHiredis(const redisReply& r);
};

// Appends the command `args` to *out in the Redis protocol (RESP: an array of bulk strings,
// the encoding hiredis' redisFormatCommandArgv produces), ready for RedisConnection::Pipeline.
void AppendCommand(std::string* out, std::initializer_list<std::string_view> args);
void AppendCommand(std::string* out, const Argv& args);

// Maps an error reply to a Status: transient server states (LOADING, BUSY, TRYAGAIN, OOM,
// READONLY, MASTERDOWN, CLUSTERDOWN, NOAUTH, MOVED, ASK) → kUnavailable; WRONGTYPE and
// INVALIDOBJ (a key that is not what gimel wrote) → kCorruption; others → kIOError.
// `what` prefixes the message (e.g. the command).
Status ErrorReplyToStatus(const Value& error, std::string_view what);

// Turns the replies of `MULTI c1..cn EXEC` into those of c1..cn (in place). Error: the
// error of the first command refused while queuing (EXECABORT), kUnavailable if the
// transaction was aborted.
Status ExecReplies(std::vector<Value>* replies);

struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;       // when set, host/port are ignored
  std::string ToString() const;  // "host:port" or "unix:/path"
};

// Parses "host:port" (IPv6 as "[::1]:port"). Error: kInvalidArgument.
Result<Endpoint> ParseEndpoint(std::string_view text);

struct ConnectionOptions {
  Endpoint endpoint;
  std::string username;
  std::string password;
  int db = 0;  // SELECT when non-zero
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};

  static ConnectionOptions From(const RedisOptions& options);
};

// Checks the fields of RedisOptions shared by both stores (connections, timeouts).
// Error: kInvalidArgument naming the field.
Status ValidateCommonOptions(const RedisOptions& options);

// Sets SIGPIPE to SIG_IGN if it has its default action (hiredis uses write(2)).
void IgnoreSigpipe();

// Reconnection backoff: after a failed connection attempt, further attempts wait min_backoff,
// doubling with each failure up to max_backoff; a success resets it. Inside the window a caller
// answers with the last failure at once instead of connecting again.
class Backoff {
 public:
  void Failed(const ConnectionOptions& options, Status error);
  void Succeeded();
  // True inside the window after a failure.
  bool Active() const { return !last_error_.ok() && Clock::now() < retry_at_; }
  const Status& last_error() const { return last_error_; }
  // When the last attempt failed (epoch if none did).
  Clock::time_point failed_at() const { return failed_at_; }

 private:
  Status last_error_;
  Clock::time_point retry_at_{};
  Clock::time_point failed_at_{};
  std::chrono::milliseconds delay_{0};
};

class RedisConnection {
 public:
  explicit RedisConnection(ConnectionOptions options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  const ConnectionOptions& options() const { return options_; }
  bool connected() const { return ctx_ != nullptr; }

  // Connects (TCP/unix, AUTH, SELECT) unless connected. Inside the backoff window after a
  // failure, returns that failure at once. `ignore_backoff` forces an attempt.
  Status EnsureConnected(bool ignore_backoff = false);

  // Sends `count` commands, RESP-encoded back to back in `chunks` (AppendCommand), in one
  // write and reads one reply per command, in order, appending them to *replies. On an I/O
  // failure or timeout returns kUnavailable and disconnects; *replies then holds the replies
  // read before the failure (a prefix).
  // REQUIRES: connected().
  Status Pipeline(std::span<const std::string_view> chunks, size_t count,
                  std::vector<Value>* replies);

  // EnsureConnected, then one command. Error replies are returned as values, not Statuses.
  Result<Value> Command(const Argv& argv);

  void Disconnect();

  // True if the last Pipeline failure was a timeout (the server may be alive but slow).
  bool timed_out() const { return timed_out_; }

  // When the last connection attempt failed (epoch if none did).
  Clock::time_point failed_at() const { return backoff_.failed_at(); }

 private:
  Status Connect();

  ConnectionOptions options_;
  redisContext* ctx_ = nullptr;
  Backoff backoff_;
  bool timed_out_ = false;
};

}  // namespace gimel::store::redis
