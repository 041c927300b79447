// Plain HTTP request and response: what every transport (the Beast server, the Lambda
// adapter) hands to the API and gets back. No I/O here.
//
// Thread-safety: plain values.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gimel::api {

struct Header {
  std::string name;  // as received; compared case-insensitively
  std::string value;
};

struct Request {
  std::string method;  // "GET", "POST", "OPTIONS", ... (upper case)
  std::string path;    // raw (still percent-encoded) path without the query, e.g. "/track"
  std::string query;   // raw query string without '?', e.g. "experiment=a&uuid=b"
  std::vector<Header> headers;
  std::string body;

  // The value of the first header named `name` (case-insensitive), or "" if absent.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

struct Response {
  int status = 200;
  // Headers common to many responses, in storage that outlives every Response (a static), sent
  // before `headers`: a response built from them allocates nothing for its headers.
  const std::vector<Header>* shared_headers = nullptr;
  std::vector<Header> headers;  // Content-Type included here (or in shared_headers)
  std::string body;

  // Replaces the header `name` (in either list) or adds it.
  void set_header(std::string name, std::string value);
  // The first header named `name` (case-insensitive), shared ones first; "" if absent.
  std::string_view header(std::string_view name) const;
  // Calls f(const Header&) for every header, shared ones first.
  template <typename F>
  void ForEachHeader(F&& f) const {
    if (shared_headers != nullptr) {
      for (const Header& h : *shared_headers) f(h);
    }
    for (const Header& h : headers) f(h);
  }
};

// Completion for an asynchronous handler. Called exactly once, possibly on another thread
// (e.g. the store's writer thread): a transport must hop back to its own executor.
using Reply = std::function<void(Response)>;

// Anything that answers requests: the API's router implements this.
using Handler = std::function<void(Request, Reply)>;

}  // namespace gimel::api
