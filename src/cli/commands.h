// gimel's subcommands. Each returns the process exit code: 0 success, 1 failure (one clear
// line on stderr), 2 usage errors (CLI11).
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "store/store.h"

namespace gimel::cli {

// Flags shared by the subcommands that read the configuration.
struct CommonFlags {
  std::string config_path;
  std::string listen;
  std::string data_dir;
  std::string store;
};

// Loads the configuration and applies flags over it. Error: one-line message.
Result<Config> LoadWithFlags(const CommonFlags& flags);
// The store options described by the configuration.
Result<store::StoreOptions> StoreOptionsFrom(const Config& config);
// Parses a store spec for migrate: "embedded:DIR", "redis://[:password@]host:port[/db]",
// "redis-cluster://host:port,host:port", or a bare kind ("embedded", "redis",
// "redis-cluster") meaning "as configured".
Result<store::StoreOptions> ParseStoreSpec(const std::string& spec, const Config& config);

// The alephbet <script> snippet for this server's public URL and namespace.
std::string Snippet(const Config& config, const std::string& ns);

int Serve(const CommonFlags& flags);
int Configure(const CommonFlags& flags, const std::vector<std::string>& sets, bool no_edit);
int Preflight(const CommonFlags& flags);
int PrintSnippet(const CommonFlags& flags, const std::string& ns);
int Dashboard(const CommonFlags& flags, bool no_open);
int Analyze(const std::string& input_path);
int Migrate(const CommonFlags& flags, const std::string& from, const std::string& to);

}  // namespace gimel::cli
