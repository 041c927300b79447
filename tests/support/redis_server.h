// Test helpers: a real redis-server (or a Redis Cluster of several) on free loopback ports,
// started by a test fixture and stopped (killed and reaped) by the destructor, plus a minimal
// blocking client for setting up and inspecting data independently of the code under test.
//
//   gimel::testing::RedisServer redis;
//   ASSERT_TRUE(redis.Start());            // picks a free port, waits for PING
//   ... redis.port() ...
//   redis.Kill();                          // SIGKILL + reap (a crash); Start() again reuses
//   ASSERT_TRUE(redis.Start());            // the same port
//
// Requires redis-server and redis-cli on PATH. Each server runs in its own temporary directory
// (removed by the destructor) with `--save '' --appendonly no`.
//
// Thread-safety: none; use from the test's thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;

namespace gimel::testing {

// A reply of RedisClient::Command.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // string / status / error text
  long long integer = 0;
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::kError; }
  // The string elements of an array reply, sorted (e.g. SMEMBERS).
  std::vector<std::string> SortedStrings() const;
};

// A blocking client (hiredis) for test setup and inspection.
class RedisClient {
 public:
  RedisClient() = default;
  ~RedisClient();
  RedisClient(RedisClient&& other) noexcept;
  RedisClient& operator=(RedisClient&& other) noexcept;

  // Connects to 127.0.0.1:port (and AUTHs when password is non-empty).
  ::testing::AssertionResult Connect(int port, std::string_view password = "");
  bool connected() const { return ctx_ != nullptr; }

  // Runs one command. A transport failure is returned as a kError reply starting with "IO:".
  RedisReply Command(const std::vector<std::string>& argv);
  RedisReply Command(std::initializer_list<std::string_view> argv);

 private:
  redisContext* ctx_ = nullptr;
};

struct RedisServerOptions {
  std::string password;                 // Default: none. Sets --requirepass.
  std::vector<std::string> extra_args;  // e.g. {"--cluster-enabled", "yes"}
  bool cluster = false;                 // Default: false. Cluster mode on a second free port.
  int cluster_node_timeout_ms = 5000;   // Cluster mode: --cluster-node-timeout.
};

// One redis-server process.
class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();  // Kill() and remove the temporary directory
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server (on a free port the first time, on the same port afterwards) and waits
  // up to 10 s until it answers PING.
  ::testing::AssertionResult Start();
  // SIGKILL and reap. No-op if not running.
  void Kill();
  // SIGSTOP / SIGCONT: a server that hangs without closing connections.
  void Pause();
  void Resume();

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  const std::string& password() const { return options_.password; }
  const std::string& dir() const { return dir_; }
  // "127.0.0.1:<port>"
  std::string address() const;
  // A new connected client (AUTH done). Fails the current test on error.
  RedisClient Client() const;

 private:
  RedisServerOptions options_;
  std::string dir_;
  int port_ = 0;
  int cluster_port_ = 0;
  pid_t pid_ = -1;
};

// N (>= 3) cluster-enabled masters joined by `redis-cli --cluster create`, each with
// `replicas_per_master` replicas (default none).
//
// With replicas, every node runs with a 1000 ms cluster-node-timeout (and
// cluster-replica-validity-factor 0), so that when a master is killed its replica takes over
// within a few seconds:
//
//   RedisCluster cluster(3, "", /*replicas_per_master=*/1);
//   ASSERT_TRUE(cluster.Start());
//   const int master = cluster.NodeForSlot(slot);
//   const int replica = cluster.ReplicaOf(master);
//   cluster.KillNode(master);                              // a crash
//   ASSERT_TRUE(cluster.WaitUntilMaster(replica, std::chrono::seconds(30)));
//
// Node indices are stable: a killed node keeps its index (node(i).running() is then false).
class RedisCluster {
 public:
  explicit RedisCluster(int masters = 3, std::string password = "", int replicas_per_master = 0);
  ~RedisCluster();  // kills every node still running
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // Starts the nodes, creates the cluster, waits up to 20 s for cluster_state:ok everywhere
  // (WaitUntilOk), then (with replicas) up to 20 s for every replica's link to its master.
  ::testing::AssertionResult Start();

  // Every node, killed ones included.
  int size() const { return static_cast<int>(nodes_.size()); }
  RedisServer& node(int i) { return *nodes_[i]; }
  // "127.0.0.1:<port>" of every node.
  std::vector<std::string> addresses() const;
  // The index of the node serving `slot` (CLUSTER SLOTS, as seen by node `viewer`, by default
  // the first running node), or -1.
  int NodeForSlot(int slot, int viewer = -1);
  // Leaves `slot` without an owner in every running node's view (CLUSTER DELSLOTS everywhere,
  // after CONFIG SET cluster-require-full-coverage no), repeating the DELSLOTS where a node has
  // meanwhile re-learned the owner's claim from gossip sent before the owner's own DELSLOTS.
  // Waits up to `timeout` for every view to stay without an owner for half a second.
  ::testing::AssertionResult UnassignSlot(int slot, std::chrono::milliseconds timeout);
  // The cluster node id of node i (CLUSTER MYID).
  std::string NodeId(int i);
  // True if running node i says (ROLE) it is a master.
  bool IsMaster(int i);
  // The index of a running node that says (ROLE) it replicates node `master`, or -1.
  int ReplicaOf(int master);
  // SIGKILL node i and reap it (a crash). No-op if it is not running.
  void KillNode(int i);
  // Waits until every running node reports cluster_state:ok, sees all 16384 slots served by
  // running nodes, and all running nodes agree on which node serves which slot. (A paused node
  // counts as running: it makes this fail.)
  ::testing::AssertionResult WaitUntilOk(std::chrono::milliseconds timeout);
  // Waits until node i says it is a master and serves slots, and the cluster is ok as for
  // WaitUntilOk (e.g. after CLUSTER FAILOVER on i, or after killing i's master).
  ::testing::AssertionResult WaitUntilMaster(int i, std::chrono::milliseconds timeout);

 private:
  // One running node's view: "" if it is not ok, else its slot map ("first-last:port,...").
  std::string SlotMapIfOk(int i, std::string* why);
  ::testing::AssertionResult WaitForReplicaLinks(std::chrono::steady_clock::time_point deadline);

  int masters_;
  std::string password_;
  int replicas_per_master_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

// A free TCP port on 127.0.0.1 (bind to port 0, read it back, close).
int FreeLoopbackPort();

}  // namespace gimel::testing
