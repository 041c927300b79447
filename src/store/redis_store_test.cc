// The redis store against a real redis-server (tests/support/redis_server.h), including the
// original Gimel's keyspace compatibility in both directions.
#include "store/redis_store.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "hll/hll.h"
#include "store/keys.h"
#include "store/redis_keyspace_store.h"
#include "support/redis_server.h"
#include "support/store_testing.h"

namespace gimel::store {
namespace {

using gimel::testing::RedisClient;
using gimel::testing::RedisReply;
using gimel::testing::RedisServer;
using gimel::testing::RedisServerOptions;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

uint64_t CountOf(const std::vector<Counter>& counters, std::string_view event,
                 std::string_view variant) {
  for (const Counter& c : counters) {
    if (c.event == event && c.variant == variant) return *hll::Count(c.hll);
  }
  return 0;
}

std::set<std::pair<std::string, std::string>> Names(const std::vector<Counter>& counters) {
  std::set<std::pair<std::string, std::string>> out;
  for (const Counter& c : counters) out.emplace(c.event, c.variant);
  return out;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()); }

  StoreOptions Options() const { return RedisTestOptions(server_.port(), server_.password()); }

  std::unique_ptr<Store> Open() { return OpenedOrNull(OpenRedisStore(Options())); }

  RedisServer server_;
};

// ---- Basics ---------------------------------------------------------------------------------

TEST_F(RedisStoreTest, AddThenReadCountsDistinctUuidsPerCounter) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->name(), "redis");
  EXPECT_TRUE(store->Health().ok());
  for (int i = 0; i < 300; ++i) {
    ASSERT_OK(Add(*store, "ns", "button", "participate", "red", std::to_string(i % 100)));
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK(Add(*store, "ns", "button", "clicked", "red", std::to_string(i)));
    ASSERT_OK(Add(*store, "ns", "button", "participate", "blue", Id("b", i)));
  }
  auto counters = store->ReadExperiment("ns", "button");
  ASSERT_TRUE(counters.ok()) << counters.status().ToString();
  ASSERT_EQ(counters->size(), 3u);
  EXPECT_EQ(CountOf(*counters, "participate", "red"), 100u);
  EXPECT_EQ(CountOf(*counters, "clicked", "red"), 20u);
  EXPECT_EQ(CountOf(*counters, "participate", "blue"), 20u);
  // Same answer as Redis's own PFCOUNT.
  RedisClient c = server_.Client();
  EXPECT_EQ(c.Command({"PFCOUNT", "ns:counters:button:participate:red"}).integer, 100);

  EXPECT_EQ(*store->ListExperiments("ns"), std::vector<std::string>{"button"});
  EXPECT_EQ(*store->ListNamespaces(), std::vector<std::string>{"ns"});
  EXPECT_TRUE(store->ReadExperiment("ns", "nope")->empty());
  EXPECT_TRUE(store->ListExperiments("other")->empty());
}

TEST_F(RedisStoreTest, NamesWithColonsSlashesSpacesAndNonAsciiRoundTrip) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::string ns = "my:ns/π";
  const std::string exp = "home:hero / ünïcode test";
  const std::vector<std::pair<std::string, std::string>> counters = {
      {"participate", "red:dark"},   // ':' in the variant
      {"goal:clicked", "red:dark"},  // ':' in both
      {"goal:clicked", "blue"},      // ':' in the event
      {"participate", "blue"},       // plain
      {"a b/c", "日本語"},           // spaces, '/', non-ASCII
      {"x:y:z", "1:2:3"},            // several ':'
      {"participate", "x:y:z:1:2"},  // same key suffix shape as the one above, different
  };
  int n = 1;
  for (const auto& [event, variant] : counters) {
    for (int i = 0; i < n; ++i) {
      ASSERT_OK(Add(*store, ns, exp, event, variant, Id("u", i)));
    }
    ++n;
  }
  auto read = store->ReadExperiment(ns, exp);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(Names(*read), std::set(counters.begin(), counters.end()));
  n = 1;
  for (const auto& [event, variant] : counters) {
    EXPECT_EQ(CountOf(*read, event, variant), static_cast<uint64_t>(n)) << event << "/" << variant;
    ++n;
  }
  EXPECT_EQ(*store->ListExperiments(ns), std::vector<std::string>{exp});
  EXPECT_EQ(*store->ListNamespaces(), std::vector<std::string>{ns});
}

TEST_F(RedisStoreTest, IndexIsWrittenOncePerCounterThenOnlyPfadd) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  RedisClient c = server_.Client();
  ASSERT_EQ(c.Command({"CONFIG", "RESETSTAT"}).str, "OK");
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK(Add(*store, "ns", "e", "participate", "a", std::to_string(i)));
  }
  ASSERT_OK(Add(*store, "ns", "e", "participate", "b:c", "x"));
  ASSERT_OK(Add(*store, "ns", "e", "participate", "b:c", "y"));
  const std::string stats = c.Command({"INFO", "commandstats"}).str;
  auto calls = [&stats](const std::string& cmd) {
    const size_t at = stats.find("cmdstat_" + cmd + ":calls=");
    if (at == std::string::npos) return 0;
    return std::atoi(stats.c_str() + at + cmd.size() + 15);
  };
  EXPECT_EQ(calls("pfadd"), 52);
  EXPECT_EQ(calls("sadd"), 6);  // 3 per counter
  EXPECT_EQ(calls("hset"), 1);  // only the counter with ':' in a name
  EXPECT_EQ(calls("exec"), 2);  // one MULTI/EXEC per new counter, plain PFADD afterwards
}

TEST_F(RedisStoreTest, DeleteRemovesExactlyOneExperiment) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // "e" is a prefix of "e:x" in the keyspace: deleting "e" must not touch "e:x".
  for (std::string exp : {"e", "e:x", "f"}) {
    ASSERT_OK(Add(*store, "ns", exp, "participate", "v", "1"));
    ASSERT_OK(Add(*store, "ns", exp, "goal", "v:w", "2"));
  }
  ASSERT_OK(Add(*store, "other", "e", "participate", "v", "1"));
  ASSERT_OK(store->DeleteExperiment("ns", "e"));
  EXPECT_TRUE(store->ReadExperiment("ns", "e")->empty());
  EXPECT_EQ(store->ReadExperiment("ns", "e:x")->size(), 2u);
  EXPECT_EQ(store->ReadExperiment("ns", "f")->size(), 2u);
  EXPECT_EQ(store->ReadExperiment("other", "e")->size(), 1u);
  EXPECT_EQ(Sorted(*store->ListExperiments("ns")), (std::vector<std::string>{"e:x", "f"}));

  RedisClient c = server_.Client();
  std::vector<std::string> keys = c.Command({"KEYS", "*"}).SortedStrings();
  EXPECT_EQ(keys,
            (std::vector<std::string>{
                "ns:counter_keys", "ns:counters:e:x:goal:v:w", "ns:counters:e:x:participate:v",
                "ns:counters:f:goal:v:w", "ns:counters:f:participate:v", "ns:e:x:counter_keys",
                "ns:e:x:counter_names", "ns:experiments", "ns:f:counter_keys", "ns:f:counter_names",
                "other:counter_keys", "other:counters:e:participate:v", "other:e:counter_keys",
                "other:experiments"}));
  EXPECT_EQ(c.Command({"SMEMBERS", "ns:counter_keys"}).SortedStrings().size(), 4u);

  // Deleting again, or deleting what never existed, is fine.
  EXPECT_OK(store->DeleteExperiment("ns", "e"));
  EXPECT_OK(store->DeleteExperiment("ns", "never"));
  // The index cache forgot "e": new events index it again.
  ASSERT_OK(Add(*store, "ns", "e", "participate", "v", "3"));
  EXPECT_EQ(store->ReadExperiment("ns", "e")->size(), 1u);
  EXPECT_EQ(Sorted(*store->ListExperiments("ns")), (std::vector<std::string>{"e", "e:x", "f"}));
}

TEST_F(RedisStoreTest, MergeCounterIsAUnionAndIdempotent) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(Add(*store, "ns", "e", "participate", "v:1", std::to_string(i)));
  }
  std::string other = hll::Empty();
  for (int i = 50; i < 250; ++i) hll::Add(&other, std::to_string(i));
  ASSERT_OK(store->MergeCounter("ns", "e", "participate", "v:1", other));
  auto once = store->ReadExperiment("ns", "e");
  ASSERT_TRUE(once.ok());
  ASSERT_OK(store->MergeCounter("ns", "e", "participate", "v:1", other));
  auto twice = store->ReadExperiment("ns", "e");
  ASSERT_TRUE(twice.ok());
  // The union of 0..249, as Redis counts it; and merging again changed no byte.
  RedisClient c = server_.Client();
  std::vector<std::string> ref = {"PFADD", "ref"};
  for (int i = 0; i < 250; ++i) ref.push_back(std::to_string(i));
  c.Command(ref);
  const auto want = static_cast<uint64_t>(c.Command({"PFCOUNT", "ref"}).integer);
  EXPECT_NEAR(static_cast<double>(want), 250.0, 5.0);
  EXPECT_EQ(CountOf(*once, "participate", "v:1"), want);
  EXPECT_EQ(CountOf(*twice, "participate", "v:1"), want);
  ASSERT_EQ(once->size(), 1u);
  ASSERT_EQ(twice->size(), 1u);
  std::array<uint8_t, hll::kRegisters> r1{};
  std::array<uint8_t, hll::kRegisters> r2{};
  ASSERT_OK(hll::DecodeRegisters((*once)[0].hll, r1));
  ASSERT_OK(hll::DecodeRegisters((*twice)[0].hll, r2));
  EXPECT_EQ(r1, r2);
  // Merging into a counter that does not exist creates and indexes it.
  ASSERT_OK(store->MergeCounter("ns2", "new", "goal", "a", other));
  EXPECT_EQ(CountOf(*store->ReadExperiment("ns2", "new"), "goal", "a"), *hll::Count(other));
  EXPECT_EQ(Sorted(*store->ListNamespaces()), (std::vector<std::string>{"ns", "ns2"}));
  // No scratch key is left behind, and invalid bytes are refused.
  EXPECT_TRUE(c.Command({"KEYS", "gimel:*"}).elements.empty());
  EXPECT_TRUE(store->MergeCounter("ns", "e", "participate", "x", "not an hll").IsInvalidArgument());
}

// ---- Failures -------------------------------------------------------------------------------

TEST_F(RedisStoreTest, StoreDownGivesUnavailableFastThenRecoversWithoutReopening) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(Add(*store, "ns", "e", "participate", "v", "before"));

  server_.Kill();
  for (int i = 0; i < 10; ++i) {
    const auto start = Clock::now();
    Status s = Add(*store, "ns", "e", "participate", "v", Id("down", i));
    EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
    EXPECT_LT(Clock::now() - start, milliseconds(1500));  // connect + command timeout
  }
  EXPECT_TRUE(store->Health().IsUnavailable());
  EXPECT_TRUE(store->ReadExperiment("ns", "e").status().IsUnavailable());
  EXPECT_TRUE(store->ReadExperiments("ns", {"e", "f"}).status().IsUnavailable());

  ASSERT_TRUE(server_.Start());  // same port, empty data (no persistence)
  Status s;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  do {
    s = Add(*store, "ns", "e", "participate", "v", "after");
    if (!s.ok()) std::this_thread::sleep_for(milliseconds(20));
  } while (!s.ok() && Clock::now() < deadline);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(store->Health().ok());
  auto read = store->ReadExperiment("ns", "e");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(CountOf(*read, "participate", "v"), 1u);
  // The restarted server came back empty: the store noticed the reconnection and wrote the
  // index again, though its cache had the counter as indexed.
  EXPECT_EQ(*store->ListExperiments("ns"), std::vector<std::string>{"e"});
}

TEST_F(RedisStoreTest, HungServerTimesOutWithUnavailable) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(Add(*store, "ns", "e", "participate", "v", "1"));
  server_.Pause();
  const auto start = Clock::now();
  Status s = Add(*store, "ns", "e", "participate", "v", "2");
  const auto took = Clock::now() - start;
  server_.Resume();
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_GE(took, milliseconds(400));
  EXPECT_LT(took, milliseconds(2000));
  // And it recovers once the server answers again.
  Status again;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  do {
    again = Add(*store, "ns", "e", "participate", "v", "3");
  } while (!again.ok() && Clock::now() < deadline);
  EXPECT_TRUE(again.ok()) << again.ToString();
}

TEST(RedisStoreOpen, UnreachableServerOpensAndReportsUnavailable) {
  StoreOptions o;
  o.kind = StoreOptions::Kind::kRedis;
  o.redis.port = gimel::testing::FreeLoopbackPort();
  o.redis.connect_timeout_ms = 200;
  o.redis.command_timeout_ms = 200;
  auto store = OpenRedisStore(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(Add(**store, "ns", "e", "participate", "v", "1").IsUnavailable());
  EXPECT_TRUE((*store)->Health().IsUnavailable());
  o.redis.connections = 0;
  EXPECT_TRUE(OpenRedisStore(o).status().IsInvalidArgument());
}

TEST(RedisStoreAuth, PasswordIsSentAndAWrongOneIsAClearError) {
  RedisServerOptions so;
  so.password = "s3cret pass";
  RedisServer server(so);
  ASSERT_TRUE(server.Start());
  StoreOptions o;
  o.kind = StoreOptions::Kind::kRedis;
  o.redis.port = server.port();
  o.redis.password = "s3cret pass";
  auto good = OpenRedisStore(o);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  ASSERT_OK(Add(**good, "ns", "e", "participate", "v", "1"));
  EXPECT_EQ(CountOf(*(*good)->ReadExperiment("ns", "e"), "participate", "v"), 1u);

  o.redis.password = "wrong";
  auto bad = OpenRedisStore(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(bad.status().message().find("authentication failed"), std::string::npos)
      << bad.status().message();

  o.redis.password.clear();
  auto none = OpenRedisStore(o);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(none.status().message().find("requires a password"), std::string::npos);

  // ACL form: AUTH username password.
  RedisClient admin = server.Client();
  ASSERT_EQ(admin.Command({"ACL", "SETUSER", "gimel", "on", ">pw", "~*", "+@all"}).str, "OK");
  o.redis.username = "gimel";
  o.redis.password = "pw";
  auto acl = OpenRedisStore(o);
  ASSERT_TRUE(acl.ok()) << acl.status().ToString();
  EXPECT_OK(Add(**acl, "ns", "e", "participate", "v", "2"));
  o.redis.password = "nope";
  EXPECT_EQ(OpenRedisStore(o).status().code(), StatusCode::kPermissionDenied);
}

TEST(RedisStoreOptions, UnixSocketAndSelectDb) {
  RedisServerOptions so;
  RedisServer server(so);
  ASSERT_TRUE(server.Start());
  server.Kill();
  // Restart with a unix socket in the server's own directory.
  RedisServerOptions with_socket;
  with_socket.extra_args = {"--unixsocket", server.dir() + "/redis.sock", "--unixsocketperm",
                            "700"};
  RedisServer server2(with_socket);
  ASSERT_TRUE(server2.Start());
  with_socket.extra_args[1] = server2.dir() + "/redis.sock";
  server2.Kill();
  RedisServer server3(with_socket);
  ASSERT_TRUE(server3.Start());

  StoreOptions o;
  o.kind = StoreOptions::Kind::kRedis;
  o.redis.unix_socket = server2.dir() + "/redis.sock";
  o.redis.host = "ignored.invalid";
  o.redis.db = 3;
  auto store = OpenRedisStore(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_OK(Add(**store, "ns", "e", "participate", "v", "1"));
  RedisClient c = server3.Client();
  EXPECT_EQ(c.Command({"DBSIZE"}).integer, 0);  // db 0 untouched
  ASSERT_EQ(c.Command({"SELECT", "3"}).str, "OK");
  EXPECT_EQ(c.Command({"PFCOUNT", "ns:counters:e:participate:v"}).integer, 1);
  o.redis.db = 100000;
  EXPECT_TRUE(OpenRedisStore(o).status().IsInvalidArgument());
}

TEST_F(RedisStoreTest, CorruptCounterIsReportedNotReturned) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(Add(*store, "ns", "e", "participate", "v", "1"));
  RedisClient c = server_.Client();
  ASSERT_EQ(c.Command({"SET", "ns:counters:e:participate:v", "HYLL garbage"}).str, "OK");
  EXPECT_TRUE(store->ReadExperiment("ns", "e").status().IsCorruption());
  ASSERT_EQ(c.Command({"DEL", "ns:counters:e:participate:v"}).integer, 1);
  ASSERT_EQ(c.Command({"HSET", "ns:counters:e:participate:v", "a", "b"}).integer, 1);
  EXPECT_TRUE(store->ReadExperiment("ns", "e").status().IsCorruption());
}

TEST_F(RedisStoreTest, DanglingIndexEntriesAndForeignKeysAreSkipped) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(Add(*store, "ns", "e", "participate", "v", "1"));
  RedisClient c = server_.Client();
  // An index entry whose counter was never written, and a key of another experiment.
  c.Command({"SADD", "ns:e:counter_keys", "ns:counters:e:goal:v", "ns:counters:zz:goal:v"});
  auto read = store->ReadExperiment("ns", "e");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(Names(*read), (std::set<std::pair<std::string, std::string>>{{"participate", "v"}}));
}

TEST_F(RedisStoreTest, ListNamespacesIgnoresCountersNamedExperiments) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // The counter key "a:counters:e:participate:experiments" ends in ":experiments" too.
  ASSERT_OK(Add(*store, "a", "e", "participate", "experiments", "1"));
  ASSERT_OK(Add(*store, "b:c", "e", "participate", "v", "1"));
  EXPECT_EQ(Sorted(*store->ListNamespaces()), (std::vector<std::string>{"a", "b:c"}));
}

TEST_F(RedisStoreTest, ConcurrentAddsFromManyThreadsAllLand) {
  StoreOptions o = Options();
  o.redis.command_timeout_ms = 5000;
  o.redis.connections = 3;
  auto opened = OpenRedisStore(o);
  ASSERT_TRUE(opened.ok());
  ExpectConcurrentAddsAllLand(**opened, "ns", "load", /*threads=*/8, /*per_thread=*/1000,
                              /*variants=*/4);
}

// ---- Compatibility with the original Gimel ---------------------------------------------------

// What gimel.py's track() sends (redis-py pipeline(), transaction=True → MULTI/EXEC).
void OriginalTrack(RedisClient& c, const std::string& ns, const std::string& experiment,
                   const std::string& event, const std::string& variant, const std::string& uuid) {
  const std::string key = ns + ":counters:" + experiment + ":" + event + ":" + variant;
  ASSERT_EQ(c.Command({"MULTI"}).str, "OK");
  c.Command({"SADD", ns + ":experiments", experiment});
  c.Command({"SADD", ns + ":counter_keys", key});
  c.Command({"SADD", ns + ":" + experiment + ":counter_keys", key});
  c.Command({"PFADD", key, uuid});
  RedisReply r = c.Command({"EXEC"});
  ASSERT_EQ(r.type, RedisReply::Type::kArray) << r.str;
}

// What gimel.py's _experiment_goals() computes from the keyspace: {(goal, variant): count}.
std::map<std::pair<std::string, std::string>, long long> OriginalResults(
    RedisClient& c, const std::string& ns, const std::string& experiment) {
  std::map<std::pair<std::string, std::string>, long long> out;
  for (const std::string& key :
       c.Command({"SMEMBERS", ns + ":" + experiment + ":counter_keys"}).SortedStrings()) {
    const size_t last = key.rfind(':');
    const size_t before = key.rfind(':', last - 1);
    out[{key.substr(before + 1, last - before - 1), key.substr(last + 1)}] =
        c.Command({"PFCOUNT", key}).integer;
  }
  return out;
}

TEST_F(RedisStoreTest, ReadsDataWrittenByTheOriginalGimel) {
  RedisClient c = server_.Client();
  std::map<std::pair<std::string, std::string>, long long> expected;
  for (int i = 0; i < 500; ++i) {
    const std::string variant = i % 3 == 0 ? "red" : "blue";
    OriginalTrack(c, "alephbet", "button color", "participate", variant, Id("u", i));
    if (i % 5 == 0) OriginalTrack(c, "alephbet", "button color", "clicked", variant, Id("u", i));
  }
  OriginalTrack(c, "alephbet", "home:hero", "participate", "a", "x");  // ':' in the experiment
  OriginalTrack(c, "other", "e", "signup", "b", "y");

  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto read = store->ReadExperiment("alephbet", "button color");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  auto original = OriginalResults(c, "alephbet", "button color");
  ASSERT_EQ(read->size(), original.size());
  for (const auto& [names, count] : original) {
    EXPECT_EQ(CountOf(*read, names.first, names.second), static_cast<uint64_t>(count));
  }
  EXPECT_EQ(CountOf(*read, "participate", "red"), 167u);
  auto hero = store->ReadExperiment("alephbet", "home:hero");
  ASSERT_TRUE(hero.ok());
  EXPECT_EQ(Names(*hero), (std::set<std::pair<std::string, std::string>>{{"participate", "a"}}));
  EXPECT_EQ(Sorted(*store->ListExperiments("alephbet")),
            (std::vector<std::string>{"button color", "home:hero"}));
  EXPECT_EQ(Sorted(*store->ListNamespaces()), (std::vector<std::string>{"alephbet", "other"}));

  // gimel keeps adding to the same counters, and deletes as the original does.
  ASSERT_OK(Add(*store, "alephbet", "button color", "participate", "red", "new"));
  EXPECT_EQ(c.Command({"PFCOUNT", "alephbet:counters:button color:participate:red"}).integer, 168);
  ASSERT_OK(store->DeleteExperiment("alephbet", "button color"));
  EXPECT_EQ(c.Command({"KEYS", "alephbet:*"}).SortedStrings(),
            (std::vector<std::string>{"alephbet:counter_keys",
                                      "alephbet:counters:home:hero:participate:a",
                                      "alephbet:experiments", "alephbet:home:hero:counter_keys"}));
  EXPECT_EQ(c.Command({"SMEMBERS", "alephbet:counter_keys"}).SortedStrings(),
            std::vector<std::string>{"alephbet:counters:home:hero:participate:a"});
}

TEST_F(RedisStoreTest, WritesExactlyTheOriginalGimelLayout) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 30; ++i) {
    ASSERT_OK(Add(*store, "alephbet", "button color", "participate", i % 2 ? "red" : "blue",
                  std::to_string(i)));
  }
  ASSERT_OK(Add(*store, "alephbet", "button color", "clicked", "red", "1"));

  RedisClient c = server_.Client();
  const std::string red = "alephbet:counters:button color:participate:red";
  const std::string blue = "alephbet:counters:button color:participate:blue";
  const std::string clicked = "alephbet:counters:button color:clicked:red";
  EXPECT_EQ(c.Command({"KEYS", "*"}).SortedStrings(),
            (std::vector<std::string>{"alephbet:button color:counter_keys", "alephbet:counter_keys",
                                      clicked, blue, red, "alephbet:experiments"}));
  EXPECT_EQ(c.Command({"SMEMBERS", "alephbet:experiments"}).SortedStrings(),
            std::vector<std::string>{"button color"});
  const std::vector<std::string> all = {clicked, blue, red};
  EXPECT_EQ(c.Command({"SMEMBERS", "alephbet:counter_keys"}).SortedStrings(), all);
  EXPECT_EQ(c.Command({"SMEMBERS", "alephbet:button color:counter_keys"}).SortedStrings(), all);
  for (const std::string& key : all) {
    EXPECT_EQ(c.Command({"TYPE", key}).str, "string");
    EXPECT_EQ(c.Command({"GET", key}).str.substr(0, 4), "HYLL");
  }
  EXPECT_EQ(c.Command({"PFCOUNT", red}).integer, 15);
  // The original's report over gimel's data.
  auto original = OriginalResults(c, "alephbet", "button color");
  EXPECT_EQ(
      original,
      (std::map<std::pair<std::string, std::string>, long long>{
          {{"clicked", "red"}, 1}, {{"participate", "blue"}, 15}, {{"participate", "red"}, 15}}));

  // Only a name with ':' adds gimel's name index, as a HASH counter key → event.
  ASSERT_OK(Add(*store, "alephbet", "button color", "goal:x", "red", "1"));
  EXPECT_EQ(c.Command({"TYPE", "alephbet:button color:counter_names"}).str, "hash");
  EXPECT_EQ(c.Command({"HGETALL", "alephbet:button color:counter_names"}).SortedStrings(),
            (std::vector<std::string>{"alephbet:counters:button color:goal:x:red", "goal:x"}));
}

// ---- ReadExperiments -------------------------------------------------------------------------

// experiment → (event, variant) → distinct uuids added.
using Model = std::map<std::string, std::map<std::pair<std::string, std::string>, uint64_t>>;

// Adds (i + j) % 5 + 1 distinct uuids to counter j of experiment i, all at once (many Adds in
// flight, as under load), and records them in *model.
void AddAll(Store& store, std::string_view ns, const std::vector<std::string>& experiments,
            const std::vector<std::pair<std::string, std::string>>& counters, Model* model) {
  auto uuids = [](size_t i, size_t j) { return (i + j) % 5 + 1; };
  int total = 0;
  for (size_t i = 0; i < experiments.size(); ++i) {
    for (size_t j = 0; j < counters.size(); ++j) total += static_cast<int>(uuids(i, j));
  }
  std::atomic<int> pending{total};
  std::atomic<int> failed{0};
  std::promise<void> all_done;
  for (size_t i = 0; i < experiments.size(); ++i) {
    for (size_t j = 0; j < counters.size(); ++j) {
      const auto& [event, variant] = counters[j];
      (*model)[experiments[i]][{event, variant}] = uuids(i, j);
      for (size_t u = 0; u < uuids(i, j); ++u) {
        const std::string uuid = Id("u", static_cast<int>(u));
        store.Add({ns, experiments[i], event, variant, uuid}, [&](Status s) {
          if (!s.ok()) failed.fetch_add(1);
          if (pending.fetch_sub(1) == 1) all_done.set_value();
        });
      }
    }
  }
  if (total > 0) {
    ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  }
  ASSERT_EQ(failed.load(), 0);
}

std::vector<std::tuple<std::string, std::string, std::string>> SortedCounters(
    const std::vector<Counter>& counters) {
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  for (const Counter& c : counters) out.emplace_back(c.event, c.variant, c.hll);
  std::sort(out.begin(), out.end());
  return out;
}

// ReadExperiments(ns, names) answers, for each name, what ReadExperiment does and what the
// model holds (nothing for an experiment it does not know).
void ExpectReadExperimentsMatches(Store& store, std::string_view ns,
                                  const std::vector<std::string>& names, const Model& model) {
  auto batched = store.ReadExperiments(ns, names);
  ASSERT_TRUE(batched.ok()) << batched.status().ToString();
  ASSERT_EQ(batched->size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    auto single = store.ReadExperiment(ns, names[i]);
    ASSERT_TRUE(single.ok()) << names[i] << ": " << single.status().ToString();
    EXPECT_EQ(SortedCounters((*batched)[i]), SortedCounters(*single)) << names[i];
    std::map<std::pair<std::string, std::string>, uint64_t> counts;
    for (const Counter& c : (*batched)[i]) counts[{c.event, c.variant}] = *hll::Count(c.hll);
    auto it = model.find(names[i]);
    EXPECT_EQ(counts, it == model.end() ? Model::mapped_type{} : it->second) << names[i];
  }
}

// Experiment names that stress the keyspace: ':' (also as a prefix of another experiment's
// keys), spaces, '/', non-ASCII.
std::vector<std::string> TrickyExperiments(int generated) {
  std::vector<std::string> names = {"e",         "e:x",         "with:colon:s", "a b/c",
                                    "ünïcode π", "日本語:実験", "x:y:z",        "plain"};
  for (int i = 0; i < generated; ++i) names.push_back(Id("gen-", i));
  return names;
}

const std::vector<std::pair<std::string, std::string>> kTrickyCounters = {
    {"participate", "red"},   {"participate", "red:dark"}, {"goal:clicked", "red:dark"},
    {"goal:clicked", "blue"}, {"a b/c", "日本語"},         {"x:y", "1:2"}};

TEST_F(RedisStoreTest, ReadExperimentsMatchesReadExperimentForEachName) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::string ns = "ns:π";
  const std::vector<std::string> experiments = TrickyExperiments(40);
  Model model;
  AddAll(*store, ns, experiments, kTrickyCounters, &model);
  // An experiment written by the original Gimel, an index entry whose counter was never
  // written and a foreign key in an index (both skipped, as ReadExperiment does).
  RedisClient c = server_.Client();
  OriginalTrack(c, ns, "original", "participate", "a", "x");
  OriginalTrack(c, ns, "original", "goal", "a", "x");
  model["original"] = {{{"participate", "a"}, 1}, {{"goal", "a"}, 1}};
  c.Command({"SADD", ns + ":plain:counter_keys", ns + ":counters:plain:goal:v",
             ns + ":counters:zz:goal:v"});

  std::vector<std::string> names = Sorted(*store->ListExperiments(ns));
  ASSERT_EQ(names.size(), experiments.size() + 1);
  ExpectReadExperimentsMatches(*store, ns, names, model);
  // Any order, duplicates, unknown experiments (also in another namespace).
  std::vector<std::string> mixed = {"never", "e:x", "original", "e:x", "", "e"};
  mixed.insert(mixed.end(), experiments.rbegin(), experiments.rend());
  ExpectReadExperimentsMatches(*store, ns, mixed, model);
  ExpectReadExperimentsMatches(*store, "other", mixed, Model{});
  ExpectReadExperimentsMatches(*store, ns, {"never"}, model);

  // An empty list is answered without a command.
  ASSERT_EQ(c.Command({"CONFIG", "RESETSTAT"}).str, "OK");
  auto none = store->ReadExperiments(ns, {});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(c.Command({"INFO", "commandstats"}).str.find("cmdstat_smembers"), std::string::npos);
}

TEST_F(RedisStoreTest, ReadExperimentsSplitsLargeReadsIntoSeveralPipelines) {
  StoreOptions options = Options();
  options.redis.command_timeout_ms = 10000;  // AddAll sends ~12,000 Adds at once
  auto opened = OpenRedisStore(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto store = std::move(opened).value();
  // 2 index reads per experiment and 2 GETs: both phases exceed one pipeline.
  const size_t n = redis::RedisKeyspaceStore::kMaxReadPipeline / 2 + 50;
  std::vector<std::string> experiments;
  for (size_t i = 0; i < n; ++i) experiments.push_back(Id("exp:", static_cast<int>(i)));
  Model model;
  AddAll(*store, "ns", experiments, {{"participate", "v"}, {"goal:x", "v"}}, &model);
  RedisClient c = server_.Client();
  ASSERT_EQ(c.Command({"CONFIG", "RESETSTAT"}).str, "OK");
  auto read = store->ReadExperiments("ns", experiments);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), n);
  for (size_t i = 0; i < n; ++i) {
    std::map<std::pair<std::string, std::string>, uint64_t> counts;
    for (const Counter& counter : (*read)[i]) {
      counts[{counter.event, counter.variant}] = *hll::Count(counter.hll);
    }
    ASSERT_EQ(counts, model[experiments[i]]) << experiments[i];
  }
  // Each command was sent once.
  const std::string stats = c.Command({"INFO", "commandstats"}).str;
  EXPECT_NE(stats.find("cmdstat_smembers:calls=" + std::to_string(n) + ","), std::string::npos)
      << stats;
  EXPECT_NE(stats.find("cmdstat_get:calls=" + std::to_string(2 * n) + ","), std::string::npos)
      << stats;
}

TEST_F(RedisStoreTest, ReadExperimentsFailsAsReadingOneByOneWould) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Model model;
  AddAll(*store, "ns", {"a", "b", "c", "d", "e"}, {{"participate", "v"}, {"goal", "v:w"}}, &model);
  RedisClient c = server_.Client();
  // "b": a counter that is not an HLL; "d": an index that is not a set (WRONGTYPE).
  ASSERT_EQ(c.Command({"SET", "ns:counters:b:goal:v:w", "HYLL garbage"}).str, "OK");
  ASSERT_EQ(c.Command({"DEL", "ns:d:counter_keys"}).integer, 1);
  ASSERT_EQ(c.Command({"SET", "ns:d:counter_keys", "x"}).str, "OK");

  const std::vector<std::vector<std::string>> cases = {{"a", "b", "c", "d", "e"},
                                                       {"a", "c", "d", "b", "e"},
                                                       {"d", "b"},
                                                       {"b", "d"},
                                                       {"d"},
                                                       {"e", "b"},
                                                       {"a", "c", "e"}};
  for (const std::vector<std::string>& names : cases) {
    auto batched = store->ReadExperiments("ns", names);
    auto one_by_one = store->Store::ReadExperiments("ns", names);  // the default: a loop
    ASSERT_EQ(batched.ok(), one_by_one.ok()) << ::testing::PrintToString(names);
    if (batched.ok()) {
      ASSERT_EQ(batched->size(), names.size());
      for (size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(SortedCounters((*batched)[i]), SortedCounters((*one_by_one)[i])) << names[i];
      }
    } else {
      EXPECT_EQ(batched.status().ToString(), one_by_one.status().ToString())
          << ::testing::PrintToString(names);
    }
  }
  Status bad_counter = store->ReadExperiments("ns", {"a", "b", "c", "d"}).status();
  EXPECT_TRUE(bad_counter.IsCorruption());
  EXPECT_NE(bad_counter.message().find("ns:counters:b:goal:v:w"), std::string::npos)
      << bad_counter.ToString();
  Status bad_index = store->ReadExperiments("ns", {"a", "c", "d", "b"}).status();
  EXPECT_TRUE(bad_index.IsCorruption());
  EXPECT_NE(bad_index.message().find("SMEMBERS ns:d:counter_keys"), std::string::npos)
      << bad_index.ToString();
}

// The redis-cluster store shares RedisKeyspaceStore: its reads are routed key by key, an
// experiment's keys living on different nodes. (Here rather than in cluster_store_test.cc to
// keep the ReadExperiments tests together.)
TEST(RedisClusterReadExperiments, MatchesReadExperimentAcrossSlotsAndPipelines) {
  gimel::testing::RedisCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  StoreOptions o;
  o.kind = StoreOptions::Kind::kRedisCluster;
  o.cluster_nodes = {cluster.addresses()[0]};
  o.redis.connect_timeout_ms = 500;
  o.redis.command_timeout_ms = 2000;
  auto opened = OpenRedisClusterStore(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  const std::string ns = "ns:π";
  Model model;
  AddAll(store, ns, TrickyExperiments(30), kTrickyCounters, &model);
  std::vector<std::string> names = Sorted(*store.ListExperiments(ns));
  ASSERT_EQ(names.size(), model.size());
  names.push_back("never");
  ExpectReadExperimentsMatches(store, ns, names, model);
  auto none = store.ReadExperiments(ns, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  // More index reads than one pipeline holds.
  std::vector<std::string> many;
  for (size_t i = 0; i < redis::RedisKeyspaceStore::kMaxReadPipeline / 2 + 50; ++i) {
    many.push_back(Id("many:", static_cast<int>(i)));
  }
  Model many_model;
  AddAll(store, "big", many, {{"participate", "v"}}, &many_model);
  auto read = store.ReadExperiments("big", many);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), many.size());
  for (size_t i = 0; i < many.size(); ++i) {
    const uint64_t want = many_model[many[i]][{"participate", "v"}];
    ASSERT_EQ(CountOf((*read)[i], "participate", "v"), want) << many[i];
  }
}

// ---- Keyspace (store/keys.h) -----------------------------------------------------------------

TEST(RedisKeys, SpellTheOriginalGimelKeys) {
  EXPECT_EQ(keys::ExperimentsKey("ns"), "ns:experiments");
  EXPECT_EQ(keys::NamespaceCounterKeysKey("ns"), "ns:counter_keys");
  EXPECT_EQ(keys::ExperimentCounterKeysKey("ns", "e"), "ns:e:counter_keys");
  EXPECT_EQ(keys::CounterKey("ns", "e", "ev", "v"), "ns:counters:e:ev:v");
  EXPECT_EQ(keys::CounterNamesKey("ns", "e"), "ns:e:counter_names");
  EXPECT_EQ(keys::CounterPrefix("ns", "e"), "ns:counters:e:");
}

TEST(RedisKeys, ParseCounterKeyUsesTheRecordedEventThenTheLastColon) {
  const std::string p = keys::CounterPrefix("ns", "e");
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(keys::ParseCounterKey(p, "ns:counters:e:ev:v", std::nullopt), P("ev", "v"));
  EXPECT_EQ(keys::ParseCounterKey(p, "ns:counters:e:a:b:c", std::string_view("a")), P("a", "b:c"));
  EXPECT_EQ(keys::ParseCounterKey(p, "ns:counters:e:a:b:c", std::nullopt), P("a:b", "c"));
  // A recorded event that does not match the key is ignored.
  EXPECT_EQ(keys::ParseCounterKey(p, "ns:counters:e:a:b:c", std::string_view("zz")), P("a:b", "c"));
  EXPECT_EQ(keys::ParseCounterKey(p, "ns:counters:e:ev:", std::nullopt), P("ev", ""));
  EXPECT_EQ(keys::ParseCounterKey(p, "ns:counters:e:novariant", std::nullopt), std::nullopt);
  EXPECT_EQ(keys::ParseCounterKey(p, "ns:counters:f:ev:v", std::nullopt), std::nullopt);
  EXPECT_EQ(keys::NamespaceFromExperimentsKey("a:b:experiments"), "a:b");
  EXPECT_EQ(keys::NamespaceFromExperimentsKey("a:counter_keys"), std::nullopt);
}

TEST(RedisKeys, HashSlotMatchesRedisCluster) {
  EXPECT_EQ(keys::Crc16("123456789"), 0x31C3);  // CRC-16/XMODEM check value
  EXPECT_EQ(keys::HashSlot("foo"), 12182u);     // CLUSTER KEYSLOT foo
  EXPECT_EQ(keys::HashSlot("{user1000}.following"), keys::HashSlot("{user1000}.followers"));
  EXPECT_EQ(keys::HashSlot("{}x"), keys::HashSlot("{}x"));
  EXPECT_NE(keys::HashSlot("a{}b"), keys::HashSlot("b"));  // empty tag: whole key hashed
  for (std::string key : {"ns:counters:e:participate:v", "x{y}z", "{}", ""}) {
    EXPECT_EQ(keys::HashSlot(keys::MergeTmpKey(key)), keys::HashSlot(key)) << key;
  }
}

}  // namespace
}  // namespace gimel::store
