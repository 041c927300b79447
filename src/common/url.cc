#include "common/url.h"

#include <cstring>

namespace gimel {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Status PercentDecodeInto(std::string_view in, bool plus_is_space, std::string* out) {
  // Copy the runs between escapes whole: most values (uuids, plain names) have none. (A plain
  // loop: string_view::find_first_of calls memchr on the set once per input byte.)
  auto next_special = [in, plus_is_space](size_t from) {
    for (size_t j = from; j < in.size(); ++j) {
      if (in[j] == '%' || (plus_is_space && in[j] == '+')) return j;
    }
    return std::string_view::npos;
  };
  out->clear();
  out->reserve(in.size());
  size_t i = 0;
  for (;;) {
    const size_t at = next_special(i);
    if (at == std::string_view::npos) {
      out->append(in.substr(i));
      return Status::Ok();
    }
    out->append(in.substr(i, at - i));
    if (in[at] == '+') {
      out->push_back(' ');
      i = at + 1;
      continue;
    }
    if (at + 2 >= in.size()) return Status::InvalidArgument("truncated percent-encoding");
    const int hi = HexValue(in[at + 1]);
    const int lo = HexValue(in[at + 2]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("invalid percent-encoding");
    out->push_back(static_cast<char>(hi * 16 + lo));
    i = at + 3;
  }
}

Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  GIMEL_RETURN_IF_ERROR(PercentDecodeInto(in, plus_is_space, &out));
  return out;
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size() * 3);
  for (unsigned char c : in) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    // ASCII runs 8 bytes at a time: most names are plain ASCII.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if ((word & 0x8080808080808080ULL) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) {
      return false;  // overlong
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Status ParseQueryInto(std::string_view raw, QueryParams* params) {
  size_t n = 0;  // params filled so far; the rest of *params is reused, then dropped
  size_t pos = 0;
  Status status;
  while (pos <= raw.size()) {
    size_t amp = raw.find('&', pos);
    if (amp == std::string_view::npos) amp = raw.size();
    std::string_view part = raw.substr(pos, amp - pos);
    pos = amp + 1;
    if (part.empty()) {
      if (amp == raw.size()) break;
      continue;
    }
    size_t eq = part.find('=');
    std::string_view k = part.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    if (n == params->size()) {
      if (params->capacity() == 0) params->reserve(8);  // a track request has five or six
      params->emplace_back();
    }
    auto& [key, value] = (*params)[n++];
    if (!PercentDecodeInto(k, true, &key).ok()) {
      status = Status::InvalidArgument("invalid percent-encoding in query");
      break;
    }
    if (!PercentDecodeInto(v, true, &value).ok()) {
      status = Status::InvalidArgument("invalid percent-encoding in parameter '" + key + "'");
      break;
    }
    if (amp == raw.size()) break;
  }
  params->resize(status.ok() ? n : 0);
  return status;
}

Result<QueryParams> ParseQuery(std::string_view raw) {
  QueryParams params;
  GIMEL_RETURN_IF_ERROR(ParseQueryInto(raw, &params));
  return params;
}

const std::string* FindParam(const QueryParams& params, std::string_view key) {
  for (const auto& [k, v] : params) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace gimel
