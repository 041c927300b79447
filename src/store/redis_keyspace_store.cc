#include "store/redis_keyspace_store.h"

#include <algorithm>
#include <future>
#include <iterator>
#include <optional>
#include <set>
#include <unordered_map>

#include "hll/hll.h"
#include "store/keys.h"
#include "store/redis_pipeline.h"

namespace gimel::store::redis {

namespace {

KeyedCommand Cmd(std::string key, std::initializer_list<std::string_view> args) {
  KeyedCommand c;
  c.argv.reserve(args.size());
  for (std::string_view a : args) c.argv.emplace_back(a);
  c.key = std::move(key);
  return c;
}

// Appends the index writes of a counter: the original's three SADDs (in its order) and, when
// needed, gimel's name index entry.
void AppendIndexCommands(std::string_view ns, std::string_view experiment, std::string_view event,
                         std::string_view variant, const std::string& counter,
                         std::vector<KeyedCommand>* sadds, std::vector<KeyedCommand>* names) {
  const std::string experiments = keys::ExperimentsKey(ns);
  const std::string ns_counters = keys::NamespaceCounterKeysKey(ns);
  const std::string exp_counters = keys::ExperimentCounterKeysKey(ns, experiment);
  sadds->push_back(Cmd(experiments, {"SADD", experiments, experiment}));
  sadds->push_back(Cmd(ns_counters, {"SADD", ns_counters, counter}));
  sadds->push_back(Cmd(exp_counters, {"SADD", exp_counters, counter}));
  if (keys::NeedsNameEntry(event, variant)) {
    const std::string names_key = keys::CounterNamesKey(ns, experiment);
    names->push_back(Cmd(names_key, {"HSET", names_key, counter, event}));
  }
}

std::vector<KeyedCommand> Concat(std::vector<KeyedCommand> a, std::vector<KeyedCommand> b) {
  for (KeyedCommand& c : b) a.push_back(std::move(c));
  return a;
}

// The string elements of an array reply (SMEMBERS), or kCorruption.
Result<std::vector<std::string>> Strings(Value v, std::string_view what) {
  if (v.is_error()) return ErrorReplyToStatus(v, what);
  if (v.type != Value::Type::kArray) {
    return Status::Corruption("redis " + std::string(what) + ": unexpected reply");
  }
  std::vector<std::string> out;
  out.reserve(v.elements.size());
  for (Value& e : v.elements) {
    if (e.type != Value::Type::kString) {
      return Status::Corruption("redis " + std::string(what) + ": unexpected element");
    }
    out.push_back(std::move(e.str));
  }
  return out;
}

// A counter named by an experiment's index, before its value is read.
struct IndexedCounter {
  Counter counter;  // event and variant; hll not yet read
  std::string key;  // keys::CounterKey
};

// The counters of `experiment` from its index replies (SMEMBERS of ExperimentCounterKeysKey,
// HGETALL of CounterNamesKey), in SMEMBERS order. Members that are not counters of this
// experiment are skipped (docs/key_schema.md). Error: an error reply, or kCorruption.
Result<std::vector<IndexedCounter>> IndexedCounters(std::string_view ns,
                                                    std::string_view experiment,
                                                    Value members_reply, Value names_reply) {
  GIMEL_ASSIGN_OR_RETURN(std::vector<std::string> members,
                         Strings(std::move(members_reply),
                                 "SMEMBERS " + keys::ExperimentCounterKeysKey(ns, experiment)));
  GIMEL_ASSIGN_OR_RETURN(
      std::vector<std::string> name_pairs,
      Strings(std::move(names_reply), "HGETALL " + keys::CounterNamesKey(ns, experiment)));
  std::unordered_map<std::string, std::string> recorded;  // counter key → event
  for (size_t i = 0; i + 1 < name_pairs.size(); i += 2) {
    recorded[std::move(name_pairs[i])] = std::move(name_pairs[i + 1]);
  }
  const std::string prefix = keys::CounterPrefix(ns, experiment);
  std::vector<IndexedCounter> out;
  out.reserve(members.size());
  for (std::string& key : members) {
    std::optional<std::string_view> event;
    if (auto it = recorded.find(key); it != recorded.end()) event = it->second;
    auto names = keys::ParseCounterKey(prefix, key, event);
    if (!names) continue;  // not a counter of this experiment (see docs/key_schema.md)
    IndexedCounter c;
    c.counter.event = std::move(names->first);
    c.counter.variant = std::move(names->second);
    c.key = std::move(key);
    out.push_back(std::move(c));
  }
  return out;
}

// Add's contract: OK, or kUnavailable / kIOError.
Status ForAdd(Status s) {
  if (s.ok() || s.IsUnavailable() || s.code() == StatusCode::kIOError) return s;
  return Status::IOError(s.message());
}

}  // namespace

static_assert(RedisKeyspaceStore::kMaxReadPipeline == PipelinePool::kMaxBatchCommands,
              "bulk reads are chunked as the pool batches (redis_keyspace_store.h)");

Status FirstError(std::span<const Value> replies, std::string_view what) {
  for (const Value& v : replies) {
    if (v.is_error()) return ErrorReplyToStatus(v, what);
  }
  return Status::Ok();
}

RedisKeyspaceStore::RedisKeyspaceStore(std::unique_ptr<Backend> backend,
                                       std::chrono::milliseconds command_timeout,
                                       std::string_view name)
    : backend_(std::move(backend)), command_timeout_(command_timeout), name_(name) {}

RedisKeyspaceStore::~RedisKeyspaceStore() { backend_->Shutdown(); }

// ---- Index cache ----------------------------------------------------------------------------

bool RedisKeyspaceStore::IsIndexed(std::string_view tuple_id, uint64_t generation) {
  std::lock_guard<std::mutex> lock(index_mu_);
  auto it = indexed_.find(tuple_id);
  return it != indexed_.end() && it->second.generation == generation &&
         Clock::now() - it->second.at < kIndexRefresh;
}

void RedisKeyspaceStore::MarkIndexed(std::string tuple_id, uint64_t generation) {
  std::lock_guard<std::mutex> lock(index_mu_);
  if (indexed_.size() >= kMaxIndexCache) indexed_.clear();
  indexed_[std::move(tuple_id)] = Indexed{Clock::now(), generation};
}

void RedisKeyspaceStore::ForgetExperiment(std::string_view ns, std::string_view experiment) {
  const std::string prefix = keys::TupleIdPrefix(ns, experiment);
  std::lock_guard<std::mutex> lock(index_mu_);
  std::erase_if(indexed_, [&prefix](const auto& kv) { return kv.first.starts_with(prefix); });
}

// ---- Hot path -------------------------------------------------------------------------------

// An Add in flight: its PFADD, and what it needs to write the index afterwards if the
// connection changed meanwhile. One allocation (plus the strings' buffers).
class RedisKeyspaceStore::AddOp final : public PipelineOp {
 public:
  AddOp(RedisKeyspaceStore* store, AddCallback done) : store_(store), done_(std::move(done)) {}

  void Done(Status s, std::span<Value> replies) override {
    if (s.ok()) s = FirstError(replies, "PFADD");
    const uint64_t now_generation = store_->backend_->generation();
    if (s.ok() && now_generation != generation) {
      // A connection was re-established meanwhile: the server may have lost the index
      // (restarted empty). Write it again before acknowledging.
      store_->AddWithIndex(tuple(), uuid(), now_generation, deadline, std::move(done_));
      return;
    }
    done_(ForAdd(std::move(s)));
  }

  AddCallback TakeDone() { return std::move(done_); }
  std::string_view tuple() const { return std::string_view(ids).substr(0, tuple_size); }
  std::string_view uuid() const { return std::string_view(ids).substr(tuple_size); }

  std::string ids;  // keys::TupleId, then the uuid
  size_t tuple_size = 0;
  uint64_t generation = 0;

 private:
  RedisKeyspaceStore* const store_;
  AddCallback done_;
};

void RedisKeyspaceStore::Add(const TrackEvent& e, AddCallback done) {
  auto op = std::make_unique<AddOp>(this, std::move(done));
  op->ids.reserve(e.ns.size() + e.experiment.size() + e.event.size() + e.variant.size() +
                  e.uuid.size() + 32);
  keys::AppendTupleId(&op->ids, e.ns, e.experiment, e.event, e.variant);
  op->tuple_size = op->ids.size();
  op->ids.append(e.uuid);
  op->generation = backend_->generation();
  op->deadline = Deadline();
  if (!IsIndexed(op->tuple(), op->generation)) {
    AddWithIndex(op->tuple(), op->uuid(), op->generation, op->deadline, op->TakeDone());
    return;
  }
  // Indexed already: one PFADD.
  thread_local std::string counter;
  counter.clear();
  keys::AppendCounterKey(&counter, e.ns, e.experiment, e.event, e.variant);
  AppendCommand(&op->commands, {"PFADD", counter, e.uuid});
  op->count = 1;
  backend_->Send(std::move(op), counter);
}

void RedisKeyspaceStore::AddWithIndex(std::string_view tuple, std::string_view uuid,
                                      uint64_t generation, Clock::time_point deadline,
                                      AddCallback done) {
  std::optional<std::array<std::string_view, 4>> names = keys::ParseTupleId(tuple);
  if (!names) return done(Status::IOError("redis store: bad counter identity"));  // never
  const auto [ns, experiment, event, variant] = *names;
  const std::string counter = keys::CounterKey(ns, experiment, event, variant);
  std::vector<KeyedCommand> pfadd;
  pfadd.push_back(Cmd(counter, {"PFADD", counter, uuid}));
  std::vector<KeyedCommand> sadds;
  std::vector<KeyedCommand> names_entry;
  AppendIndexCommands(ns, experiment, event, variant, counter, &sadds, &names_entry);
  auto indexed = [this, tuple = std::string(tuple), generation,
                  done = std::move(done)](Status s) mutable {
    if (s.ok()) MarkIndexed(std::move(tuple), generation);
    done(ForAdd(std::move(s)));
  };

  if (backend_->atomic_across_keys()) {
    // SADD ×3 [HSET] PFADD in one MULTI/EXEC (the original's track() pipeline).
    backend_->RunAtomic(Concat(Concat(std::move(sadds), std::move(names_entry)), std::move(pfadd)),
                        deadline,
                        [indexed = std::move(indexed)](Status s, std::vector<Value> r) mutable {
                          if (s.ok()) s = FirstError(r, "track");
                          indexed(std::move(s));
                        });
    return;
  }

  // Cluster: counter (and its name entry) first, then the SADDs that point to it.
  backend_->Run(Concat(std::move(pfadd), std::move(names_entry)), deadline,
                [this, sadds = std::move(sadds), deadline, indexed = std::move(indexed)](
                    Status s, std::vector<Value> r) mutable {
                  if (s.ok()) s = FirstError(r, "PFADD");
                  if (!s.ok()) {
                    indexed(std::move(s));
                    return;
                  }
                  backend_->Run(
                      std::move(sadds), deadline,
                      [indexed = std::move(indexed)](Status s2, std::vector<Value> r2) mutable {
                        if (s2.ok()) s2 = FirstError(r2, "SADD");
                        indexed(std::move(s2));
                      });
                });
}

// ---- Blocking operations --------------------------------------------------------------------

Result<std::vector<Value>> RedisKeyspaceStore::RunSync(std::vector<KeyedCommand> cmds,
                                                       bool atomic) {
  if (cmds.empty()) return std::vector<Value>{};
  std::promise<Result<std::vector<Value>>> promise;
  auto future = promise.get_future();
  ValuesCallback cb = [&promise](Status s, std::vector<Value> replies) {
    if (s.ok()) {
      promise.set_value(std::move(replies));
    } else {
      promise.set_value(std::move(s));
    }
  };
  if (atomic) {
    backend_->RunAtomic(std::move(cmds), Deadline(), std::move(cb));
  } else {
    backend_->Run(std::move(cmds), Deadline(), std::move(cb));
  }
  return future.get();
}

Result<std::vector<std::string>> RedisKeyspaceStore::ListNamespaces() {
  GIMEL_ASSIGN_OR_RETURN(std::vector<std::string> candidates,
                         backend_->ScanKeys(keys::kExperimentsPattern));
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  // A counter whose variant is "experiments" also matches the pattern; keep only SETs.
  std::vector<KeyedCommand> types;
  for (const std::string& k : candidates) types.push_back(Cmd(k, {"TYPE", k}));
  GIMEL_ASSIGN_OR_RETURN(std::vector<Value> replies, RunSync(std::move(types), false));
  std::vector<std::string> out;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (replies[i].type != Value::Type::kStatus || replies[i].str != "set") continue;
    if (auto ns = keys::NamespaceFromExperimentsKey(candidates[i])) out.push_back(*ns);
  }
  return out;
}

Result<std::vector<std::string>> RedisKeyspaceStore::ListExperiments(std::string_view ns) {
  const std::string key = keys::ExperimentsKey(ns);
  std::vector<KeyedCommand> cmds;
  cmds.push_back(Cmd(key, {"SMEMBERS", key}));
  GIMEL_ASSIGN_OR_RETURN(std::vector<Value> replies, RunSync(std::move(cmds), false));
  return Strings(std::move(replies[0]), "SMEMBERS " + key);
}

Result<std::vector<Value>> RedisKeyspaceStore::RunSyncChunked(std::vector<KeyedCommand> cmds) {
  if (cmds.size() <= kMaxReadPipeline) return RunSync(std::move(cmds), false);
  // One chunk after the other rather than all at once: each gets a full command timeout, and
  // the pool's other connections stay free for the hot path (Add) meanwhile.
  std::vector<Value> out;
  out.reserve(cmds.size());
  for (size_t begin = 0; begin < cmds.size(); begin += kMaxReadPipeline) {
    const size_t end = std::min(cmds.size(), begin + kMaxReadPipeline);
    std::vector<KeyedCommand> chunk(std::make_move_iterator(cmds.begin() + begin),
                                    std::make_move_iterator(cmds.begin() + end));
    GIMEL_ASSIGN_OR_RETURN(std::vector<Value> replies, RunSync(std::move(chunk), false));
    for (Value& v : replies) out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<Counter>> RedisKeyspaceStore::ReadExperiment(std::string_view ns,
                                                                std::string_view experiment) {
  GIMEL_ASSIGN_OR_RETURN(std::vector<std::vector<Counter>> read,
                         ReadExperiments(ns, {std::string(experiment)}));
  return std::move(read[0]);
}

Result<std::vector<std::vector<Counter>>> RedisKeyspaceStore::ReadExperiments(
    std::string_view ns, const std::vector<std::string>& experiments) {
  // Phase 1: every experiment's index (its counter keys, and the names of those with ':').
  // Every command has one key, so a cluster backend routes each to its own node: a batch may
  // mix slots freely (Backend::Run).
  std::vector<KeyedCommand> index;
  index.reserve(2 * experiments.size());
  for (const std::string& experiment : experiments) {
    const std::string set_key = keys::ExperimentCounterKeysKey(ns, experiment);
    const std::string names_key = keys::CounterNamesKey(ns, experiment);
    index.push_back(Cmd(set_key, {"SMEMBERS", set_key}));
    index.push_back(Cmd(names_key, {"HGETALL", names_key}));
  }
  GIMEL_ASSIGN_OR_RETURN(std::vector<Value> index_replies, RunSyncChunked(std::move(index)));
  // As ReadExperiment one experiment after the other would: stop at the first experiment whose
  // index cannot be read, read the counters of the experiments before it only, and return its
  // error unless one of those fails first.
  std::vector<std::vector<IndexedCounter>> planned;
  planned.reserve(experiments.size());
  Status index_error;
  for (size_t i = 0; i < experiments.size(); ++i) {
    Result<std::vector<IndexedCounter>> counters = IndexedCounters(
        ns, experiments[i], std::move(index_replies[2 * i]), std::move(index_replies[2 * i + 1]));
    if (!counters.ok()) {
      index_error = counters.status();
      break;
    }
    planned.push_back(std::move(counters).value());
  }

  // Phase 2: every counter's GET.
  std::vector<KeyedCommand> gets;
  for (const std::vector<IndexedCounter>& counters : planned) {
    for (const IndexedCounter& c : counters) gets.push_back(Cmd(c.key, {"GET", c.key}));
  }
  GIMEL_ASSIGN_OR_RETURN(std::vector<Value> values, RunSyncChunked(std::move(gets)));
  std::vector<std::vector<Counter>> out;
  out.reserve(planned.size());
  size_t next = 0;
  for (std::vector<IndexedCounter>& counters : planned) {
    std::vector<Counter> present;
    present.reserve(counters.size());
    for (IndexedCounter& c : counters) {
      Value& v = values[next++];
      if (v.is_nil()) continue;  // indexed but never written (or deleted): nothing counted
      if (v.type != Value::Type::kString) {
        return Status::Corruption("redis counter \"" + c.key + "\" is not a string: " + v.str);
      }
      Result<uint64_t> count = hll::CountAndCache(&v.str);  // store.h
      if (!count.ok()) {
        return Status::Corruption("redis counter \"" + c.key +
                                  "\" is not a valid HLL: " + count.status().message());
      }
      c.counter.hll = std::move(v.str);
      present.push_back(std::move(c.counter));
    }
    out.push_back(std::move(present));
  }
  if (!index_error.ok()) return index_error;
  return out;
}

Status RedisKeyspaceStore::DeleteExperiment(std::string_view ns, std::string_view experiment) {
  const std::string experiments = keys::ExperimentsKey(ns);
  const std::string ns_counters = keys::NamespaceCounterKeysKey(ns);
  const std::string set_key = keys::ExperimentCounterKeysKey(ns, experiment);
  const std::string names_key = keys::CounterNamesKey(ns, experiment);
  std::vector<KeyedCommand> read;
  read.push_back(Cmd(set_key, {"SMEMBERS", set_key}));
  GIMEL_ASSIGN_OR_RETURN(std::vector<Value> replies, RunSync(std::move(read), false));
  GIMEL_ASSIGN_OR_RETURN(std::vector<std::string> members,
                         Strings(std::move(replies[0]), "SMEMBERS " + set_key));

  // As the original's delete(), but only counters of this experiment are deleted: when
  // namespaces contain ':' a set can be shared ("a:b" + ":counter_keys" is both namespace
  // "a:b"'s set and experiment "b" of namespace "a"'s), and foreign members stay.
  const std::string prefix = keys::CounterPrefix(ns, experiment);
  std::vector<std::string> own;
  for (std::string& key : members) {
    if (key.starts_with(prefix)) own.push_back(std::move(key));
  }
  const bool foreign = own.size() != members.size();
  std::vector<KeyedCommand> cmds;
  for (const std::string& key : own) {
    cmds.push_back(Cmd(ns_counters, {"SREM", ns_counters, key}));
    cmds.push_back(Cmd(key, {"DEL", key}));
    if (foreign) cmds.push_back(Cmd(set_key, {"SREM", set_key, key}));
  }
  if (!foreign) cmds.push_back(Cmd(set_key, {"DEL", set_key}));
  cmds.push_back(Cmd(names_key, {"DEL", names_key}));
  cmds.push_back(Cmd(experiments, {"SREM", experiments, experiment}));
  GIMEL_ASSIGN_OR_RETURN(std::vector<Value> results,
                         RunSync(std::move(cmds), backend_->atomic_across_keys()));
  ForgetExperiment(ns, experiment);
  return FirstError(results, "delete");
}

Status RedisKeyspaceStore::MergeCounter(std::string_view ns, std::string_view experiment,
                                        std::string_view event, std::string_view variant,
                                        std::string_view hll) {
  Status valid = hll::Validate(hll);
  if (!valid.ok()) return Status::InvalidArgument("MergeCounter: " + valid.message());
  const uint64_t generation = backend_->generation();
  const std::string counter = keys::CounterKey(ns, experiment, event, variant);
  const std::string tmp = keys::MergeTmpKey(counter);
  // Union with PFMERGE through a scratch key in the counter's slot, inside one MULTI: atomic
  // with respect to concurrent PFADDs, and idempotent (register-wise max).
  std::vector<KeyedCommand> merge;
  merge.push_back(Cmd(tmp, {"SET", tmp, hll}));
  merge.push_back(Cmd(counter, {"PFMERGE", counter, tmp}));
  merge.push_back(Cmd(tmp, {"DEL", tmp}));
  std::vector<KeyedCommand> sadds;
  std::vector<KeyedCommand> names;
  AppendIndexCommands(ns, experiment, event, variant, counter, &sadds, &names);

  if (backend_->atomic_across_keys()) {
    GIMEL_ASSIGN_OR_RETURN(
        std::vector<Value> replies,
        RunSync(Concat(Concat(std::move(sadds), std::move(names)), std::move(merge)), true));
    GIMEL_RETURN_IF_ERROR(FirstError(replies, "merge"));
  } else {
    GIMEL_ASSIGN_OR_RETURN(std::vector<Value> merged, RunSync(std::move(merge), true));
    GIMEL_RETURN_IF_ERROR(FirstError(merged, "merge"));
    if (!names.empty()) {
      GIMEL_ASSIGN_OR_RETURN(std::vector<Value> r, RunSync(std::move(names), false));
      GIMEL_RETURN_IF_ERROR(FirstError(r, "merge HSET"));
    }
    GIMEL_ASSIGN_OR_RETURN(std::vector<Value> indexed, RunSync(std::move(sadds), false));
    GIMEL_RETURN_IF_ERROR(FirstError(indexed, "merge SADD"));
  }
  MarkIndexed(keys::TupleId(ns, experiment, event, variant), generation);
  return Status::Ok();
}

Status RedisKeyspaceStore::Health() { return backend_->Ping(); }

}  // namespace gimel::store::redis
