#include "service/service.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "common/url.h"
#include "hll/hll.h"

namespace gimel::service {
namespace {

using json = nlohmann::json;

Status CheckName(std::string_view param, std::string_view value, size_t max_bytes) {
  if (value.empty()) {
    return Status::InvalidArgument("missing parameter '" + std::string(param) + "'");
  }
  if (value.size() > max_bytes) {
    return Status::InvalidArgument("parameter '" + std::string(param) + "' is longer than " +
                                   std::to_string(max_bytes) + " bytes");
  }
  if (!IsValidUtf8(value)) {
    return Status::InvalidArgument("parameter '" + std::string(param) + "' is not valid UTF-8");
  }
  return Status::Ok();
}

// Builds the original report shape from raw counters (Gimel's _experiment_goals): variants are
// every variant seen under any event; goals every event but participate.
Result<ExperimentReport> BuildReport(std::string experiment, std::vector<store::Counter> counters) {
  std::map<std::pair<std::string, std::string>, uint64_t> counts;  // (event, variant) -> n
  std::set<std::string> variants;
  std::set<std::string> goals;
  for (auto& c : counters) {
    const uint64_t n = hll::CountValidated(c.hll);  // stores validate what they return
    variants.insert(c.variant);
    if (c.event != kParticipate) goals.insert(c.event);
    counts[{std::move(c.event), std::move(c.variant)}] += n;
  }
  auto count = [&counts](const std::string& event, const std::string& variant) -> uint64_t {
    auto it = counts.find({event, variant});
    return it == counts.end() ? 0 : it->second;
  };
  ExperimentReport report;
  report.experiment = std::move(experiment);
  const std::string participate(kParticipate);
  for (const auto& goal : goals) {
    GoalReport g;
    g.goal = goal;
    for (const auto& variant : variants) {
      g.results.push_back({variant, count(goal, variant), count(participate, variant)});
    }
    report.goals.push_back(std::move(g));
  }
  return report;
}

// Reports and migrate read experiments kReadBatch at a time with Store::ReadExperiments: a few
// round trips per batch on the redis stores instead of two per experiment, while the HLLs
// held at once stay bounded (up to 12 KiB per counter) however large the namespace.
constexpr size_t kReadBatch = 256;

// store.ReadExperiments, checked to have one entry per experiment.
Result<std::vector<std::vector<store::Counter>>> ReadBatch(
    store::Store& store, std::string_view ns, const std::vector<std::string>& experiments) {
  GIMEL_ASSIGN_OR_RETURN(auto counters, store.ReadExperiments(ns, experiments));
  if (counters.size() != experiments.size()) {
    return Status::Internal("store " + std::string(store.name()) + " read " +
                            std::to_string(counters.size()) + " experiments of " +
                            std::to_string(experiments.size()));
  }
  return counters;
}

}  // namespace

// Adds "baseline", "srm" and per-result "stats" to a goal's JSON (stats_report.cc).
void AddStats(const GoalReport& goal, const StatsRequest& request, json* out);

Service::Service(store::Store* store, ServiceOptions options)
    : store_(store), options_(std::move(options)) {}

Status Service::CheckEvent(const Event& e) {
  const size_t max = options_.max_name_bytes;
  if (!e.ns.empty()) GIMEL_RETURN_IF_ERROR(CheckName("namespace", e.ns, max));
  GIMEL_RETURN_IF_ERROR(CheckName("experiment", e.experiment, max));
  GIMEL_RETURN_IF_ERROR(CheckName("variant", e.variant, max));
  GIMEL_RETURN_IF_ERROR(CheckName("event", e.event, max));
  GIMEL_RETURN_IF_ERROR(CheckName("uuid", e.uuid, max));
  return CheckExperimentLimit(Namespace(e.ns), e.experiment);
}

Status Service::CheckExperimentLimit(std::string_view ns, std::string_view experiment) {
  {
    std::shared_lock lock(mu_);
    auto it = known_.find(ns);
    if (it != known_.end()) {
      if (it->second.find(experiment) != it->second.end()) return Status::Ok();
      if (it->second.size() < options_.max_experiments_per_namespace) {
        // fall through to insert under the exclusive lock
      } else {
        return Status::ResourceExhausted("namespace '" + std::string(ns) + "' already has " +
                                         std::to_string(it->second.size()) +
                                         " experiments (limits.max_experiments_per_namespace)");
      }
    }
  }
  std::unique_lock lock(mu_);
  auto it = known_.find(ns);
  if (it == known_.end()) {
    // First event of this namespace in this process: learn its experiments from the store.
    auto existing = store_->ListExperiments(ns);
    if (!existing.ok()) return existing.status();
    NameSet names(existing->begin(), existing->end());
    it = known_.emplace(std::string(ns), std::move(names)).first;
  }
  if (it->second.find(experiment) != it->second.end()) return Status::Ok();
  if (it->second.size() >= options_.max_experiments_per_namespace) {
    return Status::ResourceExhausted("namespace '" + std::string(ns) + "' already has " +
                                     std::to_string(it->second.size()) +
                                     " experiments (limits.max_experiments_per_namespace)");
  }
  it->second.emplace(experiment);
  return Status::Ok();
}

void Service::Track(const Event& e, store::AddCallback done) {
  store_->Add({Namespace(e.ns), e.experiment, e.event, e.variant, e.uuid}, std::move(done));
}

Result<ExperimentReport> Service::Experiment(std::string_view ns, std::string_view experiment) {
  GIMEL_ASSIGN_OR_RETURN(auto counters, store_->ReadExperiment(Namespace(ns), experiment));
  return BuildReport(std::string(experiment), std::move(counters));
}

Result<std::vector<ExperimentReport>> Service::Experiments(std::string_view ns,
                                                           const std::vector<std::string>* scope) {
  std::vector<std::string> names;
  if (scope) {
    names = *scope;
  } else {
    GIMEL_ASSIGN_OR_RETURN(names, store_->ListExperiments(Namespace(ns)));
    std::sort(names.begin(), names.end());
  }
  const std::string_view n = Namespace(ns);
  std::vector<ExperimentReport> reports;
  reports.reserve(names.size());
  for (size_t begin = 0; begin < names.size(); begin += kReadBatch) {
    const size_t end = std::min(names.size(), begin + kReadBatch);
    std::vector<std::string> batch(std::make_move_iterator(names.begin() + begin),
                                   std::make_move_iterator(names.begin() + end));
    GIMEL_ASSIGN_OR_RETURN(auto counters, ReadBatch(*store_, n, batch));
    for (size_t i = 0; i < batch.size(); ++i) {
      GIMEL_ASSIGN_OR_RETURN(auto report, BuildReport(std::move(batch[i]), std::move(counters[i])));
      reports.push_back(std::move(report));
    }
  }
  return reports;
}

Status Service::Delete(std::string_view ns, std::string_view experiment, bool* existed) {
  const std::string_view n = Namespace(ns);
  GIMEL_ASSIGN_OR_RETURN(auto names, store_->ListExperiments(n));
  *existed = std::find(names.begin(), names.end(), experiment) != names.end();
  GIMEL_RETURN_IF_ERROR(store_->DeleteExperiment(n, experiment));
  std::unique_lock lock(mu_);
  if (auto it = known_.find(n); it != known_.end()) {
    if (auto e = it->second.find(experiment); e != it->second.end()) it->second.erase(e);
  }
  return Status::Ok();
}

json GoalToJson(const GoalReport& goal, const StatsRequest* stats) {
  json results = json::array();
  for (const auto& r : goal.results) {
    results.push_back({{"label", r.label}, {"successes", r.successes}, {"trials", r.trials}});
  }
  json out = {{"goal", goal.goal}, {"results", std::move(results)}};
  if (stats) AddStats(goal, *stats, &out);
  return out;
}

json ExperimentToJson(const ExperimentReport& report, const StatsRequest* stats) {
  json goals = json::array();
  for (const auto& g : report.goals) goals.push_back(GoalToJson(g, stats));
  return {{"experiment", report.experiment}, {"goals", std::move(goals)}};
}

json ExperimentsToJson(const std::vector<ExperimentReport>& reports, const std::string* raw_scope,
                       const StatsRequest* stats) {
  json out = json::array();
  out.push_back({{"meta", {{"scope", raw_scope ? json(*raw_scope) : json(nullptr)}}}});
  for (const auto& r : reports) out.push_back(ExperimentToJson(r, stats));
  return out;
}

Result<MigrateStats> Migrate(store::Store& from, store::Store& to) {
  MigrateStats stats;
  GIMEL_ASSIGN_OR_RETURN(auto namespaces, from.ListNamespaces());
  for (const auto& ns : namespaces) {
    ++stats.namespaces;
    GIMEL_ASSIGN_OR_RETURN(auto experiments, from.ListExperiments(ns));
    for (size_t begin = 0; begin < experiments.size(); begin += kReadBatch) {
      const size_t end = std::min(experiments.size(), begin + kReadBatch);
      const std::vector<std::string> batch(experiments.begin() + begin, experiments.begin() + end);
      GIMEL_ASSIGN_OR_RETURN(auto counters, ReadBatch(from, ns, batch));
      for (size_t i = 0; i < batch.size(); ++i) {
        ++stats.experiments;
        for (const auto& c : counters[i]) {
          GIMEL_RETURN_IF_ERROR(to.MergeCounter(ns, batch[i], c.event, c.variant, c.hll));
          ++stats.counters;
        }
      }
    }
  }
  return stats;
}

}  // namespace gimel::service
