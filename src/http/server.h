// gimel::http — the HTTP/1.1 transport: a Boost.Beast server over a plain api::Handler.
//
// The server owns sockets, parsing, limits, timeouts, keep-alive and pipelining; everything
// else is the handler's. Each request becomes an api::Request (raw percent-encoded path, raw
// query, headers, body) handed to the handler together with an api::Reply; the handler calls
// the reply exactly once, from any thread, and the server hops back onto the connection's
// I/O thread to write. Responses are written in request order (pipelining), each with
// Content-Length, "Server: gimel" and the handler's headers.
//
// Protocol behaviour:
//   - keep-alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
//     "Connection: keep-alive". A handler may end a connection with "Connection: close".
//   - HEAD is passed to the handler unchanged (method "HEAD"); the server sends the handler's
//     headers and the Content-Length of its body, but never the body.
//   - "Expect: 100-continue" gets an interim 100 response when nothing else is queued.
//   - Malformed request → 400; target > max_url_bytes → 414; header fields > max_header_bytes
//     → 431; body > max_body_bytes → 413; each with a JSON body {"message": "..."} and
//     Access-Control-Allow-Origin: *, then the connection is closed. Over max_connections, a new
//     connection gets 503 (same JSON form) and is closed. A handler that has not replied within
//     request_timeout gets a 503 JSON answer in its place (its late reply is dropped).
//   - Headers are never logged (they may carry API keys).
//
// Thread-safety: Start() may be called from any thread. A Server's methods are thread-safe;
// Stop() and Wait() may be called concurrently from different threads, but Stop() must not be
// called from inside the handler (it joins the I/O threads the handler runs on). The handler
// is called concurrently from up to io_threads threads (one call at a time per connection)
// and must be thread-safe. api::Reply objects may outlive the Server: replies after Stop()
// are dropped.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api/request.h"
#include "common/status.h"

namespace gimel::http {

struct ServerOptions {
  // Address to bind: an IP literal ("127.0.0.1", "0.0.0.0", "::") or a resolvable host name.
  // Default: "127.0.0.1".
  std::string host = "127.0.0.1";
  // Default: 8080. 0 = let the OS pick a free port (see Server::port()).
  uint16_t port = 8080;
  // I/O threads running the handler. Default: 0 = one per core
  // (std::thread::hardware_concurrency, at least 1).
  int io_threads = 0;
  // A request-target longer than this gets 414. Default: 8192.
  std::size_t max_url_bytes = 8192;
  // Header fields totalling more than this (sum of "name: value\r\n") get 431. Default: 16384.
  std::size_t max_header_bytes = 16384;
  // A body longer than this (declared or decoded) gets 413. Default: 1 MiB.
  std::size_t max_body_bytes = 1 << 20;
  // Live connections at most; further connections get 503 and are closed. Default: 10000.
  std::size_t max_connections = 10000;
  // Time allowed to receive a complete request header, counted from the connection's accept
  // (first request) or from the first byte of a later request; then the connection is closed.
  // Default: 10 s.
  std::chrono::milliseconds header_timeout{10000};
  // A keep-alive connection with nothing in flight is closed after this long. Default: 60 s.
  std::chrono::milliseconds idle_timeout{60000};
  // Counted from the end of the request header: body read plus handler. A handler that has not
  // replied by then is answered with 503. Also bounds writing one batch of responses to a
  // client that does not read. Default: 30 s.
  std::chrono::milliseconds request_timeout{30000};
  // Requests per connection read ahead of their responses (pipelining); reading pauses at the
  // cap. Default: 16 (values below 1 mean 1).
  std::size_t max_pipelined = 16;
};

class Server {
 public:
  // Binds, listens and starts the I/O threads.
  // Errors: kIOError ("bind 127.0.0.1:8080: address already in use", unresolvable host,
  // permission denied, ...); kInternal if threads cannot be started.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options, api::Handler handler);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the OS's choice when options.port was 0).
  uint16_t port() const;
  // "host:port" as bound, e.g. "127.0.0.1:8080" or "[::1]:8080".
  std::string address() const;

  // Graceful stop: stop accepting (the port refuses connections once Stop returns), close idle
  // keep-alive connections, let in-flight requests finish and answer them with
  // "Connection: close"; connections still busy after `drain` are closed forcibly. Then joins
  // the I/O threads. Idempotent; concurrent callers all return once the stop has completed.
  // REQUIRES: not called from the handler (an I/O thread).
  void Stop(std::chrono::milliseconds drain = std::chrono::milliseconds(5000));

  // Blocks until Stop() (called from another thread, e.g. a signal-handling thread) completes.
  void Wait();

  // Calls Stop().
  ~Server();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gimel::http
