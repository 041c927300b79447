#include "api/api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "store/memory_store.h"

namespace gimel::api {
namespace {

using json = nlohmann::json;

class ApiTest : public ::testing::Test {
 protected:
  Response Call(std::string method, std::string path, std::string query, std::string key = "",
                std::string body = "") {
    Request req;
    req.method = std::move(method);
    req.path = std::move(path);
    req.query = std::move(query);
    if (!key.empty()) req.headers.push_back({"x-api-key", key});
    req.body = std::move(body);
    Response out;
    api_.Handle(std::move(req), [&out](Response r) { out = std::move(r); });
    return out;
  }
  store::MemoryStore store_;
  service::Service service_{&store_, service::ServiceOptions{}};
  Api api_{&service_, ApiOptions{"k3y", {{"/collect", "track"}}, 1 << 20, 3}};
};

TEST(SecretEquals, ComparesWholeSecrets) {
  EXPECT_TRUE(SecretEquals("abc", "abc"));
  EXPECT_FALSE(SecretEquals("abc", "abd"));
  EXPECT_FALSE(SecretEquals("abc", "abcd"));
  EXPECT_FALSE(SecretEquals("", "a"));
  EXPECT_TRUE(SecretEquals("", ""));
}

TEST_F(ApiTest, StatusCodesMapToHttp) {
  EXPECT_EQ(StatusResponse(Status::InvalidArgument("missing parameter 'uuid'")).status, 400);
  EXPECT_EQ(
      json::parse(
          StatusResponse(Status::InvalidArgument("missing parameter 'uuid'")).body)["parameter"],
      "uuid");
  EXPECT_EQ(StatusResponse(Status::Unavailable("down")).status, 503);
  EXPECT_EQ(StatusResponse(Status::Corruption("bad")).status, 500);
  EXPECT_EQ(StatusResponse(Status::NotFound("x")).status, 404);
}

TEST_F(ApiTest, CustomRouteTracksLikeTrack) {
  Response r = Call("GET", "/collect", "experiment=e&variant=v&event=participate&uuid=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "null");
  r = Call("GET", "/experiments", "", "k3y");
  EXPECT_EQ(json::parse(r.body)[1]["experiment"], "e");
}

TEST_F(ApiTest, BatchTrackValidatesEveryEventBeforeStoringAny) {
  Response r = Call("POST", "/track", "", "",
                    R"([{"experiment":"b","variant":"v","event":"participate","uuid":"1"},
                        {"experiment":"b","variant":"v","event":"participate"}])");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["index"], 1);
  EXPECT_TRUE(store_.ListExperiments("alephbet")->empty());
  r = Call("POST", "/track", "", "",
           R"({"events":[{"experiment":"b","variant":"v","event":"participate","uuid":"1"},
                         {"experiment":"b","variant":"v","event":"participate","uuid":2}]})");
  EXPECT_EQ(r.status, 200);
  r = Call("POST", "/track", "", "", "[{},{},{},{}]");
  EXPECT_EQ(r.status, 413);
  r = Call("POST", "/track", "", "", "{nope");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ApiTest, WrongMethodsAnswer405WithAllow) {
  Response r = Call("PUT", "/track", "");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, POST, OPTIONS");
  EXPECT_EQ(Call("GET", "/delete", "experiment=x", "k3y").status, 405);
  EXPECT_EQ(Call("GET", "/nope", "").status, 404);
}

TEST_F(ApiTest, MetricsCountTrackedEvents) {
  Call("GET", "/track", "experiment=e&variant=v&event=participate&uuid=1");
  Response r = Call("GET", "/metrics", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("gimel_events_tracked_total 1\n"), std::string::npos);
}

}  // namespace
}  // namespace gimel::api
