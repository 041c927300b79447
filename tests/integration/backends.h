// The stores an integration test can run gimel on. One suite, parametrized over these
// (embedded RocksDB, a real redis-server, a real local Redis Cluster), never three copies.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gimel::testing {

class Backend {
 public:
  virtual ~Backend() = default;
  // The part of gimel's config that selects this store (e.g. {"store": "redis", ...}).
  virtual nlohmann::json StoreConfig() const = 0;
  // --data-dir for the embedded store; "" otherwise.
  virtual std::string data_dir() const { return ""; }
};

// Starts what the backend needs (a redis-server, a cluster) and returns it, or nullptr with
// *error set. kind: "embedded", "redis", "redis-cluster".
std::unique_ptr<Backend> MakeBackend(const std::string& kind, std::string* error);

// The kinds this build can test.
std::vector<std::string> BackendKinds();

}  // namespace gimel::testing
