// The short subcommands: configure, preflight, snippet, dashboard, analyze, migrate.
#include "cli/commands.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "service/service.h"
#include "stats/stats.h"
#include "stats/stats_json.h"

namespace gimel::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kAlephbetIntegrity =
    "sha384-4VEL32ya6Zl4KzeC363t/ySCI+riTrRthoaev9aFmg7i5aF8/44TAI0fCz7Vvzha";

int Fail(const std::string& message) {
  std::cerr << "gimel: " << message << "\n";
  return 1;
}

// Escapes a string for a single-quoted JavaScript literal inside an HTML <script>.
std::string JsString(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s) {
    switch (c) {
      case '\'':
        out += "\\'";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '<':
        out += "\\x3c";
        break;  // never close the <script> element
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "'";
}

// Whether HOST:PORT can be bound right now (port 0 always can).
Status CheckListenFree(const std::string& listen) {
  std::string host;
  uint16_t port;
  GIMEL_RETURN_IF_ERROR(SplitHostPort(listen, &host, &port));
  if (port == 0) return Status::Ok();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &addr.sin_addr) != 1) {
    return Status::Ok();  // not IPv4 (e.g. IPv6 or a name): the server reports it on start
  }
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::IOError("cannot create a socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    return Status::IOError("listen address " + listen + " is not free: " + std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace

Result<Config> LoadWithFlags(const CommonFlags& flags) {
  GIMEL_ASSIGN_OR_RETURN(Config config, LoadConfig(flags.config_path));
  if (!flags.listen.empty()) config.listen = flags.listen;
  if (!flags.data_dir.empty()) config.data_dir = ExpandHome(flags.data_dir);
  if (!flags.store.empty()) config.store = flags.store;
  GIMEL_RETURN_IF_ERROR(Validate(config));
  return config;
}

Result<store::StoreOptions> StoreOptionsFrom(const Config& config) {
  store::StoreOptions o;
  GIMEL_ASSIGN_OR_RETURN(o.kind, store::ParseKind(config.store));
  o.data_dir = config.data_dir;
  o.sync = config.sync;
  const RedisConfig& r = config.redis;
  o.redis.host = r.host;
  o.redis.port = r.port;
  o.redis.unix_socket = r.unix_socket;
  o.redis.username = r.username;
  o.redis.password = r.password;
  o.redis.db = r.db;
  o.redis.connect_timeout_ms = r.connect_timeout_ms;
  o.redis.command_timeout_ms = r.command_timeout_ms;
  o.redis.connections = r.connections;
  o.cluster_nodes = config.redis_cluster_nodes;
  return o;
}

Result<store::StoreOptions> ParseStoreSpec(const std::string& spec, const Config& config) {
  Config c = config;
  if (spec == "embedded" || spec == "redis" || spec == "redis-cluster") {
    c.store = spec;
    return StoreOptionsFrom(c);
  }
  if (spec.starts_with("embedded:")) {
    c.store = "embedded";
    c.data_dir = ExpandHome(spec.substr(9));
    if (c.data_dir.empty()) return Status::InvalidArgument("embedded:DIR needs a directory");
    return StoreOptionsFrom(c);
  }
  if (spec.starts_with("redis-cluster://")) {
    c.store = "redis-cluster";
    c.redis_cluster_nodes.clear();
    std::stringstream ss(spec.substr(16));
    std::string node;
    while (std::getline(ss, node, ',')) {
      if (!node.empty()) c.redis_cluster_nodes.push_back(node);
    }
    if (c.redis_cluster_nodes.empty()) {
      return Status::InvalidArgument("redis-cluster:// needs at least one HOST:PORT");
    }
    return StoreOptionsFrom(c);
  }
  if (spec.starts_with("redis://")) {
    c.store = "redis";
    std::string rest = spec.substr(8);
    if (size_t at = rest.rfind('@'); at != std::string::npos) {
      std::string userinfo = rest.substr(0, at);
      rest = rest.substr(at + 1);
      size_t colon = userinfo.find(':');
      c.redis.username = colon == std::string::npos ? "" : userinfo.substr(0, colon);
      c.redis.password = colon == std::string::npos ? userinfo : userinfo.substr(colon + 1);
    }
    if (size_t slash = rest.find('/'); slash != std::string::npos) {
      std::string db = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
      if (!db.empty()) {
        char* end = nullptr;
        long v = std::strtol(db.c_str(), &end, 10);
        if (*end != '\0' || v < 0) return Status::InvalidArgument("invalid redis db in " + spec);
        c.redis.db = static_cast<int>(v);
      }
    }
    std::string host;
    uint16_t port;
    if (rest.find(':') == std::string::npos) rest += ":6379";
    GIMEL_RETURN_IF_ERROR(SplitHostPort(rest, &host, &port));
    c.redis.host = host;
    c.redis.port = port;
    return StoreOptionsFrom(c);
  }
  return Status::InvalidArgument("unknown store '" + spec +
                                 "' (expected embedded:DIR, redis://HOST:PORT[/DB], "
                                 "redis-cluster://HOST:PORT,... or embedded|redis|redis-cluster)");
}

std::string Snippet(const Config& config, const std::string& ns) {
  const std::string track_url = config.PublicUrl() + "/track";
  std::ostringstream s;
  s << "<script src=\"" << config.alephbet_src << "\"";
  if (config.alephbet_src == Config().alephbet_src) {
    // Subresource integrity of alephbet 0.27.0's dist/alephbet.min.js as published on npm.
    s << " integrity=\"" << kAlephbetIntegrity << "\" crossorigin=\"anonymous\"";
  }
  s << "></script>\n"
    << "<script>\n"
    << "  // AlephbetAdapter re-sends events queued while gimel was unreachable, even after a\n"
    << "  // page reload (alephbet 0.27.0's GimelAdapter does not); both send the same requests.\n"
    << "  var adapter = new AlephBet.AlephbetAdapter(" << JsString(track_url) << ", "
    << JsString(ns) << ");\n"
    << "  var experiment = new AlephBet.Experiment({\n"
    << "    name: 'button color',\n"
    << "    tracking_adapter: adapter,\n"
    << "    variants: {\n"
    << "      red: { activate: function () { /* show the red button */ } },\n"
    << "      blue: { activate: function () { /* show the blue button */ } }\n"
    << "    }\n"
    << "  });\n"
    << "  var clicked = new AlephBet.Goal('button clicked');\n"
    << "  experiment.add_goal(clicked);\n"
    << "  // call clicked.complete() when the visitor clicks, e.g.:\n"
    << "  // document.querySelector('#buy').addEventListener('click', function () { "
       "clicked.complete(); });\n"
    << "</script>\n";
  return s.str();
}

int Configure(const CommonFlags& flags, const std::vector<std::string>& sets, bool no_edit) {
  const std::string path = ResolveConfigPath(flags.config_path);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    // Write the template through SetConfigValue's atomic 0600 writer, key by key.
    auto tmpl = nlohmann::json::parse(ConfigTemplate());
    for (const auto& [key, value] : tmpl.items()) {
      Status s = SetConfigValue(path, key, value.dump());
      if (!s.ok()) return Fail(s.message());
    }
    std::cout << "Created " << path << " (mode 0600)\n";
  }
  for (const auto& kv : sets) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail("--set expects KEY=VALUE, got '" + kv + "'");
    }
    Status s = SetConfigValue(path, kv.substr(0, eq), kv.substr(eq + 1));
    if (!s.ok()) return Fail(s.message());
    std::cout << "Set " << kv.substr(0, eq) << " in " << path << "\n";
  }
  if (!sets.empty() || no_edit) return 0;
  const char* editor = std::getenv("EDITOR");
  if (!editor || !*editor || !::isatty(STDIN_FILENO)) {
    std::cout << "Edit " << path << " to configure gimel (set $EDITOR to open it directly).\n";
    return 0;
  }
  const std::string cmd = std::string(editor) + " '" + path + "'";
  int rc = std::system(cmd.c_str());
  if (rc != 0) return Fail("the editor exited with an error");
  auto config = LoadConfig(path);
  if (!config.ok()) return Fail(config.status().message());
  if (Status s = Validate(*config); !s.ok()) return Fail(s.message());
  return 0;
}

int Preflight(const CommonFlags& flags) {
  int problems = 0;
  auto problem = [&problems](const std::string& line) {
    std::cerr << "FAIL " << line << "\n";
    ++problems;
  };
  auto config = LoadWithFlags(flags);
  if (!config.ok()) {
    problem("config: " + config.status().message());
    return 1;
  }
  std::cout << "ok   config: " << (config->file_found ? config->path : "(defaults, no file)")
            << "\n";
  if (config->api_key.empty()) {
    std::cout << "note api_key: not set; `gimel serve` will generate one and save it to "
              << config->path << "\n";
  } else if (config->api_key.size() < 16) {
    problem("api_key: shorter than 16 characters; use a long random key");
  } else {
    std::cout << "ok   api_key: set\n";
  }
  auto options = StoreOptionsFrom(*config);
  if (!options.ok()) {
    problem("store: " + options.status().message());
  } else {
    auto store = store::Store::Open(*options);
    if (!store.ok()) {
      problem("store " + config->store + ": " + store.status().message());
    } else if (Status h = (*store)->Health(); !h.ok()) {
      problem("store " + config->store + ": " + h.message());
    } else {
      std::cout << "ok   store: " << config->store << " is usable\n";
    }
  }
  if (Status s = CheckListenFree(config->listen); !s.ok()) {
    problem("listen: " + s.message());
  } else {
    std::cout << "ok   listen: " << config->listen << " is free\n";
  }
  return problems == 0 ? 0 : 1;
}

int PrintSnippet(const CommonFlags& flags, const std::string& ns) {
  auto config = LoadWithFlags(flags);
  if (!config.ok()) return Fail(config.status().message());
  std::cout << Snippet(*config, ns.empty() ? config->default_namespace : ns);
  return 0;
}

int Dashboard(const CommonFlags& flags, bool no_open) {
  auto config = LoadWithFlags(flags);
  if (!config.ok()) return Fail(config.status().message());
  const std::string url = config->PublicUrl() + "/dashboard";
  std::cout << url << "\n";
  const char* display = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  if (!no_open && ((display && *display) || (wayland && *wayland)) &&
      std::system("command -v xdg-open >/dev/null 2>&1") == 0) {
    const std::string cmd = "xdg-open '" + url + "' >/dev/null 2>&1 &";
    if (std::system(cmd.c_str()) != 0) return Fail("xdg-open failed; open " + url + " yourself");
  }
  return 0;
}

int Analyze(const std::string& input_path) {
  std::string text;
  if (input_path.empty() || input_path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(input_path);
    if (!in) return Fail("cannot read " + input_path);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) return Fail("input is not valid JSON");
  auto input = stats::ParseAnalyzeInput(json);
  if (!input.ok()) return Fail(input.status().message());
  const stats::GoalStats result = stats::AnalyzeGoal(input->variants, input->options);
  if (!result.error.empty()) return Fail(result.error);
  const std::string goal = json.is_object() && json.contains("goal") && json["goal"].is_string()
                               ? json["goal"].get<std::string>()
                               : "goal";
  std::cout << stats::GoalStatsToJson(result, goal).dump(2) << "\n";
  return 0;
}

int Migrate(const CommonFlags& flags, const std::string& from, const std::string& to) {
  auto config = LoadWithFlags(flags);
  if (!config.ok()) return Fail(config.status().message());
  auto from_options = ParseStoreSpec(from, *config);
  if (!from_options.ok()) return Fail("--from: " + from_options.status().message());
  auto to_options = ParseStoreSpec(to, *config);
  if (!to_options.ok()) return Fail("--to: " + to_options.status().message());
  if (from_options->kind == to_options->kind &&
      from_options->kind == store::StoreOptions::Kind::kEmbedded &&
      fs::weakly_canonical(from_options->data_dir) == fs::weakly_canonical(to_options->data_dir)) {
    return Fail("--from and --to are the same store");
  }
  auto source = store::Store::Open(*from_options);
  if (!source.ok()) return Fail("--from: " + source.status().message());
  auto dest = store::Store::Open(*to_options);
  if (!dest.ok()) return Fail("--to: " + dest.status().message());
  auto stats = service::Migrate(**source, **dest);
  if (!stats.ok()) return Fail("migrate: " + stats.status().message());
  std::cout << "migrated " << stats->namespaces << " namespaces, " << stats->experiments
            << " experiments, " << stats->counters << " counters\n";
  return 0;
}

}  // namespace gimel::cli
