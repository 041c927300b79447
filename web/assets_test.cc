// The embedded dashboard assets are byte-identical to the files in web/ and found by name only.
#include "web/assets.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace gimel::web {
namespace {

std::string ReadSource(const std::string& name) {
  std::ifstream in(std::string(GIMEL_SOURCE_DIR) + "/web/" + name, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(WebAssets, EmbedsEachFileVerbatim) {
  for (const char* name : {"index.html", "app.js", "style.css"}) {
    const Asset* asset = FindAsset(name);
    ASSERT_NE(asset, nullptr) << name;
    EXPECT_EQ(asset->path, name);
    EXPECT_EQ(asset->body, ReadSource(name)) << name;
  }
}

TEST(WebAssets, ContentTypes) {
  EXPECT_EQ(FindAsset("index.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(FindAsset("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindAsset("style.css")->content_type, "text/css; charset=utf-8");
}

TEST(WebAssets, UnknownPathsAreNotFound) {
  using namespace std::string_view_literals;
  for (std::string_view path :
       {""sv, "/"sv, "/index.html"sv, "../app.js"sv, "app.js/"sv, "APP.JS"sv, "missing.js"sv,
        "dashboard/app.js"sv, "index.html\0x"sv}) {
    EXPECT_EQ(FindAsset(path), nullptr) << path;
  }
}

}  // namespace
}  // namespace gimel::web
