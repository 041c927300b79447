#include "api/request.h"

#include <strings.h>

namespace gimel::api {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (IEquals(h.name, name)) return h.value;
  }
  return {};
}

bool Request::has_header(std::string_view name) const {
  for (const auto& h : headers) {
    if (IEquals(h.name, name)) return true;
  }
  return false;
}

void Response::set_header(std::string name, std::string value) {
  if (shared_headers != nullptr) {  // copy them so that one can be replaced
    headers.insert(headers.begin(), shared_headers->begin(), shared_headers->end());
    shared_headers = nullptr;
  }
  for (auto& h : headers) {
    if (IEquals(h.name, name)) {
      h.value = std::move(value);
      return;
    }
  }
  headers.push_back({std::move(name), std::move(value)});
}

std::string_view Response::header(std::string_view name) const {
  if (shared_headers != nullptr) {
    for (const auto& h : *shared_headers) {
      if (IEquals(h.name, name)) return h.value;
    }
  }
  for (const auto& h : headers) {
    if (IEquals(h.name, name)) return h.value;
  }
  return {};
}

}  // namespace gimel::api
