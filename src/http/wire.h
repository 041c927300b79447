// HTTP/1.1 wire helpers for the Beast server: an incremental request parser that fills an
// api::Request directly (no intermediate beast::http::fields), and a response serialiser that
// appends status line, headers and body to a reused std::string.
//
// Internal to src/http: only server.cc and the tests include this header.
//
// Thread-safety: RequestParser is a single-connection object (not thread-safe); the free
// functions are pure.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/request.h"

namespace gimel::http::wire {

// ---------------------------------------------------------------------------------------------
// Limits and user-visible error strings (every error body this module sends).
// ---------------------------------------------------------------------------------------------

struct Limits {
  std::size_t max_url_bytes;     // request-target length → 414
  std::size_t max_header_bytes;  // sum of "name: value\r\n" over all fields → 431
  std::size_t max_body_bytes;    // Content-Length or decoded chunked size → 413
};

inline constexpr std::string_view kErrBadRequest = "malformed HTTP request";
inline constexpr std::string_view kErrUrlTooLong = "request target too long";
inline constexpr std::string_view kErrHeaderTooLarge = "request header fields too large";
inline constexpr std::string_view kErrBodyTooLarge = "request body too large";
inline constexpr std::string_view kErrTooManyConnections = "too many connections";
inline constexpr std::string_view kErrTimeout = "request timed out";
inline constexpr std::string_view kErrInternal = "internal server error";

// ---------------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------------

// A Beast basic_parser<true> that writes method, path, query, headers and body straight into an
// api::Request. One parser per request (Beast parsers are single-use); constructing one does not
// allocate.
//
// Limit violations are reported through Beast's own error codes so the read operation stops:
// http::error::header_limit with reject_status() 414 or 431, and http::error::body_limit (413).
// A header_limit error raised by Beast itself (a single line longer than the parser's
// header_limit) is classified by RejectStatusFor().
class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  explicit RequestParser(const Limits& limits);

  // The request parsed so far; complete once is_done(). The caller may move from it.
  api::Request& request() { return request_; }
  // HTTP version of the request line: 10 or 11 (0 before the request line is parsed).
  int version() const { return version_; }
  // 0, or the status (413/414/431) for a limit this parser detected.
  int reject_status() const { return reject_status_; }
  // True once the request line has been parsed.
  bool saw_request_line() const { return version_ != 0; }
  // The client sent "Expect: 100-continue".
  bool expect_continue() const { return expect_continue_; }

  // The HTTP status for a read that failed with `ec`: 400, 413, 414 or 431; 0 if the error
  // is not the client's fault in a way worth answering (EOF, timeout, reset).
  int RejectStatusFor(const boost::beast::error_code& ec) const;

 private:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;

  void on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target,
                       int version, error_code& ec) override;
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override;
  void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, string_view extensions, error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t remain, string_view body, error_code& ec) override;
  void on_finish_impl(error_code& ec) override;

  std::size_t AppendBody(string_view body, error_code& ec);

  Limits limits_;
  api::Request request_;
  std::size_t header_bytes_ = 0;
  int version_ = 0;
  int reject_status_ = 0;
  bool expect_continue_ = false;
};

// Splits a request-target into raw path and raw query (without '?'). An absolute-form target
// ("http://host/p?q") loses its scheme and authority; a fragment is dropped.
void SplitTarget(std::string_view target, std::string& path, std::string& query);

// ---------------------------------------------------------------------------------------------
// Response serialisation
// ---------------------------------------------------------------------------------------------

struct ResponseFraming {
  int version = 11;    // of the request: 10 → "HTTP/1.0" status line
  bool head = false;   // answer to HEAD: Content-Length kept, body omitted
  bool close = false;  // send "Connection: close" (the caller closes after writing)
};

// Appends `response` to `out` as HTTP/1.x bytes: status line, the handler's headers,
// "Server: gimel" and "Date: <now>" (unless the handler set them), Content-Length, Connection,
// blank line, body.
// Handler headers that would break framing (Content-Length, Transfer-Encoding, Connection,
// Keep-Alive) or that contain CR, LF or NUL are dropped. A status outside 200..999 becomes 500.
void AppendResponse(std::string& out, const api::Response& response,
                    const ResponseFraming& framing);

// True if the handler asked to close the connection ("Connection: close" in its headers).
bool WantsClose(const api::Response& response);

// A JSON error response: {"message":"<message>"} (the API's error shape), Content-Type
// application/json, Access-Control-Allow-Origin *. `message` must not need JSON escaping (the
// constants above).
api::Response JsonError(int status, std::string_view message);

// Case-insensitive ASCII equality (header names, tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace gimel::http::wire
