#include "store/embedded_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hll/hll.h"
#include "store/embedded_keys.h"
#include "store/embedded_wal.h"

namespace gimel::store {
namespace {

namespace ek = embedded;
namespace fs = std::filesystem;
using namespace std::string_literals;

// A fresh directory under /tmp, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gimel_embedded_test_XXXXXX";
    char* p = mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p != nullptr ? p : "/tmp/gimel_embedded_test_failed";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

StoreOptions Options(const std::string& dir, bool sync = true, int max_batch = 1024,
                     int min_commit_interval_us = StoreOptions{}.min_commit_interval_us) {
  StoreOptions o;
  o.kind = StoreOptions::Kind::kEmbedded;
  o.data_dir = dir;
  o.sync = sync;
  o.max_batch = max_batch;
  o.min_commit_interval_us = min_commit_interval_us;
  return o;
}

std::unique_ptr<Store> OpenOrDie(const StoreOptions& o) {
  auto r = OpenEmbeddedStore(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

// Store::AddSync lives in store.cc; tests wait on a promise instead.
Status AddAndWait(Store* store, const TrackEvent& e) {
  std::promise<Status> p;
  auto f = p.get_future();
  store->Add(e, [&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

std::string Numbered(std::string_view prefix, int n);
std::string Uuid(int i);

// Adds Uuid(i) for i in [from, to) to one counter, asynchronously (so the adds are
// group-committed), and waits for all of them. Returns the first error, or OK.
Status AddUuids(Store* store, const TrackEvent& counter, int from, int to) {
  std::vector<std::future<Status>> pending;
  for (int i = from; i < to; ++i) {
    const std::string uuid = Uuid(i);
    TrackEvent e = counter;
    e.uuid = uuid;
    auto done = std::make_shared<std::promise<Status>>();
    pending.push_back(done->get_future());
    store->Add(e, [done](Status s) { done->set_value(std::move(s)); });
  }
  Status first;
  for (auto& f : pending) {
    Status s = f.get();
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

uint64_t CountOf(std::string_view hll) {
  auto r = hll::Count(hll);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : ~uint64_t{0};
}

// The count of an HLL of Uuid(0) .. Uuid(n - 1): what a counter of those events must report.
uint64_t CountOfUuids(int n) {
  std::string expected = hll::Empty();
  for (int i = 0; i < n; ++i) hll::Add(&expected, Uuid(i));
  return CountOf(expected);
}

// (event, variant) -> HLL bytes.
std::map<std::pair<std::string, std::string>, std::string> ReadMap(Store* store,
                                                                   std::string_view ns,
                                                                   std::string_view experiment) {
  auto r = store->ReadExperiment(ns, experiment);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::pair<std::string, std::string>, std::string> out;
  if (!r.ok()) return out;
  for (Counter& c : *r) {
    auto [it, inserted] = out.emplace(std::pair{c.event, c.variant}, std::move(c.hll));
    EXPECT_TRUE(inserted) << "duplicate counter " << c.event << "/" << c.variant;
  }
  return out;
}

std::vector<std::string> Sorted(Result<std::vector<std::string>> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  std::vector<std::string> v = std::move(r).value();
  std::sort(v.begin(), v.end());
  return v;
}

// prefix + decimal n. (Not `"lit" + std::to_string(n)`: GCC 12 -O3 -Wrestrict false positive.)
std::string Numbered(std::string_view prefix, int n) {
  std::string s(prefix);
  s.append(std::to_string(n));
  return s;
}

std::string Uuid(int i) { return Numbered("uuid-", i).append("-4f1c"); }

// ---------------------------------------------------------------------------------------------
// Keys and merge operands
// ---------------------------------------------------------------------------------------------

TEST(EmbeddedKeys, NamesRoundTripAnyBytes) {
  const std::vector<std::string> names = {"",
                                          "a",
                                          "a:b",
                                          "x/y z",
                                          "\0"s,
                                          "a\0b"s,
                                          "\xff\xff",
                                          "ünïcødé ✓",
                                          std::string(200, 'q'),
                                          std::string(70000, '\x80')};
  for (const std::string& n : names) {
    std::string enc;
    ek::PutName(&enc, n);
    enc += "rest";
    std::string_view in = enc, out;
    ASSERT_TRUE(ek::GetName(&in, &out));
    EXPECT_EQ(out, n);
    EXPECT_EQ(in, "rest");
  }
}

TEST(EmbeddedKeys, MalformedNamesAreRejected) {
  std::string_view out;
  std::string_view empty;
  EXPECT_FALSE(ek::GetName(&empty, &out));
  std::string_view too_short(
      "\x05"
      "abc",
      4);
  EXPECT_FALSE(ek::GetName(&too_short, &out));
  std::string_view unterminated("\x80\x80", 2);
  EXPECT_FALSE(ek::GetName(&unterminated, &out));
  std::string_view overflow("\xff\xff\xff\xff\x7f", 5);
  EXPECT_FALSE(ek::GetName(&overflow, &out));
}

TEST(EmbeddedKeys, CounterKeysParseAndDoNotCollide) {
  std::string k1 = ek::CounterKey("a", "b:c", "e", "v");
  std::string k2 = ek::CounterKey("a:b", "c", "e", "v");
  std::string k3 = ek::CounterKey("a", "b", "c:e", "v");
  EXPECT_NE(k1, k2);
  EXPECT_NE(k1, k3);
  std::string_view ns, exp, ev, var;
  ASSERT_TRUE(ek::ParseCounterKey(k2, &ns, &exp, &ev, &var));
  EXPECT_EQ(ns, "a:b");
  EXPECT_EQ(exp, "c");
  EXPECT_EQ(ev, "e");
  EXPECT_EQ(var, "v");
  // An experiment's prefix never matches another experiment's keys.
  EXPECT_NE(ek::CounterKey("n", "ab:c", "e", "v").rfind(ek::CounterPrefix("n", "ab"), 0), 0u);
  EXPECT_EQ(ek::CounterKey("n", "ab", "e", "v").rfind(ek::CounterPrefix("n", "ab"), 0), 0u);
  EXPECT_FALSE(ek::ParseCounterKey(ek::ExperimentKey("a", "b"), &ns, &exp, &ev, &var));
  EXPECT_FALSE(ek::ParseCounterKey(k1 + "x", &ns, &exp, &ev, &var));
  const std::string ekey = ek::ExperimentKey("n\0"s, "\xff");  // views point into it
  ASSERT_TRUE(ek::ParseExperimentKey(ekey, &ns, &exp));
  EXPECT_EQ(ns, "n\0"s);
  EXPECT_EQ(exp, "\xff");
}

TEST(EmbeddedKeys, WorkedExampleFromKeySchemaDoc) {
  EXPECT_EQ(ek::CounterKey("alephbet", "button color", "participate", "red"),
            "c\x08"
            "alephbet"
            "\x0c"
            "button color"
            "\x0b"
            "participate"
            "\x03"
            "red");
  EXPECT_EQ(ek::ExperimentKey("alephbet", "button color"),
            "e\x08"
            "alephbet"
            "\x0c"
            "button color");
  hll::Register r = hll::Hash("some-uuid");
  std::string op = ek::EncodeRegisterOperand(r.index, r.rank);
  EXPECT_EQ(static_cast<uint8_t>(op[0]) | static_cast<uint8_t>(op[1]) << 8, r.index);
  EXPECT_EQ(static_cast<uint8_t>(op[2]), r.rank);
}

TEST(EmbeddedKeys, PrefixSuccessor) {
  EXPECT_EQ(ek::PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(ek::PrefixSuccessor("a\xff\xff"), "b");
  EXPECT_EQ(ek::PrefixSuccessor("\xff"), "");
  EXPECT_EQ(ek::PrefixSuccessor(""), "");
}

TEST(EmbeddedKeys, RegisterOperandRoundTrip) {
  uint32_t index;
  uint8_t rank;
  for (uint32_t i : {0u, 1u, 255u, 256u, 16383u}) {
    for (uint8_t r : {uint8_t{1}, uint8_t{17}, uint8_t{51}}) {
      std::string op = ek::EncodeRegisterOperand(i, r);
      ASSERT_EQ(op.size(), 3u);
      ASSERT_TRUE(ek::DecodeRegisterOperand(op, &index, &rank));
      EXPECT_EQ(index, i);
      EXPECT_EQ(rank, r);
    }
  }
  EXPECT_FALSE(ek::DecodeRegisterOperand(ek::EncodeRegisterOperand(16384, 1), &index, &rank));
  EXPECT_FALSE(ek::DecodeRegisterOperand(ek::EncodeRegisterOperand(5, 0), &index, &rank));
  EXPECT_FALSE(ek::DecodeRegisterOperand(ek::EncodeRegisterOperand(5, 52), &index, &rank));
  EXPECT_FALSE(ek::DecodeRegisterOperand("ab", &index, &rank));

  // A register list is never mistaken for HLL bytes: "HY" would be index 22856.
  EXPECT_TRUE(ek::IsHllOperand(hll::Empty()));
  EXPECT_FALSE(ek::IsHllOperand(ek::EncodeRegisterOperand(16383, 51)));
  EXPECT_FALSE(ek::DecodeRegisterOperand("HYL", &index, &rank));
}

// A list of few entries takes the one-by-one path, in register order: the result equals
// PFADD of the elements in that order (and holds the registers of PFADD in any order).
TEST(EmbeddedMergeOperator, AppliesAShortRegisterListLikePfadd) {
  auto op = ek::NewHllMergeOperator();
  std::string list, pfadd = hll::Empty();
  std::vector<hll::Register> registers;
  for (int i = 0; i < 5; ++i) {
    hll::Register r = hll::Hash(Uuid(i));
    ek::AppendRegisterEntry(&list, r.index, r.rank);
    hll::Add(&pfadd, Uuid(i));
    registers.push_back(r);
  }
  std::sort(registers.begin(), registers.end(),
            [](const hll::Register& a, const hll::Register& b) { return a.index < b.index; });
  std::string expected = hll::Empty();
  for (const hll::Register& r : registers) hll::SetRegister(&expected, r.index, r.rank);
  std::vector<rocksdb::Slice> operands = {rocksdb::Slice(list)};
  std::string out;
  rocksdb::Slice existing_operand;
  rocksdb::MergeOperator::MergeOperationOutput mo{out, existing_operand};
  rocksdb::MergeOperator::MergeOperationInput mi(rocksdb::Slice("k"), nullptr, operands, nullptr);
  ASSERT_TRUE(op->FullMergeV2(mi, &mo));
  EXPECT_EQ(out, expected);
  std::array<uint8_t, hll::kRegisters> got{}, want{};
  ASSERT_TRUE(hll::DecodeRegisters(out, got).ok());
  ASSERT_TRUE(hll::DecodeRegisters(pfadd, want).ok());
  EXPECT_EQ(got, want);
}

TEST(EmbeddedMergeOperator, AppliesOperandsAndKeepsCorruptBase) {
  auto op = ek::NewHllMergeOperator();
  std::string expected = hll::Empty();
  std::vector<std::string> storage;
  for (int i = 0; i < 50; ++i) {
    hll::Register r = hll::Hash(Uuid(i));
    storage.push_back(ek::EncodeRegisterOperand(r.index, r.rank));
    hll::Add(&expected, Uuid(i));
  }
  storage.push_back("junk-operand-not-an-hll");  // skipped
  std::vector<rocksdb::Slice> operands(storage.begin(), storage.end());

  std::string out;
  rocksdb::Slice existing_operand;
  rocksdb::MergeOperator::MergeOperationOutput mo{out, existing_operand};
  rocksdb::MergeOperator::MergeOperationInput mi(rocksdb::Slice("k"), nullptr, operands, nullptr);
  ASSERT_TRUE(op->FullMergeV2(mi, &mo));
  ASSERT_TRUE(hll::Validate(out).ok());
  EXPECT_EQ(CountOf(out), CountOf(expected));

  // Partial merge of the operands gives an HLL operand with the same registers.
  std::deque<rocksdb::Slice> dq(operands.begin(), operands.end());
  std::string partial;
  ASSERT_TRUE(op->PartialMergeMulti(rocksdb::Slice("k"), dq, &partial, nullptr));
  ASSERT_TRUE(hll::Validate(partial).ok());
  EXPECT_EQ(CountOf(partial), CountOf(expected));

  rocksdb::Slice corrupt("HYLL\x07garbage");
  std::string out2;
  rocksdb::MergeOperator::MergeOperationOutput mo2{out2, existing_operand};
  rocksdb::MergeOperator::MergeOperationInput mi2(rocksdb::Slice("k"), &corrupt, operands, nullptr);
  ASSERT_TRUE(op->FullMergeV2(mi2, &mo2));
  EXPECT_EQ(out2, corrupt.ToString());
}

// Many operands, mixing register operands, sparse and dense HLL operands and junk, take the
// folding path: the result holds the register-wise max of everything, sparse unless an input
// was dense, whether or not there is a base value.
TEST(EmbeddedMergeOperator, FoldsManyOperandsOfEveryKind) {
  auto op = ek::NewHllMergeOperator();
  std::string base = hll::Empty();
  for (int i = 0; i < 300; ++i) hll::Add(&base, Uuid(i));
  std::string sparse_operand = hll::Empty();
  for (int i = 1000; i < 1200; ++i) hll::Add(&sparse_operand, Uuid(i));
  std::string dense_operand = hll::Empty();
  for (int i = 5000; i < 5100; ++i) hll::Add(&dense_operand, Uuid(i));
  hll::ToDense(&dense_operand);

  std::vector<std::string> storage;
  std::string expected_sparse = hll::Empty();  // base + register operands + sparse operand
  for (int i = 2000; i < 2050; ++i) {
    hll::Register r = hll::Hash(Uuid(i));
    storage.push_back(ek::EncodeRegisterOperand(r.index, r.rank));
    hll::Add(&expected_sparse, Uuid(i));
  }
  std::string list;  // one operand listing several registers, as the writer batches them
  for (int i = 3000; i < 3020; ++i) {
    hll::Register r = hll::Hash(Uuid(i));
    ek::AppendRegisterEntry(&list, r.index, r.rank);
    if (i == 3010) ek::AppendRegisterEntry(&list, 7, 0);  // invalid entry: skipped
    hll::Add(&expected_sparse, Uuid(i));
  }
  storage.push_back(list);
  storage.push_back("junk-operand-not-an-hll");
  storage.push_back(ek::EncodeRegisterOperand(3, 0));  // invalid rank: skipped
  storage.push_back(sparse_operand);
  ASSERT_TRUE(hll::Merge(&expected_sparse, sparse_operand).ok());

  auto full_merge = [&](const rocksdb::Slice* existing, const std::vector<std::string>& ops) {
    std::vector<rocksdb::Slice> operands(ops.begin(), ops.end());
    std::string out;
    rocksdb::Slice existing_operand;
    rocksdb::MergeOperator::MergeOperationOutput mo{out, existing_operand};
    rocksdb::MergeOperator::MergeOperationInput mi(rocksdb::Slice("k"), existing, operands,
                                                   nullptr);
    EXPECT_TRUE(op->FullMergeV2(mi, &mo));
    return out;
  };
  auto registers_of = [](std::string_view h) {
    std::array<uint8_t, hll::kRegisters> regs{};
    EXPECT_TRUE(hll::DecodeRegisters(h, regs).ok());
    return regs;
  };

  std::string out = full_merge(nullptr, storage);
  ASSERT_TRUE(hll::Validate(out).ok());
  EXPECT_FALSE(hll::IsDense(out));
  EXPECT_EQ(registers_of(out), registers_of(expected_sparse));

  const rocksdb::Slice base_slice(base);
  std::string with_base = expected_sparse;
  ASSERT_TRUE(hll::Merge(&with_base, base).ok());
  out = full_merge(&base_slice, storage);
  EXPECT_FALSE(hll::IsDense(out));
  EXPECT_EQ(registers_of(out), registers_of(with_base));

  storage.push_back(dense_operand);
  ASSERT_TRUE(hll::Merge(&with_base, dense_operand).ok());
  out = full_merge(&base_slice, storage);
  EXPECT_TRUE(hll::IsDense(out));
  EXPECT_EQ(registers_of(out), registers_of(with_base));

  // A partial merge of the same operands folds to one HLL operand, which a full merge then
  // applies like the operands themselves.
  std::deque<rocksdb::Slice> dq(storage.begin(), storage.end());
  std::string partial;
  ASSERT_TRUE(op->PartialMergeMulti(rocksdb::Slice("k"), dq, &partial, nullptr));
  ASSERT_TRUE(hll::Validate(partial).ok());
  EXPECT_EQ(registers_of(full_merge(&base_slice, {partial})), registers_of(with_base));
}

// Runs this test binary again in a child process with only `test` selected (a fresh process:
// no threads or RocksDB state inherited from this one), GIMEL_CHILD_DIR = dir and
// GIMEL_CHILD_FD = the pipe's write end (fds[1], closed here). Returns the child's pid.
pid_t SpawnChild(const std::string& test, const std::string& dir, const int fds[2], bool sync,
                 size_t write_buffer_bytes = StoreOptions().write_buffer_bytes) {
  const std::string self = fs::read_symlink("/proc/self/exe");
  const std::string filter = "--gtest_filter=" + test;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    setenv("GIMEL_CHILD_DIR", dir.c_str(), 1);
    setenv("GIMEL_CHILD_FD", std::to_string(fds[1]).c_str(), 1);
    setenv("GIMEL_CHILD_SYNC", sync ? "1" : "0", 1);
    setenv("GIMEL_CHILD_WRITE_BUFFER", std::to_string(write_buffer_bytes).c_str(), 1);
    execl(self.c_str(), self.c_str(), filter.c_str(), "--gtest_also_run_disabled_tests",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  return pid;
}

// Opens the RocksDB of a closed store directly (as an operator with a hex editor would; or
// creates one, as an older gimel would have) and runs fn on it. The merge operator is needed
// for flushes and compactions.
template <typename Fn>
void WithRawDb(const std::string& dir, Fn&& fn) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.merge_operator = ek::NewHllMergeOperator();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  fn(db.get());
  ASSERT_TRUE(db->Close().ok());
}

void PutRaw(const std::string& dir, const std::string& key, const std::string& value) {
  WithRawDb(dir, [&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  });
}

// Flushes and fully compacts, so every merge operand is folded by the merge operator.
void CompactRaw(const std::string& dir) {
  WithRawDb(dir, [](rocksdb::DB* db) {
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    ASSERT_TRUE(db->CompactRange(co, nullptr, nullptr).ok());
  });
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

TEST(EmbeddedStore, OpenValidatesOptionsAndCreatesParents) {
  TempDir dir;
  EXPECT_TRUE(OpenEmbeddedStore(Options("")).status().IsInvalidArgument());
  EXPECT_TRUE(OpenEmbeddedStore(Options(dir.path(), true, 0)).status().IsInvalidArgument());
  StoreOptions negative_interval = Options(dir.path());
  negative_interval.min_commit_interval_us = -1;
  EXPECT_TRUE(OpenEmbeddedStore(negative_interval).status().IsInvalidArgument());
  StoreOptions negative_early = Options(dir.path());
  negative_early.commit_early_events = -1;
  EXPECT_TRUE(OpenEmbeddedStore(negative_early).status().IsInvalidArgument());
  std::string nested = dir.path() + "/a/b/c";
  auto store = OpenOrDie(Options(nested));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::is_directory(nested));
  EXPECT_EQ(store->name(), "embedded");
  EXPECT_TRUE(store->Health().ok());
  EXPECT_TRUE(Sorted(store->ListNamespaces()).empty());
  auto r = store->ReadExperiment("ns", "nope");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_TRUE(store->DeleteExperiment("ns", "nope").ok());

  // A data_dir that is a file cannot be used.
  std::string file = dir.path() + "/file";
  {
    FILE* f = fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fclose(f);
  }
  auto bad = OpenEmbeddedStore(Options(file + "/sub"));
  EXPECT_EQ(bad.status().code(), StatusCode::kIOError) << bad.status().ToString();
}

TEST(EmbeddedStore, AddThenReadCountsMatchHll) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  std::map<std::pair<std::string, std::string>, std::string> expected;
  std::map<std::pair<std::string, std::string>, std::set<std::string>> truth;
  std::vector<std::future<Status>> pending;
  for (int round = 0; round < 3; ++round) {  // every uuid three times: duplicates
    for (int i = 0; i < 400; ++i) {
      std::string variant = i % 2 == 0 ? "red" : "blue";
      std::vector<std::string> events = {"participate"};
      if (i % 3 == 0) events.push_back("clicked");
      const std::string uuid = Uuid(i);
      for (const std::string& ev : events) {
        // Asynchronous, so they are group-committed; waited for below.
        auto done = std::make_shared<std::promise<Status>>();
        pending.push_back(done->get_future());
        store->Add({"alephbet", "button color", ev, variant, uuid},
                   [done](Status s) { done->set_value(std::move(s)); });
        auto& h = expected[{ev, variant}];
        if (h.empty()) h = hll::Empty();
        hll::Add(&h, Uuid(i));
        truth[{ev, variant}].insert(Uuid(i));
      }
    }
  }
  for (auto& f : pending) ASSERT_TRUE(f.get().ok());
  auto got = ReadMap(store.get(), "alephbet", "button color");
  ASSERT_EQ(got.size(), 4u);
  for (const auto& [key, h] : expected) {
    ASSERT_TRUE(got.count(key)) << key.first << "/" << key.second;
    uint64_t n = CountOf(got[key]);
    EXPECT_EQ(n, CountOf(h)) << key.first << "/" << key.second;
    double exact = static_cast<double>(truth[key].size());
    EXPECT_NEAR(static_cast<double>(n), exact, exact * 0.03);
  }
  EXPECT_EQ(Sorted(store->ListExperiments("alephbet")), std::vector<std::string>{"button color"});
  EXPECT_EQ(Sorted(store->ListNamespaces()), std::vector<std::string>{"alephbet"});
}

TEST(EmbeddedStore, NamesRoundTripExactlyAndDoNotCollide) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  struct Name {
    std::string ns, exp, ev, var;
  };
  const std::vector<Name> names = {
      {"a", "b:c", "participate", "v"},
      {"a:b", "c", "participate", "v"},
      {"a", "b", "c:participate", "v"},
      {"a", "b", "c", "participate:v"},
      {"ns with space", "exp/with/slash", "goal: done", "var iant"},
      {"nul\0ns"s, "\0"s, "ev\0"s, "\0\0"s},
      {"ünïcødé", "Größe ✓", "клик", "青"},
      {"\xff", "\xff\xff", "\xff", "\xff"},
      {"", "", "", ""},
      {"a", "ab", "e", "v"},
      {"a", "ab:c", "e", "v"},
  };
  for (size_t i = 0; i < names.size(); ++i) {
    const Name& n = names[i];
    // Counter i gets i+1 distinct uuids, so a misattributed counter shows up in its count.
    for (size_t j = 0; j <= i; ++j) {
      const std::string uuid = Uuid(static_cast<int>(j));
      ASSERT_TRUE(AddAndWait(store.get(), {n.ns, n.exp, n.ev, n.var, uuid}).ok());
    }
  }
  // Each (ns, experiment) here happens to hold exactly the counters listed for it.
  std::map<std::pair<std::string, std::string>, size_t> per_experiment;
  for (const Name& n : names) ++per_experiment[{n.ns, n.exp}];
  for (size_t i = 0; i < names.size(); ++i) {
    const Name& n = names[i];
    auto got = ReadMap(store.get(), n.ns, n.exp);
    EXPECT_EQ(got.size(), (per_experiment[{n.ns, n.exp}])) << i;
    ASSERT_TRUE(got.count(std::pair{n.ev, n.var})) << i;
    EXPECT_EQ(CountOf(got[{n.ev, n.var}]), i + 1) << i;
  }
  std::set<std::string> namespaces;
  for (const Name& n : names) namespaces.insert(n.ns);
  auto listed = Sorted(store->ListNamespaces());
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), namespaces);
  EXPECT_EQ(listed.size(), namespaces.size());
  EXPECT_EQ(Sorted(store->ListExperiments("a")),
            (std::vector<std::string>{"ab", "ab:c", "b", "b:c"}));
  EXPECT_EQ(Sorted(store->ListExperiments("nul\0ns"s)), std::vector<std::string>{"\0"s});
  EXPECT_TRUE(Sorted(store->ListExperiments("nul")).empty());
}

TEST(EmbeddedStore, ConcurrentAddsAllCompleteAndLand) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path(), /*sync=*/true, /*max_batch=*/64));
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  std::atomic<int> ok{0}, failed{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string variant = Numbered("v", t);
      for (int i = 0; i < kPerThread; ++i) {
        std::string uuid = Uuid(i);  // dies before the write: Add must copy what it needs
        store->Add({"ns", "concurrent", "participate", variant, uuid}, [&](Status s) {
          (s.ok() ? ok : failed).fetch_add(1);
          done.fetch_add(1);
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (done.load() < kThreads * kPerThread && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(done.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(ok.load(), kThreads * kPerThread);

  auto got = ReadMap(store.get(), "ns", "concurrent");
  ASSERT_EQ(got.size(), static_cast<size_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(CountOf(got[{"participate", Numbered("v", t)}]), CountOfUuids(kPerThread));
  }
}

// With "sync", a group commit starts at least min_commit_interval_us after the previous one
// started, so that one fdatasync covers more events at moderate load. Events that arrive
// meanwhile wait for it, and then all land.
TEST(EmbeddedStore, GroupCommitsStartAtLeastTheIntervalApartWithSync) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path(), /*sync=*/true, /*max_batch=*/1024, 300'000));
  ASSERT_NE(store, nullptr);
  const TrackEvent counter{"ns", "interval", "participate", "v", ""};
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(AddUuids(store.get(), counter, 0, 1).ok());  // its group commit began after start
  ASSERT_TRUE(AddUuids(store.get(), counter, 1, 20).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));

  auto got = ReadMap(store.get(), "ns", "interval");
  EXPECT_EQ(CountOf(got[{"participate", "v"}]), CountOfUuids(20));
}

// Once commit_early_events wait, a group commit starts without waiting out the interval: 20
// events, the threshold, land long before an interval of 100 s has passed.
TEST(EmbeddedStore, GroupCommitStartsEarlyOnceEnoughEventsWait) {
  TempDir dir;
  StoreOptions o = Options(dir.path(), /*sync=*/true, /*max_batch=*/1024, 100'000'000);
  o.commit_early_events = 20;
  auto store = OpenOrDie(o);
  ASSERT_NE(store, nullptr);
  const TrackEvent counter{"ns", "early", "participate", "v", ""};
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(AddUuids(store.get(), counter, 0, 1).ok());  // the interval starts now
  ASSERT_TRUE(AddUuids(store.get(), counter, 1, 21).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));

  auto got = ReadMap(store.get(), "ns", "early");
  EXPECT_EQ(CountOf(got[{"participate", "v"}]), CountOfUuids(21));
}

// A backlog is not held back: when a group commit of max_batch events leaves more queued,
// the next one starts at once instead of after the interval (50 events in batches of 10 wait
// out one interval, not five).
TEST(EmbeddedStore, BacklogIsCommittedWithoutWaitingOutTheInterval) {
  TempDir dir;
  StoreOptions o = Options(dir.path(), /*sync=*/true, /*max_batch=*/10, 500'000);
  o.commit_early_events = 0;  // only the backlog may start a commit early
  auto store = OpenOrDie(o);
  ASSERT_NE(store, nullptr);
  const TrackEvent counter{"ns", "backlog", "participate", "v", ""};
  ASSERT_TRUE(AddUuids(store.get(), counter, 0, 1).ok());  // a group commit has just begun
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(AddUuids(store.get(), counter, 1, 51).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2000));

  auto got = ReadMap(store.get(), "ns", "backlog");
  EXPECT_EQ(CountOf(got[{"participate", "v"}]), CountOfUuids(51));
}

// Threads of this process running SCHED_BATCH (Linux).
int ThreadsRunningBatchPolicy() {
  int n = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/task")) {
    const pid_t tid = static_cast<pid_t>(std::stol(entry.path().filename().string()));
    if (sched_getscheduler(tid) == SCHED_BATCH) ++n;
  }
  return n;
}

// With the commit interval the writer keeps its scheduling policy: a large group commit (here
// 299 events that waited out the interval) does not switch it to SCHED_BATCH.
TEST(EmbeddedStore, WriterStaysOffBatchPolicyWithACommitInterval) {
  TempDir dir;
  StoreOptions o = Options(dir.path(), /*sync=*/true, /*max_batch=*/1024, 200'000);
  o.commit_early_events = 0;  // all 299 wait out the interval
  auto store = OpenOrDie(o);
  ASSERT_NE(store, nullptr);
  const TrackEvent counter{"ns", "policy", "participate", "v", ""};
  ASSERT_TRUE(AddUuids(store.get(), counter, 0, 1).ok());
  ASSERT_TRUE(AddUuids(store.get(), counter, 1, 300).ok());    // one group commit of 299
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the writer's policy is set
  EXPECT_EQ(ThreadsRunningBatchPolicy(), 0);                   // after the callbacks run
}

// Without "sync" a group commit is a write to the page cache: no interval is kept.
TEST(EmbeddedStore, NoCommitIntervalWithoutSync) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path(), /*sync=*/false, /*max_batch=*/1024, 10'000'000));
  ASSERT_NE(store, nullptr);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(AddAndWait(store.get(), {"ns", "no-interval", "participate", "v", Uuid(i)}).ok());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(EmbeddedStore, DestructorDrainsQueueAndCallsEveryCallback) {
  TempDir dir;
  constexpr int kEvents = 5000;
  std::atomic<int> ok{0}, calls{0};
  {
    auto store = OpenOrDie(Options(dir.path(), /*sync=*/false, /*max_batch=*/100));
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < kEvents; ++i) {
      store->Add({"ns", "drain", "participate", "v", Uuid(i)}, [&](Status s) {
        if (s.ok()) ok.fetch_add(1);
        calls.fetch_add(1);
      });
    }
  }  // no waiting: the destructor must finish the queue
  EXPECT_EQ(calls.load(), kEvents);
  EXPECT_EQ(ok.load(), kEvents);
  auto store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  auto got = ReadMap(store.get(), "ns", "drain");
  EXPECT_EQ(CountOf(got[{"participate", "v"}]), CountOfUuids(kEvents));
}

TEST(EmbeddedStore, ReopenKeepsEverything) {
  TempDir dir;
  {
    auto store = OpenOrDie(Options(dir.path()));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(AddUuids(store.get(), {"n1", "e1", "participate", "a", ""}, 0, 300).ok());
    ASSERT_TRUE(AddAndWait(store.get(), {"n2", "e2", "goal", "b", "x"}).ok());
  }
  // Reopen three times: replayed WAL; recovered data; then after a full compaction.
  for (int round = 0; round < 3; ++round) {
    if (round == 2) CompactRaw(dir.path());
    auto store = OpenOrDie(Options(dir.path()));
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(Sorted(store->ListNamespaces()), (std::vector<std::string>{"n1", "n2"}));
    EXPECT_EQ(Sorted(store->ListExperiments("n2")), std::vector<std::string>{"e2"});
    auto got = ReadMap(store.get(), "n1", "e1");
    EXPECT_EQ(CountOf(got[{"participate", "a"}]), CountOfUuids(300));
    EXPECT_EQ(CountOf(ReadMap(store.get(), "n2", "e2")[{"goal", "b"}]), 1u);
  }
}

// RocksDB's flush and compaction threads run SCHED_IDLE (embedded_store.cc), so they never
// hold a core the request path wants. A thread takes the policy before its next job: closing a
// store flushes its memtable on the flush ("rocksdb:high") pool.
TEST(EmbeddedStore, BackgroundThreadsRunAtIdlePriority) {
  TempDir dir;
  {
    auto store = OpenOrDie(Options(dir.path()));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(AddAndWait(store.get(), {"ns", "e", "participate", "a", "x"}).ok());
  }
  int flush_threads = 0, idle = 0;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name != "rocksdb:high") continue;
    ++flush_threads;
    // Field 41 of /proc/.../stat is the policy; fields start after the ") " closing the name.
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 41 && rest >> field; ++i) {
    }
    if (field == std::to_string(SCHED_IDLE)) ++idle;
  }
  EXPECT_GE(flush_threads, 1);
  EXPECT_EQ(idle, flush_threads);
}

// A version-1 directory (one 3-byte operand per event, as gimel wrote before register lists)
// opens, reads the same and is marked version 2; an unknown version is refused, unchanged.
TEST(EmbeddedStore, UpgradesFormatOneAndRefusesUnknownFormats) {
  TempDir dir;
  std::string expected = hll::Empty();
  WithRawDb(dir.path(), [&](rocksdb::DB* db) {
    rocksdb::WriteOptions wo;
    ASSERT_TRUE(db->Put(wo, std::string(ek::kFormatKey), "1").ok());
    ASSERT_TRUE(db->Put(wo, ek::ExperimentKey("ns", "old"), "").ok());
    for (int i = 0; i < 50; ++i) {
      const hll::Register r = hll::Hash(Uuid(i));
      ASSERT_TRUE(db->Merge(wo, ek::CounterKey("ns", "old", "participate", "v"),
                            ek::EncodeRegisterOperand(r.index, r.rank))
                      .ok());
      hll::Add(&expected, Uuid(i));
    }
  });
  {
    auto store = OpenOrDie(Options(dir.path()));
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(CountOf(ReadMap(store.get(), "ns", "old")[{"participate", "v"}]), CountOf(expected));
  }
  std::string version;
  WithRawDb(dir.path(), [&](rocksdb::DB* db) {
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), std::string(ek::kFormatKey), &version).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), std::string(ek::kFormatKey), "3").ok());
  });
  EXPECT_EQ(version, ek::kFormatVersion);
  auto refused = OpenEmbeddedStore(Options(dir.path()));
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().IsCorruption());
  EXPECT_NE(refused.status().message().find("format version"), std::string::npos);
}

// The data directory's files whose names start with `prefix`, with their sizes.
std::map<std::string, uintmax_t> FilesStartingWith(const std::string& dir,
                                                   std::string_view prefix) {
  std::map<std::string, uintmax_t> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix)) out[name] = entry.file_size();
  }
  return out;
}

// Waits (up to 30 s) until this process's WAL spare is in `dir`: the store writes the next one
// on a SCHED_IDLE thread after each WAL takes the last, and on a loaded machine (tests in
// parallel) that thread may wait seconds for an idle CPU.
bool WaitForSpare(const std::string& dir) {
  const std::string spare = std::string(ek::kSpareWalPrefix) + std::to_string(getpid());
  for (int i = 0; i < 3000; ++i) {
    if (FilesStartingWith(dir, spare).count(spare) == 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::map<std::string, uintmax_t> WalFiles(const std::string& dir) {
  std::map<std::string, uintmax_t> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") out[entry.path().filename()] = entry.file_size();
  }
  return out;
}

TEST(EmbeddedStore, SecondOpenOfSameDirFailsClearly) {
  TempDir dir;
  auto first = OpenOrDie(Options(dir.path()));
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(WaitForSpare(dir.path()));
  auto second = OpenEmbeddedStore(Options(dir.path()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIOError);
  EXPECT_EQ(second.status().message(),
            "data directory " + dir.path() + " is in use by another gimel process (lock held)");
  EXPECT_TRUE(first->Health().ok());
  // The refused open wrote no spare of its own and left the first store's (same process, so
  // the same name) where it was, whole.
  const std::string spare = std::string(ek::kSpareWalPrefix) + std::to_string(getpid());
  const auto spares = FilesStartingWith(dir.path(), ek::kSpareWalPrefix);
  ASSERT_EQ(spares.count(spare), 1u);
  EXPECT_EQ(spares.at(spare), Options(dir.path()).write_buffer_bytes);
  EXPECT_EQ(spares.size(), 1u);
  first.reset();
  EXPECT_NE(OpenOrDie(Options(dir.path())), nullptr);
}

// Child side of SecondOpenFromAnotherProcessFailsClearly (run by SpawnChild): tries to open
// GIMEL_CHILD_DIR and writes the outcome to GIMEL_CHILD_FD.
TEST(EmbeddedStoreChild, DISABLED_TryOpen) {
  const char* dir = getenv("GIMEL_CHILD_DIR");
  const char* fd_env = getenv("GIMEL_CHILD_FD");
  if (dir == nullptr || fd_env == nullptr) GTEST_SKIP();
  auto r = OpenEmbeddedStore(Options(dir));
  std::string msg = r.ok() ? "OPENED" : r.status().ToString();
  _exit(write(atoi(fd_env), msg.data(), msg.size()) < 0 ? 2 : 0);
}

TEST(EmbeddedStore, SecondOpenFromAnotherProcessFailsClearly) {
  TempDir dir;
  auto first = OpenOrDie(Options(dir.path()));
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(WaitForSpare(dir.path()));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = SpawnChild("EmbeddedStoreChild.DISABLED_TryOpen", dir.path(), fds, true);
  ASSERT_GT(pid, 0);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(msg, "IOError: data directory " + dir.path() +
                     " is in use by another gimel process (lock held)");
  // The refused process left the first one's zero-filled WAL spare alone.
  const std::string spare = std::string(ek::kSpareWalPrefix) + std::to_string(getpid());
  EXPECT_EQ(FilesStartingWith(dir.path(), ek::kSpareWalPrefix).count(spare), 1u);
}

// With "sync", every WAL file is written over zeros: a spare of write_buffer_bytes zeros waits
// in the directory (per process), each new WAL starts at that size, and closing the store
// trims the WALs to what they hold and removes the spare.
TEST(EmbeddedStore, WritesWalFilesOverZerosAndTrimsThemOnClose) {
  TempDir dir;
  constexpr size_t kBuffer = 64 << 10;
  StoreOptions options = Options(dir.path());
  options.write_buffer_bytes = kBuffer;
  const std::string spare = std::string(ek::kSpareWalPrefix) + std::to_string(getpid());
  {
    // A spare left by a crashed process (another pid) is removed once the store holds the lock.
    std::ofstream(dir.path() + "/" + ek::kSpareWalPrefix + "1") << "old";
    auto store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(FilesStartingWith(dir.path(), ek::kSpareWalPrefix)
                  .count(std::string(ek::kSpareWalPrefix) + "1"),
              0u);
    auto wals = WalFiles(dir.path());
    ASSERT_EQ(wals.size(), 1u);
    EXPECT_EQ(wals.begin()->second, kBuffer) << "the first WAL is not the zero-filled spare";
    // Events over 100 counters: most group commits write 100 memtable entries, and the WAL
    // rotates a few times (each new WAL takes the spare if the thread has refilled it).
    std::atomic<int> left{0}, failed{0};
    for (int i = 0; i < 30; ++i) {
      for (int c = 0; c < 100; ++c) {
        left.fetch_add(1);
        store->Add({"ns", "exp", "participate", std::to_string(c), Uuid(i)}, [&](Status s) {
          if (!s.ok()) failed.fetch_add(1);
          left.fetch_sub(1);
        });
      }
    }
    while (left.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(failed.load(), 0);
    // The background thread has written the next spare by now (or will shortly).
    ASSERT_TRUE(WaitForSpare(dir.path()));
    auto spares = FilesStartingWith(dir.path(), ek::kSpareWalPrefix);
    ASSERT_EQ(spares.count(spare), 1u);
    EXPECT_EQ(spares[spare], kBuffer);
    auto got = ReadMap(store.get(), "ns", "exp");
    ASSERT_EQ(got.size(), 100u);
    for (const auto& [name, hll] : got) EXPECT_EQ(CountOf(hll), 30u) << name.second;
  }
  EXPECT_TRUE(FilesStartingWith(dir.path(), ek::kSpareWalPrefix).empty());
  for (const auto& [name, size] : WalFiles(dir.path())) EXPECT_LT(size, kBuffer) << name;

  auto store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  auto got = ReadMap(store.get(), "ns", "exp");
  ASSERT_EQ(got.size(), 100u);
  for (const auto& [name, hll] : got) EXPECT_EQ(CountOf(hll), 30u) << name.second;
}

// The spares after the first are written by the background thread in synced chunks with
// pauses (embedded_wal.cc, kPacedChunk): the one waiting after the open (the first WAL took
// the first) is still exactly write_buffer_bytes of zeros, under its final name only once
// complete, and closing the store leaves neither it nor a partial one behind.
TEST(EmbeddedStore, WritesLaterSparesInChunksToTheFullSize) {
  TempDir dir;
  constexpr size_t kBuffer = (1 << 20) + 4096;  // several chunks, the last one partial
  StoreOptions options = Options(dir.path());
  options.write_buffer_bytes = kBuffer;
  const std::string spare = std::string(ek::kSpareWalPrefix) + std::to_string(getpid());
  {
    auto store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(WaitForSpare(dir.path()));
    const auto spares = FilesStartingWith(dir.path(), ek::kSpareWalPrefix);
    EXPECT_EQ(spares.size(), 1u) << "a partial spare is left next to the complete one";
    ASSERT_EQ(spares.count(spare), 1u);
    EXPECT_EQ(spares.at(spare), kBuffer);
    std::ifstream in(dir.path() + "/" + spare, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_EQ(bytes.size(), kBuffer);
    EXPECT_EQ(bytes.find_first_not_of('\0'), std::string::npos);
    ASSERT_TRUE(AddUuids(store.get(), {"ns", "exp", "participate", "v", ""}, 0, 10).ok());
  }
  EXPECT_TRUE(FilesStartingWith(dir.path(), ek::kSpareWalPrefix).empty());
  auto store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  auto got = ReadMap(store.get(), "ns", "exp");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(CountOf(got.begin()->second), 10u);
}

// Without "sync" no WAL is fsynced per group commit, and no spare is written.
TEST(EmbeddedStore, WritesNoSpareWalWithoutSync) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path(), false));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(AddUuids(store.get(), {"ns", "exp", "participate", "v", ""}, 0, 10).ok());
  EXPECT_TRUE(FilesStartingWith(dir.path(), ek::kSpareWalPrefix).empty());
}

TEST(EmbeddedStore, DeleteExperimentRemovesExactlyOne) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  for (const char* exp : {"ab", "ab:c", "abc", "b"}) {
    ASSERT_TRUE(AddUuids(store.get(), {"ns", exp, "participate", "v", ""}, 0, 20).ok());
    ASSERT_TRUE(AddUuids(store.get(), {"ns", exp, "goal", "v", ""}, 0, 20).ok());
  }
  ASSERT_TRUE(AddAndWait(store.get(), {"other", "ab", "participate", "v", "x"}).ok());
  ASSERT_TRUE(store->DeleteExperiment("ns", "ab").ok());
  EXPECT_TRUE(ReadMap(store.get(), "ns", "ab").empty());
  EXPECT_EQ(Sorted(store->ListExperiments("ns")), (std::vector<std::string>{"ab:c", "abc", "b"}));
  for (const char* exp : {"ab:c", "abc", "b"}) {
    auto got = ReadMap(store.get(), "ns", exp);
    EXPECT_EQ(got.size(), 2u) << exp;
    EXPECT_EQ(CountOf(got[{"goal", "v"}]), 20u) << exp;
  }
  EXPECT_EQ(ReadMap(store.get(), "other", "ab").size(), 1u);

  // Re-adding after a delete starts from zero and re-indexes the experiment (the in-memory
  // "already indexed" set must have forgotten it).
  ASSERT_TRUE(AddAndWait(store.get(), {"ns", "ab", "participate", "v", "fresh"}).ok());
  EXPECT_EQ(Sorted(store->ListExperiments("ns")),
            (std::vector<std::string>{"ab", "ab:c", "abc", "b"}));
  auto again = ReadMap(store.get(), "ns", "ab");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(CountOf(again[{"participate", "v"}]), 1u);

  // Deleting every experiment of a namespace removes the namespace from the list.
  ASSERT_TRUE(store->DeleteExperiment("other", "ab").ok());
  EXPECT_EQ(Sorted(store->ListNamespaces()), std::vector<std::string>{"ns"});

  // And it stays deleted across a reopen and a compaction.
  ASSERT_TRUE(store->DeleteExperiment("ns", "b").ok());
  store.reset();
  CompactRaw(dir.path());
  store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(ReadMap(store.get(), "ns", "b").empty());
  EXPECT_EQ(Sorted(store->ListExperiments("ns")), (std::vector<std::string>{"ab", "ab:c", "abc"}));
}

TEST(EmbeddedStore, MergeCounterIsIdempotentAndUnionsWithExistingData) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  std::string incoming = hll::Empty();
  for (int i = 0; i < 500; ++i) hll::Add(&incoming, Uuid(i));
  std::string dense_incoming = incoming;
  for (int i = 500; i < 5000; ++i) hll::Add(&dense_incoming, Uuid(i));

  ASSERT_TRUE(store->MergeCounter("ns", "m", "participate", "v", incoming).ok());
  uint64_t once = CountOf(ReadMap(store.get(), "ns", "m")[{"participate", "v"}]);
  EXPECT_EQ(once, CountOf(incoming));
  ASSERT_TRUE(store->MergeCounter("ns", "m", "participate", "v", incoming).ok());
  EXPECT_EQ(CountOf(ReadMap(store.get(), "ns", "m")[{"participate", "v"}]), once);
  EXPECT_EQ(Sorted(store->ListExperiments("ns")), std::vector<std::string>{"m"});

  // Into existing data from Add: union.
  ASSERT_TRUE(AddUuids(store.get(), {"ns", "m", "goal", "v", ""}, 250, 750).ok());
  std::string added = hll::Empty();
  for (int i = 250; i < 750; ++i) hll::Add(&added, Uuid(i));
  ASSERT_TRUE(store->MergeCounter("ns", "m", "goal", "v", incoming).ok());
  ASSERT_TRUE(store->MergeCounter("ns", "m", "goal", "v", incoming).ok());
  std::string union_expected = added;
  ASSERT_TRUE(hll::Merge(&union_expected, incoming).ok());
  EXPECT_EQ(CountOf(ReadMap(store.get(), "ns", "m")[{"goal", "v"}]), CountOf(union_expected));

  // A dense operand too, and the result survives a reopen (then after a compaction).
  ASSERT_TRUE(store->MergeCounter("ns", "m", "goal", "v", dense_incoming).ok());
  ASSERT_TRUE(hll::Merge(&union_expected, dense_incoming).ok());
  EXPECT_EQ(CountOf(ReadMap(store.get(), "ns", "m")[{"goal", "v"}]), CountOf(union_expected));
  store.reset();
  CompactRaw(dir.path());
  store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(CountOf(ReadMap(store.get(), "ns", "m")[{"goal", "v"}]), CountOf(union_expected));
  ASSERT_TRUE(store->MergeCounter("ns", "m", "goal", "v", dense_incoming).ok());  // on a base
  EXPECT_EQ(CountOf(ReadMap(store.get(), "ns", "m")[{"goal", "v"}]), CountOf(union_expected));

  // Invalid input is refused.
  EXPECT_TRUE(store->MergeCounter("ns", "m", "goal", "v", "HYLLnot").IsInvalidArgument());
  EXPECT_TRUE(store->MergeCounter("ns", "m", "goal", "v", "").IsInvalidArgument());
}

TEST(EmbeddedStore, CorruptCounterBytesReadAsCorruption) {
  TempDir dir;
  {
    auto store = OpenOrDie(Options(dir.path()));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(AddAndWait(store.get(), {"ns", "bad", "participate", "v", "x"}).ok());
    ASSERT_TRUE(AddAndWait(store.get(), {"ns", "good", "participate", "v", "x"}).ok());
  }
  std::string dense = hll::Empty();
  hll::ToDense(&dense);
  const std::vector<std::string> corruptions = {"garbage",
                                                "",
                                                "HYLL",
                                                "HYLL\x01\0\0\0\0\0\0\0\0\0\0\0"s,
                                                dense.substr(0, dense.size() - 1),
                                                "HYLL\x02" + std::string(20, '\0')};
  for (const std::string& bytes : corruptions) {
    PutRaw(dir.path(), ek::CounterKey("ns", "bad", "participate", "v"), bytes);
    auto store = OpenOrDie(Options(dir.path()));
    ASSERT_NE(store, nullptr);
    auto r = store->ReadExperiment("ns", "bad");
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
    // Adds on top of corrupt bytes neither crash nor hide the corruption.
    ASSERT_TRUE(AddAndWait(store.get(), {"ns", "bad", "participate", "v", "y"}).ok());
    ASSERT_TRUE(store->MergeCounter("ns", "bad", "participate", "v", hll::Empty()).ok());
    EXPECT_EQ(store->ReadExperiment("ns", "bad").status().code(), StatusCode::kCorruption);
    EXPECT_EQ(ReadMap(store.get(), "ns", "good").size(), 1u);
  }
}

TEST(EmbeddedStore, ListNamespacesAndExperiments) {
  TempDir dir;
  auto store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"a", "x"}, {"a", "y"},       {"a:b", "x"}, {"ab", "z"},
      {"b", "x"}, {"\xff", "\xff"}, {"a", "y:z"}};
  for (const auto& [ns, exp] : pairs) {
    ASSERT_TRUE(AddAndWait(store.get(), {ns, exp, "participate", "v", "u"}).ok());
    ASSERT_TRUE(AddAndWait(store.get(), {ns, exp, "goal", "w", "u"}).ok());
  }
  EXPECT_EQ(Sorted(store->ListNamespaces()),
            (std::vector<std::string>{"a", "a:b", "ab", "b", "\xff"}));
  EXPECT_EQ(Sorted(store->ListExperiments("a")), (std::vector<std::string>{"x", "y", "y:z"}));
  EXPECT_EQ(Sorted(store->ListExperiments("a:b")), std::vector<std::string>{"x"});
  EXPECT_EQ(Sorted(store->ListExperiments("\xff")), std::vector<std::string>{"\xff"});
  EXPECT_TRUE(Sorted(store->ListExperiments("none")).empty());
}

// ReadExperiments reads a batch through one iterator, seeking only where the next name's
// counters do not follow the last ones in key order. Each entry must hold exactly its
// experiment's counters for names in key order (ListExperiments), in reverse, duplicated,
// unknown, that are prefixes of each other or long enough for a two-byte length, beside
// namespaces that share a prefix with this one, and with the counters split between a flushed
// file and the memtable.
TEST(EmbeddedStore, ReadExperimentsGivesEachNameItsOwnCounters) {
  TempDir dir;
  const std::vector<std::string> experiments = {"",    "e",    "e:x", "ex", std::string(200, 'l'),
                                                "ünï", "\xff", "z"};
  // experiment -> (event, variant) -> uuids Uuid(0) .. Uuid(n - 1)
  using Model = std::map<std::string, std::map<std::pair<std::string, std::string>, int>>;
  Model model;
  auto add = [&](Store* store, const std::string& ns, const std::string& experiment,
                 const std::string& event, const std::string& variant, int n, Model* m) {
    ASSERT_TRUE(AddUuids(store, {ns, experiment, event, variant, ""}, 0, n).ok());
    if (m != nullptr) (*m)[experiment][{event, variant}] = n;
  };
  {
    auto store = OpenOrDie(Options(dir.path()));
    ASSERT_NE(store, nullptr);
    for (size_t i = 0; i < experiments.size(); ++i) {
      const int k = static_cast<int>(i);
      add(store.get(), "ns", experiments[i], "participate", "a", k + 1, &model);
      add(store.get(), "ns", experiments[i], "goal", "a", 2 * k + 1, &model);
      // Neighbouring namespaces, with counts that would show if they leaked in.
      add(store.get(), "n", experiments[i], "participate", "a", 40, nullptr);
      add(store.get(), "ns2", experiments[i], "participate", "a", 41, nullptr);
    }
  }  // closing flushes the memtable: the counters above are now in a file
  auto store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  for (size_t i = 0; i < experiments.size(); ++i) {
    const int k = static_cast<int>(i);
    add(store.get(), "ns", experiments[i], "participate", "a", k + 5, &model);  // a superset
    add(store.get(), "ns", experiments[i], "participate", "b", k + 3, &model);
  }

  auto expect_batch = [&](std::string_view ns, const std::vector<std::string>& names,
                          const Model& expected) {
    auto r = store->ReadExperiments(ns, names);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      std::map<std::pair<std::string, std::string>, uint64_t> got, want;
      for (const Counter& c : (*r)[i]) {
        EXPECT_TRUE(got.emplace(std::pair{c.event, c.variant}, CountOf(c.hll)).second);
      }
      if (auto it = expected.find(names[i]); it != expected.end()) {
        for (const auto& [counter, n] : it->second) want[counter] = CountOfUuids(n);
      }
      EXPECT_EQ(got, want) << "name " << i << " of " << names.size() << ": " << names[i];
    }
  };
  auto listed = store->ListExperiments("ns");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), experiments.size());
  expect_batch("ns", *listed, model);
  std::vector<std::string> mixed(listed->rbegin(), listed->rend());
  for (const char* extra : {"never", "e", "e", "", "ex", "e:x", "zz", "z"}) mixed.push_back(extra);
  mixed.insert(mixed.end(), listed->begin(), listed->end());
  expect_batch("ns", mixed, model);
  expect_batch("none", mixed, Model{});
  expect_batch("ns", {}, model);
  expect_batch("ns", {"z"}, model);
  // ReadExperiment is the batch of one.
  auto one = store->ReadExperiment("ns", "e:x");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 3u);
}

// ---------------------------------------------------------------------------------------------
// Crash durability: every acknowledged Add survives a SIGKILL.
// ---------------------------------------------------------------------------------------------

// Child side of the crash tests (run by SpawnChild): adds events forever to GIMEL_CHILD_DIR,
// each to its own counter (variant = i), and writes i to GIMEL_CHILD_FD only after i's
// callback returned OK. The parent SIGKILLs it mid-flight.
TEST(EmbeddedStoreChild, DISABLED_AddForever) {
  const char* dir = getenv("GIMEL_CHILD_DIR");
  const char* fd_env = getenv("GIMEL_CHILD_FD");
  const char* sync_env = getenv("GIMEL_CHILD_SYNC");
  const char* write_buffer_env = getenv("GIMEL_CHILD_WRITE_BUFFER");
  if (dir == nullptr || fd_env == nullptr || sync_env == nullptr || write_buffer_env == nullptr) {
    GTEST_SKIP();
  }
  const int fd = atoi(fd_env);
  StoreOptions options = Options(dir, std::string(sync_env) == "1", 64);
  options.write_buffer_bytes = std::stoul(write_buffer_env);
  auto r = OpenEmbeddedStore(options);
  if (!r.ok()) _exit(3);
  std::unique_ptr<Store> store = std::move(r).value();
  std::atomic<int> in_flight{0};
  for (uint32_t i = 0;; ++i) {
    while (in_flight.load() > 256) std::this_thread::sleep_for(std::chrono::microseconds(50));
    in_flight.fetch_add(1);
    std::string variant = std::to_string(i);
    store->Add({"crash", "exp", "participate", variant, "u"}, [fd, i, &in_flight](Status s) {
      if (s.ok()) {
        if (write(fd, &i, sizeof i) != sizeof i) _exit(4);
      }
      in_flight.fetch_sub(1);
    });
  }
}

// Kills the child once `acks` events are acknowledged; checks every acknowledged event is there.
void CrashAndRecover(bool sync, size_t acks = 3000,
                     size_t write_buffer_bytes = StoreOptions().write_buffer_bytes) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = SpawnChild("EmbeddedStoreChild.DISABLED_AddForever", dir.path(), fds, sync,
                         write_buffer_bytes);
  ASSERT_GT(pid, 0);
  std::set<uint32_t> acked;
  std::string buf;
  auto drain = [&](size_t want) {
    char chunk[4096];
    while (acked.size() < want) {
      ssize_t n = read(fds[0], chunk, sizeof chunk);
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
      size_t whole = buf.size() / 4 * 4;
      for (size_t off = 0; off < whole; off += 4) {
        uint32_t i;
        std::memcpy(&i, buf.data() + off, 4);
        acked.insert(i);
      }
      buf.erase(0, whole);
    }
  };
  drain(acks);  // kill it mid-stream, with writes in flight
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
  drain(SIZE_MAX);  // acks written before the kill
  close(fds[0]);
  ASSERT_GE(acked.size(), acks);

  auto store = OpenOrDie(Options(dir.path()));
  ASSERT_NE(store, nullptr);
  auto got = ReadMap(store.get(), "crash", "exp");
  EXPECT_GE(got.size(), acked.size());
  size_t missing = 0;
  for (uint32_t i : acked) {
    auto it = got.find({"participate", std::to_string(i)});
    if (it == got.end() || CountOf(it->second) != 1) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged events";
  EXPECT_EQ(Sorted(store->ListExperiments("crash")), std::vector<std::string>{"exp"});
}

TEST(EmbeddedStoreCrash, AcknowledgedAddsSurviveSigkillSync) { CrashAndRecover(true); }
TEST(EmbeddedStoreCrash, AcknowledgedAddsSurviveSigkillNoSync) { CrashAndRecover(false); }

// With "sync", WAL files are handed out filled with zeros (embedded_wal.h); with 128 KiB
// memtables the WAL rotates every few hundred events, so the child dies with several such
// files behind it, and recovery must read each one's records and skip its zeros.
TEST(EmbeddedStoreCrash, AcknowledgedAddsSurviveSigkillInZeroFilledWals) {
  CrashAndRecover(true, 10000, 128 << 10);
}

}  // namespace
}  // namespace gimel::store
