#include "common/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace gimel {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gimel_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    for (const char* v : {"GIMEL_LISTEN", "GIMEL_STORE", "GIMEL_REDIS_PORT", "GIMEL_API_KEY",
                          "GIMEL_REDIS_CLUSTER_NODES"}) {
      ::unsetenv(v);
    }
  }
  std::string Write(const std::string& text) {
    std::string p = (dir_ / "config.json").string();
    std::ofstream(p) << text;
    return p;
  }
  fs::path dir_;
};

TEST_F(ConfigTest, DefaultsAreSafe) {
  Config c;
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.store, "embedded");
  EXPECT_EQ(c.PublicUrl(), "http://127.0.0.1:8080");
  EXPECT_TRUE(Validate(c).ok());
}

TEST_F(ConfigTest, TheOriginalGimelConfigShapeStillParses) {
  auto c = LoadConfig(Write(R"({"redis": {"host": "redis.example", "port": 6380,
      "password": "s3cret"}, "lambda": {"function_name": "gimel"}})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->redis.host, "redis.example");
  EXPECT_EQ(c->redis.port, 6380);
  EXPECT_EQ(c->redis.password, "s3cret");
  EXPECT_TRUE(c->file_found);
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
  std::string p = Write(R"({"listen": "127.0.0.1:9000", "store": "redis"})");
  ::setenv("GIMEL_LISTEN", "0.0.0.0:9100", 1);
  ::setenv("GIMEL_REDIS_PORT", "7000", 1);
  ::setenv("GIMEL_REDIS_CLUSTER_NODES", "127.0.0.1:1,127.0.0.1:2", 1);
  auto c = LoadConfig(p);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->listen, "0.0.0.0:9100");
  EXPECT_EQ(c->store, "redis");
  EXPECT_EQ(c->redis.port, 7000);
  EXPECT_EQ(c->redis_cluster_nodes.size(), 2u);
  ::setenv("GIMEL_REDIS_PORT", "seven", 1);
  auto bad = LoadConfig(p);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("GIMEL_REDIS_PORT"), std::string::npos);
}

TEST_F(ConfigTest, WrongTypesAreNamed) {
  auto c = LoadConfig(Write(R"({"redis": {"port": "6379"}})"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("redis.port"), std::string::npos);
  EXPECT_FALSE(LoadConfig(Write("{not json")).ok());
  EXPECT_FALSE(LoadConfig((dir_ / "missing.json").string()).ok());
}

TEST_F(ConfigTest, ValidateRejectsUnknownStoresHandlersAndBadListen) {
  Config c;
  c.store = "mongo";
  EXPECT_FALSE(Validate(c).ok());
  c = Config();
  c.routes["/collect"] = "nothing";
  EXPECT_FALSE(Validate(c).ok());
  c.routes["/collect"] = "track";
  EXPECT_TRUE(Validate(c).ok());
  c.listen = "nonsense";
  EXPECT_FALSE(Validate(c).ok());
}

TEST_F(ConfigTest, SetConfigValueWritesNestedKeysWithMode0600) {
  std::string p = (dir_ / "sub" / "config.json").string();
  ASSERT_TRUE(SetConfigValue(p, "redis.port", "6390").ok());
  ASSERT_TRUE(SetConfigValue(p, "api_key", "abc").ok());
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto c = LoadConfig(p);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->redis.port, 6390);
  EXPECT_EQ(c->api_key, "abc");
  // A value of the wrong type is refused and the file is left as it was.
  EXPECT_FALSE(SetConfigValue(p, "redis.port", "\"x\"").ok());
  EXPECT_EQ(LoadConfig(p)->redis.port, 6390);
}

TEST_F(ConfigTest, GeneratedApiKeysAreLongAndDistinct) {
  auto a = GenerateApiKey();
  auto b = GenerateApiKey();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace gimel
