// JSON adapter for gimel::stats: parses an analysis request and serialises GoalStats.
//
// Request (ParseAnalyzeInput):
//   {"baseline": "red",            optional string, one of the labels; default first result
//    "confidence": 0.95,           optional number in (0, 1); default 0.95
//    "expected_split": [1, 1],     optional, one non-negative weight per result; default equal
//    "results": [{"label": "red", "successes": 50, "trials": 1000}, ...]}   non-empty
// Unknown keys are ignored. successes > trials is accepted (HLL estimates can do that) and is
// repaired with a warning by AnalyzeGoal.
//
// Response (GoalStatsToJson), every number finite, the baseline's comparison fields null:
//   {"goal": "clicked", "baseline": "red", "srm": {"p_value": 0.41, "mismatch": false},
//    "results": [{"label": "blue", "successes": 57, "trials": 998,
//                 "stats": {"rate": {"value", "lower", "upper"},
//                           "improvement": {...} | null, "relative_improvement": {...} | null,
//                           "p_value": 0.19 | null, "p_value_one_tailed": 0.09 | null,
//                           "chance_to_beat_baseline": 0.95 | null,
//                           "expected_loss": 0.0003 | null},
//                 "warnings": ["too few trials", ...]}, ...]}
// plus "error": "..." (and empty results) when GoalStats::error is set.
//
// Thread-safety: pure functions, safe to call from any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "stats/stats.h"

namespace gimel::stats {

struct AnalyzeInput {
  std::vector<VariantCounts> variants;
  Options options;
};

// Parses a request. Errors: kInvalidArgument naming the offending field, e.g.
// "results[1].trials must be a non-negative number". Never throws.
Result<AnalyzeInput> ParseAnalyzeInput(const nlohmann::json& input);

// Serialises `stats` for goal `goal` in the shape above. Never throws (except bad_alloc).
nlohmann::json GoalStatsToJson(const GoalStats& stats, std::string_view goal);

// ---- User-visible parse errors: "<field> <phrase>" ----
inline constexpr std::string_view kParseNotObject = "must be a JSON object";
inline constexpr std::string_view kParseNotNonEmptyArray = "must be a non-empty array";
inline constexpr std::string_view kParseNotString = "must be a string";
inline constexpr std::string_view kParseNotCount = "must be a non-negative number";
inline constexpr std::string_view kParseNotProbability = "must be a number in (0, 1)";
inline constexpr std::string_view kParseDuplicateLabel = "duplicates an earlier label";
inline constexpr std::string_view kParseUnknownBaseline = "must be one of the results' labels";
inline constexpr std::string_view kParseBadSplit =
    "must be an array of one non-negative number per result, with a positive sum";

}  // namespace gimel::stats
