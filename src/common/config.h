// gimel's configuration: a JSON file, overridden by GIMEL_* environment variables,
// overridden by command-line flags (DESIGN.md §5). Every field has a safe default.
//
// Lookup: --config PATH, else ./config.json, else ~/.gimel/config.json (as the original
// Gimel). Unknown keys are ignored, so the original's config file ({"redis": {...},
// "lambda": {...}}) still parses.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace gimel {

struct RedisConfig {
  std::string host = "127.0.0.1";  // Default: 127.0.0.1
  int port = 6379;                 // Default: 6379
  std::string unix_socket;         // Default: "" (TCP)
  std::string username;            // Default: "" (password-only AUTH)
  std::string password;            // Default: "" (no AUTH)
  int db = 0;                      // Default: 0
  int connect_timeout_ms = 1000;   // Default: 1000
  int command_timeout_ms = 2000;   // Default: 2000
  int connections = 2;             // Default: 2
};

struct Limits {
  size_t max_name_bytes = 256;                   // Default: 256 bytes per name (each parameter)
  size_t max_url_bytes = 8192;                   // Default: 8 KiB request target
  size_t max_header_bytes = 16384;               // Default: 16 KiB of headers
  size_t max_body_bytes = 1 << 20;               // Default: 1 MiB body (POST /track batches)
  size_t max_batch_events = 1000;                // Default: 1000 events per POST /track
  size_t max_experiments_per_namespace = 10000;  // Default: 10000
  size_t max_connections = 10000;                // Default: 10000
};

struct Config {
  std::string listen = "127.0.0.1:8080";  // Default: 127.0.0.1:8080
  std::string public_url;                 // Default: "http://" + listen
  std::string api_key;                    // Default: generated and saved on first serve
  std::string store = "embedded";         // embedded | redis | redis-cluster
  std::string data_dir;                   // Default: ~/.gimel/data
  bool sync = true;                       // Default: true (fsync the WAL before acknowledging)
  std::string default_namespace = "alephbet";
  int io_threads = 0;              // Default: 0 = one per core
  int header_timeout_ms = 10000;   // Default: 10 s to send the request header
  int idle_timeout_ms = 60000;     // Default: 60 s keep-alive idle
  int request_timeout_ms = 30000;  // Default: 30 s per request
  std::string log_level = "info";  // trace|debug|info|warn|error
  // Where `gimel snippet` loads alephbet from. Default: the public jsDelivr build of 0.27.0.
  std::string alephbet_src = "https://cdn.jsdelivr.net/npm/alephbet@0.27.0/dist/alephbet.min.js";
  RedisConfig redis;
  std::vector<std::string> redis_cluster_nodes;
  std::map<std::string, std::string> routes;  // extra path -> handler name
  Limits limits;

  // Where the configuration was read from ("" if no file was found) and where `serve`
  // saves a generated API key.
  std::string path;
  bool file_found = false;

  // public_url, or "http://" + listen.
  std::string PublicUrl() const;
};

// Parses a config JSON object over `config` (missing keys keep their values).
// Error: kInvalidArgument naming the key with the wrong type or value.
Status ApplyJson(const nlohmann::json& json, Config* config);

// Applies GIMEL_* environment variables. Error: kInvalidArgument naming the variable.
Status ApplyEnvironment(Config* config);

// The config file to use: `explicit_path` if non-empty, else ./config.json if it exists,
// else ~/.gimel/config.json.
std::string ResolveConfigPath(const std::string& explicit_path);

// Loads defaults ← file (if it exists; an explicit path that does not exist is an error)
// ← environment. Errors: kInvalidArgument (bad JSON or values), kIOError (unreadable file).
Result<Config> LoadConfig(const std::string& explicit_path);

// Validates cross-field constraints (listen parses, store known, routes name handlers...).
Status Validate(const Config& config);

// Sets a dotted key ("redis.port", "api_key") to `value` in the JSON file at `path`,
// creating it (and its directory) if needed, writing atomically with mode 0600. `value` is
// parsed as JSON if it parses (numbers, true, arrays), else stored as a string.
Status SetConfigValue(const std::string& path, const std::string& key, const std::string& value);

// The documented template written by `gimel configure`.
std::string ConfigTemplate();

// Splits "host:port" ("[::1]:80" too). Error: kInvalidArgument.
Status SplitHostPort(const std::string& listen, std::string* host, uint16_t* port);

// A new random API key: 32 bytes from the OS CSPRNG, hex-encoded.
Result<std::string> GenerateApiKey();

// "~/x" expanded with $HOME.
std::string ExpandHome(const std::string& path);

}  // namespace gimel
