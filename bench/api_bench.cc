// Micro-benchmarks of the request path without transport or I/O: api::Api over the in-memory
// store. GET /track here is "what gimel spends per event besides HTTP and the store"; GET
// /experiments is the CPU part of a report (listing, HLL counts, JSON) per number of counters.
// Run: build/bench/gimel_bench_api
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/api.h"
#include "api/request.h"
#include "service/service.h"
#include "store/store.h"

namespace {

using namespace gimel;

constexpr char kKey[] = "bench-key";

struct Fixture {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<service::Service> service;
  std::unique_ptr<api::Api> api;

  explicit Fixture(size_t max_experiments) {
    store::StoreOptions so;
    so.kind = store::StoreOptions::Kind::kMemory;
    store = std::move(store::Store::Open(so)).value();
    service::ServiceOptions sv;
    sv.max_experiments_per_namespace = max_experiments;
    service = std::make_unique<service::Service>(store.get(), sv);
    api::ApiOptions ao;
    ao.api_key = kKey;
    api = std::make_unique<api::Api>(service.get(), ao);
  }

  int Call(api::Request req) {
    int status = 0;
    api->Handle(std::move(req), [&status](api::Response r) { status = r.status; });
    return status;  // the memory store completes synchronously
  }
};

// Counter c of the benchmark's keyspace: 10 counters per experiment (2 variants x 5 events),
// names as bench/track.lua sends them (URL-encoded).
std::string TrackQuery(int c, int u) {
  static const char* kEvents[] = {"participate", "clicked+%E2%80%9Ckaufen%E2%80%9D",
                                  "signed%20up%20%E2%9C%93", "checkout%2Fpaid", "bounce%3Aearly"};
  static const char* kVariants[] = {"rot%2Fred", "blau+%F0%9F%94%B5"};
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "namespace=bench&experiment=Kaufen-Knopf+Farbe+%%C3%%BC+%%23%d&variant=%s"
                "&event=%s&uuid=%08x-9d4a-4c7b-8e21-5a6f0d9c%04x",
                c / 10, kVariants[c % 2], kEvents[(c / 2) % 5], u * 2654435761u, u & 0xffff);
  return buf;
}

api::Request Get(std::string path, std::string query) {
  api::Request r;
  r.method = "GET";
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers.push_back({"Host", "127.0.0.1"});
  r.headers.push_back({"User-Agent", "wrk"});
  return r;
}

void BM_ApiTrack(benchmark::State& state) {
  Fixture f(100000);
  std::vector<std::string> queries;
  for (int i = 0; i < 4096; ++i) queries.push_back(TrackQuery(i % 100, i));
  size_t i = 0;
  for (auto _ : state) {
    int s = f.Call(Get("/track", queries[i++ & 4095]));
    if (s != 200) state.SkipWithError("track failed");
  }
}
BENCHMARK(BM_ApiTrack);

// GET /experiments over range(0) counters with 100 events each (sparse counters). The seeded
// fixture is built once per size (Google Benchmark calls this function several times).
void BM_ApiExperiments(benchmark::State& state) {
  const int counters = static_cast<int>(state.range(0));
  static std::map<int, std::unique_ptr<Fixture>> fixtures;
  std::unique_ptr<Fixture>& slot = fixtures[counters];
  if (!slot) {
    slot = std::make_unique<Fixture>(100000);
    for (int c = 0; c < counters; ++c) {
      for (int u = 0; u < 100; ++u) slot->Call(Get("/track", TrackQuery(c, c * 100 + u)));
    }
  }
  Fixture& f = *slot;
  size_t bytes = 0;
  for (auto _ : state) {
    api::Request r = Get("/experiments", "namespace=bench");
    r.headers.push_back({"X-Api-Key", kKey});
    api::Response out;
    f.api->Handle(std::move(r), [&out](api::Response resp) { out = std::move(resp); });
    if (out.status != 200) state.SkipWithError("experiments failed");
    bytes = out.body.size();
  }
  state.counters["json_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ApiExperiments)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
