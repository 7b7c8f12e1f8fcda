// Tests the C++ ftfy.fix_text and the HTML5 html.unescape against Python's
// own output, stored in tests/testdata/text/ftfy_fix_cases.json by
// gen_ftfy_cases.py (rule cases, seeded random mojibake, every html5 key),
// plus the steps that valid UTF-8 cannot reach through fix_text.
#include "core/text/ftfy.h"

#include <map>
#include <string>

#include "core/text/html_unescape.h"
#include "core/text/text_cleaning.h"
#include "core/util/file_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"

namespace provp::text::ftfy {
namespace {

std::u32string U32(const std::string& utf8) {
  auto decoded = DecodeUtf8(utf8);
  EXPECT_OK(decoded);
  return decoded.ok() ? *decoded : std::u32string();
}

nlohmann::json LoadFixCases() {
  auto data = util::ReadFile(std::string(PROVP_TEXT_TESTDATA_DIR) + "/ftfy_fix_cases.json");
  EXPECT_OK(data);
  if (!data.ok()) return nlohmann::json::object();
  return nlohmann::json::parse(*data, nullptr, false);
}

TEST(FtfyTest, FixTextMatchesPythonFtfy) {
  const nlohmann::json cases = LoadFixCases();
  ASSERT_TRUE(cases.contains("fix_text"));
  std::map<std::string, int> per_rule;
  int failures = 0;
  for (const auto& c : cases["fix_text"]) {
    const std::string text = c.at("text").get<std::string>();
    const std::string want = c.at("fixed").get<std::string>();
    const std::string got = EncodeUtf8(FixText(U32(text)));
    ++per_rule[c.at("rule").get<std::string>()];
    if (got != want && ++failures <= 20) {
      ADD_FAILURE() << "rule " << c.at("rule") << "\n  text: " << nlohmann::json(text).dump()
                    << "\n  ftfy: " << nlohmann::json(want).dump()
                    << "\n  ours: " << nlohmann::json(got).dump();
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GE(per_rule["random_mojibake"], 500);
  EXPECT_GE(per_rule.size(), 15u);
}

TEST(FtfyTest, HtmlUnescapeMatchesPythonOnEveryHtml5Key) {
  EXPECT_EQ(Html5EntityKeyCount(), 2231u);
  const nlohmann::json cases = LoadFixCases();
  ASSERT_TRUE(cases.contains("html_unescape"));
  EXPECT_EQ(cases.at("html5_keys").get<size_t>(), Html5EntityKeyCount());
  int checked = 0;
  int failures = 0;
  for (const auto& c : cases["html_unescape"]) {
    const std::string text = c.at("text").get<std::string>();
    const std::string want = c.at("unescaped").get<std::string>();
    const std::string got = EncodeUtf8(HtmlUnescape(U32(text)));
    ++checked;
    if (got != want && ++failures <= 20) {
      ADD_FAILURE() << nlohmann::json(text).dump() << ": python " << nlohmann::json(want).dump()
                    << ", ours " << nlohmann::json(got).dump();
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(checked, 3 * 2231);
}

TEST(FtfyTest, LookupHtml5Entity) {
  EXPECT_EQ(LookupHtml5Entity("amp;").value(), U"&");
  EXPECT_EQ(LookupHtml5Entity("amp").value(), U"&");     // Legacy bare form.
  EXPECT_FALSE(LookupHtml5Entity("alpha").has_value());  // Only "alpha;".
  EXPECT_EQ(LookupHtml5Entity("NotEqualTilde;").value(), U"\u2242\u0338");
  EXPECT_EQ(LookupHtml5Entity("Afr;").value(), U"\U0001D504");
  EXPECT_FALSE(LookupHtml5Entity("nosuch;").has_value());
}

// Surrogates cannot come out of valid UTF-8 (nor out of html.unescape, which
// maps them to U+FFFD), so fix_text never meets one; the step still works.
TEST(FtfyTest, FixSurrogatesPairsAndReplaces) {
  const std::u32string pair = {0xD83D, 0xDE00};
  EXPECT_EQ(FixSurrogates(pair), U"\U0001F600");
  const std::u32string reversed = {0xDE00, 0xD83D};
  EXPECT_EQ(FixSurrogates(reversed), U"\uFFFD\uFFFD");
  EXPECT_EQ(FixSurrogates(U"plain"), U"plain");
}

TEST(FtfyTest, ByteTranscoders) {
  // "Ã la" keeps its space and gets the 0xA0 back; in "Ã s " (Portuguese
  // "às") the space itself becomes the 0xA0.
  EXPECT_EQ(RestoreByteA0("\xC3 la"), "\xC3\xA0 la");
  EXPECT_EQ(RestoreByteA0("\xC3 s vezes"), "\xC3\xA0s vezes");
  EXPECT_EQ(RestoreByteA0("\xE2\x80 x"), "\xE2\x80\xA0x");
  EXPECT_EQ(ReplaceLossySequences("\xE2\x80\x1A ok"), "\xEF\xBF\xBD ok");
  EXPECT_EQ(ReplaceLossySequences("\xC3?"), "\xEF\xBF\xBD");
  EXPECT_EQ(ReplaceLossySequences("\x1A"), "\xEF\xBF\xBD");
}

TEST(FtfyTest, SegmentsAndStickyHtmlSwitch) {
  // Once a line holds '<', entities stay as written there and in later lines.
  EXPECT_EQ(FixText(U"&amp;amp;\n<\n&amp;"), U"&\n<\n&amp;");
  EXPECT_EQ(FixSegment(U"&amp;amp;", /*unescape_html=*/false), U"&amp;amp;");
  EXPECT_EQ(FixText(U""), U"");
}

TEST(FtfyTest, BadnessHeuristic) {
  EXPECT_TRUE(IsBad(U"s\u00C3\u00B3"));
  EXPECT_FALSE(IsBad(U"na\u00EFve caf\u00E9"));
  EXPECT_TRUE(IsBad(U"\u0080"));  // Any C1 control.
  EXPECT_FALSE(IsBad(U"plain ascii"));
}

}  // namespace
}  // namespace provp::text::ftfy
