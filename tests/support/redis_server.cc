#include "support/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

extern char** environ;

namespace gimel::testing {

namespace {

using Clock = std::chrono::steady_clock;

RedisReply Convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r.elements; ++i) out.elements.push_back(Convert(*r.element[i]));
      break;
    default:
      break;
  }
  return out;
}

// Spawns argv with stdin/stdout/stderr on /dev/null (or on `log` for stdout/stderr).
pid_t Spawn(const std::vector<std::string>& args, const std::string& log = "") {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  const char* out = log.empty() ? "/dev/null" : log.c_str();
  posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

bool Exited(pid_t pid, int* status) { return waitpid(pid, status, WNOHANG) == pid; }

std::string MakeTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "gimel-redis-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

}  // namespace

// ---- RedisReply / RedisClient ---------------------------------------------------------------

std::vector<std::string> RedisReply::SortedStrings() const {
  std::vector<std::string> out;
  for (const RedisReply& e : elements) out.push_back(e.str);
  std::sort(out.begin(), out.end());
  return out;
}

RedisClient::~RedisClient() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

RedisClient::RedisClient(RedisClient&& other) noexcept : ctx_(other.ctx_) { other.ctx_ = nullptr; }

RedisClient& RedisClient::operator=(RedisClient&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = other.ctx_;
    other.ctx_ = nullptr;
  }
  return *this;
}

::testing::AssertionResult RedisClient::Connect(int port, std::string_view password) {
  if (ctx_ != nullptr) redisFree(ctx_);
  timeval tv{2, 0};
  ctx_ = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (ctx_ == nullptr || ctx_->err != 0) {
    std::string why = ctx_ != nullptr ? ctx_->errstr : "out of memory";
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = nullptr;
    return ::testing::AssertionFailure() << "connect to port " << port << ": " << why;
  }
  timeval cmd_tv{10, 0};
  redisSetTimeout(ctx_, cmd_tv);
  if (!password.empty()) {
    RedisReply r = Command({"AUTH", password});
    if (r.is_error()) return ::testing::AssertionFailure() << "AUTH: " << r.str;
  }
  return ::testing::AssertionSuccess();
}

RedisReply RedisClient::Command(const std::vector<std::string>& args) {
  RedisReply out;
  out.type = RedisReply::Type::kError;
  if (ctx_ == nullptr) {
    out.str = "IO: not connected";
    return out;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (r == nullptr) {
    out.str = std::string("IO: ") + ctx_->errstr;
    redisFree(ctx_);
    ctx_ = nullptr;
    return out;
  }
  out = Convert(*r);
  freeReplyObject(r);
  return out;
}

RedisReply RedisClient::Command(std::initializer_list<std::string_view> argv) {
  std::vector<std::string> args(argv.begin(), argv.end());
  return Command(args);
}

// ---- RedisServer ----------------------------------------------------------------------------

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {}

RedisServer::~RedisServer() {
  Kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string RedisServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

::testing::AssertionResult RedisServer::Start() {
  if (running()) return ::testing::AssertionFailure() << "already running";
  if (dir_.empty()) {
    dir_ = MakeTempDir();
    if (dir_.empty()) return ::testing::AssertionFailure() << "mkdtemp failed";
  }
  const bool fixed_port = port_ != 0;
  std::string last_error;
  for (int attempt = 0; attempt < (fixed_port ? 1 : 5); ++attempt) {
    if (!fixed_port) {
      port_ = FreeLoopbackPort();
      if (options_.cluster) {
        do {
          cluster_port_ = FreeLoopbackPort();
        } while (cluster_port_ == port_);
      }
    }
    std::vector<std::string> args = {
        "redis-server", "--port",    std::to_string(port_), "--bind",      "127.0.0.1",
        "--save",       "",          "--appendonly",        "no",          "--dir",
        dir_,           "--logfile", dir_ + "/redis.log",   "--daemonize", "no"};
    if (!options_.password.empty()) {
      args.insert(args.end(), {"--requirepass", options_.password});
      if (options_.cluster) args.insert(args.end(), {"--masterauth", options_.password});
    }
    if (options_.cluster) {
      args.insert(args.end(),
                  {"--cluster-enabled", "yes", "--cluster-port", std::to_string(cluster_port_),
                   "--cluster-config-file", dir_ + "/nodes-" + std::to_string(port_) + ".conf",
                   "--cluster-node-timeout", std::to_string(options_.cluster_node_timeout_ms)});
    }
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    pid_ = Spawn(args);
    if (pid_ <= 0) return ::testing::AssertionFailure() << "cannot spawn redis-server";

    const auto deadline = Clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (Clock::now() < deadline) {
      if (Exited(pid_, &status)) {
        pid_ = -1;
        last_error = "redis-server exited at start (port " + std::to_string(port_) + "), see " +
                     dir_ + "/redis.log";
        break;
      }
      RedisClient c;
      if (c.Connect(port_, options_.password)) {
        RedisReply r = c.Command({"PING"});
        if (r.type == RedisReply::Type::kStatus && r.str == "PONG") {
          return ::testing::AssertionSuccess();
        }
        last_error = "PING: " + r.str;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ > 0) {
      Kill();
      return ::testing::AssertionFailure()
             << "redis-server did not answer PING in 10 s: " << last_error;
    }
  }
  return ::testing::AssertionFailure() << last_error;
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGCONT);  // in case it was paused
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::Pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void RedisServer::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

RedisClient RedisServer::Client() const {
  RedisClient c;
  EXPECT_TRUE(c.Connect(port_, options_.password));
  return c;
}

// ---- RedisCluster ---------------------------------------------------------------------------

RedisCluster::RedisCluster(int masters, std::string password, int replicas_per_master)
    : masters_(std::max(3, masters)),
      password_(std::move(password)),
      replicas_per_master_(std::max(0, replicas_per_master)) {}

RedisCluster::~RedisCluster() {
  for (auto& n : nodes_) n->Kill();
}

std::vector<std::string> RedisCluster::addresses() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n->address());
  return out;
}

::testing::AssertionResult RedisCluster::Start() {
  const int total = masters_ * (1 + replicas_per_master_);
  for (int i = 0; i < total; ++i) {
    RedisServerOptions o;
    o.password = password_;
    o.cluster = true;
    if (replicas_per_master_ > 0) {
      // Fast failover: a master unreachable for 1 s is failed, and its replica may take over
      // however long it has been disconnected. A replica's first sync starts at once.
      o.cluster_node_timeout_ms = 1000;
      o.extra_args = {"--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0"};
    }
    nodes_.push_back(std::make_unique<RedisServer>(o));
    auto started = nodes_.back()->Start();
    if (!started) return started;
  }
  std::vector<std::string> args = {"redis-cli", "--cluster", "create"};
  for (const std::string& a : addresses()) args.push_back(a);
  args.insert(args.end(),
              {"--cluster-replicas", std::to_string(replicas_per_master_), "--cluster-yes"});
  if (!password_.empty()) args.insert(args.end(), {"-a", password_, "--no-auth-warning"});
  const std::string log = nodes_[0]->dir() + "/cluster-create.log";
  pid_t pid = Spawn(args, log);
  if (pid <= 0) return ::testing::AssertionFailure() << "cannot spawn redis-cli";
  int status = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!Exited(pid, &status)) {
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return ::testing::AssertionFailure() << "redis-cli --cluster create hung, see " << log;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return ::testing::AssertionFailure() << "redis-cli --cluster create failed, see " << log;
  }
  auto ok = WaitUntilOk(std::chrono::seconds(20));
  if (!ok) return ok;
  return WaitForReplicaLinks(Clock::now() + std::chrono::seconds(20));
}

std::string RedisCluster::SlotMapIfOk(int i, std::string* why) {
  RedisClient c;
  if (!c.Connect(nodes_[i]->port(), password_)) {
    *why = "cannot connect to " + nodes_[i]->address();
    return "";
  }
  RedisReply info = c.Command({"CLUSTER", "INFO"});
  if (info.str.find("cluster_state:ok") == std::string::npos) {
    *why = "cluster not ok on " + nodes_[i]->address() + ": " + info.str;
    return "";
  }
  RedisReply slots = c.Command({"CLUSTER", "SLOTS"});
  std::vector<std::pair<long long, std::string>> ranges;
  int covered = 0;
  for (const RedisReply& range : slots.elements) {
    if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
    const long long first = range.elements[0].integer;
    const long long last = range.elements[1].integer;
    const long long port = range.elements[2].elements[1].integer;
    const bool live = std::any_of(nodes_.begin(), nodes_.end(), [port](const auto& n) {
      return n->running() && n->port() == port;
    });
    if (!live) {
      *why = nodes_[i]->address() + " sees slots " + std::to_string(first) + "-" +
             std::to_string(last) + " on port " + std::to_string(port) + ", not running";
      return "";
    }
    covered += static_cast<int>(last - first + 1);
    ranges.emplace_back(first, std::to_string(first) + "-" + std::to_string(last) + ":" +
                                   std::to_string(port) + ",");
  }
  if (covered != 16384) {
    *why = nodes_[i]->address() + " sees " + std::to_string(covered) + " slots served";
    return "";
  }
  std::sort(ranges.begin(), ranges.end());
  std::string map;
  for (const auto& r : ranges) map += r.second;
  return map;
}

::testing::AssertionResult RedisCluster::WaitUntilOk(std::chrono::milliseconds timeout) {
  return WaitUntilMaster(-1, timeout);
}

::testing::AssertionResult RedisCluster::WaitUntilMaster(int i, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string why;
  for (;;) {
    bool ok = i < 0 || IsMaster(i);
    if (!ok) why = nodes_[i]->address() + " is not a master yet";
    std::string agreed;
    for (int n = 0; ok && n < size(); ++n) {
      if (!nodes_[n]->running()) continue;
      std::string map = SlotMapIfOk(n, &why);
      if (map.empty()) {
        ok = false;
      } else if (agreed.empty()) {
        agreed = std::move(map);
      } else if (map != agreed) {
        why = "nodes disagree on the slot map: " + agreed + " vs " + map;
        ok = false;
      }
    }
    if (ok && i >= 0 &&
        agreed.find(":" + std::to_string(nodes_[i]->port()) + ",") == std::string::npos) {
      why = nodes_[i]->address() + " serves no slot yet: " + agreed;
      ok = false;
    }
    if (ok) return ::testing::AssertionSuccess();
    if (Clock::now() > deadline) {
      return ::testing::AssertionFailure()
             << "cluster not ok after " << timeout.count() << " ms: " << why;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

::testing::AssertionResult RedisCluster::WaitForReplicaLinks(Clock::time_point deadline) {
  for (int i = 0; i < size(); ++i) {
    if (!nodes_[i]->running()) continue;
    RedisClient c = nodes_[i]->Client();
    for (;;) {
      RedisReply role = c.Command({"ROLE"});
      if (!role.elements.empty() && role.elements[0].str == "master") break;
      const std::string info = c.Command({"INFO", "replication"}).str;
      if (info.find("master_link_status:up") != std::string::npos) break;
      if (Clock::now() > deadline) {
        return ::testing::AssertionFailure()
               << "replica " << nodes_[i]->address() << " not in sync: " << info;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return ::testing::AssertionSuccess();
}

int RedisCluster::NodeForSlot(int slot, int viewer) {
  auto asked = viewer >= 0 ? nodes_.begin() + viewer
                           : std::find_if(nodes_.begin(), nodes_.end(),
                                          [](const auto& n) { return n->running(); });
  if (asked == nodes_.end() || !(*asked)->running()) return -1;
  RedisClient c;
  if (!c.Connect((*asked)->port(), password_)) return -1;
  RedisReply r = c.Command({"CLUSTER", "SLOTS"});
  for (const RedisReply& range : r.elements) {
    if (range.elements.size() < 3) continue;
    if (slot < range.elements[0].integer || slot > range.elements[1].integer) continue;
    const long long port =
        range.elements[2].elements.size() >= 2 ? range.elements[2].elements[1].integer : -1;
    for (int i = 0; i < size(); ++i) {
      if (nodes_[i]->port() == port) return i;
    }
  }
  return -1;
}

::testing::AssertionResult RedisCluster::UnassignSlot(int slot, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string slot_arg = std::to_string(slot);
  Clock::time_point unowned_since{};
  std::string last;
  for (int i = 0; i < size(); ++i) {
    RedisClient c;
    if (nodes_[i]->running() && c.Connect(nodes_[i]->port(), password_)) {
      c.Command({"CONFIG", "SET", "cluster-require-full-coverage", "no"});
    }
  }
  while (Clock::now() < deadline) {
    bool unowned = true;
    for (int i = 0; i < size(); ++i) {
      if (!nodes_[i]->running() || NodeForSlot(slot, i) < 0) continue;
      unowned = false;
      RedisClient c;
      if (!c.Connect(nodes_[i]->port(), password_)) continue;
      last = c.Command({"CLUSTER", "DELSLOTS", slot_arg}).str;
    }
    const auto now = Clock::now();
    if (!unowned) {
      unowned_since = {};
    } else if (unowned_since == Clock::time_point{}) {
      unowned_since = now;
    } else if (now - unowned_since >= std::chrono::milliseconds(500)) {
      return ::testing::AssertionSuccess();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ::testing::AssertionFailure() << "slot " << slot << " still has an owner in some node's "
                                       << "view (last DELSLOTS reply: " << last << ")";
}

std::string RedisCluster::NodeId(int i) {
  RedisClient c = nodes_[i]->Client();
  return c.Command({"CLUSTER", "MYID"}).str;
}

bool RedisCluster::IsMaster(int i) {
  if (!nodes_[i]->running()) return false;
  RedisClient c;
  if (!c.Connect(nodes_[i]->port(), password_)) return false;
  RedisReply role = c.Command({"ROLE"});
  return !role.elements.empty() && role.elements[0].str == "master";
}

int RedisCluster::ReplicaOf(int master) {
  for (int i = 0; i < size(); ++i) {
    if (i == master || !nodes_[i]->running()) continue;
    RedisClient c = nodes_[i]->Client();
    RedisReply role = c.Command({"ROLE"});  // slave, host, port, state, offset
    if (role.elements.size() >= 3 && role.elements[0].str == "slave" &&
        role.elements[2].integer == nodes_[master]->port()) {
      return i;
    }
  }
  return -1;
}

void RedisCluster::KillNode(int i) { nodes_[i]->Kill(); }

}  // namespace gimel::testing
