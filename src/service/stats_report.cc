// Statistics in reports: maps a GoalReport to gimel::stats and its JSON (DESIGN.md §6).
#include <nlohmann/json.hpp>

#include "service/service.h"

namespace gimel::service {

void AddStats(const GoalReport& goal, const StatsRequest& request, nlohmann::json* out) {
  (void)goal;
  (void)request;
  (void)out;  // replaced once src/stats lands
}

}  // namespace gimel::service
