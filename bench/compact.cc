// gimel_bench_compact DIR: a helper of bench/run.sh for the "disk use vs HLL bytes" figure.
//
// Opens a (cleanly stopped) embedded data directory with gimel's HLL merge operator and the
// same compression gimel uses, forces a full compaction (every merge operand folded into its
// counter's HLL), then prints one JSON line:
//   {"counters": N, "dense": D, "hll_bytes": B, "sst_bytes_before": S0, "sst_bytes_after": S1}
// hll_bytes is the sum of the counters' HLL strings: what Redis would store for the same data.
// Exit status 1 with a message on stderr if the directory cannot be opened.
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "hll/hll.h"
#include "store/embedded_keys.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  namespace ek = gimel::store::embedded;
  rocksdb::Options o;
  o.create_if_missing = false;
  o.merge_operator = ek::NewHllMergeOperator();
  o.keep_log_file_num = 4;
  o.level_compaction_dynamic_level_bytes = true;
  o.compression = rocksdb::kNoCompression;
  for (rocksdb::CompressionType t : rocksdb::GetSupportedCompressions()) {
    if (t == rocksdb::kLZ4Compression) o.compression = rocksdb::kLZ4Compression;
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, argv[1], &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", argv[1], s.ToString().c_str());
    return 1;
  }
  std::unique_ptr<rocksdb::DB> db(raw);

  uint64_t sst_before = 0, sst_after = 0;
  db->GetIntProperty("rocksdb.total-sst-files-size", &sst_before);
  db->Flush(rocksdb::FlushOptions()).PermitUncheckedError();
  rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  s = db->CompactRange(cro, nullptr, nullptr);
  if (!s.ok()) {
    std::fprintf(stderr, "compaction failed: %s\n", s.ToString().c_str());
    return 1;
  }
  db->GetIntProperty("rocksdb.total-sst-files-size", &sst_after);

  uint64_t counters = 0, dense = 0, hll_bytes = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(std::string(1, ek::kCounterTag)); it->Valid(); it->Next()) {
    if (it->key().size() == 0 || it->key()[0] != ek::kCounterTag) break;
    std::string_view v(it->value().data(), it->value().size());
    ++counters;
    hll_bytes += v.size();
    if (gimel::hll::Validate(v).ok() && gimel::hll::IsDense(v)) ++dense;
  }
  std::printf(
      "{\"counters\": %llu, \"dense\": %llu, \"hll_bytes\": %llu, \"sst_bytes_before\": %llu, "
      "\"sst_bytes_after\": %llu}\n",
      static_cast<unsigned long long>(counters), static_cast<unsigned long long>(dense),
      static_cast<unsigned long long>(hll_bytes), static_cast<unsigned long long>(sst_before),
      static_cast<unsigned long long>(sst_after));
  it.reset();  // no iterator may outlive the DB
  db->Close().PermitUncheckedError();
  return 0;
}
