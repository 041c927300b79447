// Zero-filled WAL files for the embedded store. See embedded_wal.h.
#include "store/embedded_wal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace gimel::store::embedded {
namespace {

// RocksDB's WAL files are named NNNNNN.log (its info log is LOG, LOG.old.*).
bool IsWal(std::string_view path) { return path.ends_with(".log"); }

// The background thread writes a spare in chunks of kPacedChunk, syncing each one and pausing
// kPacedPause between them. Written in one go and synced once, 8 MiB of zeros sat in front of
// every WAL fdatasync issued meanwhile: the group commits that coincided took 6-13 ms instead
// of ~0.3, and 170-770 events waited over 5 ms each time (at 23 k events/s a spare every
// ~4.7 s). Paced, no event waited over 5 ms during 9 of 12 spares (bench/README.md,
// "Optimisations done" 17); 8 MiB take 110-210 ms, long before the next WAL needs them.
constexpr size_t kPacedChunk = 256 << 10;
constexpr std::chrono::milliseconds kPacedPause{2};

// Writes `bytes` zeros to a new file at `tmp`, syncs it, renames it to `path` and syncs the
// directory. With `pause`, writes kPacedChunk at a time, syncs each chunk and calls `pause`
// between chunks, which returns false to give up (then ECANCELED). Returns errno of the first
// failure (0: done).
int WriteZeros(const std::string& dir, const std::string& tmp, const std::string& path,
               size_t bytes, const std::function<bool()>& pause) {
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  static const std::vector<char> kZeros(1 << 20, '\0');
  const size_t chunk = pause ? kPacedChunk : kZeros.size();
  int err = 0;
  for (size_t left = bytes; left > 0 && err == 0;) {
    const ssize_t n = write(fd, kZeros.data(), std::min(left, chunk));
    if (n < 0 && errno != EINTR) err = errno;
    if (n > 0) left -= static_cast<size_t>(n);
    if (pause && err == 0 && left > 0) {
      if (fdatasync(fd) != 0) {
        err = errno;
      } else if (!pause()) {
        err = ECANCELED;
      }
    }
  }
  if (err == 0 && fdatasync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err == 0) {
    const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return errno;
    if (fsync(dfd) != 0) err = errno;
    close(dfd);
  }
  if (err != 0) unlink(tmp.c_str());
  return err;
}

// A WAL file handed out zero-filled. RocksDB trims a WAL to its written size on closing only
// if it preallocated space itself, which it does on the first write: this also trims one
// closed without any write (as the last WAL of a store that is shut down).
class ZeroFilledWal final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  ZeroFilledWal(std::unique_ptr<rocksdb::FSWritableFile> file, std::string path)
      : FSWritableFileOwnerWrapper(std::move(file)), path_(std::move(path)) {}

  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    const uint64_t written = target()->GetFileSize(options, dbg);
    rocksdb::IOStatus s = target()->Close(options, dbg);
    if (s.ok() && truncate(path_.c_str(), static_cast<off_t>(written)) != 0) {
      spdlog::warn("embedded store: cannot trim WAL file {}: {}", path_, std::strerror(errno));
    }
    return s;
  }

 private:
  const std::string path_;
};

class PrezeroedWalFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  PrezeroedWalFileSystem(std::string dir, size_t spare_bytes)
      : FileSystemWrapper(rocksdb::FileSystem::Default()),
        dir_(std::move(dir)),
        spare_(dir_ + "/" + kSpareWalPrefix + std::to_string(getpid())),
        tmp_(spare_ + ".tmp"),
        spare_bytes_(spare_bytes) {
    thread_ = std::thread([this] { FillerLoop(); });
  }

  ~PrezeroedWalFileSystem() override {
    bool started = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
      started = started_;
    }
    cv_.notify_all();
    thread_.join();
    // Only a FileSystem that wrote spares removes them: one whose DB::Open was refused by the
    // directory's lock never did, and in the same process its names are the lock holder's.
    if (started) {
      unlink(tmp_.c_str());
      unlink(spare_.c_str());
    }
  }

  const char* Name() const override { return "gimel.PrezeroedWalFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& path, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (IsWal(path)) std::call_once(first_, [this] { Start(); });
    if (IsWal(path) && TakeSpare()) {
      std::unique_ptr<rocksdb::FSWritableFile> file;
      rocksdb::IOStatus s = target()->ReuseWritableFile(path, spare_, options, &file, dbg);
      RequestSpare();  // only now: the next spare is renamed to the same name
      if (s.ok()) {
        *result = std::make_unique<ZeroFilledWal>(std::move(file), path);
        handed_out_.fetch_add(1, std::memory_order_relaxed);
        return s;
      }
      spdlog::warn("embedded store: could not use the zero-filled WAL file: {}", s.ToString());
    }
    return target()->NewWritableFile(path, options, result, dbg);
  }

  uint64_t handed_out() const { return handed_out_.load(std::memory_order_relaxed); }

  void RemoveLeftovers() {
    std::vector<std::string> children;
    if (!target()->GetChildren(dir_, rocksdb::IOOptions(), &children, nullptr).ok()) return;
    const std::string own = spare_.substr(dir_.size() + 1);
    for (const std::string& name : children) {
      if (name.starts_with(kSpareWalPrefix) && name != own && name != own + ".tmp") {
        unlink((dir_ + "/" + name).c_str());
      }
    }
  }

 private:
  // True if a spare was ready: it is then the caller's, who calls RequestSpare once it has
  // renamed it.
  bool TakeSpare() {
    std::lock_guard<std::mutex> l(mu_);
    const bool taken = ready_;
    ready_ = false;
    taking_ = taken;
    return taken;
  }

  void RequestSpare() {
    {
      std::lock_guard<std::mutex> l(mu_);
      taking_ = false;
    }
    cv_.notify_one();
  }

  // Writes the first spare and lets the thread write the next ones: on the first WAL file, which
  // RocksDB creates only once it holds the directory's lock.
  void Start() {
    Fill(nullptr);
    {
      std::lock_guard<std::mutex> l(mu_);
      started_ = true;
    }
    cv_.notify_one();
  }

  // Writes a spare unless one is ready or writing failed before (then WAL files are created
  // the usual way from now on); paced if `pause` is set (see kPacedChunk).
  void Fill(const std::function<bool()>& pause) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (ready_ || failed_) return;
    }
    const int err = WriteZeros(dir_, tmp_, spare_, spare_bytes_, pause);
    std::lock_guard<std::mutex> l(mu_);
    if (err == ECANCELED) return;  // stopping
    if (err == 0) {
      ready_ = true;
    } else {
      failed_ = true;
      spdlog::warn(
          "embedded store: cannot write a zero-filled WAL file in {}: {}; WAL files "
          "are appended to instead (slower fsyncs)",
          dir_, std::strerror(err));
    }
  }

  void FillerLoop() {
    // Only idle CPU: a request thread that wakes preempts it (as RocksDB's flushes, see
    // OpenEmbeddedStore). Where SCHED_IDLE is unsupported it keeps its priority.
    sched_param param{};
    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
    for (;;) {
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stopping_ || (started_ && !ready_ && !taking_ && !failed_); });
        if (stopping_) return;
      }
      Fill([this] {  // false once the FileSystem is being destroyed
        std::unique_lock<std::mutex> l(mu_);
        return !cv_.wait_for(l, kPacedPause, [this] { return stopping_; });
      });
    }
  }

  const std::string dir_, spare_, tmp_;
  const size_t spare_bytes_;
  std::atomic<uint64_t> handed_out_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;     // guarded by mu_: spare_ holds spare_bytes_ synced zeros
  bool taking_ = false;    // guarded by mu_: a caller is renaming the spare
  bool failed_ = false;    // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  bool started_ = false;   // guarded by mu_: Start ran
  std::once_flag first_;
  std::thread thread_;  // last: started after everything above is constructed
};

}  // namespace

std::unique_ptr<rocksdb::Env> NewPrezeroedWalEnv(const std::string& dir, size_t spare_bytes) {
  return rocksdb::NewCompositeEnv(std::make_shared<PrezeroedWalFileSystem>(dir, spare_bytes));
}

namespace {
PrezeroedWalFileSystem* Of(rocksdb::Env* env) {
  return dynamic_cast<PrezeroedWalFileSystem*>(env->GetFileSystem().get());
}
}  // namespace

void RemoveSpareWalLeftovers(rocksdb::Env* env) {
  if (PrezeroedWalFileSystem* fs = Of(env)) fs->RemoveLeftovers();
}

uint64_t PrezeroedWalsHandedOut(rocksdb::Env* env) {
  PrezeroedWalFileSystem* fs = Of(env);
  return fs == nullptr ? 0 : fs->handed_out();
}

}  // namespace gimel::store::embedded
