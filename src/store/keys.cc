#include "store/keys.h"

#include <array>
#include <charconv>
#include <memory>

namespace gimel::store::keys {

namespace {

std::string Join(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (auto p : parts) n += p.size();
  std::string out;
  out.reserve(n);
  for (auto p : parts) out.append(p);
  return out;
}

}  // namespace

std::string ExperimentsKey(std::string_view ns) { return Join({ns, kExperimentsSuffix}); }

std::string NamespaceCounterKeysKey(std::string_view ns) { return Join({ns, kCounterKeysSuffix}); }

std::string ExperimentCounterKeysKey(std::string_view ns, std::string_view experiment) {
  return Join({ns, ":", experiment, kCounterKeysSuffix});
}

std::string CounterNamesKey(std::string_view ns, std::string_view experiment) {
  return Join({ns, ":", experiment, kCounterNamesSuffix});
}

std::string CounterKey(std::string_view ns, std::string_view experiment, std::string_view event,
                       std::string_view variant) {
  std::string out;
  AppendCounterKey(&out, ns, experiment, event, variant);
  return out;
}

void AppendCounterKey(std::string* out, std::string_view ns, std::string_view experiment,
                      std::string_view event, std::string_view variant) {
  out->reserve(out->size() + ns.size() + kCountersInfix.size() + experiment.size() + event.size() +
               variant.size() + 2);
  for (std::string_view part :
       {ns, kCountersInfix, experiment, kSeparatorString, event, kSeparatorString, variant}) {
    out->append(part);
  }
}

std::string CounterPrefix(std::string_view ns, std::string_view experiment) {
  return Join({ns, kCountersInfix, experiment, ":"});
}

bool NeedsNameEntry(std::string_view event, std::string_view variant) {
  return event.find(kSeparator) != std::string_view::npos ||
         variant.find(kSeparator) != std::string_view::npos;
}

std::optional<std::pair<std::string, std::string>> ParseCounterKey(
    std::string_view prefix, std::string_view key, std::optional<std::string_view> recorded_event) {
  if (!key.starts_with(prefix)) return std::nullopt;
  std::string_view rest = key.substr(prefix.size());
  if (recorded_event) {
    const std::string_view ev = *recorded_event;
    if (rest.size() > ev.size() && rest.starts_with(ev) && rest[ev.size()] == kSeparator) {
      return std::make_pair(std::string(ev), std::string(rest.substr(ev.size() + 1)));
    }
  }
  const size_t colon = rest.rfind(kSeparator);
  if (colon == std::string_view::npos) return std::nullopt;
  return std::make_pair(std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1)));
}

std::optional<std::string> NamespaceFromExperimentsKey(std::string_view key) {
  if (!key.ends_with(kExperimentsSuffix)) return std::nullopt;
  return std::string(key.substr(0, key.size() - kExperimentsSuffix.size()));
}

// ---- Cluster --------------------------------------------------------------------------------

uint16_t Crc16(std::string_view bytes) {
  // CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection (Redis cluster spec).
  uint16_t crc = 0;
  for (unsigned char c : bytes) {
    crc ^= static_cast<uint16_t>(c) << 8;
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

uint32_t HashSlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kClusterSlots - 1);
}

std::string MergeTmpKey(std::string_view key) {
  // One short tag per slot, found once by enumerating decimal strings (~160k CRCs, < 10 ms).
  static const auto* const kTags = [] {
    auto* tags = new std::array<std::string, kClusterSlots>();
    size_t missing = kClusterSlots;
    for (uint64_t n = 0; missing > 0; ++n) {
      std::string tag = std::to_string(n);
      std::string& slot_tag = (*tags)[Crc16(tag) & (kClusterSlots - 1)];
      if (slot_tag.empty()) {
        slot_tag = std::move(tag);
        --missing;
      }
    }
    return tags;
  }();
  return Join({kMergeTmpPrefix, "{", (*kTags)[HashSlot(key)], "}"});
}

namespace {
void AppendLengthPrefixed(std::string* out, std::string_view part) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof(digits), part.size()).ptr;
  out->append(digits, end);
  out->push_back(':');
  out->append(part);
}

}  // namespace

std::string TupleIdPrefix(std::string_view ns, std::string_view experiment) {
  std::string out;
  out.reserve(ns.size() + experiment.size() + 16);
  AppendLengthPrefixed(&out, ns);
  AppendLengthPrefixed(&out, experiment);
  return out;
}

void AppendTupleId(std::string* out, std::string_view ns, std::string_view experiment,
                   std::string_view event, std::string_view variant) {
  out->reserve(out->size() + ns.size() + experiment.size() + event.size() + variant.size() + 32);
  for (std::string_view part : {ns, experiment, event, variant}) AppendLengthPrefixed(out, part);
}

std::string TupleId(std::string_view ns, std::string_view experiment, std::string_view event,
                    std::string_view variant) {
  std::string out;
  AppendTupleId(&out, ns, experiment, event, variant);
  return out;
}

std::optional<std::array<std::string_view, 4>> ParseTupleId(std::string_view id) {
  std::array<std::string_view, 4> names;
  for (std::string_view& name : names) {
    size_t size = 0;
    const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), size);
    if (ec != std::errc() || end == id.data() + id.size() || *end != ':') return std::nullopt;
    id.remove_prefix(static_cast<size_t>(end - id.data()) + 1);
    if (size > id.size()) return std::nullopt;
    name = id.substr(0, size);
    id.remove_prefix(size);
  }
  if (!id.empty()) return std::nullopt;
  return names;
}

}  // namespace gimel::store::keys
