// Micro-benchmarks of request decoding (src/common/url.h): what every GET /track pays before
// the store sees the event.
// Run: build/bench/gimel_bench_url   (bench/run.sh runs it and records the numbers).
#include <benchmark/benchmark.h>

#include <string>

#include "common/url.h"

namespace {

// A track query as bench/track.lua sends it: names with spaces ('+' and %20), '/', ':' and
// non-ASCII (UTF-8 percent-encoded), and a uuid. 197 bytes.
const std::string kTrackQuery =
    "namespace=bench&experiment=Kaufen-Knopf+Farbe+%C3%BC+%2342&variant=rot%2Fred"
    "&event=signed%20up%20%E2%9C%93&uuid=3f2b8c1e-9d4a-4c7b-8e21-5a6f0d9c3b71";

// The same event with plain ASCII names (no escapes): the cheapest realistic query.
const std::string kPlainQuery =
    "namespace=bench&experiment=button_color_42&variant=red&event=clicked"
    "&uuid=3f2b8c1e-9d4a-4c7b-8e21-5a6f0d9c3b71";

void BM_ParseQueryEncoded(benchmark::State& state) {
  for (auto _ : state) {
    auto r = gimel::ParseQuery(kTrackQuery);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kTrackQuery.size()));
}
BENCHMARK(BM_ParseQueryEncoded);

void BM_ParseQueryPlain(benchmark::State& state) {
  for (auto _ : state) {
    auto r = gimel::ParseQuery(kPlainQuery);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kPlainQuery.size()));
}
BENCHMARK(BM_ParseQueryPlain);

// ParseQuery + the five lookups a track request does.
void BM_ParseQueryAndFind(benchmark::State& state) {
  for (auto _ : state) {
    auto r = gimel::ParseQuery(kTrackQuery);
    for (const char* k : {"namespace", "experiment", "variant", "event", "uuid"}) {
      benchmark::DoNotOptimize(gimel::FindParam(*r, k));
    }
  }
}
BENCHMARK(BM_ParseQueryAndFind);

void BM_PercentDecodeName(benchmark::State& state) {
  const std::string name = "Kaufen-Knopf+Farbe+%C3%BC+%2342";
  for (auto _ : state) {
    auto r = gimel::PercentDecode(name, /*plus_is_space=*/true);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_PercentDecodeName);

void BM_PercentDecodeUuid(benchmark::State& state) {
  const std::string uuid = "3f2b8c1e-9d4a-4c7b-8e21-5a6f0d9c3b71";
  for (auto _ : state) {
    auto r = gimel::PercentDecode(uuid, /*plus_is_space=*/true);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_PercentDecodeUuid);

void BM_IsValidUtf8Name(benchmark::State& state) {
  const std::string name = "Kaufen-Knopf Farbe \xC3\xBC #42 signed up \xE2\x9C\x93";
  for (auto _ : state) benchmark::DoNotOptimize(gimel::IsValidUtf8(name));
}
BENCHMARK(BM_IsValidUtf8Name);

}  // namespace

BENCHMARK_MAIN();
