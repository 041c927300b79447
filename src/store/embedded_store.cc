// The embedded store: RocksDB + HLL merge operator + group commit. See embedded_store.h.
//
// Concurrency. Add only takes queue_mu_ (to push) and never waits on I/O. The writer thread
// pops up to max_batch events, and under write_mu_ builds one WriteBatch, writes it and
// records the newly indexed experiments in indexed_. DeleteExperiment and MergeCounter take
// write_mu_ too, so an index entry the writer decides to skip ("already indexed") cannot be
// deleted between that decision and the write. Reads go straight to RocksDB.

#include "store/embedded_store.h"

#include <pthread.h>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/defer.h"
#include "hll/hll.h"
#include "store/embedded_keys.h"
#include "store/embedded_wal.h"

namespace gimel::store {
namespace {

namespace ek = embedded;

// Pending Adds beyond this are refused with kUnavailable instead of growing without bound.
constexpr size_t kMaxQueued = 1 << 18;

// Memory and startup: small memtables (StoreOptions::write_buffer_bytes), a small block cache,
// no bloom filters (all reads are prefix scans).
constexpr int kMaxWriteBuffers = 2;
constexpr size_t kBlockCacheSize = 8 << 20;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = "embedded store: " + std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  return Status::IOError(std::move(msg));
}

bool IsLockError(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  std::string msg = s.ToString();
  return msg.find("/LOCK") != std::string::npos || msg.find("lock hold") != std::string::npos;
}

// A name as it appears in an error message: quoted, with bytes outside printable ASCII
// escaped.
std::string Quote(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  out.push_back('"');
  return out;
}

void Invoke(AddCallback& done, const Status& status) {
  if (!done) return;
  try {
    done(status);
  } catch (...) {
    // A callback must not throw (store.h); never let one kill the writer thread.
  }
}

// Heterogeneous lookup: indexed_ is probed with string_views into counter keys.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The whole counter key as the "prefix" of memtable insert hints: RocksDB keeps, per counter,
// where its last merge operand went, and the next operand of that counter (same user key,
// higher sequence number) sorts right before it, so the insert skips the skiplist search
// (~250 bytes per counter written since the last flush).
class CounterKeyHint final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "gimel.counter_key_hint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override { return key; }
  bool InDomain(const rocksdb::Slice& key) const override {
    return !key.empty() && key[0] == ek::kCounterTag;
  }
};

rocksdb::Options MakeOptions(const StoreOptions& options, rocksdb::Env* env) {
  rocksdb::Options o;
  if (env != nullptr) o.env = env;
  o.create_if_missing = true;
  o.merge_operator = ek::NewHllMergeOperator();
  o.max_background_jobs = 2;
  o.write_buffer_size = options.write_buffer_bytes;
  o.max_write_buffer_number = kMaxWriteBuffers;
  o.max_total_wal_size = 4 * options.write_buffer_bytes;
  o.target_file_size_base = 16 << 20;
  o.max_bytes_for_level_base = 64 << 20;
  o.level_compaction_dynamic_level_bytes = true;
  o.max_open_files = 256;
  o.keep_log_file_num = 4;
  o.max_log_file_size = 4 << 20;
  o.stats_dump_period_sec = 0;
  o.stats_persist_period_sec = 0;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // One writer thread: concurrent memtable writes buy nothing, and they would disable hints.
  o.allow_concurrent_memtable_write = false;
  o.memtable_insert_with_hint_prefix_extractor = std::make_shared<CounterKeyHint>();

  o.compression = rocksdb::kNoCompression;
  for (rocksdb::CompressionType t : rocksdb::GetSupportedCompressions()) {
    if (t == rocksdb::kLZ4Compression) o.compression = rocksdb::kLZ4Compression;
  }

  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(kBlockCacheSize);
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

// ---------------------------------------------------------------------------------------------
// EmbeddedStore
// ---------------------------------------------------------------------------------------------

class EmbeddedStore final : public Store {
 public:
  EmbeddedStore(std::unique_ptr<rocksdb::Env> env, std::unique_ptr<rocksdb::DB> db,
                const StoreOptions& options)
      : env_(std::move(env)),
        db_(std::move(db)),
        max_batch_(static_cast<size_t>(options.max_batch)),
        min_commit_interval_(options.sync ? options.min_commit_interval_us : 0),
        commit_early_events_(options.commit_early_events > 0
                                 ? static_cast<size_t>(options.commit_early_events)
                                 : SIZE_MAX) {  // 0: never early
    write_options_.sync = options.sync;
    writer_ = std::thread([this] { WriterLoop(); });
  }

  ~EmbeddedStore() override {
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    writer_.join();
    if (!write_options_.sync) db_->SyncWAL().PermitUncheckedError();
    // Flushing the memtables now makes the next Open fast (no WAL replay); if it fails, the
    // WAL still has everything.
    db_->Flush(rocksdb::FlushOptions()).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }

  void Add(const TrackEvent& event, AddCallback done) override {
    Pending p;
    p.key.reserve(1 + event.ns.size() + event.experiment.size() + event.event.size() +
                  event.variant.size() + 8);
    p.key.push_back(ek::kCounterTag);
    ek::PutName(&p.key, event.ns);
    ek::PutName(&p.key, event.experiment);
    p.experiment_end = p.key.size();
    ek::PutName(&p.key, event.event);
    ek::PutName(&p.key, event.variant);
    hll::Register r = hll::Hash(event.uuid);
    p.reg = r;
    p.done = std::move(done);

    Status refused;
    bool wake = false;
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      if (stopping_) {
        refused = Status::Unavailable("embedded store: closing");
      } else if (queue_.size() >= kMaxQueued) {
        refused = Status::Unavailable("embedded store: write queue full");
      } else {
        queue_.push_back(std::move(p));
        wake = writer_idle_ || queue_.size() == commit_early_events_;
      }
    }
    if (!refused.ok()) {
      Invoke(p.done, refused);
      return;
    }
    if (wake) queue_cv_.notify_one();
  }

  Result<std::vector<std::string>> ListNamespaces() override {
    std::vector<std::string> out;
    const std::string start(1, ek::kExperimentTag);
    const std::string upper = ek::PrefixSuccessor(start);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    it->Seek(start);
    while (it->Valid()) {
      std::string_view ns, experiment;
      if (!ek::ParseExperimentKey(View(it->key()), &ns, &experiment)) {
        return Status::Corruption("embedded store: malformed experiment index key");
      }
      out.emplace_back(ns);
      // Skip the rest of this namespace.
      std::string next = ek::PrefixSuccessor(ek::ExperimentPrefix(ns));
      if (next.empty()) break;
      it->Seek(next);
    }
    GIMEL_RETURN_IF_ERROR(FromRocks(it->status(), "listing namespaces"));
    return out;
  }

  Result<std::vector<std::string>> ListExperiments(std::string_view ns) override {
    std::vector<std::string> out;
    Status s = Scan(ek::ExperimentPrefix(ns), [&](std::string_view key, std::string_view) {
      std::string_view key_ns, experiment;
      if (!ek::ParseExperimentKey(key, &key_ns, &experiment)) {
        return Status::Corruption("embedded store: malformed experiment index key in namespace " +
                                  Quote(ns));
      }
      out.emplace_back(experiment);
      return Status::Ok();
    });
    GIMEL_RETURN_IF_ERROR(s);
    return out;
  }

  Result<std::vector<Counter>> ReadExperiment(std::string_view ns,
                                              std::string_view experiment) override {
    GIMEL_ASSIGN_OR_RETURN(auto counters, ReadExperiments(ns, {std::string(experiment)}));
    return std::move(counters[0]);
  }

  // All the experiments through one iterator. Creating a RocksDB iterator pins the memtables
  // and files and builds a child iterator for every L0 file; per experiment that cost more than
  // the read itself. Where `experiments` come in key order (as ListExperiments gives them), the
  // iterator usually stands at the next experiment's first counter already, and no Seek is
  // needed: counter keys of different experiments share no prefix (names are length-prefixed),
  // so each experiment's counters are one contiguous run of keys.
  Result<std::vector<std::vector<Counter>>> ReadExperiments(
      std::string_view ns, const std::vector<std::string>& experiments) override {
    std::vector<std::vector<Counter>> out(experiments.size());
    std::string ns_prefix(1, ek::kCounterTag);
    ek::PutName(&ns_prefix, ns);
    const std::string upper = ek::PrefixSuccessor(ns_prefix);  // never empty: starts with 'c'
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    bool positioned = false;  // it->Seek has been called
    std::string prefix;
    for (size_t i = 0; i < experiments.size(); ++i) {
      prefix = ek::CounterPrefix(ns, experiments[i]);
      if (!positioned || !it->Valid() || !View(it->key()).starts_with(prefix)) {
        it->Seek(prefix);
        positioned = true;
      }
      for (; it->Valid(); it->Next()) {
        std::string_view key = View(it->key());
        if (!key.starts_with(prefix)) break;
        GIMEL_RETURN_IF_ERROR(AppendCounter(ns, experiments[i], key, View(it->value()), &out[i]));
      }
      GIMEL_RETURN_IF_ERROR(FromRocks(it->status(), "reading"));
    }
    return out;
  }

  Status DeleteExperiment(std::string_view ns, std::string_view experiment) override {
    const std::string prefix = ek::CounterPrefix(ns, experiment);
    const std::string upper = ek::PrefixSuccessor(prefix);  // never empty: prefix[0] == 'c'
    std::lock_guard<std::mutex> l(write_mu_);
    rocksdb::WriteBatch wb;
    GIMEL_RETURN_IF_ERROR(FromRocks(wb.DeleteRange(prefix, upper), "deleting experiment"));
    GIMEL_RETURN_IF_ERROR(
        FromRocks(wb.Delete(ek::ExperimentKey(ns, experiment)), "deleting experiment"));
    // Forget it even if the write fails: re-writing an index entry is always safe.
    if (auto it = indexed_.find(IndexedName(prefix, prefix.size())); it != indexed_.end()) {
      indexed_.erase(it);
    }
    return Write(&wb, "deleting experiment");
  }

  Status MergeCounter(std::string_view ns, std::string_view experiment, std::string_view event,
                      std::string_view variant, std::string_view hll_bytes) override {
    Status valid = hll::Validate(hll_bytes);
    if (!valid.ok()) {
      return Status::InvalidArgument("embedded store: MergeCounter: not a valid HLL: " +
                                     valid.message());
    }
    const std::string key = ek::CounterKey(ns, experiment, event, variant);
    const size_t experiment_end = ek::CounterPrefix(ns, experiment).size();
    std::lock_guard<std::mutex> l(write_mu_);
    rocksdb::WriteBatch wb;
    GIMEL_RETURN_IF_ERROR(FromRocks(
        wb.Merge(key, rocksdb::Slice(hll_bytes.data(), hll_bytes.size())), "merging counter"));
    std::string_view name = IndexedName(key, experiment_end);
    const bool indexed = indexed_.find(name) != indexed_.end();
    if (!indexed) {
      GIMEL_RETURN_IF_ERROR(
          FromRocks(wb.Put(ExperimentKeyOf(key, experiment_end), ""), "merging counter"));
    }
    GIMEL_RETURN_IF_ERROR(Write(&wb, "merging counter"));
    if (!indexed) indexed_.emplace(name);
    return Status::Ok();
  }

  Status Health() override {
    if (!last_write_ok_.load(std::memory_order_relaxed)) {
      return Status::IOError("embedded store: the last write to the data directory failed");
    }
    return Status::Ok();
  }

  std::string_view name() const override { return "embedded"; }

 private:
  struct Pending {
    std::string key;            // counter key
    size_t experiment_end = 0;  // key[0, experiment_end) == CounterPrefix(ns, experiment)
    hll::Register reg;          // the event's register update
    AddCallback done;
  };

  // The experiment part of a counter key ('c' stripped): the in-memory index's key.
  static std::string_view IndexedName(std::string_view counter_key, size_t experiment_end) {
    return counter_key.substr(1, experiment_end - 1);
  }
  static std::string ExperimentKeyOf(std::string_view counter_key, size_t experiment_end) {
    std::string k(1, ek::kExperimentTag);
    k.append(IndexedName(counter_key, experiment_end));
    return k;
  }

  // Parses a counter of `experiment` and appends it to `out`, validated and with its
  // cardinality cache filled in the same pass (store.h).
  static Status AppendCounter(std::string_view ns, std::string_view experiment,
                              std::string_view key, std::string_view value,
                              std::vector<Counter>* out) {
    std::string_view key_ns, key_experiment, event, variant;
    if (!ek::ParseCounterKey(key, &key_ns, &key_experiment, &event, &variant)) {
      return Status::Corruption("embedded store: malformed counter key in experiment " +
                                Quote(experiment));
    }
    Counter& c =
        out->emplace_back(Counter{std::string(event), std::string(variant), std::string(value)});
    Result<uint64_t> count = hll::CountAndCache(&c.hll);
    if (!count.ok()) {
      return Status::Corruption("embedded store: counter (" + Quote(ns) + ", " + Quote(experiment) +
                                ", " + Quote(event) + ", " + Quote(variant) +
                                ") is not a valid HLL: " + count.status().message());
    }
    return Status::Ok();
  }

  // Calls fn(key, value) for every key starting with `prefix`, stopping at its first error.
  template <typename Fn>
  Status Scan(const std::string& prefix, Fn&& fn) {
    const std::string upper = ek::PrefixSuccessor(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      std::string_view key = View(it->key());
      if (key.substr(0, prefix.size()) != prefix) break;
      GIMEL_RETURN_IF_ERROR(fn(key, View(it->value())));
    }
    return FromRocks(it->status(), "reading");
  }

  // REQUIRES: write_mu_ held.
  Status Write(rocksdb::WriteBatch* wb, std::string_view what) {
    Status s = FromRocks(db_->Write(write_options_, wb), what);
    last_write_ok_.store(s.ok(), std::memory_order_relaxed);
    return s;
  }

  // Without "sync", under heavy load this thread runs SCHED_BATCH: an Add that wakes it on the
  // core of the I/O thread that queued it then does not preempt that thread, which goes on
  // parsing the requests it has already read, and the next group commit takes them all instead of
  // a few (+15-25 % /track throughput here, measured with sync before the commit interval
  // existed). Under moderate load a preempting writer answers sooner (always SCHED_BATCH: p99 at
  // half of peak 5-7 ms instead of 3.5 ms), so the policy follows the size of the last group
  // commit. With "sync" the commit interval below already lets the I/O thread read on while the
  // writer sleeps, and the policy no longer paid: without it, the same peak (16 alternating
  // pairs, medians 51.3 against 50.4 k events/s) and a lower p99 at 25 k events/s in 11 of 16
  // pairs (medians 3.0 against 3.2 ms; bench/README.md, "Optimisations done" 16), as a commit
  // made large by a slow fdatasync no longer leaves the next ones waiting for the I/O thread's
  // time slice.
  static constexpr size_t kBatchPolicyFrom = 128;  // events in the last group commit

  static void SetBatchPolicy(bool batch) {  // Linux; elsewhere a harmless failure
    sched_param param{};
    (void)pthread_setschedparam(pthread_self(), batch ? SCHED_BATCH : SCHED_OTHER, &param);
  }

  // With "sync", a group commit starts at least min_commit_interval_ after the previous one
  // started, or sooner once commit_early_events_ events wait: the writer waits on queue_cv_,
  // which an Add signals only when its event is the one that reaches that count (or when the
  // writer is idle), so the Adds in between wake nobody; then it takes everything that has
  // arrived. Every group commit costs an fdatasync whatever its size (~50 us of CPU on this
  // VM, two sleeps on the disk) and a wake-up of the I/O threads to answer; back to back at
  // moderate load, commits of a dozen events kept the core 70-85 % busy at half of peak, and
  // the tail was the queueing behind that. A fixed 1 ms interval (bench/README.md,
  // "Optimisations done" 15): at 25-28 k events/s 2,300 -> 900 fdatasyncs a second, CPU per
  // event 30.4 -> 25.5 us, p99 6.4 -> 4.3 ms. A fixed 2 ms one saved more CPU but lowered the
  // peak; ending it early once 48 events wait keeps both ("Optimisations done" 20: against
  // 1 ms, 12 alternating pairs at 24 k events/s, CPU per event 22.8 -> 21.5 us, p99 4.7 ->
  // 4.2 ms, p50 1.25 -> 1.85 ms, medians; the same peak). Sparse events (the last commit began
  // over 2 ms ago) are not held back, nor is a backlog: after a commit of max_batch_ events
  // that left more queued, the next one starts at once.
  void WriterLoop() {
    const bool follow_batch_size = min_commit_interval_.count() == 0;  // see kBatchPolicyFrom
    bool batch_policy = false;
    std::vector<Pending> batch;
    batch.reserve(std::min<size_t>(max_batch_, 4096));
    std::chrono::steady_clock::time_point last_start;
    bool backlog = false;  // the last group commit was full and left events queued
    for (;;) {
      {
        std::unique_lock<std::mutex> l(queue_mu_);
        if (min_commit_interval_.count() > 0 && !backlog) {
          queue_cv_.wait_until(l, last_start + min_commit_interval_, [this] {
            return stopping_ || queue_.size() >= commit_early_events_;
          });
        }
        writer_idle_ = true;
        queue_cv_.wait(l, [this] { return stopping_ || !queue_.empty(); });
        writer_idle_ = false;
        if (queue_.empty()) return;  // stopping, and everything is drained
        const size_t n = std::min(max_batch_, queue_.size());
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        backlog = !queue_.empty();
      }
      last_start = std::chrono::steady_clock::now();
      Status s = WriteEvents(batch);
      {
        DeferScope scope;  // one hand-over per I/O thread for the whole group commit
        for (Pending& p : batch) Invoke(p.done, s);
      }
      if (follow_batch_size && (batch.size() >= kBatchPolicyFrom) != batch_policy) {
        batch_policy = !batch_policy;
        SetBatchPolicy(batch_policy);
      }
      batch.clear();
    }
  }

  // One merge operand per counter, listing the registers of all its events in the batch: a
  // batch of a few hundred events over ~100 counters then costs ~100 memtable inserts, not one
  // per event, and leaves fewer operands for reads and flushes to fold.
  Status WriteEvents(std::vector<Pending>& batch) {
    std::lock_guard<std::mutex> l(write_mu_);
    order_.resize(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) order_[i] = &batch[i];
    std::sort(order_.begin(), order_.end(),
              [](const Pending* a, const Pending* b) { return a->key < b->key; });
    rocksdb::WriteBatch wb;
    std::unordered_set<std::string_view> new_index;
    for (size_t i = 0; i < order_.size();) {
      const Pending& first = *order_[i];
      operand_.clear();
      for (; i < order_.size() && order_[i]->key == first.key; ++i) {
        ek::AppendRegisterEntry(&operand_, order_[i]->reg.index, order_[i]->reg.rank);
      }
      GIMEL_RETURN_IF_ERROR(FromRocks(wb.Merge(first.key, operand_), "writing events"));
      std::string_view name = IndexedName(first.key, first.experiment_end);
      if (indexed_.find(name) == indexed_.end() && new_index.insert(name).second) {
        GIMEL_RETURN_IF_ERROR(FromRocks(
            wb.Put(ExperimentKeyOf(first.key, first.experiment_end), ""), "writing events"));
      }
    }
    GIMEL_RETURN_IF_ERROR(Write(&wb, "writing events"));
    for (std::string_view name : new_index) indexed_.emplace(name);
    return Status::Ok();
  }

  const std::unique_ptr<rocksdb::Env> env_;  // null: RocksDB's default; outlives db_
  const std::unique_ptr<rocksdb::DB> db_;
  const size_t max_batch_;
  const std::chrono::microseconds min_commit_interval_;  // 0 without "sync"
  const size_t commit_early_events_;                     // SIZE_MAX: never early
  rocksdb::WriteOptions write_options_;
  std::atomic<bool> last_write_ok_{true};

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;  // guarded by queue_mu_
  bool stopping_ = false;      // guarded by queue_mu_
  bool writer_idle_ = false;   // the writer waits for any event; guarded by queue_mu_

  std::mutex write_mu_;
  // Experiments (names part of their keys) whose index entry this process has written.
  std::unordered_set<std::string, StringHash, std::equal_to<>> indexed_;  // guarded by write_mu_

  std::vector<const Pending*> order_;  // WriteEvents' scratch, guarded by write_mu_
  std::string operand_;                // WriteEvents' scratch, guarded by write_mu_

  std::thread writer_;  // last: started after everything above is constructed
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Open
// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<Store>> OpenEmbeddedStore(const StoreOptions& options) {
  if (options.data_dir.empty()) {
    return Status::InvalidArgument("embedded store: data_dir must be set");
  }
  if (options.max_batch < 1) {
    return Status::InvalidArgument("embedded store: max_batch must be at least 1");
  }
  if (options.min_commit_interval_us < 0) {
    return Status::InvalidArgument("embedded store: min_commit_interval_us must not be negative");
  }
  if (options.commit_early_events < 0) {
    return Status::InvalidArgument("embedded store: commit_early_events must not be negative");
  }
  const std::string& dir = options.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status::IOError("cannot create data directory " + dir + ": " + ec.message());
  }

  // Flushes and compactions run SCHED_IDLE: they use the CPU the request path leaves, and a
  // thread of the request path that wakes preempts them at once. At the default policy a
  // flush (folding seconds of merge operands) held the core for up to 3 ms at a time, and the
  // p99 at half of peak load rose from 1.7 to 3 ms without fsync (bench/README.md). Lowering
  // is all RocksDB allows, so this is process-wide and idempotent; where SCHED_IDLE is not
  // supported the threads keep their priority.
  rocksdb::Env* env = rocksdb::Env::Default();
  for (rocksdb::Env::Priority pool : {rocksdb::Env::HIGH, rocksdb::Env::LOW}) {
    env->LowerThreadPoolCPUPriority(pool, rocksdb::CpuPriority::kIdle).PermitUncheckedError();
  }
  // With "sync", every group commit fsyncs the WAL: give it WAL files written ahead as zeros,
  // so that those fsyncs overwrite instead of appending (embedded_wal.h).
  std::unique_ptr<rocksdb::Env> wal_env;
  if (options.sync) wal_env = ek::NewPrezeroedWalEnv(dir, options.write_buffer_bytes);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(MakeOptions(options, wal_env.get()), dir, &raw);
  if (!s.ok()) {
    if (IsLockError(s)) {
      return Status::IOError("data directory " + dir +
                             " is in use by another gimel process (lock held)");
    }
    std::string msg = "cannot open data directory " + dir + ": " + s.ToString();
    if (s.IsCorruption()) return Status::Corruption(std::move(msg));
    return Status::IOError(std::move(msg));
  }
  std::unique_ptr<rocksdb::DB> db(raw);

  std::string version;
  s = db->Get(rocksdb::ReadOptions(), rocksdb::Slice(ek::kFormatKey.data(), ek::kFormatKey.size()),
              &version);
  if (s.IsNotFound() || (s.ok() && version == ek::kPreviousFormatVersion)) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db->Put(wo, rocksdb::Slice(ek::kFormatKey.data(), ek::kFormatKey.size()),
                rocksdb::Slice(ek::kFormatVersion.data(), ek::kFormatVersion.size()));
  } else if (s.ok() && version != ek::kFormatVersion) {
    db->Close().PermitUncheckedError();
    return Status::Corruption("data directory " + dir + " has embedded format version " +
                              Quote(version) + "; this gimel reads version " +
                              std::string(ek::kFormatVersion));
  }
  if (!s.ok()) {
    db->Close().PermitUncheckedError();
    return FromRocks(s, "data directory " + dir);
  }
  if (wal_env != nullptr) ek::RemoveSpareWalLeftovers(wal_env.get());
  return std::unique_ptr<Store>(new EmbeddedStore(std::move(wal_env), std::move(db), options));
}

}  // namespace gimel::store
