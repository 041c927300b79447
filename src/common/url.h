// URL query decoding and encoding, UTF-8 validation. Pure functions, no allocation beyond
// the returned strings (the *Into variants reuse their output's).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gimel {

// Decodes %XX escapes; with `plus_is_space`, '+' means ' ' (query strings).
// Error: kInvalidArgument for a truncated or non-hex escape.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space);

// PercentDecode into *out (replacing its contents, reusing its capacity). On error *out holds
// a prefix of the decoding.
Status PercentDecodeInto(std::string_view in, bool plus_is_space, std::string* out);

// Encodes everything but unreserved characters (RFC 3986: ALPHA DIGIT - . _ ~) as %XX.
std::string PercentEncode(std::string_view in);

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Splits "a=1&b=x+y" into decoded pairs (in order; repeated keys kept). A key without '='
// has an empty value. Error: kInvalidArgument naming the parameter whose encoding is bad.
Result<QueryParams> ParseQuery(std::string_view raw);

// ParseQuery into *params, replacing its contents but reusing its strings' capacity (a
// caller that keeps one QueryParams per thread decodes without allocating). On error *params
// is empty.
Status ParseQueryInto(std::string_view raw, QueryParams* params);

// The value of the first parameter named `key`, or nullptr.
const std::string* FindParam(const QueryParams& params, std::string_view key);

}  // namespace gimel
