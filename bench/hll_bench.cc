// Micro-benchmarks of the Redis-compatible HyperLogLog (src/hll/hll.h): the per-event cost
// (Hash, Add) and the per-counter cost of a report (Validate, Count, Merge).
// Run: build/bench/gimel_bench_hll   (bench/run.sh runs it and records the numbers).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "hll/hll.h"

namespace {

using gimel::hll::Add;
using gimel::hll::Count;

// uuid-shaped elements (36 chars), as browsers send them.
const std::vector<std::string>& Elements() {
  static const std::vector<std::string> elements = [] {
    std::mt19937_64 rng(42);
    std::vector<std::string> v;
    v.reserve(1 << 16);
    for (int i = 0; i < (1 << 16); ++i) {
      uint64_t a = rng(), b = rng();
      char buf[40];
      std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                    static_cast<unsigned>(a >> 16) & 0xffff, static_cast<unsigned>(a) & 0xfff,
                    static_cast<unsigned>(b >> 48),
                    static_cast<unsigned long long>(b & 0xffffffffffffULL));
      v.emplace_back(buf);
    }
    return v;
  }();
  return elements;
}

std::string Filled(int64_t n, uint64_t salt, bool dense) {
  std::string h;
  for (int64_t i = 0; i < n; ++i) Add(&h, "e" + std::to_string(salt) + ":" + std::to_string(i));
  if (h.empty()) h = gimel::hll::Empty();
  if (dense) gimel::hll::ToDense(&h);
  return h;
}

// ---- per event ------------------------------------------------------------------------------

void BM_Hash(benchmark::State& state) {
  const auto& el = Elements();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(gimel::hll::Hash(el[i++ & 0xffff]));
  }
}
BENCHMARK(BM_Hash);

// PFADD on a dense counter: hash + one 6-bit register read/write.
void BM_AddDense(benchmark::State& state) {
  const auto& el = Elements();
  std::string h = Filled(0, 0, /*dense=*/true);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(Add(&h, el[i++ & 0xffff]));
  }
}
BENCHMARK(BM_AddDense);

// PFADD on a sparse counter: builds a counter of range(0) distinct elements from empty each
// iteration; "per_add" is the mean cost of one Add (sparse adds are O(size of the sparse run
// list), and the counter is promoted to dense past 3000 bytes as Redis does).
void BM_AddSparseBuild(benchmark::State& state) {
  const auto& el = Elements();
  const int64_t n = state.range(0);
  for (auto _ : state) {
    std::string h;
    for (int64_t i = 0; i < n; ++i) Add(&h, el[static_cast<size_t>(i)]);
    benchmark::DoNotOptimize(h);
  }
  state.counters["per_add"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
  state.counters["dense"] = [&] {
    std::string h;
    for (int64_t i = 0; i < n; ++i) Add(&h, el[static_cast<size_t>(i)]);
    return gimel::hll::IsDense(h) ? 1.0 : 0.0;
  }();
}
BENCHMARK(BM_AddSparseBuild)->Arg(100)->Arg(1000)->Arg(5000);

// ---- per counter of a report ----------------------------------------------------------------

// PFCOUNT on a dense counter whose cached cardinality is stale (the state after any Add):
// validation + the estimator over 16384 registers.
void BM_CountDense(benchmark::State& state) {
  const std::string h = Filled(state.range(0), 1, /*dense=*/true);
  for (auto _ : state) {
    auto c = Count(h);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_CountDense)->Arg(1000)->Arg(100000);

// PFCOUNT when the cached cardinality is valid (Redis keeps it after a PFCOUNT).
void BM_CountDenseCached(benchmark::State& state) {
  std::string h = Filled(100000, 2, /*dense=*/true);
  (void)gimel::hll::CountAndCache(&h);
  for (auto _ : state) {
    auto c = Count(h);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_CountDenseCached);

// Validation and the estimate of sparse counters: 64 different ones in turn, as a report counts
// a different counter each time (one sketch counted over and over lets the branch predictor
// learn its opcodes).
void BM_CountSparse(benchmark::State& state) {
  std::vector<std::string> sketches;
  for (int k = 0; k < 64; ++k) sketches.push_back(Filled(state.range(0), 200 + k, false));
  size_t k = 0;
  for (auto _ : state) {
    auto c = Count(sketches[k++ % sketches.size()]);
    benchmark::DoNotOptimize(c);
  }
  state.counters["bytes"] = static_cast<double>(sketches[0].size());
}
BENCHMARK(BM_CountSparse)->Arg(10)->Arg(100)->Arg(1000);

void BM_ValidateDense(benchmark::State& state) {
  const std::string h = Filled(100000, 4, /*dense=*/true);
  for (auto _ : state) benchmark::DoNotOptimize(gimel::hll::Validate(h));
}
BENCHMARK(BM_ValidateDense);

// PFMERGE dst src, both dense (register-wise max over 16384 registers).
void BM_MergeDense(benchmark::State& state) {
  std::string dst = Filled(100000, 5, /*dense=*/true);
  const std::string src = Filled(100000, 6, /*dense=*/true);
  for (auto _ : state) {
    benchmark::DoNotOptimize(gimel::hll::Merge(&dst, src));
  }
}
BENCHMARK(BM_MergeDense);

// PFMERGE of a sparse counter (1000 elements) into a dense one.
void BM_MergeSparseIntoDense(benchmark::State& state) {
  std::string dst = Filled(100000, 7, /*dense=*/true);
  const std::string src = Filled(1000, 8, /*dense=*/false);
  for (auto _ : state) {
    benchmark::DoNotOptimize(gimel::hll::Merge(&dst, src));
  }
}
BENCHMARK(BM_MergeSparseIntoDense);

// PFMERGE of two sparse counters (100 elements each); includes copying dst each iteration.
void BM_MergeSparseSparse(benchmark::State& state) {
  const std::string dst0 = Filled(100, 9, /*dense=*/false);
  const std::string src = Filled(100, 10, /*dense=*/false);
  for (auto _ : state) {
    std::string dst = dst0;
    benchmark::DoNotOptimize(gimel::hll::Merge(&dst, src));
  }
}
BENCHMARK(BM_MergeSparseSparse);

// What the embedded store's merge operator does per counter on a read with more than 8
// register entries: a sparse base (state.range elements) and 100 register updates folded into
// a 16,384-register array (zeroed each time) and encoded once by FromRegisters.
void BM_FromRegistersFold(benchmark::State& state) {
  const std::string base = Filled(state.range(0), 11, /*dense=*/false);
  std::vector<gimel::hll::Register> regs;
  for (int i = 0; i < 100; ++i) regs.push_back(gimel::hll::Hash(Elements()[i]));
  for (auto _ : state) {
    std::array<uint8_t, gimel::hll::kRegisters> max{};
    benchmark::DoNotOptimize(gimel::hll::MaxRegisters(base, max));
    for (const auto& r : regs) max[r.index] = std::max(max[r.index], r.rank);
    std::string out = gimel::hll::FromRegisters(max, false);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_FromRegistersFold)->Arg(0)->Arg(100)->Arg(1000);

// FromRegisters alone: encoding register arrays holding state.range elements each as sparse
// opcodes. 64 different arrays in turn, as a report encodes a different counter each time (one
// array encoded over and over lets the branch predictor learn its gaps).
void BM_FromRegisters(benchmark::State& state) {
  constexpr int kArrays = 64;
  std::vector<std::array<uint8_t, gimel::hll::kRegisters>> arrays(kArrays);
  for (int k = 0; k < kArrays; ++k) {
    arrays[k].fill(0);
    benchmark::DoNotOptimize(
        gimel::hll::MaxRegisters(Filled(state.range(0), 100 + k, false), arrays[k]));
  }
  int k = 0;
  for (auto _ : state) {
    std::string out = gimel::hll::FromRegisters(arrays[k++ % kArrays], false);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_FromRegisters)->Arg(10)->Arg(100)->Arg(1000);

}  // namespace

BENCHMARK_MAIN();
