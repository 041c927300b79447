#include "store/memory_store.h"

#include "hll/hll.h"

namespace gimel::store {

void MemoryStore::Add(const TrackEvent& event, AddCallback done) {
  {
    std::lock_guard lock(mu_);
    auto& hll = data_[std::string(event.ns)][std::string(event.experiment)]
                     [{std::string(event.event), std::string(event.variant)}];
    if (hll.empty()) hll = hll::Empty();
    hll::Add(&hll, event.uuid);
  }
  done(Status::Ok());
}

Result<std::vector<std::string>> MemoryStore::ListNamespaces() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [ns, experiments] : data_) {
    if (!experiments.empty()) out.push_back(ns);
  }
  return out;
}

Result<std::vector<std::string>> MemoryStore::ListExperiments(std::string_view ns) {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  auto it = data_.find(ns);
  if (it == data_.end()) return out;
  for (const auto& [name, counters] : it->second) out.push_back(name);
  return out;
}

Result<std::vector<Counter>> MemoryStore::ReadExperiment(std::string_view ns,
                                                         std::string_view experiment) {
  std::lock_guard lock(mu_);
  std::vector<Counter> out;
  auto it = data_.find(ns);
  if (it == data_.end()) return out;
  auto exp = it->second.find(experiment);
  if (exp == it->second.end()) return out;
  for (const auto& [key, hll] : exp->second) out.push_back({key.first, key.second, hll});
  return out;
}

Status MemoryStore::DeleteExperiment(std::string_view ns, std::string_view experiment) {
  std::lock_guard lock(mu_);
  auto it = data_.find(ns);
  if (it == data_.end()) return Status::Ok();
  auto exp = it->second.find(experiment);
  if (exp != it->second.end()) it->second.erase(exp);
  if (it->second.empty()) data_.erase(it);
  return Status::Ok();
}

Status MemoryStore::MergeCounter(std::string_view ns, std::string_view experiment,
                                 std::string_view event, std::string_view variant,
                                 std::string_view hll) {
  GIMEL_RETURN_IF_ERROR(hll::Validate(hll));
  std::lock_guard lock(mu_);
  auto& dst =
      data_[std::string(ns)][std::string(experiment)][{std::string(event), std::string(variant)}];
  return hll::Merge(&dst, hll);
}

}  // namespace gimel::store
