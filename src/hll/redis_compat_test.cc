// gimel's HLL against a real redis-server (DESIGN.md §2): for the same elements gimel's bytes
// equal Redis's after PFADD, PFCOUNT (cache written) and PFMERGE, counts equal PFCOUNT, and
// bytes move both ways with GET/SET.
//
// The test starts its own redis-server (PATH, or $GIMEL_REDIS_SERVER) on a free local port,
// without persistence, and kills it when the suite ends; the server also dies with the test
// process (PR_SET_PDEATHSIG), so a crash leaves nothing behind.
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "hll/dense.h"
#include "hll/format.h"
#include "hll/hll.h"
#include "hll/testing.h"

namespace gimel::hll {
namespace {

using testing::ElementFor;
using testing::SplitMix64;

// ---- redis-server process ----------------------------------------------------------------------

int FreeLocalPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

class RedisServer {
 public:
  ~RedisServer() { Stop(); }

  // Starts the server and waits until it answers PING. Error: a message, or "" on success.
  std::string Start() {
    const char* env = std::getenv("GIMEL_REDIS_SERVER");
    const std::string binary = env != nullptr && *env != '\0' ? env : "redis-server";
    std::string error;
    for (int attempt = 0; attempt < 3; ++attempt) {  // another process may grab the port
      port_ = FreeLocalPort();
      if (port_ < 0) return "no free local port";
      error = Spawn(binary);
      if (error.empty()) return "";
      Stop();
    }
    return error;
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  int port() const { return port_; }

 private:
  std::string Spawn(const std::string& binary) {
    const std::string port = std::to_string(port_);
    std::vector<std::string> args = {binary,      "--port",     port,     "--bind",
                                     "127.0.0.1", "--save",     "",       "--appendonly",
                                     "no",        "--loglevel", "warning"};
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      const int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "redis-server exited (status " + std::to_string(status) + "); is '" + binary +
               "' installed? (set GIMEL_REDIS_SERVER)";
      }
      timeval tv{0, 200'000};
      redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
      if (c != nullptr && c->err == 0) {
        auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
        const bool up = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
        if (reply != nullptr) freeReplyObject(reply);
        redisFree(c);
        if (up) return "";
      } else if (c != nullptr) {
        redisFree(c);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "redis-server did not answer PING within 10 s";
  }

  pid_t pid_ = -1;
  int port_ = -1;
};

// ---- Client ------------------------------------------------------------------------------------

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class Client {
 public:
  explicit Client(int port) {
    timeval tv{30, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
  }
  ~Client() {
    if (c_ != nullptr) redisFree(c_);
  }
  bool ok() const { return c_ != nullptr && c_->err == 0; }

  void Append(const std::vector<std::string_view>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (std::string_view a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c_, static_cast<int>(args.size()), argv.data(), lens.data());
  }

  Reply Read() {
    void* r = nullptr;
    if (redisGetReply(c_, &r) != REDIS_OK) return nullptr;
    return Reply(static_cast<redisReply*>(r));
  }

  Reply Run(const std::vector<std::string_view>& args) {
    Append(args);
    return Read();
  }

  // GET key as bytes ("" for a missing key).
  std::string Get(std::string_view key) {
    Reply r = Run({"GET", key});
    if (r == nullptr || r->type != REDIS_REPLY_STRING) return "";
    return std::string(r->str, r->len);
  }

  // An integer reply, or -1 on error (with the error text added to the test's failures).
  long long Int(const std::vector<std::string_view>& args) {
    Reply r = Run(args);
    if (r == nullptr) {
      ADD_FAILURE() << "connection error: " << c_->errstr;
      return -1;
    }
    if (r->type != REDIS_REPLY_INTEGER) {
      ADD_FAILURE() << args[0] << ": " << std::string(r->str ? r->str : "", r->len);
      return -1;
    }
    return r->integer;
  }

 private:
  redisContext* c_ = nullptr;
};

// ---- Element sets ---------------------------------------------------------------------------

// Element i of a set (deterministic), written into *out.
using Generator = std::function<void(uint64_t i, std::string* out)>;

struct ElementSet {
  std::string name;
  uint64_t adds;  // number of PFADD'ed elements, duplicates included
  Generator gen;
};

// gtest prints parameters of failing tests; the name says it all.
void PrintTo(const ElementSet& set, std::ostream* os) { *os << set.name; }

void Uuid(uint64_t i, std::string* out) {
  const uint64_t a = SplitMix64(i), b = SplitMix64(i ^ 0x5555);
  char buf[40];
  snprintf(buf, sizeof buf, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<unsigned>(a >> 32),
           static_cast<unsigned>(a >> 16) & 0xffff, static_cast<unsigned>(a) & 0xfff,
           static_cast<unsigned>(b >> 52), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  *out = buf;
}

void Distinct(uint64_t i, std::string* out) { *out = "user:" + std::to_string(i); }

// The first number of distinct uuids after which gimel's sketch is dense.
uint64_t PromotionPoint() {
  std::string hll = Empty();
  std::string e;
  for (uint64_t i = 0;; ++i) {
    Uuid(i, &e);
    Add(&hll, e);
    if (IsDense(hll)) return i + 1;
  }
}

std::vector<ElementSet> Sets() {
  const uint64_t promote = PromotionPoint();
  std::vector<ElementSet> sets = {
      {"Nothing", 0, nullptr},
      {"OneElement", 1, [](uint64_t, std::string* o) { *o = "a"; }},
      {"OnlyTheEmptyString", 3, [](uint64_t, std::string* o) { o->clear(); }},
      {"FiveFruits", 5,
       [](uint64_t i, std::string* o) {
         static const char* kFruit[] = {"apple", "banana", "cherry", "date", "elderberry"};
         *o = kFruit[i];
       }},
      {"OneElementRepeated", 200, [](uint64_t, std::string* o) { *o = "visitor-42"; }},
      {"FiftyElementsRepeated", 1000,
       [](uint64_t i, std::string* o) { Distinct(SplitMix64(i) % 50, o); }},
      {"AllTailLengths", 65,
       [](uint64_t i, std::string* o) {
         *o = std::string("The quick brown fox jumps over the lazy dog; pack my box with five.")
                  .substr(0, i);
       }},
      {"BinaryWithNulBytes", 800,
       [](uint64_t i, std::string* o) {
         const uint64_t x = SplitMix64(i);
         o->assign(x % 41, '\0');
         for (size_t k = 0; k < o->size(); ++k) {
           const uint64_t y = SplitMix64(x + k);
           (*o)[k] = (y & 3) == 0 ? '\0' : static_cast<char>(y >> 8);
         }
       }},
      {"LongStrings", 300,
       [](uint64_t i, std::string* o) {
         const uint64_t x = SplitMix64(i);
         o->assign(1000 + x % 4000, static_cast<char>('a' + i % 26));
         std::memcpy(o->data(), &x, sizeof x);
       }},
      {"Distinct100", 100, Distinct},
      {"Distinct500", 500, Distinct},
      {"Distinct1000", 1000, Distinct},
      {"Distinct1500", 1500, Distinct},
      {"Distinct2000", 2000, Distinct},
      {"UuidsJustBeforePromotion", promote - 1, Uuid},
      {"UuidsAtPromotion", promote, Uuid},
      {"UuidsJustAfterPromotion", promote + 1, Uuid},
      {"Distinct3000", 3000, Distinct},
      {"Distinct10000", 10000, Distinct},
      {"Uuids50000", 50000, Uuid},
      {"Distinct200000", 200000, Distinct},
      {"TwoMillionWithDuplicates", 2000000,
       [](uint64_t i, std::string* o) { Distinct(SplitMix64(i) % 1500000, o); }},
  };
  return sets;
}

// ---- Helpers
// -------------------------------------------------------------------------------------

::testing::AssertionResult SameBytes(std::string_view redis, std::string_view gimel) {
  if (redis == gimel) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < redis.size() && i < gimel.size() && redis[i] == gimel[i]) ++i;
  char buf[160];
  snprintf(buf, sizeof buf, "redis %zu bytes (%s), gimel %zu bytes (%s), first difference at %zu",
           redis.size(), redis.size() > 4 && redis[4] == 0 ? "dense" : "sparse", gimel.size(),
           gimel.size() > 4 && gimel[4] == 0 ? "dense" : "sparse", i);
  return ::testing::AssertionFailure() << buf;
}

uint64_t CountOf(std::string_view hll) {
  Result<uint64_t> n = Count(hll);
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? *n : ~uint64_t{0};
}

class HllRedis : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new RedisServer;
    error_ = server_->Start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(error_, "") << "cannot start redis-server";
    client_ = std::make_unique<Client>(server_->port());
    ASSERT_TRUE(client_->ok());
  }

  // PFADDs a set's elements into `key` (created even for no elements) in pipelined batches and
  // adds them to *hll too; checks every PFADD reply against gimel's "changed".
  void Load(std::string_view key, const ElementSet& set, std::string* hll) {
    constexpr size_t kPerCommand = 1000;  // elements per PFADD
    constexpr size_t kInFlight = 64;      // commands per pipeline round
    client_->Run({"DEL", key});
    ASSERT_EQ(client_->Int({"PFADD", key}), 1);  // creates the empty HLL, like Empty()
    *hll = Empty();
    std::vector<std::string> batch;
    std::vector<bool> changed;
    auto flush = [&] {
      for (bool expected : changed) {
        Reply r = client_->Read();
        ASSERT_NE(r, nullptr);
        ASSERT_EQ(r->type, REDIS_REPLY_INTEGER) << std::string(r->str ? r->str : "", r->len);
        ASSERT_EQ(r->integer, expected ? 1 : 0);
      }
      changed.clear();
    };
    for (uint64_t i = 0; i < set.adds;) {
      batch.clear();
      bool any = false;
      for (; i < set.adds && batch.size() < kPerCommand; ++i) {
        batch.emplace_back();
        set.gen(i, &batch.back());
        any = Add(hll, batch.back()) || any;
      }
      std::vector<std::string_view> args = {"PFADD", key};
      args.insert(args.end(), batch.begin(), batch.end());
      client_->Append(args);
      changed.push_back(any);
      if (changed.size() == kInFlight) {
        ASSERT_NO_FATAL_FAILURE(flush());
      }
    }
    ASSERT_NO_FATAL_FAILURE(flush());
  }

  static inline RedisServer* server_ = nullptr;
  static inline std::string error_;
  std::unique_ptr<Client> client_;
};

// ---- PFADD / PFCOUNT / GET / SET over many element sets --------------------------------------

class HllRedisSets : public HllRedis, public ::testing::WithParamInterface<ElementSet> {};

TEST_P(HllRedisSets, MatchesRedisByteForByte) {
  const ElementSet& set = GetParam();
  const std::string key = "hll:" + set.name;
  std::string hll;
  ASSERT_NO_FATAL_FAILURE(Load(key, set, &hll));

  // After PFADD: Redis's bytes are gimel's bytes, and each side reads the other's.
  const std::string redis_bytes = client_->Get(key);
  EXPECT_TRUE(SameBytes(redis_bytes, hll));
  ASSERT_TRUE(Validate(redis_bytes).ok()) << Validate(redis_bytes).ToString();
  const uint64_t gimel_count = CountOf(hll);
  EXPECT_EQ(CountOf(redis_bytes), gimel_count);
  const std::string copy = key + ":copy";
  client_->Run({"SET", copy, hll});
  EXPECT_EQ(client_->Int({"PFCOUNT", copy}), static_cast<long long>(gimel_count));

  // PFCOUNT writes the cache into the key; CountAndCache writes the same bytes.
  EXPECT_EQ(client_->Int({"PFCOUNT", key}), static_cast<long long>(gimel_count));
  Result<uint64_t> cached = CountAndCache(&hll);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, gimel_count);
  const std::string redis_cached = client_->Get(key);
  EXPECT_TRUE(SameBytes(redis_cached, hll));
  EXPECT_EQ(CountOf(redis_cached), gimel_count);

  // PFDEBUG TODENSE is ToDense.
  if (!IsDense(hll)) {
    client_->Run({"PFDEBUG", "TODENSE", key});
    ToDense(&hll);
    EXPECT_TRUE(SameBytes(client_->Get(key), hll));
  }
}

INSTANTIATE_TEST_SUITE_P(Sets, HllRedisSets, ::testing::ValuesIn(Sets()),
                         [](const ::testing::TestParamInfo<ElementSet>& info) {
                           return info.param.name;
                         });

// ---- Step by step through the sparse encoding ----------------------------------------------

// PFADDs elements one at a time, GETs after each, and compares every intermediate sketch.
void ExpectSameEvolution(Client* client, std::string_view key,
                         const std::vector<std::string>& elements) {
  client->Run({"DEL", key});
  ASSERT_EQ(client->Int({"PFADD", key}), 1);
  std::string hll = Empty();
  constexpr size_t kRound = 256;
  for (size_t start = 0; start < elements.size(); start += kRound) {
    const size_t stop = std::min(elements.size(), start + kRound);
    for (size_t i = start; i < stop; ++i) {
      client->Append({"PFADD", key, elements[i]});
      client->Append({"GET", key});
    }
    for (size_t i = start; i < stop; ++i) {
      const bool changed = Add(&hll, elements[i]);
      Reply added = client->Read();
      Reply got = client->Read();
      ASSERT_TRUE(added != nullptr && got != nullptr);
      ASSERT_EQ(added->integer, changed ? 1 : 0) << "element " << i;
      ASSERT_TRUE(SameBytes(std::string_view(got->str, got->len), hll)) << "after element " << i;
    }
  }
}

TEST_F(HllRedis, SparseBytesMatchAfterEveryPfaddUntilPromotion) {
  const uint64_t n = PromotionPoint() + 20;
  std::vector<std::string> elements(n);
  for (uint64_t i = 0; i < n; ++i) Uuid(i, &elements[i]);
  ExpectSameEvolution(client_.get(), "hll:evolution:uuids", elements);
}

TEST_F(HllRedis, CrowdedRegistersMergeValRunsLikeRedis) {
  // Registers 0..299 with ranks 1..3, in random order, with repeats: long stretches of VAL
  // opcodes that split, grow and merge in every way the 5-opcode window allows, plus a few far
  // registers that split the trailing XZERO and ZERO runs.
  std::vector<std::string> elements;
  for (uint64_t i = 0; i < 3000; ++i) {
    const uint64_t x = SplitMix64(i + 7);
    const uint32_t index = i % 50 == 49 ? static_cast<uint32_t>(x % format::kRegisterCount)
                                        : static_cast<uint32_t>(x % 300);
    elements.push_back(ElementFor(index, static_cast<uint8_t>(1 + (x >> 20) % 3), i));
  }
  ExpectSameEvolution(client_.get(), "hll:evolution:crowded", elements);
}

TEST_F(HllRedis, RanksAbove32PromoteToDenseLikeRedis) {
  std::vector<std::string> elements;
  for (int i = 0; i < 40; ++i) elements.push_back(ElementFor(i * 397, 1 + i % 5, i));
  elements.push_back(ElementFor(100, 33, 1));  // forces promotion of a small sparse sketch
  elements.push_back(ElementFor(100, 20, 2));  // no change
  elements.push_back(ElementFor(16383, 51, 3));
  elements.push_back(ElementFor(0, 50, 4));
  ExpectSameEvolution(client_.get(), "hll:evolution:rank33", elements);

  std::string hll = Empty();
  Add(&hll, ElementFor(7, 51));
  client_->Run({"DEL", "hll:rank51"});
  client_->Run({"PFADD", "hll:rank51", ElementFor(7, 51)});
  EXPECT_TRUE(SameBytes(client_->Get("hll:rank51"), hll));
  EXPECT_TRUE(IsDense(hll));
}

TEST_F(HllRedis, RanksOfCraftedElementsAreRedisRanks) {
  // Each crafted element alone in a fresh key: Redis's sparse bytes name its register and rank.
  for (uint8_t rank : {1, 2, 17, 31, 32}) {
    for (uint32_t index : {0u, 1u, 63u, 64u, 65u, 8000u, 16383u}) {
      const std::string e = ElementFor(index, rank, index * 100 + rank);
      ASSERT_EQ(Hash(e).index, index);
      ASSERT_EQ(Hash(e).rank, rank);
      std::string hll = Empty();
      Add(&hll, e);
      client_->Run({"DEL", "hll:one"});
      client_->Run({"PFADD", "hll:one", e});
      EXPECT_TRUE(SameBytes(client_->Get("hll:one"), hll)) << index << " " << int{rank};
    }
  }
}

// ---- The estimator at the edges -------------------------------------------------------------

// Dense sketches with every register pattern the estimator branches on, including values above
// 51 that only crafted bytes contain: PFCOUNT of the bytes equals Count.
TEST_F(HllRedis, EstimatorMatchesPfcountOnCraftedDenseRegisters) {
  const std::vector<std::pair<std::string, std::function<uint8_t(uint32_t)>>> patterns = {
      {"one register at 1", [](uint32_t i) { return i == 0 ? 1 : 0; }},
      {"all 1", [](uint32_t) { return 1; }},
      {"all 40", [](uint32_t) { return 40; }},
      {"all 50", [](uint32_t) { return 50; }},
      {"all 51", [](uint32_t) { return 51; }},
      {"all 63", [](uint32_t) { return 63; }},
      {"half 0, half 51", [](uint32_t i) { return i % 2 == 0 ? 0 : 51; }},
      {"one register at 51", [](uint32_t i) { return i == 9 ? 51 : 0; }},
      {"ramp 0..50", [](uint32_t i) { return i % 51; }},
      {"ramp 0..63", [](uint32_t i) { return i % 64; }},
      {"geometric", [](uint32_t i) { return 1 + std::countr_zero(i | 0x10000); }},
      {"mostly 10 to 14", [](uint32_t i) { return 10 + SplitMix64(i) % 5; }},
  };
  for (const auto& [name, value] : patterns) {
    std::string hll = Empty();
    ToDense(&hll);
    auto* regs = reinterpret_cast<uint8_t*>(hll.data()) + format::kHeaderSize;
    for (uint32_t i = 0; i < kRegisters; ++i) dense::Put(regs, i, value(i));
    client_->Run({"SET", "hll:crafted", hll});
    const long long redis = client_->Int({"PFCOUNT", "hll:crafted"});
    EXPECT_EQ(redis, static_cast<long long>(CountOf(hll))) << name;
    std::printf("[ estimate ] %-20s %lld\n", name.c_str(), redis);
  }
}

TEST_F(HllRedis, DocumentedExampleIsWhatRedisStores) {
  // docs/hll_format.md, "Worked example": registers 5 and 6 = 3, register 1000 = 1.
  client_->Run({"DEL", "hll:doc"});
  for (const auto& [index, rank] : {std::pair{5u, 3}, {6u, 3}, {1000u, 1}}) {
    client_->Run({"PFADD", "hll:doc", ElementFor(index, static_cast<uint8_t>(rank), index)});
  }
  const std::string ops = client_->Get("hll:doc").substr(format::kHeaderSize);
  EXPECT_EQ(ops, std::string("\x04\x89\x43\xe0\x80\x7c\x16", 7));
}

// ---- PFMERGE and multi-key PFCOUNT -------------------------------------------------------------

struct Loaded {
  std::string key;
  std::string hll;
};

TEST_F(HllRedis, MergeMatchesPfmerge) {
  const auto uuids_from = [](uint64_t offset) {
    return [offset](uint64_t i, std::string* o) { Uuid(i + offset, o); };
  };
  const std::vector<ElementSet> inputs = {
      {"small_a", 300, uuids_from(0)},           {"small_b", 400, uuids_from(1'000'000)},
      {"mid_a", 1000, uuids_from(2'000'000)},    {"mid_b", 1000, uuids_from(3'000'000)},
      {"overlap", 800, uuids_from(100)},         {"dense_a", 20000, uuids_from(4'000'000)},
      {"dense_b", 30000, uuids_from(4'010'000)}, {"empty", 0, nullptr},
  };
  std::map<std::string, Loaded> loaded;
  for (const ElementSet& set : inputs) {
    Loaded& l = loaded[set.name];
    l.key = "hll:merge:" + set.name;
    ASSERT_NO_FATAL_FAILURE(Load(l.key, set, &l.hll));
  }
  // PFCOUNT on one input first, so a merge also starts from a valid cache.
  ASSERT_TRUE(CountAndCache(&loaded["small_b"].hll).ok());
  client_->Run({"PFCOUNT", loaded["small_b"].key});

  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"small_a", "small_b"}, {"small_a", "overlap"}, {"mid_a", "mid_b"},  // sparse: promotes
      {"small_a", "dense_a"}, {"dense_a", "small_b"}, {"dense_a", "dense_b"},
      {"", "small_a"},        {"", "dense_b"},        {"", "empty"},
      {"empty", "mid_a"},     {"small_b", "small_b"}, {"mid_a", "empty"},
      {"small_b", "overlap"},
  };
  int n = 0;
  for (const auto& [dst_name, src_name] : pairs) {
    SCOPED_TRACE("PFMERGE " + (dst_name.empty() ? "<missing>" : dst_name) + " " + src_name);
    const std::string dst_key = "hll:merged:" + std::to_string(n++);
    std::string dst;
    client_->Run({"DEL", dst_key});
    if (!dst_name.empty()) {
      dst = loaded[dst_name].hll;
      client_->Run({"COPY", loaded[dst_name].key, dst_key});
    }
    const Loaded& src = loaded[src_name];
    Reply r = client_->Run({"PFMERGE", dst_key, src.key});
    ASSERT_TRUE(r != nullptr && r->type == REDIS_REPLY_STATUS);
    ASSERT_TRUE(Merge(&dst, src.hll).ok());
    const std::string redis_bytes = client_->Get(dst_key);
    EXPECT_TRUE(SameBytes(redis_bytes, dst));
    EXPECT_EQ(client_->Int({"PFCOUNT", dst_key}), static_cast<long long>(CountOf(dst)));
  }
}

TEST_F(HllRedis, CountUnionMatchesMultiKeyPfcount) {
  const auto uuids_from = [](uint64_t offset) {
    return [offset](uint64_t i, std::string* o) { Uuid(i + offset, o); };
  };
  const std::vector<ElementSet> inputs = {
      {"a", 500, uuids_from(0)},
      {"b", 2500, uuids_from(300)},
      {"c", 40000, uuids_from(10'000)},
      {"d", 0, nullptr},
  };
  std::vector<Loaded> loaded(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    loaded[i].key = "hll:union:" + inputs[i].name;
    ASSERT_NO_FATAL_FAILURE(Load(loaded[i].key, inputs[i], &loaded[i].hll));
  }
  const std::vector<std::vector<int>> groups = {{0, 1},  {0, 2},   {1, 2}, {0, 1, 2, 3}, {3, 0},
                                                {0, -1}, {-1, -1}, {2},    {0, 0}};
  for (const std::vector<int>& g : groups) {
    std::vector<std::string_view> args = {"PFCOUNT"};
    std::vector<std::string_view> hlls;
    for (int i : g) {
      args.push_back(i < 0 ? std::string_view("hll:union:missing") : loaded[i].key);
      hlls.push_back(i < 0 ? std::string_view() : loaded[i].hll);
    }
    Result<uint64_t> mine = CountUnion(hlls);
    ASSERT_TRUE(mine.ok());
    EXPECT_EQ(client_->Int(args), static_cast<long long>(*mine)) << ::testing::PrintToString(g);
  }
}

}  // namespace
}  // namespace gimel::hll
