#include "service/service.h"

#include <algorithm>
#include <charconv>
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

namespace {

// A JSON string as nlohmann::json::dump writes it (ensure_ascii off): '"', '\\' and control
// characters escaped, the rest verbatim.
void AppendString(std::string_view s, std::string* out) {
  if (!IsValidUtf8(s)) {  // rare: let nlohmann replace what is not UTF-8
    *out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t plain = 0;  // start of the bytes not yet appended
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + plain, i - plain);
    plain = i + 1;
    out->push_back('\\');
    switch (c) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '\b':
        out->push_back('b');
        break;
      case '\f':
        out->push_back('f');
        break;
      case '\n':
        out->push_back('n');
        break;
      case '\r':
        out->push_back('r');
        break;
      case '\t':
        out->push_back('t');
        break;
      default:
        out->append("u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(s.data() + plain, s.size() - plain);
  out->push_back('"');
}

void AppendNumber(uint64_t n, std::string* out) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out->append(buf, end);
}

void AppendGoal(const GoalReport& goal, const StatsRequest* stats, std::string* out) {
  GoalStatsText text;
  if (stats) text = AnalyzeGoalText(goal, *stats);
  const bool with_stats = stats && text.error.empty();
  out->push_back('{');
  if (with_stats) {
    *out += "\"baseline\":";
    *out += text.baseline;
    out->push_back(',');
  }
  *out += "\"goal\":";
  AppendString(goal.goal, out);
  *out += ",\"results\":[";
  for (size_t i = 0; i < goal.results.size(); ++i) {
    const VariantResult& r = goal.results[i];
    if (i > 0) out->push_back(',');
    *out += "{\"label\":";
    AppendString(r.label, out);
    const bool analysed = with_stats && i < text.stats.size();
    if (analysed) {
      *out += ",\"stats\":";
      *out += text.stats[i];
    }
    *out += ",\"successes\":";
    AppendNumber(r.successes, out);
    *out += ",\"trials\":";
    AppendNumber(r.trials, out);
    if (analysed && !text.warnings[i].empty()) {
      *out += ",\"warnings\":";
      *out += text.warnings[i];
    }
    out->push_back('}');
  }
  out->push_back(']');
  if (with_stats) {
    *out += ",\"srm\":";
    *out += text.srm;
  } else if (stats) {
    *out += ",\"stats_error\":";
    *out += text.error;
  }
  out->push_back('}');
}

void AppendGoals(const ExperimentReport& report, const StatsRequest* stats, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < report.goals.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendGoal(report.goals[i], stats, out);
  }
  out->push_back(']');
}

}  // namespace

std::string GoalsJson(const ExperimentReport& report, const StatsRequest* stats) {
  std::string out;
  AppendGoals(report, stats, &out);
  return out;
}

std::string ExperimentsJson(const std::vector<ExperimentReport>& reports,
                            const std::string* raw_scope, const StatsRequest* stats) {
  std::string out;
  size_t results = 0;
  for (const auto& r : reports) {
    for (const auto& g : r.goals) results += g.results.size();
  }
  out.reserve(64 * results + 64 * reports.size() + 64);  // ~60 bytes per result, no stats
  out += "[{\"meta\":{\"scope\":";
  if (raw_scope) {
    AppendString(*raw_scope, &out);
  } else {
    out += "null";
  }
  out += "}}";
  for (const auto& r : reports) {
    out += ",{\"experiment\":";
    AppendString(r.experiment, &out);
    out += ",\"goals\":";
    AppendGoals(r, stats, &out);
    out.push_back('}');
  }
  out.push_back(']');
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
