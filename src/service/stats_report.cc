// Statistics in reports: runs gimel::stats over a GoalReport and adds its numbers to the
// original JSON shape without changing the original fields (DESIGN.md §6).
#include <nlohmann/json.hpp>

#include "service/service.h"
#include "stats/stats.h"
#include "stats/stats_json.h"

namespace gimel::service {

void AddStats(const GoalReport& goal, const StatsRequest& request, nlohmann::json* out) {
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
  const nlohmann::json json = stats::GoalStatsToJson(result, goal.goal);
  if (!result.error.empty()) {
    (*out)["stats_error"] = result.error;
    return;
  }
  (*out)["baseline"] = json["baseline"];
  (*out)["srm"] = json["srm"];
  auto& results = (*out)["results"];
  const auto& analysed = json["results"];
  for (size_t i = 0; i < results.size() && i < analysed.size(); ++i) {
    results[i]["stats"] = analysed[i]["stats"];
    if (analysed[i].contains("warnings") && !analysed[i]["warnings"].empty()) {
      results[i]["warnings"] = analysed[i]["warnings"];
    }
  }
}

}  // namespace gimel::service
