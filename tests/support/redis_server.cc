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
                   "--cluster-node-timeout", "5000"});
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

RedisCluster::RedisCluster(int masters, std::string password)
    : masters_(std::max(3, masters)), password_(std::move(password)) {}

RedisCluster::~RedisCluster() {
  for (auto& n : nodes_) n->Kill();
}

std::vector<std::string> RedisCluster::addresses() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n->address());
  return out;
}

::testing::AssertionResult RedisCluster::Start() {
  for (int i = 0; i < masters_; ++i) {
    RedisServerOptions o;
    o.password = password_;
    o.cluster = true;
    nodes_.push_back(std::make_unique<RedisServer>(o));
    auto started = nodes_.back()->Start();
    if (!started) return started;
  }
  std::vector<std::string> args = {"redis-cli", "--cluster", "create"};
  for (const std::string& a : addresses()) args.push_back(a);
  args.insert(args.end(), {"--cluster-replicas", "0", "--cluster-yes"});
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
  return WaitForState();
}

::testing::AssertionResult RedisCluster::WaitForState() {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  std::string last;
  for (auto& n : nodes_) {
    RedisClient c = n->Client();
    for (;;) {
      RedisReply r = c.Command({"CLUSTER", "INFO"});
      if (r.str.find("cluster_state:ok") != std::string::npos) {
        // Also wait until this node sees every slot assigned (gossip has converged).
        RedisReply slots = c.Command({"CLUSTER", "SLOTS"});
        int covered = 0;
        for (const RedisReply& range : slots.elements) {
          if (range.elements.size() >= 2) {
            covered += static_cast<int>(range.elements[1].integer - range.elements[0].integer + 1);
          }
        }
        if (covered == 16384) break;
      }
      last = r.str;
      if (Clock::now() > deadline) {
        return ::testing::AssertionFailure()
               << "cluster not ok on " << n->address() << ": " << last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return ::testing::AssertionSuccess();
}

int RedisCluster::NodeForSlot(int slot) {
  RedisClient c = nodes_[0]->Client();
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

std::string RedisCluster::NodeId(int i) {
  RedisClient c = nodes_[i]->Client();
  return c.Command({"CLUSTER", "MYID"}).str;
}

}  // namespace gimel::testing
