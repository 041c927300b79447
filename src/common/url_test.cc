#include "common/url.h"

#include <gtest/gtest.h>

namespace gimel {
namespace {

TEST(Url, DecodesPercentEscapesAndPlusAsSpace) {
  EXPECT_EQ(*PercentDecode("a%20b+c%2Fd%3A", true), "a b c/d:");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("%2B", true), "+");
  EXPECT_EQ(*PercentDecode("%e2%9c%93", true), "\xE2\x9C\x93");
  EXPECT_EQ(*PercentDecode("", true), "");
  EXPECT_EQ(*PercentDecode("plain-uuid_0123", true), "plain-uuid_0123");
  EXPECT_EQ(*PercentDecode("++x+", true), "  x ");
  EXPECT_EQ(*PercentDecode("%41%42c%43", true), "ABcC");
}

TEST(Url, RejectsTruncatedAndNonHexEscapes) {
  EXPECT_TRUE(PercentDecode("abc%", true).status().IsInvalidArgument());
  EXPECT_TRUE(PercentDecode("abc%4", true).status().IsInvalidArgument());
  EXPECT_TRUE(PercentDecode("%zz", true).status().IsInvalidArgument());
  EXPECT_TRUE(PercentDecode("%%41", true).status().IsInvalidArgument());
  EXPECT_TRUE(PercentDecode("ok%4g", false).status().IsInvalidArgument());
}

TEST(Url, EncodeThenDecodeRoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(*PercentDecode(PercentEncode(all), true), all);
}

TEST(Url, ParsesQueryInOrderAndNamesTheBadParameter) {
  auto q = ParseQuery("experiment=button+color&uuid=1&&flag&variant=%2Fred");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ(*FindParam(*q, "experiment"), "button color");
  EXPECT_EQ(*FindParam(*q, "flag"), "");
  EXPECT_EQ(*FindParam(*q, "variant"), "/red");
  EXPECT_EQ(FindParam(*q, "missing"), nullptr);
  auto bad = ParseQuery("uuid=1&variant=%G1");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("variant"), std::string::npos);
  EXPECT_TRUE(ParseQuery("")->empty());
}

TEST(Utf8, AcceptsValidAndRejectsMalformedSequences) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 \xE6\x97\xA5"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

}  // namespace
}  // namespace gimel
