// JSON adapter for gimel::stats; see stats_json.h for the shapes.
#include "stats/stats_json.h"

#include <cmath>
#include <cstdint>
#include <set>
#include <string>

namespace gimel::stats {

namespace {

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

Status FieldError(const std::string& field, std::string_view phrase) {
  return Status::InvalidArgument(field + " " + std::string(phrase));
}

bool IsFiniteNumber(const nlohmann::json& j) {
  return j.is_number() && std::isfinite(j.get<double>());
}

Result<double> ReadCount(const nlohmann::json& entry, const std::string& field, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end() || !IsFiniteNumber(*it) || it->get<double>() < 0) {
    return FieldError(field + "." + key, kParseNotCount);
  }
  return it->get<double>();
}

Result<AnalyzeInput> Parse(const nlohmann::json& input) {
  if (!input.is_object()) return FieldError("request", kParseNotObject);
  AnalyzeInput out;

  auto results = input.find("results");
  if (results == input.end() || !results->is_array() || results->empty()) {
    return FieldError("results", kParseNotNonEmptyArray);
  }
  std::set<std::string> labels;
  for (std::size_t i = 0; i < results->size(); ++i) {
    const nlohmann::json& entry = (*results)[i];
    const std::string field = "results[" + std::to_string(i) + "]";
    if (!entry.is_object()) return FieldError(field, kParseNotObject);
    auto label = entry.find("label");
    if (label == entry.end() || !label->is_string()) {
      return FieldError(field + ".label", kParseNotString);
    }
    VariantCounts counts;
    counts.label = label->get<std::string>();
    if (!labels.insert(counts.label).second) {
      return FieldError(field + ".label", kParseDuplicateLabel);
    }
    GIMEL_ASSIGN_OR_RETURN(counts.successes, ReadCount(entry, field, "successes"));
    GIMEL_ASSIGN_OR_RETURN(counts.trials, ReadCount(entry, field, "trials"));
    out.variants.push_back(std::move(counts));
  }

  if (auto it = input.find("baseline"); it != input.end() && !it->is_null()) {
    if (!it->is_string()) return FieldError("baseline", kParseNotString);
    out.options.baseline = it->get<std::string>();
    if (labels.count(out.options.baseline) == 0) {
      return FieldError("baseline", kParseUnknownBaseline);
    }
  }
  if (auto it = input.find("confidence"); it != input.end() && !it->is_null()) {
    if (!IsFiniteNumber(*it) || !(it->get<double>() > 0 && it->get<double>() < 1)) {
      return FieldError("confidence", kParseNotProbability);
    }
    out.options.confidence = it->get<double>();
  }
  if (auto it = input.find("expected_split"); it != input.end() && !it->is_null()) {
    if (!it->is_array()) return FieldError("expected_split", kParseBadSplit);
    for (const nlohmann::json& w : *it) {
      if (!IsFiniteNumber(w)) return FieldError("expected_split", kParseBadSplit);
      out.options.expected_split.push_back(w.get<double>());
    }
    if (!ValidSplitWeights(out.options.expected_split, out.variants.size())) {
      return FieldError("expected_split", kParseBadSplit);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Serialising
// ---------------------------------------------------------------------------------------------

nlohmann::json Number(double x) { return std::isfinite(x) ? x : 0.0; }

// Counts are integral after AnalyzeGoal; print them without a fraction.
nlohmann::json Count(double x) {
  if (std::isfinite(x) && x >= 0 && x <= 9007199254740992.0 && x == std::floor(x)) {
    return static_cast<std::int64_t>(x);
  }
  return Number(x);
}

nlohmann::json IntervalJson(const Interval& i) {
  return {{"value", Number(i.value)}, {"lower", Number(i.lower)}, {"upper", Number(i.upper)}};
}

nlohmann::json OptionalInterval(const std::optional<Interval>& i) {
  return i ? IntervalJson(*i) : nlohmann::json(nullptr);
}

nlohmann::json OptionalNumber(const std::optional<double>& x) {
  return x ? Number(*x) : nlohmann::json(nullptr);
}

}  // namespace

Result<AnalyzeInput> ParseAnalyzeInput(const nlohmann::json& input) {
  try {
    return Parse(input);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("invalid request: ") + e.what());
  }
}

nlohmann::json GoalStatsToJson(const GoalStats& stats, std::string_view goal) {
  nlohmann::json out = nlohmann::json::object();
  out["goal"] = std::string(goal);
  out["baseline"] = stats.baseline;
  out["srm"] = {{"p_value", Number(stats.srm.p_value)}, {"mismatch", stats.srm.mismatch}};
  nlohmann::json results = nlohmann::json::array();
  for (const VariantStats& v : stats.results) {
    nlohmann::json s = nlohmann::json::object();
    s["rate"] = IntervalJson(v.rate);
    s["improvement"] = OptionalInterval(v.improvement);
    s["relative_improvement"] = OptionalInterval(v.relative_improvement);
    s["p_value"] = OptionalNumber(v.p_value);
    s["p_value_one_tailed"] = OptionalNumber(v.p_value_one_tailed);
    s["chance_to_beat_baseline"] = OptionalNumber(v.chance_to_beat_baseline);
    s["expected_loss"] = OptionalNumber(v.expected_loss);
    results.push_back({{"label", v.label},
                       {"successes", Count(v.successes)},
                       {"trials", Count(v.trials)},
                       {"stats", std::move(s)},
                       {"warnings", v.warnings}});
  }
  out["results"] = std::move(results);
  if (!stats.error.empty()) out["error"] = stats.error;
  return out;
}

}  // namespace gimel::stats
