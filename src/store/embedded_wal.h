// WAL files written in place: a RocksDB FileSystem for the embedded store.
//
// A group commit's fdatasync of an appended WAL is three synchronous writes on ext4: the data,
// the inode (the file's size changed) and the cache flush; with a journal, a journal commit
// instead of the inode. Writing over blocks that already hold data changes no metadata, so the
// fdatasync is the data and the flush alone (bench/README.md: measured ~30 % less time per
// sync). RocksDB's own answer, WAL recycling, is unusable with Debian 12's RocksDB 7.8 (it is
// only allowed in a recovery mode whose recovery of recycled files never ends there).
//
// So, as PostgreSQL does with wal_init_zero, this FileSystem keeps one spare file of zeros
// ready in the data directory, and hands it out (renamed, not truncated: RocksDB writes from
// offset 0 over the zeros) whenever RocksDB creates a WAL file; a background thread at
// SCHED_IDLE then writes the next spare, in synced chunks with pauses between them so that
// the group commits' fdatasyncs meanwhile never wait behind megabytes of zeros. RocksDB trims
// a WAL to its written size when it closes it. After a crash, the zeros after the last record
// read as RocksDB's zero padding, which recovery skips. A WAL that outgrows its spare goes on
// by appending; if no spare is ready (the thread had no idle CPU, or a write failed), a WAL is
// created the usual way.
//
// Thread-safety: as every rocksdb::FileSystem, safe for concurrent use.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <cstddef>
#include <memory>
#include <string>

namespace gimel::store::embedded {

// The spare's name in the data directory is this prefix and the process id (not a RocksDB
// file name, so RocksDB ignores it; per process, so that a second gimel refused by the
// directory's lock does not touch the first one's).
inline constexpr char kSpareWalPrefix[] = "gimel-wal-spare.";

// An Env for rocksdb::Options::env whose FileSystem hands out zero-filled WAL files of
// `spare_bytes` for the RocksDB database in `dir`. Writes the first spare when the DB creates
// its first WAL file (on opening, once it holds the directory's lock), so that file is one; an
// Env whose DB::Open is refused by the lock writes nothing. Destroying the Env stops its thread
// and removes the spare. REQUIRES: it outlives the DB.
std::unique_ptr<rocksdb::Env> NewPrezeroedWalEnv(const std::string& dir, size_t spare_bytes);

// Removes the spares that crashed processes left in the directory. Call with the directory's
// lock held (after DB::Open). No-op for another Env.
void RemoveSpareWalLeftovers(rocksdb::Env* env);

// How many WAL files the FileSystem of such an Env has handed out zero-filled (for tests).
uint64_t PrezeroedWalsHandedOut(rocksdb::Env* env);

}  // namespace gimel::store::embedded
