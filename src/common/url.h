// URL query decoding and encoding, UTF-8 validation. Pure functions, no allocation beyond
// the returned strings.
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

// Encodes everything but unreserved characters (RFC 3986: ALPHA DIGIT - . _ ~) as %XX.
std::string PercentEncode(std::string_view in);

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Splits "a=1&b=x+y" into decoded pairs (in order; repeated keys kept). A key without '='
// has an empty value. Error: kInvalidArgument naming the parameter whose encoding is bad.
Result<QueryParams> ParseQuery(std::string_view raw);

// The value of the first parameter named `key`, or nullptr.
const std::string* FindParam(const QueryParams& params, std::string_view key);

}  // namespace gimel
