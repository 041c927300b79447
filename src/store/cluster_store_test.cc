// The redis-cluster store against a real 3-master Redis Cluster (tests/support/redis_server.h),
// including a slot migration under load (MOVED / ASK), and master failovers (graceful and
// crash) on a cluster with one replica per master.
#include "store/cluster_store.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "hll/hll.h"
#include "store/keys.h"
#include "store/redis_store.h"
#include "support/redis_server.h"
#include "support/store_testing.h"

namespace gimel::store {
namespace {

using gimel::testing::RedisClient;
using gimel::testing::RedisCluster;
using gimel::testing::RedisReply;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

const Counter* Find(const std::vector<Counter>& counters, std::string_view event,
                    std::string_view variant) {
  for (const Counter& c : counters) {
    if (c.event == event && c.variant == variant) return &c;
  }
  return nullptr;
}

uint64_t CountOf(const std::vector<Counter>& counters, std::string_view event,
                 std::string_view variant) {
  const Counter* c = Find(counters, event, variant);
  return c == nullptr ? 0 : *hll::Count(c->hll);
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// True if every register of `subset` is <= the same register of `superset`: every element
// added to subset is (as far as an HLL can tell) in superset.
::testing::AssertionResult Contains(std::string_view superset, std::string_view subset) {
  std::array<uint8_t, hll::kRegisters> sup{};
  std::array<uint8_t, hll::kRegisters> sub{};
  if (!hll::DecodeRegisters(superset, sup).ok() || !hll::DecodeRegisters(subset, sub).ok()) {
    return ::testing::AssertionFailure() << "invalid HLL";
  }
  for (uint32_t i = 0; i < hll::kRegisters; ++i) {
    if (sub[i] > sup[i]) {
      return ::testing::AssertionFailure()
             << "register " << i << ": " << int(sub[i]) << " > " << int(sup[i]);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- Parsing (no server) --------------------------------------------------------------------

TEST(ClusterParse, RedirectsAndSlots) {
  redis::Endpoint from;
  from.host = "10.0.0.1";
  from.port = 7000;
  auto moved = redis::ParseRedirect("MOVED 3999 127.0.0.1:6381", from);
  ASSERT_TRUE(moved.has_value());
  EXPECT_FALSE(moved->ask);
  EXPECT_EQ(moved->slot, 3999u);
  EXPECT_EQ(moved->to.ToString(), "127.0.0.1:6381");
  auto ask = redis::ParseRedirect("ASK 12 :7002", from);
  ASSERT_TRUE(ask.has_value());
  EXPECT_TRUE(ask->ask);
  EXPECT_EQ(ask->to.ToString(), "10.0.0.1:7002");
  EXPECT_FALSE(redis::ParseRedirect("ERR nope", from).has_value());
  EXPECT_FALSE(redis::ParseRedirect("MOVED 99999 a:1", from).has_value());
  EXPECT_FALSE(redis::ParseRedirect("MOVED x a:1", from).has_value());

  redis::Value reply;
  reply.type = redis::Value::Type::kArray;
  redis::Value range;
  range.type = redis::Value::Type::kArray;
  range.elements.resize(3);
  range.elements[0].type = redis::Value::Type::kInteger;
  range.elements[0].integer = 0;
  range.elements[1].type = redis::Value::Type::kInteger;
  range.elements[1].integer = 5460;
  range.elements[2].type = redis::Value::Type::kArray;
  range.elements[2].elements.resize(2);
  range.elements[2].elements[0].type = redis::Value::Type::kString;  // empty host
  range.elements[2].elements[1].type = redis::Value::Type::kInteger;
  range.elements[2].elements[1].integer = 7001;
  reply.elements.push_back(range);
  auto ranges = redis::ParseClusterSlots(reply, from);
  ASSERT_TRUE(ranges.ok());
  ASSERT_EQ(ranges->size(), 1u);
  EXPECT_EQ((*ranges)[0].last, 5460u);
  EXPECT_EQ((*ranges)[0].master.ToString(), "10.0.0.1:7001");
  reply.elements[0].elements[1].integer = 16384;
  EXPECT_FALSE(redis::ParseClusterSlots(reply, from).ok());
}

TEST(ClusterOpen, RejectsBadOptionsAndUnreachableSeeds) {
  StoreOptions o;
  o.kind = StoreOptions::Kind::kRedisCluster;
  EXPECT_TRUE(OpenRedisClusterStore(o).status().IsInvalidArgument());  // no seeds
  o.cluster_nodes = {"nohostport"};
  EXPECT_TRUE(OpenRedisClusterStore(o).status().IsInvalidArgument());
  o.cluster_nodes = {"127.0.0.1:" + std::to_string(gimel::testing::FreeLoopbackPort())};
  o.redis.connect_timeout_ms = 200;
  EXPECT_TRUE(OpenRedisClusterStore(o).status().IsUnavailable());
  o.redis.db = 1;
  EXPECT_TRUE(OpenRedisClusterStore(o).status().IsInvalidArgument());
}

// ---- Against a cluster ----------------------------------------------------------------------

class ClusterStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new RedisCluster(3);
    auto started = cluster_->Start();
    if (!started) {
      start_error_ = new std::string(started.message());
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    for (int i = 0; i < cluster_->size(); ++i) {
      RedisClient c = cluster_->node(i).Client();
      c.Command({"FLUSHALL"});
    }
  }

  StoreOptions Options() const {
    StoreOptions o;
    o.kind = StoreOptions::Kind::kRedisCluster;
    o.cluster_nodes = {cluster_->addresses()[1]};  // one seed is enough
    o.redis.connect_timeout_ms = 500;
    o.redis.command_timeout_ms = 2000;
    return o;
  }

  std::unique_ptr<Store> Open() { return OpenedOrNull(OpenRedisClusterStore(Options())); }

  // A client of the node serving `key`.
  RedisClient OwnerOf(const std::string& key) {
    const int node = cluster_->NodeForSlot(static_cast<int>(keys::HashSlot(key)));
    EXPECT_GE(node, 0) << key;
    return cluster_->node(node < 0 ? 0 : node).Client();
  }

  RedisReply OnOwner(const std::string& key, std::initializer_list<std::string_view> argv) {
    RedisClient c = OwnerOf(key);
    return c.Command(argv);
  }

  static RedisCluster* cluster_;
  static std::string* start_error_;
};

RedisCluster* ClusterStoreTest::cluster_ = nullptr;
std::string* ClusterStoreTest::start_error_ = nullptr;

TEST_F(ClusterStoreTest, HashSlotAgreesWithTheServer) {
  RedisClient c = cluster_->node(0).Client();
  for (std::string key : {"foo", "ns:counters:e:participate:v", "a{b}c", "{}x", "ünï{}",
                          "gimel:merge-tmp:{42}", "gimel:merge-tmp:{7}x"}) {
    EXPECT_EQ(c.Command({"CLUSTER", "KEYSLOT", key}).integer, keys::HashSlot(key)) << key;
  }
  const std::string tmp = keys::MergeTmpKey("ns:experiments");
  EXPECT_EQ(c.Command({"CLUSTER", "KEYSLOT", tmp}).integer,
            c.Command({"CLUSTER", "KEYSLOT", "ns:experiments"}).integer);
}

TEST_F(ClusterStoreTest, AddThenReadCountsAcrossSlots) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->name(), "redis-cluster");
  ASSERT_OK(store->Health());
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK(Add(*store, "ns", "button", "participate", i % 2 ? "red" : "blue", Id("u", i / 2)));
    if (i % 4 == 0) ASSERT_OK(Add(*store, "ns", "button", "clicked", "red", Id("u", i)));
  }
  ASSERT_OK(Add(*store, "ns", "other", "participate", "x", "1"));
  auto read = store->ReadExperiment("ns", "button");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 3u);
  // HLL estimates: equal to the owner's PFCOUNT, within 2% of the truth.
  for (auto [event, variant, truth] :
       {std::tuple("participate", "red", 100), std::tuple("participate", "blue", 100),
        std::tuple("clicked", "red", 50)}) {
    const std::string key = keys::CounterKey("ns", "button", event, variant);
    const uint64_t count = CountOf(*read, event, variant);
    EXPECT_EQ(static_cast<long long>(count), OnOwner(key, {"PFCOUNT", key}).integer) << key;
    EXPECT_NEAR(static_cast<double>(count), truth, truth * 0.02) << key;
  }
  EXPECT_EQ(Sorted(*store->ListExperiments("ns")), (std::vector<std::string>{"button", "other"}));
}

TEST_F(ClusterStoreTest, NamesWithColonsAndNonAsciiRoundTrip) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::vector<std::pair<std::string, std::string>> counters = {{"participate", "red:dark"},
                                                                     {"goal:clicked", "red:dark"},
                                                                     {"a b/c", "日本語"},
                                                                     {"x:y:z", "1:2:3"},
                                                                     {"participate", "{tag}"}};
  for (const auto& [event, variant] : counters) {
    ASSERT_OK(Add(*store, "my:ns", "home:hero ü", event, variant, "u"));
  }
  auto read = store->ReadExperiment("my:ns", "home:hero ü");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  std::set<std::pair<std::string, std::string>> names;
  for (const Counter& c : *read) names.emplace(c.event, c.variant);
  EXPECT_EQ(names, std::set(counters.begin(), counters.end()));
  EXPECT_EQ(*store->ListNamespaces(), std::vector<std::string>{"my:ns"});
}

TEST_F(ClusterStoreTest, WritesTheOriginalLayoutAcrossNodes) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(Add(*store, "alephbet", "button color", "participate", "red", "1"));
  ASSERT_OK(Add(*store, "alephbet", "button color", "clicked", "red", "1"));
  const std::string red = "alephbet:counters:button color:participate:red";
  const std::string clicked = "alephbet:counters:button color:clicked:red";
  EXPECT_EQ(OnOwner("alephbet:experiments", {"SMEMBERS", "alephbet:experiments"}).SortedStrings(),
            std::vector<std::string>{"button color"});
  EXPECT_EQ(OnOwner("alephbet:counter_keys", {"SMEMBERS", "alephbet:counter_keys"}).SortedStrings(),
            (std::vector<std::string>{clicked, red}));
  EXPECT_EQ(OnOwner("alephbet:button color:counter_keys",
                    {"SMEMBERS", "alephbet:button color:counter_keys"})
                .SortedStrings(),
            (std::vector<std::string>{clicked, red}));
  EXPECT_EQ(OnOwner(red, {"TYPE", red}).str, "string");
  EXPECT_EQ(OnOwner(red, {"GET", red}).str.substr(0, 4), "HYLL");
  // The keys are spread over the cluster (the reason every operation is single-key).
  std::set<int> nodes;
  for (std::string key :
       {red, clicked, std::string("alephbet:experiments"), std::string("alephbet:counter_keys")}) {
    nodes.insert(cluster_->NodeForSlot(static_cast<int>(keys::HashSlot(key))));
  }
  EXPECT_GT(nodes.size(), 1u);
  int total = 0;
  for (int i = 0; i < cluster_->size(); ++i) {
    RedisClient c = cluster_->node(i).Client();
    total += static_cast<int>(c.Command({"DBSIZE"}).integer);
  }
  EXPECT_EQ(total, 5);  // 3 sets + 2 counters, no name index for plain names
}

TEST_F(ClusterStoreTest, DeleteRemovesExactlyOneExperiment) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (std::string exp : {"e", "e:x", "f"}) {
    ASSERT_OK(Add(*store, "ns", exp, "participate", "v", "1"));
    ASSERT_OK(Add(*store, "ns", exp, "goal", "v:w", "2"));
  }
  ASSERT_OK(Add(*store, "ns2", "e", "participate", "v", "1"));
  ASSERT_OK(store->DeleteExperiment("ns", "e"));
  EXPECT_TRUE(store->ReadExperiment("ns", "e")->empty());
  EXPECT_EQ(store->ReadExperiment("ns", "e:x")->size(), 2u);
  EXPECT_EQ(store->ReadExperiment("ns", "f")->size(), 2u);
  EXPECT_EQ(Sorted(*store->ListExperiments("ns")), (std::vector<std::string>{"e:x", "f"}));
  EXPECT_EQ(Sorted(*store->ListNamespaces()), (std::vector<std::string>{"ns", "ns2"}));
  const std::string gone = "ns:counters:e:participate:v";
  EXPECT_EQ(OnOwner(gone, {"EXISTS", gone}).integer, 0);
  EXPECT_EQ(OnOwner("ns:counter_keys", {"SCARD", "ns:counter_keys"}).integer, 4);
  ASSERT_OK(Add(*store, "ns", "e", "participate", "v", "3"));
  EXPECT_EQ(store->ReadExperiment("ns", "e")->size(), 1u);
}

TEST_F(ClusterStoreTest, MergeCounterIsIdempotent) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_OK(Add(*store, "ns", "e", "participate", "v", Id("", i)));
  std::string other = hll::Empty();
  for (int i = 50; i < 250; ++i) hll::Add(&other, std::to_string(i));
  ASSERT_OK(store->MergeCounter("ns", "e", "participate", "v", other));
  auto once = store->ReadExperiment("ns", "e");
  ASSERT_OK(store->MergeCounter("ns", "e", "participate", "v", other));
  auto twice = store->ReadExperiment("ns", "e");
  ASSERT_TRUE(once.ok() && twice.ok());
  ASSERT_EQ(once->size(), 1u);
  EXPECT_EQ((*once)[0].hll, (*twice)[0].hll);
  std::string expected = hll::Empty();
  for (int i = 0; i < 250; ++i) hll::Add(&expected, std::to_string(i));
  EXPECT_TRUE(Contains((*once)[0].hll, expected));
  EXPECT_TRUE(Contains(expected, (*once)[0].hll));
  ASSERT_OK(store->MergeCounter("new", "x", "goal:1", "a", other));
  EXPECT_EQ(CountOf(*store->ReadExperiment("new", "x"), "goal:1", "a"), *hll::Count(other));
}

TEST_F(ClusterStoreTest, ConcurrentAddsAllLand) {
  StoreOptions o = Options();
  o.redis.command_timeout_ms = 5000;
  auto opened = OpenRedisClusterStore(o);
  ASSERT_TRUE(opened.ok());
  ExpectConcurrentAddsAllLand(**opened, "load", "e", /*threads=*/4, /*per_thread=*/1000,
                              /*variants=*/8);
}

// The story: a slot is resharded (CLUSTER SETSLOT … IMPORTING/MIGRATING, MIGRATE, SETSLOT …
// NODE) while events keep arriving for a counter in it. The store must follow ASK during the
// migration and MOVED after it, and no acknowledged event may be missing afterwards.
TEST_F(ClusterStoreTest, SlotMigrationUnderLoadLosesNoAcknowledgedEvent) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::string counter = "mig:counters:e:participate:v";
  const int slot = static_cast<int>(keys::HashSlot(counter));
  const int src = cluster_->NodeForSlot(slot);
  ASSERT_GE(src, 0);
  const int dst = (src + 1) % cluster_->size();
  const std::string src_id = cluster_->NodeId(src);
  const std::string dst_id = cluster_->NodeId(dst);
  ASSERT_OK(Add(*store, "mig", "e", "participate", "v", "first"));

  std::mutex mu;
  std::vector<std::string> acked = {"first"};
  std::vector<std::string> failures;
  std::atomic<int> in_flight{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      while (in_flight.load() > 32) std::this_thread::sleep_for(std::chrono::microseconds(200));
      in_flight.fetch_add(1);
      std::string uuid = Id("u", i);
      store->Add({"mig", "e", "participate", "v", uuid}, [&, uuid](Status s) {
        {
          std::lock_guard<std::mutex> lock(mu);
          (s.ok() ? acked : failures).push_back(s.ok() ? uuid : s.ToString());
        }
        in_flight.fetch_sub(1);
      });
    }
  });

  RedisClient s = cluster_->node(src).Client();
  RedisClient d = cluster_->node(dst).Client();
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_EQ(d.Command({"CONFIG", "RESETSTAT"}).str, "OK");
  EXPECT_EQ(d.Command({"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", src_id}).str, "OK");
  EXPECT_EQ(s.Command({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", dst_id}).str, "OK");
  std::this_thread::sleep_for(milliseconds(100));
  RedisReply keys_in_slot = s.Command({"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "1000"});
  ASSERT_FALSE(keys_in_slot.elements.empty());
  std::vector<std::string> migrate = {
      "MIGRATE", "127.0.0.1", std::to_string(cluster_->node(dst).port()), "", "0", "5000", "KEYS"};
  for (const RedisReply& k : keys_in_slot.elements) migrate.push_back(k.str);
  RedisReply migrated = s.Command(migrate);
  EXPECT_EQ(migrated.str, "OK");
  std::this_thread::sleep_for(milliseconds(150));  // events now get ASK from the source
  for (int i : {dst, src}) {
    RedisClient c = cluster_->node(i).Client();
    EXPECT_EQ(c.Command({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", dst_id}).str, "OK");
  }
  for (int i = 0; i < cluster_->size(); ++i) {
    if (i == src || i == dst) continue;
    RedisClient c = cluster_->node(i).Client();
    c.Command({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", dst_id});
  }
  std::this_thread::sleep_for(milliseconds(200));  // events now get MOVED, then go direct
  stop = true;
  writer.join();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (in_flight.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(in_flight.load(), 0);

  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures[0];
  EXPECT_GT(acked.size(), 50u);
  EXPECT_EQ(d.Command({"EXISTS", counter}).integer, 1);
  EXPECT_EQ(s.Command({"EXISTS", counter}).integer, 0);
  const std::string stats = d.Command({"INFO", "commandstats"}).str;
  EXPECT_NE(stats.find("cmdstat_asking:"), std::string::npos) << "no ASK was followed";

  auto read = store->ReadExperiment("mig", "e");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  const Counter* c = Find(*read, "participate", "v");
  ASSERT_NE(c, nullptr);
  std::string expected = hll::Empty();
  for (const std::string& uuid : acked) hll::Add(&expected, uuid);
  EXPECT_TRUE(Contains(c->hll, expected));
  // And the store keeps working against the new owner.
  ASSERT_OK(Add(*store, "mig", "e", "participate", "v", "after"));
  ASSERT_OK(store->MergeCounter("mig", "e", "participate", "v", expected));
}

TEST(ClusterAuth, PasswordProtectedCluster) {
  RedisCluster cluster(3, "cluster pw");
  ASSERT_TRUE(cluster.Start());
  StoreOptions o;
  o.kind = StoreOptions::Kind::kRedisCluster;
  o.cluster_nodes = cluster.addresses();
  o.redis.password = "cluster pw";
  auto store = OpenRedisClusterStore(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_OK(Add(**store, "ns", "e", "participate", "v", "1"));
  EXPECT_EQ(CountOf(*(*store)->ReadExperiment("ns", "e"), "participate", "v"), 1u);
  o.redis.password = "wrong";
  EXPECT_EQ(OpenRedisClusterStore(o).status().code(), StatusCode::kPermissionDenied);
  o.redis.password.clear();
  EXPECT_EQ(OpenRedisClusterStore(o).status().code(), StatusCode::kPermissionDenied);
}

// ---- Failover (3 masters, 1 replica each) ---------------------------------------------------

// Add traffic from several threads until Stop(): experiment ("fo", "e"), event "participate",
// uuid "T-I" from thread T, variant "vN" with N = I % kVariants (so the counters spread over
// every master), at most kMaxInFlight Adds in flight. Records every Add's outcome and latency.
class Traffic {
 public:
  static constexpr int kVariants = 12;
  static constexpr int kMaxInFlight = 48;

  struct Done {
    std::string variant;
    std::string uuid;
    Clock::time_point start;
    Clock::time_point end;
    Status status;
  };

  static std::string Variant(int i) { return Id("v", i % kVariants); }
  static std::string CounterOf(std::string_view variant) {
    return keys::CounterKey("fo", "e", "participate", variant);
  }

  Traffic(Store& store, int threads) : state_(std::make_shared<State>()) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([&store, t, state = state_] {
        for (int i = 0; !state->stop.load(); ++i) {
          while (state->in_flight.load() >= kMaxInFlight && !state->stop.load()) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
          }
          state->in_flight.fetch_add(1);
          auto done = std::make_shared<Done>();
          done->variant = Variant(i);
          done->uuid = Id(std::to_string(t) + "-", i);
          done->start = Clock::now();
          store.Add({"fo", "e", "participate", done->variant, done->uuid},
                    [state, done](Status st) {
                      done->end = Clock::now();
                      done->status = std::move(st);
                      {
                        std::lock_guard<std::mutex> lock(state->mu);
                        state->done.push_back(std::move(*done));
                      }
                      state->in_flight.fetch_sub(1);
                    });
          // Paced (the machine is shared), still hundreds of events per second per thread.
          std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
      });
    }
  }
  ~Traffic() { (void)Stop(); }

  // Stops the threads and waits up to 10 s for every Add in flight to complete.
  ::testing::AssertionResult Stop() {
    state_->stop = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (state_->in_flight.load() > 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    if (state_->in_flight.load() == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << state_->in_flight.load() << " Adds never completed";
  }

  // REQUIRES: Stop() succeeded.
  std::vector<Done> done() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->done;
  }

 private:
  // Shared with the callbacks, which may outlive a failed Stop().
  struct State {
    std::atomic<bool> stop{false};
    std::atomic<int> in_flight{0};
    mutable std::mutex mu;
    std::vector<Done> done;  // Guarded by mu.
  };
  std::shared_ptr<State> state_;
  std::vector<std::thread> threads_;
};

// Every failure must be kUnavailable (HTTP 503: the client keeps the event and retries), never
// kIOError (500) or anything else.
::testing::AssertionResult AllFailuresUnavailable(const std::vector<Traffic::Done>& done) {
  for (const Traffic::Done& d : done) {
    if (!d.status.ok() && !d.status.IsUnavailable()) {
      return ::testing::AssertionFailure() << d.uuid << ": " << d.status.ToString();
    }
  }
  return ::testing::AssertionSuccess();
}

// No Add started at or after `t` failed.
::testing::AssertionResult NoFailureSince(const std::vector<Traffic::Done>& done,
                                          Clock::time_point t) {
  int failed = 0;
  const Traffic::Done* first = nullptr;
  for (const Traffic::Done& d : done) {
    if (d.status.ok() || d.start < t) continue;
    ++failed;
    if (first == nullptr || d.start < first->start) first = &d;
  }
  if (failed == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << failed << " Adds failed, the first: " << first->uuid
                                       << ": " << first->status.ToString();
}

// Checks that every counter read back through the store holds every uuid of `counted`
// (variant → local HLL of the uuids that must be there).
void ExpectCounted(Store& store, const std::map<std::string, std::string>& counted) {
  auto read = store.ReadExperiment("fo", "e");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  for (const auto& [variant, expected] : counted) {
    const Counter* c = Find(*read, "participate", variant);
    ASSERT_NE(c, nullptr) << variant;
    EXPECT_TRUE(Contains(c->hll, expected)) << variant;
  }
}

milliseconds Millis(Clock::duration d) { return std::chrono::duration_cast<milliseconds>(d); }

// The number of threads of this process (each of the store's node pools has its own workers).
size_t ThreadCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

// Waits up to 5 s for the process to have at most n threads; returns its thread count.
size_t WaitForThreadsAtMost(size_t n) {
  size_t now = ThreadCount();
  for (const auto deadline = Clock::now() + std::chrono::seconds(5);
       now > n && Clock::now() < deadline; now = ThreadCount()) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  return now;
}

class ClusterFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<RedisCluster>(3, "", /*replicas_per_master=*/1);
    ASSERT_TRUE(cluster_->Start());
    // The master serving v0's counter (and some of the other variants'), and its replica.
    slot_ = static_cast<int>(keys::HashSlot(Traffic::CounterOf(Traffic::Variant(0))));
    master_ = cluster_->NodeForSlot(slot_);
    ASSERT_GE(master_, 0);
    ASSERT_TRUE(cluster_->IsMaster(master_));
    replica_ = cluster_->ReplicaOf(master_);
    ASSERT_GE(replica_, 0);
    for (int i = 0; i < Traffic::kVariants; ++i) {
      const std::string variant = Traffic::Variant(i);
      const int slot = static_cast<int>(keys::HashSlot(Traffic::CounterOf(variant)));
      if (cluster_->NodeForSlot(slot) == master_) on_master_.insert(variant);
    }
    ASSERT_LT(on_master_.size(), static_cast<size_t>(Traffic::kVariants));  // others too
  }

  StoreOptions Options() const {
    StoreOptions o;
    o.kind = StoreOptions::Kind::kRedisCluster;
    o.cluster_nodes = cluster_->addresses();
    o.redis.connect_timeout_ms = 200;
    o.redis.command_timeout_ms = kCommandTimeoutMs;
    return o;
  }

  static constexpr int kCommandTimeoutMs = 1000;

  // CLUSTER FAILOVER on `node` (a replica), until it is a master that every node agrees on. A
  // manual failover is aborted by Redis if the replica cannot catch up within 5 s (possible on
  // a loaded machine), so it is asked again, up to three times.
  ::testing::AssertionResult FailOverTo(int node) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      RedisClient c = cluster_->node(node).Client();
      const std::string ok = c.Command({"CLUSTER", "FAILOVER"}).str;
      if (ok != "OK") return ::testing::AssertionFailure() << "CLUSTER FAILOVER: " << ok;
      const auto deadline = Clock::now() + std::chrono::seconds(8);
      while (!cluster_->IsMaster(node) && Clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(50));
      }
      if (cluster_->IsMaster(node))
        return cluster_->WaitUntilMaster(node, std::chrono::seconds(30));
    }
    return ::testing::AssertionFailure() << "node " << node << " never became a master";
  }

  std::unique_ptr<RedisCluster> cluster_;  // stops every node it started
  int slot_ = -1;
  int master_ = -1;
  int replica_ = -1;
  std::set<std::string> on_master_;  // the variants whose counter master_ serves
};

// The story: for a moment no node owns a slot (during a failover, a node that has seen the old
// master step down before the new master's claim lists no owner for its slots). An Add for
// that slot waits for an owner, retrying up to the command timeout, instead of failing at once;
// with no owner by then it fails kUnavailable. The slot is unassigned here with CLUSTER
// DELSLOTS on every node (full coverage not required, so the other slots keep working).
TEST(ClusterUnservedSlot, AddsWaitForTheSlotsOwnerUpToTheCommandTimeout) {
  RedisCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  const std::string key = keys::CounterKey("un", "e", "participate", "v");
  const int slot = static_cast<int>(keys::HashSlot(key));
  const int owner = cluster.NodeForSlot(slot);
  ASSERT_GE(owner, 0);
  ASSERT_TRUE(cluster.UnassignSlot(slot, milliseconds(10000)));
  StoreOptions o;
  o.kind = StoreOptions::Kind::kRedisCluster;
  o.cluster_nodes = cluster.addresses();
  o.redis.command_timeout_ms = 1500;
  auto opened = OpenRedisClusterStore(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  // Other slots are served meanwhile.
  ASSERT_OK(Add(store, "un", "e", "participate", "another variant", "u0"));

  // No owner until the timeout: kUnavailable, after retrying for about the command timeout.
  Clock::time_point start = Clock::now();
  Status s = Add(store, "un", "e", "participate", "v", "u1");
  const auto waited = Clock::now() - start;
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_NE(s.message().find("not served"), std::string::npos) << s.ToString();
  EXPECT_GE(waited, milliseconds(1000));
  EXPECT_LT(waited, milliseconds(5000));

  // The owner comes back while an Add waits: the Add lands there.
  start = Clock::now();
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  store.Add({"un", "e", "participate", "v", "u2"},
            [&done](Status st) { done.set_value(std::move(st)); });
  std::this_thread::sleep_for(milliseconds(300));
  RedisClient c = cluster.node(owner).Client();
  ASSERT_EQ(c.Command({"CLUSTER", "ADDSLOTS", std::to_string(slot)}).str, "OK");
  ASSERT_OK(result.get());
  EXPECT_GE(Clock::now() - start, milliseconds(300));
  EXPECT_EQ(c.Command({"PFCOUNT", key}).integer, 1);

  // A store closed while an Add waits for an owner fails it at once (kUnavailable).
  ASSERT_TRUE(cluster.UnassignSlot(slot, milliseconds(10000)));
  auto closing = OpenRedisClusterStore(o);
  ASSERT_TRUE(closing.ok()) << closing.status().ToString();
  std::promise<Status> dropped;
  std::future<Status> dropped_result = dropped.get_future();
  (*closing)->Add({"un", "e", "participate", "v", "u3"},
                  [&dropped](Status st) { dropped.set_value(std::move(st)); });
  std::this_thread::sleep_for(milliseconds(200));
  start = Clock::now();
  closing->reset();
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  ASSERT_EQ(dropped_result.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_TRUE(dropped_result.get().IsUnavailable());
}

// The story: an operator promotes a replica (CLUSTER FAILOVER, e.g. before upgrading its
// master's host) while events keep arriving. The replica catches up with its master before
// taking over, so nothing acknowledged may be lost; the store must follow the new topology
// (the old master answers MOVED) without a restart, and any event it could not store must be
// reported as kUnavailable (503), never acknowledged and dropped.
TEST_F(ClusterFailoverTest, ManualFailoverUnderLoadLosesNoAcknowledgedEvent) {
  auto opened = OpenRedisClusterStore(Options());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  ASSERT_OK(store.Health());  // one pool per master
  const size_t threads_before = ThreadCount();

  Traffic traffic(store, /*threads=*/3);
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(FailOverTo(replica_));
  const Clock::time_point promoted_at = Clock::now();
  std::this_thread::sleep_for(milliseconds(500));
  ASSERT_TRUE(traffic.Stop());

  EXPECT_FALSE(cluster_->IsMaster(master_));
  EXPECT_EQ(cluster_->NodeForSlot(slot_), replica_);
  const std::vector<Traffic::Done> done = traffic.done();
  EXPECT_TRUE(AllFailuresUnavailable(done));
  // Writes after the promotion go to the new master (MOVED from the old one, refresh).
  EXPECT_TRUE(NoFailureSince(done, promoted_at));
  std::map<std::string, std::string> counted;
  int failed = 0;
  int after_on_master = 0;
  for (const Traffic::Done& d : done) {
    if (!d.status.ok()) {
      ++failed;
      continue;
    }
    auto [it, inserted] = counted.try_emplace(d.variant, hll::Empty());
    hll::Add(&it->second, d.uuid);
    if (d.start > promoted_at && on_master_.contains(d.variant)) ++after_on_master;
  }
  EXPECT_GT(after_on_master, 20) << "too few writes to the new master";
  std::cout << "[   INFO   ] " << failed << " of " << done.size() << " Adds failed\n";
  ExpectCounted(store, counted);

  // The store's counts are the new master's.
  const std::string key = Traffic::CounterOf(Traffic::Variant(0));
  RedisClient r = cluster_->node(replica_).Client();
  auto read = store.ReadExperiment("fo", "e");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(static_cast<long long>(CountOf(*read, "participate", Traffic::Variant(0))),
            r.Command({"PFCOUNT", key}).integer);
  ASSERT_OK(Add(store, "fo", "e", "participate", Traffic::Variant(0), "last"));

  // The demoted master's pool is destroyed (the store keeps one pool per master) ...
  EXPECT_LE(WaitForThreadsAtMost(threads_before), threads_before)
      << "the demoted master's pool was not destroyed";
  // ... and when it becomes a master again, the store follows (MOVED, then refresh) with a
  // pool for it, retiring the other one's.
  ASSERT_TRUE(FailOverTo(master_));
  ASSERT_OK(Add(store, "fo", "e", "participate", Traffic::Variant(0), "failed-back"));
  EXPECT_OK(store.Health());
  EXPECT_EQ(cluster_->NodeForSlot(slot_), master_);
  EXPECT_LE(WaitForThreadsAtMost(threads_before), threads_before)
      << "the demoted replica's pool was not destroyed";
  ASSERT_OK(Add(store, "fo", "e", "participate", Traffic::Variant(0), "last-again"));
}

// The story: the host of a master dies (SIGKILL) under load. Until its replica is promoted
// (cluster-node-timeout 1 s, then an election), events for its slots cannot be stored and the
// cluster reports CLUSTERDOWN for all slots: the store must answer kUnavailable quickly (no
// Add may hang past the command timeout), and then recover by itself — no restart — routing
// to the promoted replica.
//
// Redis replicates asynchronously: a PFADD the dead master acknowledged may not have reached
// its replica, and is then lost by Redis itself, whatever the client does. So this test does
// not require events acknowledged by the dead master before the crash to survive; it requires
// that every event acknowledged by a surviving master (at any time), and every event
// acknowledged after the store recovered, is counted.
//
// Once recovered, the store must also let go of the dead node: its pool (worker threads,
// reconnection attempts) is destroyed, so a long-running gimel does not accumulate them across
// failovers.
TEST_F(ClusterFailoverTest, MasterCrashUnderLoadRecoversByItself) {
  StoreOptions o = Options();
  // The only seed is the node that dies: to find the new topology the store must ask the nodes
  // it has learned of.
  o.cluster_nodes = {cluster_->node(master_).address()};
  auto opened = OpenRedisClusterStore(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  // PING every master: the store now has one pool per master (3), as it has after recovering
  // (2 survivors and the promoted replica).
  ASSERT_OK(store.Health());
  const size_t threads_before = ThreadCount();

  Traffic traffic(store, /*threads=*/3);
  std::this_thread::sleep_for(milliseconds(300));
  const Clock::time_point killed_at = Clock::now();
  cluster_->KillNode(master_);

  // Probe the dead master's counter until an Add succeeds again, noting when its replica
  // says it has taken over.
  std::vector<Traffic::Done> probes;
  Clock::time_point promoted_at{};
  Clock::time_point recovered_at{};
  for (int i = 0; Clock::now() - killed_at < std::chrono::seconds(30); ++i) {
    Traffic::Done p;
    p.variant = Traffic::Variant(0);
    p.uuid = Id("probe-", i);
    p.start = Clock::now();
    p.status = Add(store, "fo", "e", "participate", p.variant, p.uuid);
    p.end = Clock::now();
    probes.push_back(p);
    if (p.status.ok()) {
      recovered_at = p.end;
      break;
    }
    if (promoted_at == Clock::time_point{} && cluster_->IsMaster(replica_)) {
      promoted_at = Clock::now();
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_NE(recovered_at, Clock::time_point{})
      << "no Add succeeded within 30 s of the crash: " << probes.back().status.ToString();
  if (promoted_at == Clock::time_point{}) promoted_at = recovered_at;
  std::cout << "[   INFO   ] replica promoted " << Millis(promoted_at - killed_at).count()
            << " ms, store recovered " << Millis(recovered_at - killed_at).count()
            << " ms after the crash\n";
  // The store notices by itself (a failed node triggers a refresh), not only through its
  // periodic refresh (30 s).
  EXPECT_LT(recovered_at - promoted_at, std::chrono::seconds(5));
  // Every surviving node sees the promoted replica; from then on every Add must succeed.
  ASSERT_TRUE(cluster_->WaitUntilMaster(replica_, std::chrono::seconds(30)));
  const Clock::time_point settled_at = Clock::now();
  // The store no longer counts the dead node among the masters (PING, SCAN go to live ones).
  EXPECT_OK(store.Health());
  auto namespaces = store.ListNamespaces();
  ASSERT_TRUE(namespaces.ok()) << namespaces.status().ToString();
  EXPECT_EQ(*namespaces, std::vector<std::string>{"fo"});
  std::this_thread::sleep_for(milliseconds(500));
  ASSERT_TRUE(traffic.Stop());

  // The dead master's pool is retired by the refresh that saw the promotion and destroyed once
  // unused: the store is back to 3 pools, so to the threads it had before the crash. (Before,
  // the dead node's workers stayed, retrying their connection, for the life of the store.)
  EXPECT_LE(WaitForThreadsAtMost(threads_before), threads_before)
      << "the dead node's pool was not destroyed";
  // The store still works after the pool was destroyed (and routes nothing to the dead node).
  EXPECT_OK(store.Health());
  EXPECT_OK(Add(store, "fo", "e", "participate", Traffic::Variant(0), "after-retirement"));
  EXPECT_LE(ThreadCount(), threads_before);

  EXPECT_EQ(cluster_->NodeForSlot(slot_), replica_);
  std::vector<Traffic::Done> done = traffic.done();
  done.insert(done.end(), probes.begin(), probes.end());
  EXPECT_TRUE(AllFailuresUnavailable(done));
  EXPECT_TRUE(NoFailureSince(done, settled_at));
  std::map<std::string, std::string> counted;
  int failed = 0;
  int after_on_master = 0;
  Clock::duration slowest{};
  for (const Traffic::Done& d : done) {
    slowest = std::max(slowest, d.end - d.start);
    if (!d.status.ok()) {
      ++failed;
      continue;
    }
    if (on_master_.contains(d.variant) && d.start < recovered_at) continue;  // see above
    auto [it, inserted] = counted.try_emplace(d.variant, hll::Empty());
    hll::Add(&it->second, d.uuid);
    if (on_master_.contains(d.variant)) ++after_on_master;
  }
  std::cout << "[   INFO   ] " << failed << " of " << done.size()
            << " Adds failed; slowest Add: " << Millis(slowest).count() << " ms\n";
  EXPECT_GT(failed, 0) << "the crash went unnoticed?";
  EXPECT_GT(after_on_master, 20) << "too few writes to the promoted replica";
  // No Add hangs: each is bounded by its deadline (start + the command timeout) plus, at worst,
  // the reply wait (the command timeout) of a command sent just before it. (A killed node's
  // connections are reset, so in practice failures come within milliseconds.)
  EXPECT_LT(slowest, milliseconds(2 * kCommandTimeoutMs + 500));
  ExpectCounted(store, counted);
}

}  // namespace
}  // namespace gimel::store
