// Tests CLIP's text cleaning (ftfy, HTML unescape twice, whitespace, Python
// lower-casing), the hand-written word pattern and UTF-8 validation.
#include "core/text/text_cleaning.h"

#include <string>
#include <vector>

#include "core/text/html_unescape.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::text {
namespace {

using ::provp::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Clean(const std::string& text) {
  auto cleaned = CleanText(text);
  EXPECT_OK(cleaned);
  return cleaned.ok() ? EncodeUtf8(*cleaned) : "<error>";
}

std::string Unescape(const std::string& text) {
  auto decoded = DecodeUtf8(text);
  EXPECT_OK(decoded);
  return EncodeUtf8(HtmlUnescape(*decoded));
}

std::vector<std::string> Split(const std::string& text) { return PreTokenize(*CleanText(text)); }

TEST(CleanTextTest, UnescapesHtml) {
  EXPECT_EQ(Clean("tom &amp; jerry"), "tom & jerry");
  EXPECT_EQ(Clean("tom &amp;amp; jerry"), "tom & jerry");
  EXPECT_EQ(Clean("&amp;lt;3"), "<3");
  // ftfy unescapes until nothing changes, so deeper escaping goes too...
  EXPECT_EQ(Clean("&amp;amp;amp;"), "&");
  // ...unless the text holds '<': then only the two html.unescape passes
  // run and a third level survives, as in CLIP.
  EXPECT_EQ(Clean("< &amp;amp;amp;"), "< &amp;");
}

TEST(CleanTextTest, NormalisesToNfc) {
  EXPECT_EQ(Clean("cafe\xcc\x81"), "caf\xc3\xa9");  // e + combining acute -> é
  EXPECT_EQ(Clean("\xe2\x84\xab"), "\xc3\xa5");     // Angstrom sign -> å (NFC + lower)
  EXPECT_EQ(Clean("e&#769;"), "\xc3\xa9");          // NFC after ftfy decoded the entity.
}

// ftfy.fix_text runs first (the full comparison with Python's ftfy is in
// ftfy_test.cc; these are the class names the issue names).
TEST(CleanTextTest, RunsFtfyFirst) {
  EXPECT_EQ(Clean("St. John\xe2\x80\x99s wort"), "st. john's wort");  // Curly quote.
  EXPECT_EQ(Clean("\xef\xac\x81sh"), "fish");                         // ﬁ ligature.
  EXPECT_EQ(Clean("\xef\xbc\xa3\xef\xbc\xa1\xef\xbc\xb4"), "cat");    // Fullwidth ＣＡＴ.
  EXPECT_EQ(Clean("s\xc3\x83\xc2\xb3"), "s\xc3\xb3");                 // Mojibake "sÃ³".
  EXPECT_EQ(Clean("a\x1b[1mbold"), "abold");                          // Terminal escape.
}

TEST(CleanTextTest, CollapsesAndStripsWhitespace) {
  EXPECT_EQ(Clean("  lots   of\twhite\nspace  "), "lots of white space");
  EXPECT_EQ(Clean("\xe3\x80\x80"
                  "a\xc2\xa0\xe2\x80\x83 b\xe2\x80\xa8"),
            "a b");  // U+3000, NBSP, EM SPACE, LS
  // NEL (U+0085) is a C1 control to ftfy: Windows-1252 reads it as "…".
  EXPECT_EQ(Clean("a\xc2\xa0\xc2\x85 b"), "a \xe2\x80\xa6 b");
  EXPECT_EQ(Clean("a&nbsp;&nbsp;b"), "a b");  // Unescaping happens before collapsing.
  EXPECT_EQ(Clean(" \t\n "), "");
  // U+001C..U+001F are control characters that ftfy removes everywhere
  // (before, CLIP's strip would only have taken them off the ends).
  EXPECT_EQ(Clean("\x1c"
                  "a\x1f"
                  "b\x1c"),
            "ab");
}

TEST(CleanTextTest, LowerCasesLikePython) {
  EXPECT_EQ(Clean("A PHOTO OF A CAT"), "a photo of a cat");
  EXPECT_EQ(Clean("\xc3\x9c"
                  "BER"),
            "\xc3\xbc"
            "ber");  // ÜBER
  EXPECT_EQ(Clean("\xd0\xa4\xd0\x9e\xd0\xa2\xd0\x9e"), "\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe");  // ФОТО
  EXPECT_EQ(Clean("\xc4\xb0"), "i\xcc\x87");  // İ -> i + U+0307
  // Final sigma: ΟΔΟΣ -> οδος, ΣΑ -> σα, Σ alone -> σ.
  EXPECT_EQ(Clean("\xce\x9f\xce\x94\xce\x9f\xce\xa3"), "\xce\xbf\xce\xb4\xce\xbf\xcf\x82");
  EXPECT_EQ(Clean("\xce\xa3\xce\x91"), "\xcf\x83\xce\xb1");
  EXPECT_EQ(Clean("\xce\xa3"), "\xcf\x83");
}

TEST(HtmlUnescapeTest, NumericReferences) {
  EXPECT_EQ(Unescape("&#39;&#x27;&#X27;"), "'''");
  EXPECT_EQ(Unescape("&#65x"), "Ax");               // ';' is optional.
  EXPECT_EQ(Unescape("&#128;"), "\xe2\x82\xac");    // Windows-1252 euro.
  EXPECT_EQ(Unescape("&#0;"), "\xef\xbf\xbd");      // U+FFFD
  EXPECT_EQ(Unescape("&#xD800;"), "\xef\xbf\xbd");  // Surrogate.
  EXPECT_EQ(Unescape("&#99999999999999999999;"), "\xef\xbf\xbd");
  EXPECT_EQ(Unescape("a&#1;b&#xFFFF;c"), "abc");  // Forbidden code points vanish.
  EXPECT_EQ(Unescape("&#x1F600;"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(Unescape("&#;&#x;&#xZ"), "&#;&#x;&#xZ");  // Not references.
}

TEST(HtmlUnescapeTest, NamedReferences) {
  EXPECT_EQ(Unescape("&lt;&gt;&quot;&apos;&amp;"), "<>\"'&");
  EXPECT_EQ(Unescape("&hellip;&mdash;&alpha;&euro;"),
            "\xe2\x80\xa6\xe2\x80\x94\xce\xb1\xe2\x82\xac");
  EXPECT_EQ(Unescape("&copy 2026 &COPY;"), "\xc2\xa9 2026 \xc2\xa9");  // Legacy: no ';' needed.
  EXPECT_EQ(Unescape("&alpha &apos"), "&alpha &apos");                 // Non-legacy: ';' needed.
  EXPECT_EQ(Unescape("&notit;"), "\xc2\xacit;");                       // Longest legacy prefix.
  EXPECT_EQ(Unescape("&ampx"), "&x");
  EXPECT_EQ(Unescape("&unknown; & &;"), "&unknown; & &;");
  EXPECT_EQ(Unescape("no references"), "no references");
}

TEST(PreTokenizeTest, FollowsClipPattern) {
  EXPECT_THAT(Split("a photo of a dog."), ElementsAre("a", "photo", "of", "a", "dog", "."));
  EXPECT_THAT(Split("it's they're"), ElementsAre("it", "'s", "they", "'re"));
  EXPECT_THAT(Split("2012 m3"), ElementsAre("2", "0", "1", "2", "m", "3"));
  EXPECT_THAT(Split("!!!'s"), ElementsAre("!!!'", "s"));  // First alternative, not longest.
  EXPECT_THAT(Split("a<|endoftext|>b"), ElementsAre("a", "<|endoftext|>", "b"));
  EXPECT_THAT(Split("!<|endoftext|>"), ElementsAre("!<|", "endoftext", "|>"));
  EXPECT_THAT(Split("<|STARTOFTEXT|>"), ElementsAre("<|startoftext|>"));
  EXPECT_THAT(Split("\xe4\xb8\x80\xe5\x8f\xaa"), ElementsAre("\xe4\xb8\x80\xe5\x8f\xaa"));  // 一只
  EXPECT_THAT(Split("x \xf0\x9f\x98\x80\xf0\x9f\x90\xb6 y"),
              ElementsAre("x", "\xf0\x9f\x98\x80\xf0\x9f\x90\xb6", "y"));
  // 'ſ' (U+017F) folds to 's' under IGNORECASE.
  EXPECT_THAT(Split("a'\xc5\xbf"), ElementsAre("a", "'\xc5\xbf"));
  // U+0345 matches no alternative and is dropped.
  EXPECT_THAT(Split("a\xcd\x85"
                    "b"),
              ElementsAre("a", "b"));
  // ftfy removes U+001F before the pattern could see it; the pattern itself
  // keeps it as a piece of its own.
  EXPECT_THAT(Split("x\x1fy"), ElementsAre("xy"));
  EXPECT_THAT(PreTokenize(U"x\x1fy"), ElementsAre("x", "\x1f", "y"));
}

TEST(DecodeUtf8Test, RejectsInvalidSequencesWithOffset) {
  for (const std::string& bad :
       {std::string("ab\xff"), std::string("\xc0\x80"), std::string("\xed\xa0\x80"),
        std::string("\xe2\x82"), std::string("\xf4\x90\x80\x80"), std::string("\x80")}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(DecodeUtf8(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
    EXPECT_THAT(CleanText(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(DecodeUtf8("ab\xff"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offset 2")));
  auto nul = CleanText(std::string("a\0b", 3));
  ASSERT_OK(nul);
  EXPECT_EQ(*nul, U"ab");  // NUL is valid UTF-8; ftfy removes it.
}

TEST(CleanTextTest, RefusesOversizedText) {
  EXPECT_THAT(CleanText(std::string(kMaxTextBytes + 1, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
}

TEST(ByteSymbolTest, MatchesGpt2Mapping) {
  EXPECT_EQ(ByteSymbol('a'), "a");
  EXPECT_EQ(ByteSymbol(' '), "\xc4\xa0");   // U+0120 'Ġ'
  EXPECT_EQ(ByteSymbol(0), "\xc4\x80");     // U+0100
  EXPECT_EQ(ByteSymbol(0xAD), "\xc5\x83");  // Soft hyphen byte -> U+0143, the last.
  EXPECT_EQ(ByteSymbolOrder()[0], '!');
  EXPECT_EQ(ByteSymbolOrder()[255], 0xAD);
}

}  // namespace
}  // namespace provp::text
