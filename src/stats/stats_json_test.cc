// JSON adapter: response shape, null fields for the baseline, finite numbers, parse errors.
#include "stats/stats_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace gimel::stats {
namespace {

using nlohmann::json;

void ExpectAllNumbersFinite(const json& j) {
  if (j.is_number()) {
    EXPECT_TRUE(std::isfinite(j.get<double>()));
  } else if (j.is_structured()) {
    for (const auto& child : j) ExpectAllNumbersFinite(child);
  }
}

TEST(StatsJson, ResponseShape) {
  const GoalStats stats = AnalyzeGoal({{"red", 40, 1000}, {"blue", 57, 998}}, Options{});
  const json j = GoalStatsToJson(stats, "clicked");
  EXPECT_EQ(j["goal"], "clicked");
  EXPECT_EQ(j["baseline"], "red");
  EXPECT_TRUE(j["srm"]["p_value"].is_number());
  EXPECT_TRUE(j["srm"]["mismatch"].is_boolean());
  EXPECT_FALSE(j.contains("error"));
  ASSERT_EQ(j["results"].size(), 2u);

  const json& red = j["results"][0];
  EXPECT_EQ(red["label"], "red");
  for (const char* key : {"improvement", "relative_improvement", "p_value", "p_value_one_tailed",
                          "chance_to_beat_baseline", "expected_loss"}) {
    ASSERT_TRUE(red["stats"].contains(key)) << key;
    EXPECT_TRUE(red["stats"][key].is_null()) << key;
  }

  const json& blue = j["results"][1];
  EXPECT_EQ(blue["label"], "blue");
  EXPECT_TRUE(blue["successes"].is_number_integer());
  EXPECT_EQ(blue["successes"], 57);
  EXPECT_EQ(blue["trials"], 998);
  for (const char* key : {"rate", "improvement", "relative_improvement"}) {
    for (const char* part : {"value", "lower", "upper"}) {
      EXPECT_TRUE(blue["stats"][key][part].is_number()) << key << "." << part;
    }
  }
  for (const char* key :
       {"p_value", "p_value_one_tailed", "chance_to_beat_baseline", "expected_loss"}) {
    EXPECT_TRUE(blue["stats"][key].is_number()) << key;
  }
  EXPECT_TRUE(blue["warnings"].is_array());
  EXPECT_EQ(blue["stats"].size(), 7u);
  EXPECT_EQ(blue.size(), 5u);  // label, successes, trials, stats, warnings
  ExpectAllNumbersFinite(j);
}

TEST(StatsJson, ErrorAndWarningsAreSerialised) {
  const json e = GoalStatsToJson(AnalyzeGoal({}, Options{}), "g");
  EXPECT_EQ(e["error"], std::string(kErrorNoVariants));
  EXPECT_TRUE(e["results"].empty());

  const json w = GoalStatsToJson(AnalyzeGoal({{"a", 0, 0}, {"b", 12, 10}}, Options{}), "g");
  ExpectAllNumbersFinite(w);
  EXPECT_EQ(w["results"][1]["successes"], 10);
  bool found = false;
  for (const auto& s : w["results"][1]["warnings"]) {
    found |= s == std::string(kWarningSuccessesExceedTrials);
  }
  EXPECT_TRUE(found);
}

TEST(StatsJson, ParsesAValidRequest) {
  const json input = json::parse(R"({"baseline": "blue", "confidence": 0.9,
      "expected_split": [1, 3],
      "results": [{"label": "red", "successes": 5, "trials": 100},
                  {"label": "blue", "successes": 7.0, "trials": 300}]})");
  const Result<AnalyzeInput> parsed = ParseAnalyzeInput(input);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->options.baseline, "blue");
  EXPECT_DOUBLE_EQ(parsed->options.confidence, 0.9);
  ASSERT_EQ(parsed->variants.size(), 2u);
  EXPECT_EQ(parsed->variants[1].label, "blue");
  EXPECT_EQ(parsed->variants[1].trials, 300);
  EXPECT_EQ(parsed->options.expected_split, (std::vector<double>{1, 3}));

  const Result<AnalyzeInput> minimal = ParseAnalyzeInput(
      json::parse(R"({"results": [{"label": "a", "successes": 0, "trials": 0}]})"));
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->options.baseline, "");
  EXPECT_DOUBLE_EQ(minimal->options.confidence, 0.95);
}

TEST(StatsJson, ParseErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"([1, 2])", "request"},
      {R"({})", "results"},
      {R"({"results": []})", "results"},
      {R"({"results": {"label": "a"}})", "results"},
      {R"({"results": [5]})", "results[0]"},
      {R"({"results": [{"successes": 1, "trials": 2}]})", "results[0].label"},
      {R"({"results": [{"label": 7, "successes": 1, "trials": 2}]})", "results[0].label"},
      {R"({"results": [{"label": "a", "successes": 1, "trials": 2},
                       {"label": "a", "successes": 1, "trials": 2}]})",
       "results[1].label"},
      {R"({"results": [{"label": "a", "trials": 2}]})", "results[0].successes"},
      {R"({"results": [{"label": "a", "successes": -1, "trials": 2}]})", "results[0].successes"},
      {R"({"results": [{"label": "a", "successes": "1", "trials": 2}]})", "results[0].successes"},
      {R"({"results": [{"label": "a", "successes": 1, "trials": null}]})", "results[0].trials"},
      {R"({"results": [{"label": "a", "successes": 1, "trials": 2}], "confidence": 1})",
       "confidence"},
      {R"({"results": [{"label": "a", "successes": 1, "trials": 2}], "confidence": 0})",
       "confidence"},
      {R"({"results": [{"label": "a", "successes": 1, "trials": 2}], "confidence": "high"})",
       "confidence"},
      {R"({"results": [{"label": "a", "successes": 1, "trials": 2}], "baseline": "b"})",
       "baseline"},
      {R"({"results": [{"label": "a", "successes": 1, "trials": 2}], "baseline": 3})", "baseline"},
      {R"({"results": [{"label": "a", "successes": 1, "trials": 2}], "expected_split": [1, 2]})",
       "expected_split"},
  };
  for (const auto& [text, field] : cases) {
    const Result<AnalyzeInput> parsed = ParseAnalyzeInput(json::parse(text));
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_TRUE(parsed.status().IsInvalidArgument()) << text;
    EXPECT_EQ(parsed.status().message().rfind(std::string(field) + " ", 0), 0u)
        << text << " -> " << parsed.status().message();
  }
}

TEST(StatsJson, ParseThenAnalyzeRoundTrip) {
  const Result<AnalyzeInput> parsed = ParseAnalyzeInput(json::parse(
      R"({"results": [{"label": "red", "successes": 20, "trials": 1000},
                      {"label": "blue", "successes": 60, "trials": 2000}]})"));
  ASSERT_TRUE(parsed.ok());
  const json out = GoalStatsToJson(AnalyzeGoal(parsed->variants, parsed->options), "signup");
  EXPECT_EQ(out["goal"], "signup");
  EXPECT_NEAR(out["results"][1]["stats"]["improvement"]["value"].get<double>(), 0.01, 1e-12);
  ExpectAllNumbersFinite(out);
}

}  // namespace
}  // namespace gimel::stats
