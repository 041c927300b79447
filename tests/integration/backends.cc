#include "tests/integration/backends.h"

#include <filesystem>

#include "tests/support/gimel_process.h"
#ifdef GIMEL_HAVE_REDIS_SUPPORT
#include "tests/support/redis_server.h"
#endif

namespace gimel::testing {
namespace {

class EmbeddedBackend : public Backend {
 public:
  EmbeddedBackend() : dir_(MakeTempDir("gimel_data_")) {}
  ~EmbeddedBackend() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  nlohmann::json StoreConfig() const override { return {{"store", "embedded"}}; }
  std::string data_dir() const override { return dir_; }

 private:
  std::string dir_;
};

#ifdef GIMEL_HAVE_REDIS_SUPPORT
class RedisBackend : public Backend {
 public:
  bool Start(std::string* error) {
    auto r = server_.Start();
    if (!r) *error = r.message();
    return static_cast<bool>(r);
  }
  nlohmann::json StoreConfig() const override {
    return {{"store", "redis"}, {"redis", {{"host", "127.0.0.1"}, {"port", server_.port()}}}};
  }

 private:
  RedisServer server_;
};

class ClusterBackend : public Backend {
 public:
  ClusterBackend() : cluster_(3) {}
  bool Start(std::string* error) {
    auto r = cluster_.Start();
    if (!r) *error = r.message();
    return static_cast<bool>(r);
  }
  nlohmann::json StoreConfig() const override {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& a : cluster_.addresses()) nodes.push_back(a);
    return {{"store", "redis-cluster"}, {"redis_cluster", {{"nodes", nodes}}}};
  }

 private:
  RedisCluster cluster_;
};

template <typename T>
std::unique_ptr<Backend> Started(std::string* error) {
  auto b = std::make_unique<T>();
  if (!b->Start(error)) return nullptr;
  return b;
}
#endif

}  // namespace

std::unique_ptr<Backend> MakeBackend(const std::string& kind, std::string* error) {
  if (kind == "embedded") return std::make_unique<EmbeddedBackend>();
#ifdef GIMEL_HAVE_REDIS_SUPPORT
  if (kind == "redis") return Started<RedisBackend>(error);
  if (kind == "redis-cluster") return Started<ClusterBackend>(error);
#endif
  *error = "backend " + kind + " is not available in this build";
  return nullptr;
}

std::vector<std::string> BackendKinds() {
#ifdef GIMEL_HAVE_REDIS_SUPPORT
  return {"embedded", "redis", "redis-cluster"};
#else
  return {"embedded"};
#endif
}

}  // namespace gimel::testing
