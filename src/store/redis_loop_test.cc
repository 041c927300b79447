// The redis store's hot path on an I/O thread's own event loop (store/redis_loop.h), against a
// real redis-server: events added from a thread running a Loop go out on that loop's connection
// and complete on that thread; failures (server down, restarted, hung, refusing AUTH), closing
// the store and stopping the loop complete every event exactly once.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "common/loop.h"
#include "store/redis_store.h"
#include "support/redis_server.h"
#include "support/store_testing.h"

namespace gimel::store {
namespace {

namespace asio = boost::asio;
using gimel::testing::RedisClient;
using gimel::testing::RedisServer;
using gimel::testing::RedisServerOptions;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A thread running an io_context with a Loop, as an HTTP I/O thread does.
class LoopThread {
 public:
  LoopThread()
      : work_(asio::make_work_guard(context_)), thread_([this] {
          Loop loop(context_);
          context_.run();
        }) {}
  ~LoopThread() { Stop(); }

  // Stops the loop (what is queued in it does not run) and joins the thread.
  void Stop() {
    if (!thread_.joinable()) return;
    work_.reset();
    context_.stop();
    thread_.join();
  }

  std::thread::id id() const { return thread_.get_id(); }

  // Runs f on the loop and waits for it.
  void Run(std::function<void()> f) {
    std::promise<void> ran;
    asio::post(context_, [&] {
      f();
      ran.set_value();
    });
    ran.get_future().wait();
  }

 private:
  asio::io_context context_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

// The outcome of events added together: each one's Status, and whether every callback ran on
// the loop's thread. Completes when every callback has run (or after 10 s, with done false).
struct Batch {
  std::mutex mu;
  std::vector<Status> statuses;
  int calls = 0;
  bool all_on_loop = true;
  std::promise<void> all_done;
  int expected = 0;

  bool Wait(milliseconds timeout = milliseconds(10000)) {
    return all_done.get_future().wait_for(timeout) == std::future_status::ready;
  }
  int ok() {
    std::lock_guard<std::mutex> lock(mu);
    int n = 0;
    for (const Status& s : statuses) n += s.ok() ? 1 : 0;
    return n;
  }
};

// Adds n participate events (uuids prefix0..prefix{n-1}) to ns/e/v from the loop, all in one
// turn of it; returns without waiting for them.
std::shared_ptr<Batch> AddOnLoop(LoopThread& loop, Store& store, int n, const std::string& prefix) {
  auto batch = std::make_shared<Batch>();
  batch->expected = n;
  const std::thread::id loop_id = loop.id();
  loop.Run([&store, batch, n, prefix, loop_id] {
    for (int i = 0; i < n; ++i) {
      const std::string uuid = prefix + std::to_string(i);
      store.Add({"ns", "e", "participate", "v", uuid}, [batch, loop_id](Status s) {
        std::lock_guard<std::mutex> lock(batch->mu);
        batch->statuses.push_back(std::move(s));
        if (std::this_thread::get_id() != loop_id) batch->all_on_loop = false;
        if (++batch->calls == batch->expected) batch->all_done.set_value();
      });
    }
  });
  return batch;
}

// One event added from the loop; its Status.
Status AddOneOnLoop(LoopThread& loop, Store& store, const std::string& uuid) {
  auto batch = AddOnLoop(loop, store, 1, uuid);
  if (!batch->Wait()) return Status::Internal("no callback");
  return batch->statuses[0];
}

// For the events that set a test up: these tests use a 500 ms command timeout (so that hung
// servers fail fast), which a loaded machine (tests in parallel) can exceed while the first
// connections are made; such an event is retried (uuids are idempotent) for up to 10 s.
template <typename AddFn>
Status UntilNotUnavailable(AddFn add) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  Status s;
  do {
    s = add();
  } while (s.IsUnavailable() && Clock::now() < deadline);
  return s;
}

class RedisLoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()); }

  StoreOptions Options() const {
    StoreOptions o = RedisTestOptions(server_.port(), server_.password());
    o.redis.connections = 2;
    return o;
  }

  std::unique_ptr<Store> Open(const StoreOptions& o) { return OpenedOrNull(OpenRedisStore(o)); }

  // Connections to the server, other than the one asking.
  int Clients() {
    RedisClient c = server_.Client();
    const std::string info = c.Command({"INFO", "clients"}).str;
    const size_t at = info.find("connected_clients:");
    if (at == std::string::npos) return -1;
    return std::stoi(info.substr(at + 18)) - 1;
  }

  // Opens store_, writes the counter's index (the first event of a counter goes through the
  // pool) and connects loop_'s connection, so that later events of the counter go out on it.
  void OpenReady() {
    store_ = Open(Options());
    ASSERT_NE(store_, nullptr);
    ASSERT_OK(
        UntilNotUnavailable([&] { return Add(*store_, "ns", "e", "participate", "v", "first"); }));
    ASSERT_OK(UntilNotUnavailable([&] { return AddOneOnLoop(loop_, *store_, "warm"); }));
  }

  RedisServer server_;
  LoopThread loop_;
  std::unique_ptr<Store> store_;
};

TEST_F(RedisLoopTest, EventsFromALoopGoOutOnItsConnectionAndCompleteOnIt) {
  auto store = Open(Options());
  ASSERT_NE(store, nullptr);
  // The first event of a counter also writes its index, through the pool.
  ASSERT_OK(
      UntilNotUnavailable([&] { return Add(*store, "ns", "e", "participate", "v", "first"); }));
  const int pool_clients = Clients();
  EXPECT_EQ(pool_clients, 2);
  // The loop's first connection may reach a server that restarted empty: events in flight
  // then write their index again (through the pool) before completing. Connect it first.
  ASSERT_OK(UntilNotUnavailable([&] { return AddOneOnLoop(loop_, *store, "warm"); }));

  auto batch = AddOnLoop(loop_, *store, 500, "u");
  ASSERT_TRUE(batch->Wait());
  EXPECT_EQ(batch->ok(), 500);
  EXPECT_TRUE(batch->all_on_loop);  // the pool's workers would have completed them
  EXPECT_EQ(Clients(), pool_clients + 1);

  // A second loop has its own connection.
  LoopThread other;
  ASSERT_OK(UntilNotUnavailable([&] { return AddOneOnLoop(other, *store, "warm2"); }));
  auto more = AddOnLoop(other, *store, 100, "w");
  ASSERT_TRUE(more->Wait());
  EXPECT_EQ(more->ok(), 100);
  EXPECT_TRUE(more->all_on_loop);
  EXPECT_EQ(Clients(), pool_clients + 2);

  // Every event landed: the counter equals an HLL of the same uuids added by hand.
  std::vector<std::string> reference = {"PFADD", "reference", "first", "warm0", "warm20"};
  for (int i = 0; i < 500; ++i) reference.push_back(Id("u", i));
  for (int i = 0; i < 100; ++i) reference.push_back(Id("w", i));
  RedisClient c = server_.Client();
  c.Command(reference);
  EXPECT_EQ(c.Command({"GET", "ns:counters:e:participate:v"}).str,
            c.Command({"GET", "reference"}).str);
  auto read = store->ReadExperiment("ns", "e");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(*hll::Count((*read)[0].hll), c.Command({"PFCOUNT", "reference"}).integer);
}

TEST_F(RedisLoopTest, AServerRestartIsNoticedWhileIdleAndCostsNoEvent) {
  ASSERT_NO_FATAL_FAILURE(OpenReady());
  auto& store = store_;

  server_.Kill();
  ASSERT_TRUE(server_.Start());  // same port, empty
  // The loop saw its connection close while idle: the next event reconnects, and (the server
  // may have lost the index) writes the index again.
  ASSERT_OK(AddOneOnLoop(loop_, *store, "after"));
  RedisClient c = server_.Client();
  EXPECT_EQ(c.Command({"PFCOUNT", "ns:counters:e:participate:v"}).integer, 1);
  EXPECT_EQ(*store->ListExperiments("ns"), std::vector<std::string>{"e"});
}

TEST_F(RedisLoopTest, ADownServerFailsEventsAtOnceDuringTheBackoff) {
  ASSERT_NO_FATAL_FAILURE(OpenReady());
  auto& store = store_;
  server_.Kill();
  loop_.Run([] {});
  std::this_thread::sleep_for(milliseconds(50));  // the loop sees its connection close
  Status first = AddOneOnLoop(loop_, *store, "1");
  EXPECT_TRUE(first.IsUnavailable()) << first.ToString();
  EXPECT_NE(first.message().find("cannot connect"), std::string::npos) << first.message();
  // Within the backoff, without trying to connect again: the same answer, at once, on the loop.
  auto batch = AddOnLoop(loop_, *store, 50, "x");
  ASSERT_TRUE(batch->Wait());
  EXPECT_EQ(batch->ok(), 0);
  EXPECT_TRUE(batch->all_on_loop);
  for (const Status& s : batch->statuses) EXPECT_EQ(s.message(), first.message());
}

TEST_F(RedisLoopTest, AHungServerTimesOutThenTheLoopRecovers) {
  ASSERT_NO_FATAL_FAILURE(OpenReady());
  auto& store = store_;
  server_.Pause();
  const auto start = Clock::now();
  auto batch = AddOnLoop(loop_, *store, 20, "h");
  const bool done = batch->Wait();
  const auto took = Clock::now() - start;
  server_.Resume();
  ASSERT_TRUE(done);
  EXPECT_EQ(batch->ok(), 0);
  for (const Status& s : batch->statuses) {
    EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
    EXPECT_NE(s.message().find("timed out"), std::string::npos) << s.message();
  }
  EXPECT_GE(took, milliseconds(450));
  EXPECT_LT(took, milliseconds(3000));
  Status again;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  do {
    again = AddOneOnLoop(loop_, *store, "again");
  } while (!again.ok() && Clock::now() < deadline);
  EXPECT_TRUE(again.ok()) << again.ToString();
}

TEST_F(RedisLoopTest, ClosingTheStoreCompletesEventsInFlightOnce) {
  ASSERT_NO_FATAL_FAILURE(OpenReady());
  auto& store = store_;
  server_.Pause();
  auto batch = AddOnLoop(loop_, *store, 50, "c");
  loop_.Run([] {});  // they have been written
  store.reset();     // from another thread than the loop's
  // Every callback ran before the store was gone.
  ASSERT_TRUE(batch->Wait(milliseconds(0)));
  EXPECT_EQ(batch->calls, 50);
  for (const Status& s : batch->statuses) EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  server_.Resume();
  loop_.Run([] {});  // the loop carries on
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(batch->calls, 50);  // and nothing completes twice
}

TEST_F(RedisLoopTest, StoppingTheLoopCompletesEventsInFlight) {
  auto store = Open(Options());
  ASSERT_NE(store, nullptr);
  ASSERT_OK(
      UntilNotUnavailable([&] { return Add(*store, "ns", "e", "participate", "v", "first"); }));
  server_.Pause();
  auto batch = AddOnLoop(loop_, *store, 30, "s");
  loop_.Stop();
  ASSERT_TRUE(batch->Wait(milliseconds(0)));
  EXPECT_EQ(batch->calls, 30);
  for (const Status& s : batch->statuses) EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  server_.Resume();
  store.reset();
  EXPECT_EQ(batch->calls, 30);
}

TEST(RedisLoopHandshake, AuthAndSelectOverAUnixSocket) {
  char dir_template[] = "/tmp/gimel-loop-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  RedisServerOptions so;
  so.password = "pw";
  so.extra_args = {"--unixsocket", dir + "/redis.sock", "--unixsocketperm", "700"};
  RedisServer server(so);
  ASSERT_TRUE(server.Start());
  LoopThread loop;
  {
    StoreOptions o;
    o.kind = StoreOptions::Kind::kRedis;
    o.redis.unix_socket = dir + "/redis.sock";
    o.redis.password = "pw";
    o.redis.db = 2;
    auto store = OpenRedisStore(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_OK(Add(**store, "ns", "e", "participate", "v", "first"));
    ASSERT_OK(AddOneOnLoop(loop, **store, "warm"));
    auto batch = AddOnLoop(loop, **store, 40, "a");
    ASSERT_TRUE(batch->Wait());
    EXPECT_EQ(batch->ok(), 40);
    EXPECT_TRUE(batch->all_on_loop);
    RedisClient c = server.Client();
    EXPECT_EQ(c.Command({"DBSIZE"}).integer, 0);  // db 0 untouched
    ASSERT_EQ(c.Command({"SELECT", "2"}).str, "OK");
    EXPECT_EQ(c.Command({"PFCOUNT", "ns:counters:e:participate:v"}).integer, 42);

    // The password changes and the loop's connection is dropped: its reconnection's AUTH is
    // refused, and the events waiting for it say why.
    ASSERT_EQ(c.Command({"CONFIG", "SET", "requirepass", "other"}).str, "OK");
    c.Command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
    loop.Run([] {});
    std::this_thread::sleep_for(milliseconds(50));  // the loop sees its connection close
    Status refused = AddOneOnLoop(loop, **store, "refused");
    EXPECT_TRUE(refused.IsUnavailable()) << refused.ToString();
    EXPECT_NE(refused.message().find("authentication failed"), std::string::npos)
        << refused.message();
  }
  loop.Stop();
  server.Kill();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gimel::store
