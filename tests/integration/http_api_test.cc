// The HTTP contract (DESIGN.md §1) against the real `gimel serve` binary, on every store.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/url.h"
#include "tests/integration/backends.h"
#include "tests/support/gimel_process.h"
#ifdef GIMEL_HAVE_REDIS_SUPPORT
#include "tests/support/redis_server.h"
#endif

namespace gimel::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::map<std::string, std::string> kAuth = {{"X-Api-Key", GimelProcess::kApiKey}};

class HttpApiTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string error;
    backend_ = MakeBackend(GetParam(), &error);
    ASSERT_NE(backend_, nullptr) << error;
    StartGimel();
  }

  void StartGimel(json extra = json::object()) {
    json config = backend_->StoreConfig();
    for (auto& [k, v] : extra.items()) config[k] = v;
    gimel_ = std::make_unique<GimelProcess>(config, backend_->data_dir());
    ASSERT_TRUE(gimel_->Start()) << "gimel did not start:\n" << gimel_->output() << gimel_->error();
  }

  uint16_t port() const { return gimel_->port(); }

  // Tracks one event; names are URL-encoded here.
  HttpResponse Track(const std::string& exp, const std::string& variant, const std::string& event,
                     const std::string& uuid, const std::string& ns = "") {
    std::string target = "/track?experiment=" + PercentEncode(exp) +
                         "&variant=" + PercentEncode(variant) + "&event=" + PercentEncode(event) +
                         "&uuid=" + PercentEncode(uuid);
    if (!ns.empty()) target += "&namespace=" + PercentEncode(ns);
    return Http(port(), "GET", target);
  }

  void MustTrack(const std::string& exp, const std::string& variant, const std::string& event,
                 const std::string& uuid, const std::string& ns = "") {
    HttpResponse r = Track(exp, variant, event, uuid, ns);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  json Experiments(const std::string& query = "") {
    HttpResponse r = Http(port(), "GET", "/experiments" + query, kAuth);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json();
  }

  // {experiment: {goal: {label: [successes, trials]}}} from an /experiments answer, so tests
  // compare content regardless of list order.
  static std::map<std::string, std::map<std::string, std::map<std::string, std::pair<int, int>>>>
  Tally(const json& experiments) {
    std::map<std::string, std::map<std::string, std::map<std::string, std::pair<int, int>>>> out;
    for (size_t i = 1; i < experiments.size(); ++i) {
      auto& e = out[experiments[i]["experiment"]];
      for (const auto& g : experiments[i]["goals"]) {
        auto& goal = e[g["goal"]];
        for (const auto& r : g["results"]) {
          goal[r["label"]] = {r["successes"].get<int>(), r["trials"].get<int>()};
        }
      }
    }
    return out;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<GimelProcess> gimel_;
};

TEST_P(HttpApiTest, DeduplicatesByUuidAndReportsTheOriginalShape) {
  for (int i = 0; i < 20; ++i) {
    MustTrack("button color", "red", "participate", "u" + std::to_string(i));
    MustTrack("button color", "red", "participate", "u" + std::to_string(i));  // duplicate
  }
  for (int i = 0; i < 15; ++i)
    MustTrack("button color", "blue", "participate", "v" + std::to_string(i));
  for (int i = 0; i < 4; ++i) MustTrack("button color", "red", "clicked", "u" + std::to_string(i));
  MustTrack("button color", "red", "clicked", "u0");
  MustTrack("only participate", "a", "participate", "x");

  json all = Experiments();
  ASSERT_TRUE(all.is_array());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], json::parse(R"({"meta": {"scope": null}})"));
  json button, only;
  for (size_t i = 1; i < all.size(); ++i) {
    (all[i]["experiment"] == "button color" ? button : only) = all[i];
  }
  EXPECT_EQ(only, json::parse(R"({"experiment": "only participate", "goals": []})"));
  ASSERT_EQ(button["goals"].size(), 1u);  // no "participate" goal
  const json& goal = button["goals"][0];
  EXPECT_EQ(goal["goal"], "clicked");
  EXPECT_EQ(goal.size(), 2u);  // exactly "goal" and "results"
  std::map<std::string, json> by_label;
  for (const auto& r : goal["results"]) by_label[r["label"]] = r;
  EXPECT_EQ(by_label["red"], json::parse(R"({"label":"red","successes":4,"trials":20})"));
  // zero-filled successes for a variant that never reached the goal
  EXPECT_EQ(by_label["blue"], json::parse(R"({"label":"blue","successes":0,"trials":15})"));

  HttpResponse one = Http(port(), "GET", "/experiment?experiment=button+color", kAuth);
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.json(), button["goals"]);
}

TEST_P(HttpApiTest, NamesWithSpacesPlusSlashColonAndNonAsciiRoundTripExactly) {
  const std::vector<std::string> names = {"with space",  "a+b",       "a/b", "ns:exp:x",
                                          "ключ ✓ 日本", "trailing:", ":",   "%41"};
  for (const auto& n : names) {
    MustTrack(n, n, "participate", "1", n);
    MustTrack(n, n, "goal:" + n, "1", n);
  }
  // Raw query forms: '+' is a space, %2F a slash.
  ASSERT_EQ(Http(port(), "GET", "/track?experiment=plus+form&variant=x%2Fy&event=e&uuid=1").status,
            200);
  for (const auto& n : names) {
    json all = Experiments("?namespace=" + PercentEncode(n));
    auto tally = Tally(all);
    ASSERT_EQ(tally.size(), 1u) << n;
    ASSERT_TRUE(tally.count(n)) << n;
    EXPECT_EQ(tally[n]["goal:" + n][n], std::make_pair(1, 1)) << n;
  }
  auto tally = Tally(Experiments());
  ASSERT_TRUE(tally.count("plus form"));
  EXPECT_EQ(tally["plus form"]["e"]["x/y"], std::make_pair(1, 0));
}

TEST_P(HttpApiTest, EachMissingParameterIsA400NamingIt) {
  const std::vector<std::string> params = {"experiment", "variant", "event", "uuid"};
  for (const auto& missing : params) {
    std::string target = "/track?";
    for (const auto& p : params) {
      if (p != missing) target += p + "=x&";
    }
    HttpResponse r = Http(port(), "GET", target);
    EXPECT_EQ(r.status, 400) << missing;
    EXPECT_EQ(r.json()["parameter"], missing);
    EXPECT_NE(r.json()["message"].get<std::string>().find(missing), std::string::npos);
    EXPECT_EQ(r.headers["access-control-allow-origin"], "*");
  }
  HttpResponse r = Http(port(), "GET", "/experiment", kAuth);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["parameter"], "experiment");
  r = Http(port(), "DELETE", "/delete", kAuth);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["parameter"], "experiment");
}

TEST_P(HttpApiTest, ReportsNeedTheApiKey) {
  for (std::string target : {"/experiments", "/experiment?experiment=x"}) {
    HttpResponse r = Http(port(), "GET", target);
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, R"({"message":"Forbidden"})");
    r = Http(port(), "GET", target, {{"X-Api-Key", "wrong"}});
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, R"({"message":"Forbidden"})");
  }
  MustTrack("keep", "a", "participate", "1");
  HttpResponse r = Http(port(), "DELETE", "/delete?experiment=keep", {{"X-Api-Key", "nope"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Tally(Experiments()).count("keep"), 1u);
  EXPECT_EQ(Http(port(), "GET", "/experiments",
                 {{"Authorization", std::string("Bearer ") + GimelProcess::kApiKey}})
                .status,
            200);
}

TEST_P(HttpApiTest, CorsAndCacheHeadersOnGetAndOptions) {
  HttpResponse r = Track("e", "v", "participate", "1");
  EXPECT_EQ(r.headers["access-control-allow-origin"], "*");
  EXPECT_EQ(r.headers["cache-control"], "no-cache, no-store, must-revalidate");
  EXPECT_EQ(r.headers["pragma"], "no-cache");
  EXPECT_TRUE(r.body == "null" || r.body == "{}");
  // RFC 9110: an origin server with a clock sends Date, e.g. "Sun, 06 Dec 2026 21:45:00 GMT".
  EXPECT_EQ(r.headers["date"].size(), 29u) << r.headers["date"];
  EXPECT_TRUE(r.headers["date"].ends_with(" GMT")) << r.headers["date"];
  r = Http(port(), "GET", "/experiments", kAuth);
  EXPECT_EQ(r.headers["access-control-allow-origin"], "*");
  EXPECT_EQ(r.headers["cache-control"], "no-cache, no-store, must-revalidate");
  EXPECT_EQ(r.headers["pragma"], "no-cache");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  for (std::string path : {"/track", "/experiments", "/experiment", "/delete"}) {
    r = Http(port(), "OPTIONS", path,
             {{"Origin", "https://site.example"}, {"Access-Control-Request-Method", "GET"}});
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.headers["access-control-allow-origin"], "*");
    EXPECT_NE(r.headers["access-control-allow-methods"].find("GET"), std::string::npos);
    for (std::string h : {"Content-Type", "X-Api-Key", "Authorization"}) {
      EXPECT_NE(r.headers["access-control-allow-headers"].find(h), std::string::npos) << h;
    }
  }
}

TEST_P(HttpApiTest, ScopeFiltersExperiments) {
  MustTrack("a", "x", "participate", "1");
  MustTrack("b", "x", "participate", "1");
  MustTrack("c", "x", "participate", "1");
  json scoped = Experiments("?scope=a,c");
  EXPECT_EQ(scoped[0], json::parse(R"({"meta": {"scope": "a,c"}})"));
  std::set<std::string> names;
  for (size_t i = 1; i < scoped.size(); ++i) names.insert(scoped[i]["experiment"]);
  EXPECT_EQ(names, (std::set<std::string>{"a", "c"}));
}

TEST_P(HttpApiTest, DeleteRemovesExactlyOneExperiment) {
  MustTrack("gone", "x", "participate", "1");
  MustTrack("gone", "x", "goal", "1");
  MustTrack("kept", "x", "participate", "1");
  MustTrack("kept", "x", "goal", "1");
  MustTrack("gone", "x", "participate", "1", "other-ns");
  HttpResponse r = Http(port(), "DELETE", "/delete?experiment=gone", kAuth);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["deleted"], true);
  auto tally = Tally(Experiments());
  EXPECT_EQ(tally.count("gone"), 0u);
  EXPECT_EQ(tally["kept"]["goal"]["x"], std::make_pair(1, 1));
  EXPECT_EQ(Tally(Experiments("?namespace=other-ns")).count("gone"), 1u);
  // Tracking again after a delete starts from zero.
  MustTrack("gone", "x", "participate", "2");
  EXPECT_EQ(Http(port(), "GET", "/experiment?experiment=gone", kAuth).json(), json::array());
  EXPECT_EQ(Http(port(), "DELETE", "/delete?experiment=never", kAuth).json()["deleted"], false);
}

TEST_P(HttpApiTest, CustomRoutesReachTheSameHandlers) {
  gimel_->Stop();
  StartGimel({{"routes", {{"/collect", "track"}, {"/stats/all", "experiments"}}}});
  ASSERT_EQ(Http(port(), "GET", "/collect?experiment=r&variant=v&event=participate&uuid=1").status,
            200);
  HttpResponse r = Http(port(), "GET", "/stats/all", kAuth);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Tally(r.json()).count("r"), 1u);
  EXPECT_EQ(Http(port(), "GET", "/stats/all").status, 403);
}

TEST_P(HttpApiTest, PostTrackAcceptsOneEventOrABatch) {
  HttpResponse r = Http(port(), "POST", "/track", {{"Content-Type", "text/plain"}},
                        R"({"experiment":"p","variant":"a","event":"participate","uuid":"1"})");
  EXPECT_EQ(r.status, 200) << r.body;
  r = Http(port(), "POST", "/track", {},
           R"([{"experiment":"p","variant":"a","event":"participate","uuid":"2"},
               {"experiment":"p","variant":"a","event":"won","uuid":"2"}])");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Tally(Experiments())["p"]["won"]["a"], std::make_pair(1, 2));
}

TEST_P(HttpApiTest, StatsAreAddedWithoutChangingTheOriginalFields) {
  for (int i = 0; i < 60; ++i) MustTrack("s", "red", "participate", "r" + std::to_string(i));
  for (int i = 0; i < 50; ++i) MustTrack("s", "blue", "participate", "b" + std::to_string(i));
  for (int i = 0; i < 6; ++i) MustTrack("s", "red", "won", "r" + std::to_string(i));
  for (int i = 0; i < 20; ++i) MustTrack("s", "blue", "won", "b" + std::to_string(i));
  const json plain = Experiments();
  json with = Experiments("?stats=true&baseline=red&confidence=0.9");
  ASSERT_EQ(with.size(), 2u);
  const json& goal = with[1]["goals"][0];
  EXPECT_EQ(goal["baseline"], "red");
  EXPECT_TRUE(goal["srm"].contains("p_value"));
  EXPECT_TRUE(goal["srm"].contains("mismatch"));
  for (size_t i = 0; i < goal["results"].size(); ++i) {
    const json& r = goal["results"][i];
    const json& orig = plain[1]["goals"][0]["results"][i];
    EXPECT_EQ(r["label"], orig["label"]);
    EXPECT_EQ(r["successes"], orig["successes"]);
    EXPECT_EQ(r["trials"], orig["trials"]);
    const json& st = r["stats"];
    EXPECT_NEAR(st["rate"]["value"].get<double>(),
                r["successes"].get<double>() / r["trials"].get<double>(), 1e-9);
    if (r["label"] == "red") {
      EXPECT_TRUE(st["p_value"].is_null());
      EXPECT_TRUE(st["improvement"].is_null());
    } else {
      EXPECT_LT(st["p_value"].get<double>(), 0.05);  // 12 % vs 40 %
      EXPECT_GT(st["chance_to_beat_baseline"].get<double>(), 0.99);
    }
  }
  // The one-experiment endpoint agrees.
  HttpResponse one =
      Http(port(), "GET", "/experiment?experiment=s&stats=true&baseline=red&confidence=0.9", kAuth);
  EXPECT_EQ(one.json(), with[1]["goals"]);
  EXPECT_EQ(Http(port(), "GET", "/experiments?stats=true&confidence=2", kAuth).status, 400);
}

TEST_P(HttpApiTest, HealthzReportsTheStore) {
  HttpResponse r = Http(port(), "GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["status"], "ok");
  EXPECT_EQ(r.json()["store"]["kind"], backend_->StoreConfig()["store"]);
}

// ---- Bad input never hurts -------------------------------------------------------------------

TEST_P(HttpApiTest, BadInputGetsA4xxAndLeavesDataUnchanged) {
  for (int i = 0; i < 5; ++i) MustTrack("stable", "v", "participate", std::to_string(i));
  MustTrack("stable", "v", "goal", "0");
  const json before = Experiments();

  const std::string long_name(300, 'n');
  HttpResponse r = Track(long_name, "v", "participate", "x");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["parameter"], "experiment");
  r = Http(port(), "GET",
           "/track?experiment=" + std::string(9000, 'a') + "&variant=v&event=e&uuid=1");
  EXPECT_EQ(r.status, 414);
  r = Http(port(), "GET", "/track?experiment=%ZZ&variant=v&event=participate&uuid=1");
  EXPECT_EQ(r.status, 400);
  r = Http(port(), "GET", "/track?experiment=stable&variant=%FF%FE&event=participate&uuid=9");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["parameter"], "variant");
  r = Http(port(), "GET", "/nowhere");
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.json().contains("message"));
  r = Http(port(), "PATCH", "/track?experiment=stable&variant=v&event=participate&uuid=9");
  EXPECT_EQ(r.status, 405);
  r = Http(port(), "POST", "/track", {}, std::string(2 << 20, '['));
  EXPECT_EQ(r.status, 413);
  r = Http(port(), "POST", "/track", {}, "[1,2");
  EXPECT_EQ(r.status, 400);
  r = Http(port(), "GET", "/experiments?stats=maybe", kAuth);
  EXPECT_EQ(r.status, 400);
  std::string garbage = RawExchange(port(), "THIS IS NOT HTTP\r\n\r\n", 2000ms);
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400", 0), 0u) << garbage;

  EXPECT_EQ(Experiments(), before);
  MustTrack("stable", "v", "participate", "5");  // still serving
}

TEST_P(HttpApiTest, SlowAndIdleClientsAreCutOffWhileOthersAreServed) {
  gimel_->Stop();
  StartGimel({{"header_timeout_ms", 300}, {"idle_timeout_ms", 600}});
  // A client that sends half a request line and stalls is closed after the header timeout.
  auto start = std::chrono::steady_clock::now();
  std::thread slow([this] {
    std::string out = RawExchange(port(), "GET /track?experiment=slow", 5000ms);
    EXPECT_EQ(out.find("200 OK"), std::string::npos);
  });
  std::this_thread::sleep_for(50ms);
  MustTrack("fast", "v", "participate", "1");  // served meanwhile
  slow.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4000ms);
  // An idle keep-alive connection is closed after the idle timeout.
  start = std::chrono::steady_clock::now();
  std::string out = RawExchange(port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5000ms);
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4000ms);
  EXPECT_EQ(Tally(Experiments()).count("slow"), 0u);
}

TEST_P(HttpApiTest, KeepAliveServesManyRequestsOnOneConnection) {
  std::string pipeline;
  for (int i = 0; i < 20; ++i) {
    pipeline += "GET /track?experiment=ka&variant=v&event=participate&uuid=" + std::to_string(i) +
                " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  pipeline += "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::string out = RawExchange(port(), pipeline, 5000ms);
  size_t oks = 0;
  for (size_t at = out.find("HTTP/1.1 200"); at != std::string::npos;
       at = out.find("HTTP/1.1 200", at + 1)) {
    ++oks;
  }
  EXPECT_EQ(oks, 21u);
  EXPECT_EQ(Tally(Experiments())["ka"].size(), 0u);  // participate only: no goals
  HttpResponse r = Http(port(), "GET", "/experiment?experiment=ka", kAuth);
  EXPECT_EQ(r.json(), json::array());
}

// ---- Restarts keep everything ----------------------------------------------------------------

TEST_P(HttpApiTest, RestartAfterSigtermOrSigkillGivesIdenticalReports) {
  for (int i = 0; i < 200; ++i) {
    MustTrack("durable", i % 2 ? "a" : "b", "participate", std::to_string(i));
    if (i % 3 == 0) MustTrack("durable", i % 2 ? "a" : "b", "bought", std::to_string(i));
  }
  const json before = Experiments();
  ASSERT_EQ(gimel_->Stop(), 0) << gimel_->error();
  ASSERT_TRUE(gimel_->Start()) << gimel_->error();
  EXPECT_EQ(Experiments(), before);
  MustTrack("durable", "a", "participate", "new-after-restart");
  const json after_one = Experiments();
  gimel_->Kill();
  ASSERT_TRUE(gimel_->Start()) << gimel_->error();
  EXPECT_EQ(Experiments(), after_one);
}

INSTANTIATE_TEST_SUITE_P(Stores, HttpApiTest, ::testing::ValuesIn(BackendKinds()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (auto& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

// ---- Embedded-only behaviour -----------------------------------------------------------------

TEST(EmbeddedServe, ASecondProcessOnTheSameDataDirFailsClearly) {
  std::string error;
  auto backend = MakeBackend("embedded", &error);
  GimelProcess first(backend->StoreConfig(), backend->data_dir());
  ASSERT_TRUE(first.Start()) << first.error();
  GimelProcess second(backend->StoreConfig(), backend->data_dir());
  EXPECT_FALSE(second.Start(10000ms));
  EXPECT_NE(second.error().find("in use"), std::string::npos) << second.error();
  EXPECT_EQ(Http(first.port(), "GET", "/healthz").status, 200);
}

TEST(EmbeddedServe, GeneratesSavesAndPrintsAnApiKeyWhenNoneIsConfigured) {
  std::string dir = MakeTempDir("gimel_key_");
  GimelProcess p(json{{"listen", "127.0.0.1:0"}, {"api_key", ""}}, dir + "/data");
  ASSERT_TRUE(p.Start()) << p.error();
  size_t at = p.output().find("API key: ");
  ASSERT_NE(at, std::string::npos) << p.output();
  std::string key = p.output().substr(at + 9, 64);
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(Http(p.port(), "GET", "/experiments", {{"X-Api-Key", key}}).status, 200);
  std::ifstream in(p.config_path());
  json saved = json::parse(in);
  EXPECT_EQ(saved["api_key"], key);
  struct stat st;
  ASSERT_EQ(::stat(p.config_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_NE(p.output().find("AlephBet"), std::string::npos);  // the tracking snippet
  std::filesystem::remove_all(dir);
}

#ifdef GIMEL_HAVE_REDIS_SUPPORT
// Redis down: /track answers 503 within the command timeout, never 200; /healthz says so;
// when Redis is back, gimel reconnects by itself and the same request succeeds.
TEST(RedisServe, StoreDownAnswers503UntilRedisIsBack) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start());
  GimelProcess gimel(json{{"store", "redis"},
                          {"redis",
                           {{"host", "127.0.0.1"},
                            {"port", redis.port()},
                            {"command_timeout_ms", 500},
                            {"connect_timeout_ms", 200}}}});
  ASSERT_TRUE(gimel.Start()) << gimel.error();
  const std::string track = "/track?experiment=down&variant=v&event=participate&uuid=";
  ASSERT_EQ(Http(gimel.port(), "GET", track + "1").status, 200);
  redis.Kill();
  for (int i = 0; i < 3; ++i) {
    auto start = std::chrono::steady_clock::now();
    HttpResponse r = Http(gimel.port(), "GET", track + "2");
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3000ms);
  }
  HttpResponse health = Http(gimel.port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.json()["store"]["ok"], false);
  ASSERT_TRUE(redis.Start());  // same port, empty data
  bool ok = false;
  for (int i = 0; i < 50 && !ok; ++i) {
    ok = Http(gimel.port(), "GET", track + "3").status == 200;
    if (!ok) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(ok);
  EXPECT_EQ(Http(gimel.port(), "GET", "/healthz").status, 200);
  HttpResponse r = Http(gimel.port(), "GET", "/experiments", kAuth);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()[1]["experiment"], "down");  // re-indexed after the restart
}
#endif

}  // namespace
}  // namespace gimel::testing
