#include "http/wire.h"

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <limits>

namespace gimel::http::wire {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 9110 §5.6.2 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsSafeHeader(const api::Header& h) {
  if (h.name.empty()) return false;
  for (char c : h.name) {
    if (!IsTokenChar(c)) return false;
  }
  for (char c : h.value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// Headers whose framing meaning the server owns.
bool IsFramingHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "content-length") || EqualsIgnoreCase(name, "transfer-encoding") ||
         EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "keep-alive");
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

void AppendNumber(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;  // 24 bytes always suffice for a uint64
  out.append(buf, end);
}

// The "Date: ...\r\n" line for the current second (RFC 9110 IMF-fixdate), kept per thread and
// rebuilt when the second changes: one time() call (vDSO) and a copy per response.
std::string_view DateLine() {
  struct Cache {
    std::time_t second = -1;
    char line[40];
    std::size_t size = 0;
  };
  thread_local Cache cache;
  const std::time_t now = std::time(nullptr);
  if (now != cache.second) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&now, &tm);
    const int n = std::snprintf(cache.line, sizeof cache.line,
                                "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                                kDays[tm.tm_wday % 7], tm.tm_mday, kMonths[tm.tm_mon % 12],
                                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cache.size =
        n > 0 ? std::min<std::size_t>(static_cast<std::size_t>(n), sizeof cache.line - 1) : 0;
    cache.second = now;
  }
  return {cache.line, cache.size};
}

const beast::error_code& HttpCategoryProbe() {
  static const beast::error_code probe = bhttp::make_error_code(bhttp::error::bad_method);
  return probe;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// RequestParser
// ---------------------------------------------------------------------------------------------

RequestParser::RequestParser(const Limits& limits) : limits_(limits) {
  // Beast's header_limit bounds a single unparsed line (fields are consumed one by one), so it
  // only needs to admit the longest legal request line; the totals are enforced below.
  std::size_t line_limit = std::max(limits.max_url_bytes, limits.max_header_bytes) + 1024;
  header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(line_limit, std::numeric_limits<std::uint32_t>::max())));
  body_limit(static_cast<std::uint64_t>(limits.max_body_bytes));
}

int RequestParser::RejectStatusFor(const beast::error_code& ec) const {
  if (reject_status_ != 0) return reject_status_;
  if (ec == bhttp::error::header_limit) return saw_request_line() ? 431 : 414;
  if (ec == bhttp::error::body_limit) return 413;
  if (ec == bhttp::error::buffer_overflow) return 431;
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) return 0;
  if (ec.category() == HttpCategoryProbe().category()) return 400;
  return 0;
}

void RequestParser::on_request_impl(bhttp::verb /*method*/, string_view method_str,
                                    string_view target, int version, error_code& ec) {
  version_ = version;
  if (target.size() > limits_.max_url_bytes) {
    reject_status_ = 414;
    ec = bhttp::error::header_limit;
    return;
  }
  request_.method.assign(method_str.data(), method_str.size());
  SplitTarget(View(target), request_.path, request_.query);
}

void RequestParser::on_response_impl(int, string_view, int, error_code& ec) {
  ec = bhttp::error::bad_version;  // never a response on a server socket
}

void RequestParser::on_field_impl(bhttp::field name, string_view name_string, string_view value,
                                  error_code& ec) {
  header_bytes_ += name_string.size() + value.size() + 4;  // ": " and CRLF
  if (header_bytes_ > limits_.max_header_bytes) {
    reject_status_ = 431;
    ec = bhttp::error::header_limit;
    return;
  }
  if (name == bhttp::field::expect && EqualsIgnoreCase(View(value), "100-continue")) {
    expect_continue_ = true;
  }
  if (request_.headers.empty()) request_.headers.reserve(8);
  request_.headers.push_back(api::Header{std::string(name_string.data(), name_string.size()),
                                         std::string(value.data(), value.size())});
}

void RequestParser::on_header_impl(error_code&) {}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                      error_code& ec) {
  if (!content_length) return;
  if (*content_length > limits_.max_body_bytes) {
    reject_status_ = 413;
    ec = bhttp::error::body_limit;
    return;
  }
  request_.body.reserve(static_cast<std::size_t>(*content_length));
}

std::size_t RequestParser::AppendBody(string_view body, error_code& ec) {
  if (body.size() > limits_.max_body_bytes - request_.body.size()) {
    reject_status_ = 413;
    ec = bhttp::error::body_limit;
    return 0;
  }
  request_.body.append(body.data(), body.size());
  return body.size();
}

std::size_t RequestParser::on_body_impl(string_view body, error_code& ec) {
  return AppendBody(body, ec);
}

void RequestParser::on_chunk_header_impl(std::uint64_t size, string_view, error_code& ec) {
  if (size > limits_.max_body_bytes - request_.body.size()) {
    reject_status_ = 413;
    ec = bhttp::error::body_limit;
  }
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) {
  return AppendBody(body, ec);
}

void RequestParser::on_finish_impl(error_code&) {}

void SplitTarget(std::string_view target, std::string& path, std::string& query) {
  std::string_view t = target;
  if (!t.empty() && t.front() != '/' && t != "*") {
    // absolute-form (RFC 9112 §3.2.2): drop "scheme://authority".
    if (auto scheme_end = t.find("://"); scheme_end != std::string_view::npos) {
      auto rest = t.find_first_of("/?#", scheme_end + 3);
      t = rest == std::string_view::npos ? std::string_view() : t.substr(rest);
    }
  }
  if (auto hash = t.find('#'); hash != std::string_view::npos) t = t.substr(0, hash);
  auto q = t.find('?');
  std::string_view p = t.substr(0, q);
  if (p.empty()) p = "/";
  path.assign(p.data(), p.size());
  if (q == std::string_view::npos) {
    query.clear();
  } else {
    query.assign(t.data() + q + 1, t.size() - q - 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Response serialisation
// ---------------------------------------------------------------------------------------------

void AppendResponse(std::string& out, const api::Response& response,
                    const ResponseFraming& framing) {
  int status = response.status;
  if (status < 200 || status > 999) status = 500;
  const bool bodyless_status = status == 204 || status == 304;

  out.append(framing.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  AppendNumber(out, static_cast<std::uint64_t>(status));
  out.push_back(' ');
  auto known = bhttp::int_to_status(static_cast<unsigned>(status));
  if (known != bhttp::status::unknown) {
    auto reason = bhttp::obsolete_reason(known);
    out.append(reason.data(), reason.size());
  }
  out.append("\r\n");

  bool has_server = false, has_date = false;
  response.ForEachHeader([&out, &has_server, &has_date](const api::Header& h) {
    if (!IsSafeHeader(h) || IsFramingHeader(h.name)) return;
    if (EqualsIgnoreCase(h.name, "server")) has_server = true;
    if (EqualsIgnoreCase(h.name, "date")) has_date = true;
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  });
  if (!has_server) out.append("Server: gimel\r\n");
  if (!has_date) out.append(DateLine());
  if (!bodyless_status) {
    out.append("Content-Length: ");
    AppendNumber(out, response.body.size());
    out.append("\r\n");
  }
  if (framing.close) {
    out.append("Connection: close\r\n");
  } else if (framing.version == 10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  if (!framing.head && !bodyless_status) out.append(response.body);
}

bool WantsClose(const api::Response& response) {
  bool close = false;
  response.ForEachHeader([&close](const api::Header& h) {
    if (EqualsIgnoreCase(h.name, "connection") && ContainsIgnoreCase(h.value, "close")) {
      close = true;
    }
  });
  return close;
}

api::Response JsonError(int status, std::string_view message) {
  static const std::vector<api::Header> kHeaders = {{"Content-Type", "application/json"},
                                                    {"Access-Control-Allow-Origin", "*"}};
  api::Response r;
  r.status = status;
  r.shared_headers = &kHeaders;
  r.body.reserve(message.size() + 13);
  r.body.append("{\"message\":\"").append(message).append("\"}");
  return r;
}

}  // namespace gimel::http::wire
