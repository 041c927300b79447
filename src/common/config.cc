#include "common/config.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gimel {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Reads json[key] into *out if present, checking its type. Names the key on error.
template <typename T>
Status Get(const json& obj, const char* key, const std::string& prefix, T* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  const std::string name = prefix + key;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string())
      return Status::InvalidArgument("config key '" + name + "' must be a string");
    *out = it->template get<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean())
      return Status::InvalidArgument("config key '" + name + "' must be true or false");
    *out = it->template get<bool>();
  } else {
    if (!it->is_number_integer() && !it->is_number_unsigned()) {
      return Status::InvalidArgument("config key '" + name + "' must be an integer");
    }
    if (it->is_number_integer() && it->template get<int64_t>() < 0) {
      return Status::InvalidArgument("config key '" + name + "' must not be negative");
    }
    *out = it->template get<T>();
  }
  return Status::Ok();
}

Status ParseInt(const char* var, const char* value, int* out) {
  char* end = nullptr;
  long v = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || v < 0 || v > 1'000'000'000) {
    return Status::InvalidArgument(std::string("environment variable ") + var +
                                   " must be a non-negative integer");
  }
  *out = static_cast<int>(v);
  return Status::Ok();
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

std::string Config::PublicUrl() const {
  if (!public_url.empty()) {
    std::string u = public_url;
    while (!u.empty() && u.back() == '/') u.pop_back();
    return u;
  }
  return "http://" + listen;
}

std::string ExpandHome(const std::string& path) {
  if (path.size() >= 1 && path[0] == '~' && (path.size() == 1 || path[1] == '/')) {
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + path.substr(1);
  }
  return path;
}

Status ApplyJson(const json& j, Config* c) {
  if (!j.is_object()) return Status::InvalidArgument("config must be a JSON object");
  GIMEL_RETURN_IF_ERROR(Get(j, "listen", "", &c->listen));
  GIMEL_RETURN_IF_ERROR(Get(j, "public_url", "", &c->public_url));
  GIMEL_RETURN_IF_ERROR(Get(j, "api_key", "", &c->api_key));
  GIMEL_RETURN_IF_ERROR(Get(j, "store", "", &c->store));
  GIMEL_RETURN_IF_ERROR(Get(j, "data_dir", "", &c->data_dir));
  GIMEL_RETURN_IF_ERROR(Get(j, "sync", "", &c->sync));
  GIMEL_RETURN_IF_ERROR(Get(j, "namespace", "", &c->default_namespace));
  GIMEL_RETURN_IF_ERROR(Get(j, "io_threads", "", &c->io_threads));
  GIMEL_RETURN_IF_ERROR(Get(j, "header_timeout_ms", "", &c->header_timeout_ms));
  GIMEL_RETURN_IF_ERROR(Get(j, "idle_timeout_ms", "", &c->idle_timeout_ms));
  GIMEL_RETURN_IF_ERROR(Get(j, "request_timeout_ms", "", &c->request_timeout_ms));
  GIMEL_RETURN_IF_ERROR(Get(j, "log_level", "", &c->log_level));
  GIMEL_RETURN_IF_ERROR(Get(j, "alephbet_src", "", &c->alephbet_src));
  if (auto it = j.find("redis"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument("config key 'redis' must be an object");
    RedisConfig& r = c->redis;
    GIMEL_RETURN_IF_ERROR(Get(*it, "host", "redis.", &r.host));
    GIMEL_RETURN_IF_ERROR(Get(*it, "port", "redis.", &r.port));
    GIMEL_RETURN_IF_ERROR(Get(*it, "unix_socket", "redis.", &r.unix_socket));
    GIMEL_RETURN_IF_ERROR(Get(*it, "username", "redis.", &r.username));
    GIMEL_RETURN_IF_ERROR(Get(*it, "password", "redis.", &r.password));
    GIMEL_RETURN_IF_ERROR(Get(*it, "db", "redis.", &r.db));
    GIMEL_RETURN_IF_ERROR(Get(*it, "connect_timeout_ms", "redis.", &r.connect_timeout_ms));
    GIMEL_RETURN_IF_ERROR(Get(*it, "command_timeout_ms", "redis.", &r.command_timeout_ms));
    GIMEL_RETURN_IF_ERROR(Get(*it, "connections", "redis.", &r.connections));
  }
  if (auto it = j.find("redis_cluster"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Status::InvalidArgument("config key 'redis_cluster' must be an object");
    }
    if (auto n = it->find("nodes"); n != it->end()) {
      if (!n->is_array()) {
        return Status::InvalidArgument("config key 'redis_cluster.nodes' must be an array");
      }
      c->redis_cluster_nodes.clear();
      for (const auto& node : *n) {
        if (!node.is_string()) {
          return Status::InvalidArgument(
              "config key 'redis_cluster.nodes' must hold \"host:port\" strings");
        }
        c->redis_cluster_nodes.push_back(node.get<std::string>());
      }
    }
  }
  if (auto it = j.find("routes"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument("config key 'routes' must be an object");
    for (const auto& [path, handler] : it->items()) {
      if (!handler.is_string()) {
        return Status::InvalidArgument("config key 'routes." + path + "' must be a string");
      }
      c->routes[path] = handler.get<std::string>();
    }
  }
  if (auto it = j.find("limits"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument("config key 'limits' must be an object");
    Limits& l = c->limits;
    GIMEL_RETURN_IF_ERROR(Get(*it, "max_name_bytes", "limits.", &l.max_name_bytes));
    GIMEL_RETURN_IF_ERROR(Get(*it, "max_url_bytes", "limits.", &l.max_url_bytes));
    GIMEL_RETURN_IF_ERROR(Get(*it, "max_header_bytes", "limits.", &l.max_header_bytes));
    GIMEL_RETURN_IF_ERROR(Get(*it, "max_body_bytes", "limits.", &l.max_body_bytes));
    GIMEL_RETURN_IF_ERROR(Get(*it, "max_batch_events", "limits.", &l.max_batch_events));
    GIMEL_RETURN_IF_ERROR(
        Get(*it, "max_experiments_per_namespace", "limits.", &l.max_experiments_per_namespace));
    GIMEL_RETURN_IF_ERROR(Get(*it, "max_connections", "limits.", &l.max_connections));
  }
  return Status::Ok();
}

Status ApplyEnvironment(Config* c) {
  auto str = [](const char* var, std::string* out) {
    if (const char* v = std::getenv(var)) *out = v;
  };
  str("GIMEL_LISTEN", &c->listen);
  str("GIMEL_PUBLIC_URL", &c->public_url);
  str("GIMEL_API_KEY", &c->api_key);
  str("GIMEL_STORE", &c->store);
  str("GIMEL_DATA_DIR", &c->data_dir);
  str("GIMEL_REDIS_HOST", &c->redis.host);
  str("GIMEL_REDIS_PASSWORD", &c->redis.password);
  if (const char* v = std::getenv("GIMEL_REDIS_PORT")) {
    GIMEL_RETURN_IF_ERROR(ParseInt("GIMEL_REDIS_PORT", v, &c->redis.port));
  }
  if (const char* v = std::getenv("GIMEL_REDIS_DB")) {
    GIMEL_RETURN_IF_ERROR(ParseInt("GIMEL_REDIS_DB", v, &c->redis.db));
  }
  if (const char* v = std::getenv("GIMEL_REDIS_CLUSTER_NODES")) {
    c->redis_cluster_nodes = SplitComma(v);
  }
  return Status::Ok();
}

std::string ResolveConfigPath(const std::string& explicit_path) {
  if (!explicit_path.empty()) return ExpandHome(explicit_path);
  std::error_code ec;
  if (fs::exists("config.json", ec)) return "config.json";
  return ExpandHome("~/.gimel/config.json");
}

Result<Config> LoadConfig(const std::string& explicit_path) {
  Config c;
  c.path = ResolveConfigPath(explicit_path);
  std::error_code ec;
  if (fs::exists(c.path, ec)) {
    std::ifstream in(c.path);
    if (!in) return Status::IOError("cannot read config file " + c.path);
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
      return Status::InvalidArgument("config file " + c.path + " is not valid JSON");
    Status s = ApplyJson(j, &c);
    if (!s.ok()) return Status::InvalidArgument(c.path + ": " + s.message());
    c.file_found = true;
  } else if (!explicit_path.empty()) {
    return Status::InvalidArgument("config file " + c.path + " does not exist");
  }
  GIMEL_RETURN_IF_ERROR(ApplyEnvironment(&c));
  if (c.data_dir.empty()) c.data_dir = ExpandHome("~/.gimel/data");
  c.data_dir = ExpandHome(c.data_dir);
  return c;
}

Status SplitHostPort(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 >= listen.size()) {
    return Status::InvalidArgument("listen address '" + listen + "' must be HOST:PORT");
  }
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) h = "0.0.0.0";
  const std::string p = listen.substr(colon + 1);
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (*end != '\0' || v < 0 || v > 65535) {
    return Status::InvalidArgument("listen address '" + listen + "' has an invalid port");
  }
  *host = h;
  *port = static_cast<uint16_t>(v);
  return Status::Ok();
}

Status Validate(const Config& c) {
  std::string host;
  uint16_t port;
  GIMEL_RETURN_IF_ERROR(SplitHostPort(c.listen, &host, &port));
  if (c.store != "embedded" && c.store != "redis" && c.store != "redis-cluster" &&
      c.store != "memory") {
    return Status::InvalidArgument("store '" + c.store +
                                   "' is unknown (expected embedded, redis or redis-cluster)");
  }
  if (c.store == "redis-cluster" && c.redis_cluster_nodes.empty()) {
    return Status::InvalidArgument(
        "store 'redis-cluster' needs redis_cluster.nodes (or GIMEL_REDIS_CLUSTER_NODES)");
  }
  if (c.redis.port <= 0 || c.redis.port > 65535) {
    return Status::InvalidArgument("redis.port must be between 1 and 65535");
  }
  static const char* kHandlers[] = {"track",   "experiments", "experiment", "delete",
                                    "healthz", "metrics",     "dashboard"};
  for (const auto& [path, handler] : c.routes) {
    if (path.empty() || path[0] != '/') {
      return Status::InvalidArgument("route '" + path + "' must start with '/'");
    }
    bool known = false;
    for (const char* h : kHandlers) known = known || handler == h;
    if (!known) {
      return Status::InvalidArgument(
          "route '" + path + "' names unknown handler '" + handler +
          "' (expected track, experiments, experiment, delete, healthz)");
    }
  }
  if (c.limits.max_name_bytes == 0 || c.limits.max_url_bytes < 64 || c.limits.max_body_bytes == 0 ||
      c.limits.max_batch_events == 0) {
    return Status::InvalidArgument("limits are too small to serve any request");
  }
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" &&
      c.log_level != "warn" && c.log_level != "error") {
    return Status::InvalidArgument("log_level must be trace, debug, info, warn or error");
  }
  return Status::Ok();
}

Status SetConfigValue(const std::string& path, const std::string& key, const std::string& value) {
  json j = json::object();
  std::error_code ec;
  if (fs::exists(path, ec)) {
    std::ifstream in(path);
    j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return Status::InvalidArgument("config file " + path + " is not a JSON object");
    }
  }
  json v = json::parse(value, nullptr, false);
  if (v.is_discarded()) v = value;
  // Walk the dotted path, creating objects.
  json* node = &j;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part =
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) return Status::InvalidArgument("invalid config key '" + key + "'");
    if (dot == std::string::npos) {
      (*node)[part] = v;
      break;
    }
    json& child = (*node)[part];
    if (child.is_null()) child = json::object();
    if (!child.is_object()) {
      return Status::InvalidArgument("config key '" + key.substr(0, dot) + "' is not an object");
    }
    node = &child;
    start = dot + 1;
  }
  // Check the result still parses as a config before writing it.
  Config probe;
  Status s = ApplyJson(j, &probe);
  if (!s.ok()) return s;

  fs::path p(path);
  if (p.has_parent_path()) {
    fs::create_directories(p.parent_path(), ec);
    if (ec) return Status::IOError("cannot create directory " + p.parent_path().string());
  }
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot write config file " + path);
  const std::string text = j.dump(2) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = (::fsync(fd) == 0) && ok;
  ::fchmod(fd, 0600);
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError("cannot write config file " + path);
  }
  return Status::Ok();
}

std::string ConfigTemplate() {
  return R"({
  "listen": "127.0.0.1:8080",
  "public_url": "",
  "api_key": "",
  "store": "embedded",
  "data_dir": "~/.gimel/data",
  "sync": true,
  "namespace": "alephbet",
  "redis": {"host": "127.0.0.1", "port": 6379, "password": "", "db": 0},
  "redis_cluster": {"nodes": []},
  "routes": {},
  "limits": {"max_name_bytes": 256, "max_url_bytes": 8192, "max_body_bytes": 1048576,
             "max_batch_events": 1000, "max_experiments_per_namespace": 10000}
}
)";
}

Result<std::string> GenerateApiKey() {
  unsigned char buf[32];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::getrandom(buf + got, sizeof buf - got, 0);
    if (n < 0) return Status::IOError("cannot read random bytes for the API key");
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key;
  for (unsigned char b : buf) {
    key.push_back(kHex[b >> 4]);
    key.push_back(kHex[b & 15]);
  }
  return key;
}

}  // namespace gimel
