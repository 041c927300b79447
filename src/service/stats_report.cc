// Statistics in reports: runs gimel::stats over a GoalReport and gives its numbers as JSON text
// for the report writer (service.cc) to add to the original shape (DESIGN.md §6).
#include <nlohmann/json.hpp>

#include "service/service.h"
#include "stats/stats.h"
#include "stats/stats_json.h"

namespace gimel::service {
namespace {

// As the report writer does (service.h): bytes that are not UTF-8 become U+FFFD.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

GoalStatsText AnalyzeGoalText(const GoalReport& goal, const StatsRequest& request) {
  std::vector<stats::VariantCounts> counts;
  counts.reserve(goal.results.size());
  for (const auto& r : goal.results) {
    counts.push_back({r.label, static_cast<double>(r.successes), static_cast<double>(r.trials)});
  }
  stats::Options options;
  options.confidence = request.confidence;
  options.baseline = request.baseline;
  // Counts are HyperLogLog estimates: widen the SRM test by their standard error so that
  // counting noise alone does not flag a mismatch on large experiments.
  options.count_relative_error = stats::kHllRelativeError;
  const stats::GoalStats result = stats::AnalyzeGoal(counts, options);
  GoalStatsText out;
  if (!result.error.empty()) {
    out.error = Dump(nlohmann::json(result.error));
    return out;
  }
  const nlohmann::json json = stats::GoalStatsToJson(result, goal.goal);
  out.baseline = Dump(json["baseline"]);
  out.srm = Dump(json["srm"]);
  for (const auto& r : json["results"]) {
    out.stats.push_back(Dump(r["stats"]));
    const bool warned = r.contains("warnings") && !r["warnings"].empty();
    out.warnings.push_back(warned ? Dump(r["warnings"]) : std::string());
  }
  return out;
}

}  // namespace gimel::service
