// Use cases over a Store: track an event, build reports, delete an experiment, migrate.
// The HTTP API and the CLI both call these; neither knows key names or counting.
//
// Thread-safety: Service methods may be called concurrently from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace gimel::service {

inline constexpr std::string_view kParticipate = "participate";

struct ServiceOptions {
  std::string default_namespace = "alephbet";    // Default: "alephbet"
  size_t max_name_bytes = 256;                   // Default: 256 bytes per name
  size_t max_experiments_per_namespace = 10000;  // Default: 10000
};

// One tracking event, as received (already URL-decoded).
struct Event {
  std::string ns;  // empty = the default namespace
  std::string experiment;
  std::string variant;
  std::string event;
  std::string uuid;
};

// Statistics requested with a report (DESIGN.md §6). Absent = the original report shape.
struct StatsRequest {
  std::string baseline;  // "" = the first variant in label order
  double confidence = 0.95;
};

struct VariantResult {
  std::string label;
  uint64_t successes = 0;
  uint64_t trials = 0;
};

struct GoalReport {
  std::string goal;
  std::vector<VariantResult> results;  // one per variant seen in the experiment, label order
};

struct ExperimentReport {
  std::string experiment;
  std::vector<GoalReport> goals;  // every event but "participate", name order
};

class Service {
 public:
  // `store` must outlive the Service.
  Service(store::Store* store, ServiceOptions options);

  // Checks one event: every name present, non-empty, within max_name_bytes and valid UTF-8.
  // Error: kInvalidArgument whose message names the parameter; kResourceExhausted when the
  // event would create an experiment past max_experiments_per_namespace.
  Status CheckEvent(const Event& event);

  // Records the event; `done` is called once, with OK only after the store made it durable.
  // REQUIRES: CheckEvent(event).ok().
  void Track(const Event& event, store::AddCallback done);

  // The report of one experiment (the original `experiment()`); empty goals if unknown.
  Result<ExperimentReport> Experiment(std::string_view ns, std::string_view experiment);
  // Reports of the scoped experiments, or all experiments of the namespace when scope is null.
  Result<std::vector<ExperimentReport>> Experiments(std::string_view ns,
                                                    const std::vector<std::string>* scope);
  // Deletes one experiment. Sets *existed. OK if it did not exist.
  Status Delete(std::string_view ns, std::string_view experiment, bool* existed);

  std::string_view Namespace(std::string_view ns) const {
    return ns.empty() ? std::string_view(options_.default_namespace) : ns;
  }
  store::Store* store() const { return store_; }
  const ServiceOptions& options() const { return options_; }

 private:
  // Known experiment names per namespace, for the experiments-per-namespace limit.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using NameSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;
  Status CheckExperimentLimit(std::string_view ns, std::string_view experiment);

  store::Store* store_;
  ServiceOptions options_;
  std::shared_mutex mu_;
  std::unordered_map<std::string, NameSet, StringHash, std::equal_to<>> known_;  // GUARDED_BY(mu_)
};

// The JSON text of reports, written directly: for 10,000 counters it is ~600 KB, and building
// it as a nlohmann::json document first took as long as counting the counters (bench/README.md).
// Keys in ascending order, strings escaped as nlohmann::json::dump writes them; bytes that are
// not UTF-8 in a name (possible only in data written by other clients) become U+FFFD.
//
// One goal, the original shape: {"goal", "results": [{"label", "successes", "trials"}]}; with
// `stats` also "baseline", "srm" and per result "stats" (and "warnings"), or only "stats_error"
// when the goal cannot be analysed.
// The original `experiment()` output: the list of the experiment's goals.
std::string GoalsJson(const ExperimentReport& report, const StatsRequest* stats);
// The original `all()` output: [{"meta": {"scope": scope-or-null}},
// {"experiment": name, "goals": [...]}, ...].
std::string ExperimentsJson(const std::vector<ExperimentReport>& reports,
                            const std::string* raw_scope, const StatsRequest* stats);

// A goal's statistics as JSON texts (stats_report.cc): `error` (a JSON string) if the goal
// cannot be analysed, else baseline, srm, and per result its stats and warnings ("" = none).
struct GoalStatsText {
  std::string error;
  std::string baseline;
  std::string srm;
  std::vector<std::string> stats;
  std::vector<std::string> warnings;
};
GoalStatsText AnalyzeGoalText(const GoalReport& goal, const StatsRequest& request);

struct MigrateStats {
  uint64_t namespaces = 0;
  uint64_t experiments = 0;
  uint64_t counters = 0;
};

// Copies every namespace, experiment and counter (HLL registers exactly, as a register-wise
// union, so running it twice changes nothing) from `from` to `to`.
Result<MigrateStats> Migrate(store::Store& from, store::Store& to);

}  // namespace gimel::service
