// MemoryStore: an in-process Store for tests (leveldb's memenv). Not durable.
//
// Thread-safety: all methods are safe to call concurrently (one mutex).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "store/store.h"

namespace gimel::store {

class MemoryStore final : public Store {
 public:
  void Add(const TrackEvent& event, AddCallback done) override;
  Result<std::vector<std::string>> ListNamespaces() override;
  Result<std::vector<std::string>> ListExperiments(std::string_view ns) override;
  Result<std::vector<Counter>> ReadExperiment(std::string_view ns,
                                              std::string_view experiment) override;
  Status DeleteExperiment(std::string_view ns, std::string_view experiment) override;
  Status MergeCounter(std::string_view ns, std::string_view experiment, std::string_view event,
                      std::string_view variant, std::string_view hll) override;
  Status Health() override { return Status::Ok(); }
  std::string_view name() const override { return "memory"; }

 private:
  // (event, variant) -> HLL bytes
  using Counters = std::map<std::pair<std::string, std::string>, std::string>;
  // ns -> experiment -> counters
  std::mutex mu_;
  std::map<std::string, std::map<std::string, Counters, std::less<>>, std::less<>> data_;
};

}  // namespace gimel::store
