// gimel_bench_disk_floor DIR RATE SECONDS [GAP_US [EARLY]]: a helper of bench/run.sh, the floor
// that the disk sets under the embedded store's "p99 at half of peak".
//
// It is the least a store can do to acknowledge events only once they are durable, at the rate
// of a half-load window: events are due at a fixed RATE per second; one writer takes every event
// due, writes 100 bytes per event with one `pwrite`, `fdatasync`s the file and counts each
// event's time from when it was due to the end of that `fdatasync` (a group commit, as gimel's
// writer does, without RocksDB, HTTP or parsing). The file (8 MiB, gimel's WAL size) is
// zero-filled and synced before the clock starts and written over, as gimel writes its WAL files
// (bench/README.md, "Optimisations done" 13). A group commit starts at least GAP_US
// microseconds (default 0) after the previous one started, or sooner once EARLY events (default
// 0: never) wait, as gimel's do (StoreOptions::min_commit_interval_us and
// commit_early_events); on a shared VM's disk, syncing more often than a few thousand times a
// second can also make the host stall it (bench/README.md, "Noise"). A ticker makes events due
// every 200 microseconds, so an event may wait 0.2 ms before the writer sees it.
// One JSON line on stdout:
//   {"rate": R, "seconds": S, "gap_us": G, "early": E, "events": N, "syncs": K,
//    "p50_ms": .., "p99_ms": .., "max_ms": .., "sync_p50_ms": .., "sync_p99_ms": ..,
//    "sync_max_ms": .., "syncs_over_5ms": M}
// Exit status 1 with a message on stderr if the file cannot be created, written or synced.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kFileBytes = 8 << 20;  // gimel's default memtable, and so WAL file, size
constexpr auto kTick = std::chrono::microseconds(200);

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

int Fail(const char* what, const std::string& path) {
  std::fprintf(stderr, "gimel_bench_disk_floor: %s %s: %s\n", what, path.c_str(),
               std::strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || argc > 6) {
    std::fprintf(stderr, "usage: %s DIR RATE SECONDS [GAP_US [EARLY]]\n", argv[0]);
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/disk-floor.dat";
  const double rate = std::atof(argv[2]);
  const double seconds = std::atof(argv[3]);
  const long gap_us = argc >= 5 ? std::atol(argv[4]) : 0;
  const long early = argc == 6 ? std::atol(argv[5]) : 0;
  if (rate <= 0 || seconds <= 0 || gap_us < 0 || early < 0) {
    std::fprintf(stderr,
                 "gimel_bench_disk_floor: RATE and SECONDS must be > 0, GAP_US and EARLY >= 0\n");
    return 2;
  }
  constexpr size_t kEventBytes = 100;
  const auto gap = std::chrono::microseconds(gap_us);
  const uint64_t total = static_cast<uint64_t>(rate * seconds);

  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Fail("cannot create", path);
  std::vector<char> buf(1 << 20, 0);
  for (size_t off = 0; off < kFileBytes; off += buf.size()) {
    if (::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(off)) < 0) {
      return Fail("cannot write", path);
    }
  }
  if (::fsync(fd) != 0) return Fail("cannot sync", path);
  std::memset(buf.data(), 'e', buf.size());

  // Events 0..due-1 are due; event i is due at start + i / rate.
  std::mutex mu;
  std::condition_variable cv;
  uint64_t due = 0;
  // What the writer waits for: nothing (0), the gap's end or EARLY due events (1), any (2).
  int writer_waits = 0;
  uint64_t waiting_from = 0;  // events done when the writer began to wait
  std::atomic<bool> stop{false};
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(50);
  auto due_at = [&](uint64_t i) {
    return start + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(static_cast<double>(i) / rate));
  };

  std::thread ticker([&] {
    for (Clock::time_point t = start;; t += kTick) {
      std::this_thread::sleep_until(t);
      double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      uint64_t n = std::min(total, static_cast<uint64_t>(elapsed * rate) + 1);
      bool wake;
      {
        std::lock_guard lock(mu);
        due = std::max(due, n);
        wake = writer_waits == 2 || (writer_waits == 1 && early > 0 &&
                                     due - waiting_from >= static_cast<uint64_t>(early));
      }
      if (wake) cv.notify_one();
      if (n >= total || stop.load(std::memory_order_relaxed)) return;
    }
  });

  std::vector<float> latency;
  latency.reserve(total);
  std::vector<float> syncs;
  int err = 0;
  uint64_t done = 0;
  size_t offset = 0;
  Clock::time_point last = start - gap;
  while (done < total) {
    uint64_t upto;
    {
      std::unique_lock lock(mu);
      if (gap_us > 0) {
        writer_waits = 1;
        waiting_from = done;
        cv.wait_until(lock, last + gap,
                      [&] { return early > 0 && due - done >= static_cast<uint64_t>(early); });
      }
      writer_waits = 2;
      cv.wait(lock, [&] { return due > done; });
      writer_waits = 0;
      upto = due;
    }
    size_t bytes = std::min(buf.size(), static_cast<size_t>(upto - done) * kEventBytes);
    if (offset + bytes > kFileBytes) offset = 0;
    Clock::time_point s = Clock::now();
    last = s;
    if (::pwrite(fd, buf.data(), bytes, static_cast<off_t>(offset)) < 0 || ::fdatasync(fd) != 0) {
      err = errno;
      break;
    }
    Clock::time_point e = Clock::now();
    offset += bytes;
    syncs.push_back(static_cast<float>(Ms(e - s)));
    for (; done < upto; ++done) latency.push_back(static_cast<float>(Ms(e - due_at(done))));
  }
  if (err != 0) {
    stop = true;
    ticker.join();
    errno = err;
    ::close(fd);
    ::unlink(path.c_str());
    return Fail("cannot write and sync", path);
  }
  ticker.join();
  ::close(fd);
  ::unlink(path.c_str());

  size_t over_5ms = static_cast<size_t>(
      std::count_if(syncs.begin(), syncs.end(), [](float ms) { return ms > 5; }));
  double sync_max = syncs.empty() ? 0 : *std::max_element(syncs.begin(), syncs.end());
  double lat_max = latency.empty() ? 0 : *std::max_element(latency.begin(), latency.end());
  std::printf(
      "{\"rate\": %.0f, \"seconds\": %.1f, \"gap_us\": %ld, \"early\": %ld, \"events\": %zu, "
      "\"syncs\": %zu, "
      "\"p50_ms\": %.2f, "
      "\"p99_ms\": %.2f, \"max_ms\": %.2f, \"sync_p50_ms\": %.2f, \"sync_p99_ms\": %.2f, "
      "\"sync_max_ms\": %.2f, \"syncs_over_5ms\": %zu}\n",
      rate, seconds, gap_us, early, latency.size(), syncs.size(), Percentile(latency, 0.5),
      Percentile(latency, 0.99), lat_max, Percentile(syncs, 0.5), Percentile(syncs, 0.99), sync_max,
      over_5ms);
  return 0;
}
