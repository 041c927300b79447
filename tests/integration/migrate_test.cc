// `gimel migrate` in every direction between embedded, redis and redis-cluster: every
// namespace, experiment and counter arrives (identical reports), and a second run changes
// nothing.
#include <gtest/gtest.h>

#include <tuple>

#include "common/url.h"
#include "tests/integration/backends.h"
#include "tests/support/gimel_process.h"

namespace gimel::testing {
namespace {

using json = nlohmann::json;

// The `gimel migrate` spec of a backend.
std::string Spec(const Backend& b) {
  json c = b.StoreConfig();
  if (c["store"] == "embedded") return "embedded:" + b.data_dir();
  if (c["store"] == "redis") {
    return "redis://127.0.0.1:" + std::to_string(c["redis"]["port"].get<int>());
  }
  std::string spec = "redis-cluster://";
  for (size_t i = 0; i < c["redis_cluster"]["nodes"].size(); ++i) {
    if (i) spec += ",";
    spec += c["redis_cluster"]["nodes"][i].get<std::string>();
  }
  return spec;
}

json Report(GimelProcess& p, const std::string& ns) {
  HttpResponse r = Http(p.port(), "GET", "/experiments?namespace=" + PercentEncode(ns),
                        {{"X-Api-Key", GimelProcess::kApiKey}});
  EXPECT_EQ(r.status, 200) << r.body;
  json j = r.json();
  // Order-insensitive: sort experiments, goals and results.
  json exps = json::array();
  for (size_t i = 1; i < j.size(); ++i) exps.push_back(j[i]);
  for (auto& e : exps) {
    for (auto& g : e["goals"]) {
      std::sort(g["results"].begin(), g["results"].end(),
                [](const json& a, const json& b) { return a["label"] < b["label"]; });
    }
    std::sort(e["goals"].begin(), e["goals"].end(),
              [](const json& a, const json& b) { return a["goal"] < b["goal"]; });
  }
  std::sort(exps.begin(), exps.end(),
            [](const json& a, const json& b) { return a["experiment"] < b["experiment"]; });
  return exps;
}

class MigrateTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(MigrateTest, CopiesEveryCounterExactlyAndIsIdempotent) {
  const auto& [from_kind, to_kind] = GetParam();
  std::string error;
  auto from = MakeBackend(from_kind, &error);
  ASSERT_NE(from, nullptr) << error;
  auto to = MakeBackend(to_kind, &error);
  ASSERT_NE(to, nullptr) << error;

  const std::vector<std::string> namespaces = {"alephbet", "shop:eu"};
  json before;
  {
    GimelProcess src(from->StoreConfig(), from->data_dir());
    ASSERT_TRUE(src.Start()) << src.error();
    for (const auto& ns : namespaces) {
      for (int i = 0; i < 300; ++i) {  // 300 uuids: dense enough to exercise the sparse form
        std::string q = "/track?namespace=" + PercentEncode(ns) +
                        "&experiment=" + PercentEncode("exp:" + std::to_string(i % 3)) +
                        "&variant=" + (i % 2 ? "a" : "b") + "&uuid=u" + std::to_string(i);
        ASSERT_EQ(Http(src.port(), "GET", q + "&event=participate").status, 200);
        if (i % 4 == 0) {
          ASSERT_EQ(Http(src.port(), "GET", q + "&event=goal%3Ax").status, 200);
        }
      }
      before[ns] = Report(src, ns);
    }
    ASSERT_EQ(src.Stop(), 0);
  }
  for (int run = 0; run < 2; ++run) {
    std::string out, err;
    ASSERT_EQ(RunGimel({"migrate", "--from", Spec(*from), "--to", Spec(*to)}, &out, &err), 0)
        << err;
    EXPECT_NE(out.find("migrated 2 namespaces, 6 experiments, 18 counters"), std::string::npos)
        << out;
  }
  GimelProcess dst(to->StoreConfig(), to->data_dir());
  ASSERT_TRUE(dst.Start()) << dst.error();
  for (const auto& ns : namespaces) EXPECT_EQ(Report(dst, ns), before[ns]) << ns;
}

std::vector<std::tuple<std::string, std::string>> Pairs() {
  std::vector<std::tuple<std::string, std::string>> out;
  for (const auto& a : BackendKinds()) {
    for (const auto& b : BackendKinds()) {
      if (a != b) out.emplace_back(a, b);
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Stores, MigrateTest, ::testing::ValuesIn(Pairs()), [](const auto& info) {
  std::string name = std::get<0>(info.param) + "_to_" + std::get<1>(info.param);
  for (auto& c : name) {
    if (c == '-') c = '_';
  }
  return name;
});

}  // namespace
}  // namespace gimel::testing
