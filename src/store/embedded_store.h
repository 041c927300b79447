// The embedded store: counters in a RocksDB database in options.data_dir (DESIGN.md §3).
//
// - Add is group-committed: it enqueues the event and returns at once; one writer thread
//   drains up to options.max_batch queued events into a single WriteBatch (one merge operand
//   per event, plus an experiment index entry the first time this process sees the
//   experiment), writes it with WriteOptions.sync = options.sync, then calls every callback
//   of the batch: OK only once the batch is in the write-ahead log.
// - HLL updates are RocksDB merges (embedded_keys.h): commutative and idempotent.
// - One process per data directory (RocksDB's LOCK file).
// - The destructor drains the queue (every pending callback is called) and closes the DB.
//
// Key layout: embedded_keys.h and docs/key_schema.md.
// Thread-safety: all methods may be called concurrently. Callbacks run on the writer thread.
#pragma once

#include <memory>

#include "common/status.h"
#include "store/store.h"

namespace gimel::store {

// Opens (creating it and its parents if missing) the embedded store in options.data_dir.
// Errors: kInvalidArgument (empty data_dir, max_batch < 1), kIOError (the directory cannot be
// created or opened, or is locked by another process: "data directory X is in use by another
// gimel process (lock held)"), kCorruption (unknown on-disk format version).
Result<std::unique_ptr<Store>> OpenEmbeddedStore(const StoreOptions& options);

}  // namespace gimel::store
