#include "store/store.h"

#include <future>

#include "store/memory_store.h"
#ifdef GIMEL_HAVE_EMBEDDED
#include "store/embedded_store.h"
#endif
#ifdef GIMEL_HAVE_REDIS
#include "store/redis_store.h"
#endif

namespace gimel::store {

std::string_view KindName(StoreOptions::Kind kind) {
  switch (kind) {
    case StoreOptions::Kind::kEmbedded:
      return "embedded";
    case StoreOptions::Kind::kRedis:
      return "redis";
    case StoreOptions::Kind::kRedisCluster:
      return "redis-cluster";
    case StoreOptions::Kind::kMemory:
      return "memory";
  }
  return "unknown";
}

Result<StoreOptions::Kind> ParseKind(std::string_view name) {
  if (name == "embedded") return StoreOptions::Kind::kEmbedded;
  if (name == "redis") return StoreOptions::Kind::kRedis;
  if (name == "redis-cluster") return StoreOptions::Kind::kRedisCluster;
  if (name == "memory") return StoreOptions::Kind::kMemory;
  return Status::InvalidArgument("unknown store \"" + std::string(name) +
                                 "\" (expected embedded, redis or redis-cluster)");
}

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  switch (options.kind) {
    case StoreOptions::Kind::kMemory:
      return std::unique_ptr<Store>(std::make_unique<MemoryStore>());
    case StoreOptions::Kind::kEmbedded:
#ifdef GIMEL_HAVE_EMBEDDED
      return OpenEmbeddedStore(options);
#else
      break;
#endif
    case StoreOptions::Kind::kRedis:
#ifdef GIMEL_HAVE_REDIS
      return OpenRedisStore(options);
#else
      break;
#endif
    case StoreOptions::Kind::kRedisCluster:
#ifdef GIMEL_HAVE_REDIS
      return OpenRedisClusterStore(options);
#else
      break;
#endif
  }
  return Status::InvalidArgument("store \"" + std::string(KindName(options.kind)) +
                                 "\" is not built into this binary");
}

Status Store::AddSync(const TrackEvent& event) {
  std::promise<Status> done;
  auto future = done.get_future();
  Add(event, [&done](Status s) { done.set_value(std::move(s)); });
  return future.get();
}

}  // namespace gimel::store
