// Tests Tokenizer on the shared CLIP vocabulary: context rows (truncate vs
// refuse, bounds), seeded random-Unicode and random-byte fuzzing that must
// never crash, concurrent use of the BPE cache, and load/encode timing.
#include "core/text/tokenizer.h"

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/text/text_cleaning.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::text {
namespace {

using ::provp::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Tokenizer& Clip() {
  static const Tokenizer* tok = [] {
    auto t =
        Tokenizer::FromPath(provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz");
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      return static_cast<Tokenizer*>(nullptr);
    }
    return t->release();
  }();
  if (tok == nullptr) std::abort();
  return *tok;
}

std::string LongText(int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += "word ";
  return s;
}

TEST(TokenizerTest, KnownIds) {
  // From OpenAI CLIP: "a photo of a dog." (also in the parity fixtures, but
  // this keeps the unit suite meaningful on its own).
  auto ids = Clip().Encode("a photo of a dog.");
  ASSERT_OK(ids);
  EXPECT_THAT(*ids, ElementsAre(320, 1125, 539, 320, 1929, 269));
  auto specials = Clip().Encode("<|startoftext|>x<|endoftext|>");
  ASSERT_OK(specials);
  EXPECT_EQ(specials->front(), 49406);
  EXPECT_EQ(specials->back(), 49407);
  auto empty = Clip().Encode("   ");
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(TokenizerTest, MatchesReferenceOnCleaningEdgeCases) {
  // Ids from OpenAI's SimpleTokenizer with the real ftfy 6.3.1 in front
  // (tests/testdata/text/gen_ftfy_cases.py's reference): entity corner cases
  // (ftfy unescapes "&amp;amp;lt;" fully), U+001C (removed by ftfy), U+0345
  // (dropped by the pattern), final sigma, dotted capital I, long s after an
  // apostrophe, specials inside punctuation, and ﬁ (split by ftfy).
  const struct {
    const char* text;
    std::vector<int64_t> ids;
  } kCases[] = {
      // &amp;amp;lt;3 &notit; &copy2026 &#128;&#x1F600;
      {"&amp;amp;lt;3 &notit; &copy2026 &#128;&#x1F600;",
       {283, 274, 126, 361, 585, 282, 5811, 273, 271, 273, 277, 34919, 7334}},
      // a\x1cb\u3000c\u0345d
      {"a\x1c"
       "b\xe3\x80\x80"
       "c\xcd\x85"
       "d",
       {3937, 322, 323}},
      // \u039f\u0394\u039f\u03a3 \u03a3\u0391 \u0130STANBUL
      {"\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x91 \xc4\xb0STANBUL",
       {138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 365, 328, 16384, 11231}},
      // it'\u017f 'S <|ENDOFTEXT|>!<|endoftext|>
      {"it'\xc5\xbf 'S <|ENDOFTEXT|>!<|endoftext|>",
       {585, 6, 129, 379, 568, 49407, 0, 27, 347, 40786, 4160, 91, 285}},
      // &#0;&#1;x&#xD800;y&alpha z&alpha;
      {"&#0;&#1;x&#xD800;y&alpha z&alpha;", {39802, 343, 39802, 344, 261, 8624, 89, 138, 365}},
      // \u216b \xbd \u2460 \u0663 \ufb01 e\u0301
      {"\xe2\x85\xab \xc2\xbd \xe2\x91\xa0 \xd9\xa3 \xef\xac\x81 e\xcc\x81",
       {158, 227, 375, 33613, 158, 239, 510, 149, 352, 3589, 4166}},
  };
  for (const auto& c : kCases) {
    auto ids = Clip().Encode(c.text);
    ASSERT_OK(ids) << c.text;
    EXPECT_EQ(*ids, c.ids) << c.text;
  }
}

TEST(TokenizerTest, ContextRowPadsWithZeros) {
  auto row = Clip().EncodeForContext("a dog", 10);
  ASSERT_OK(row);
  EXPECT_THAT(*row, ElementsAre(49406, 320, 1929, 49407, 0, 0, 0, 0, 0, 0));
}

TEST(TokenizerTest, TruncateKeepsStartAndEndsWithEnd) {
  auto ids = Clip().Encode(LongText(100));
  ASSERT_OK(ids);
  ASSERT_EQ(ids->size(), 100u);
  auto row = Clip().EncodeForContext(LongText(100), 77, Tokenizer::OverLength::kTruncate);
  ASSERT_OK(row);
  ASSERT_EQ(row->size(), 77u);
  EXPECT_EQ(row->front(), 49406);
  EXPECT_EQ(row->back(), 49407);
  for (size_t i = 1; i < 76; ++i) EXPECT_EQ((*row)[i], (*ids)[i - 1]) << i;
}

TEST(TokenizerTest, RefuseRejectsOnlyOverLongText) {
  EXPECT_THAT(Clip().EncodeForContext(LongText(76), 77, Tokenizer::OverLength::kRefuse),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("78 tokens")));
  // 75 ids + start + end fill the context exactly.
  auto exact = Clip().EncodeForContext(LongText(75), 77, Tokenizer::OverLength::kRefuse);
  ASSERT_OK(exact);
  EXPECT_EQ(exact->back(), 49407);
  EXPECT_EQ((*exact)[75], 2653);  // "word</w>"
}

TEST(TokenizerTest, ContextLengthBounds) {
  EXPECT_THAT(Clip().EncodeForContext("a", 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("context_length")));
  EXPECT_THAT(Clip().EncodeForContext("a", -5), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Clip().EncodeForContext("a", int64_t{1} << 40),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto two = Clip().EncodeForContext("a long caption", 2);
  ASSERT_OK(two);
  EXPECT_THAT(*two, ElementsAre(49406, 49407));
  auto three = Clip().EncodeForContext("a dog", 3);
  ASSERT_OK(three);
  EXPECT_THAT(*three, ElementsAre(49406, 320, 49407));
  EXPECT_THAT(Clip().EncodeForContext("a dog", 2, Tokenizer::OverLength::kRefuse),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TokenizerTest, InvalidUtf8IsAnError) {
  EXPECT_THAT(Clip().Encode("caf\xe9"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  EXPECT_THAT(Clip().EncodeForContext("\xc0\xaf"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TokenizerTest, LongWordsStayFast) {
  // One 100 kB "word": CLIP's per-round merge loop is quadratic here; the
  // heap-based merge must finish quickly and give a full decomposition.
  std::string word;
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) word.push_back(static_cast<char>('a' + rng() % 26));
  const auto start = std::chrono::steady_clock::now();
  auto ids = Clip().Encode(word);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_OK(ids);
  EXPECT_GT(ids->size(), 5000u);
  EXPECT_LT(ids->size(), 100000u);
  EXPECT_LT(seconds, 20.0);
}

// Random code points from every plane, biased towards the interesting ones.
std::string RandomUnicode(std::mt19937& rng) {
  static const char32_t kSpecial[] = {U'&',  U';',  U'#',  U'\'',  U'<', U'|', U'>', 0x345, 0x130,
                                      0x3A3, 0x17F, 0x301, 0x3000, 0x85, 0x1C, 0,    U' ',  U'x'};
  std::u32string s;
  const int n = static_cast<int>(rng() % 24);
  for (int i = 0; i < n; ++i) {
    char32_t c;
    switch (rng() % 5) {
      case 0:
        c = kSpecial[rng() % (sizeof(kSpecial) / sizeof(kSpecial[0]))];
        break;
      case 1:
        c = 0x20 + rng() % 0x5F;
        break;
      case 2:
        c = 0x80 + rng() % 0x2F80;
        break;
      default:
        c = rng() % 0x110000;
        break;
    }
    if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD;
    s.push_back(c);
  }
  std::string out = EncodeUtf8(s);
  if (rng() % 4 == 0) out += "&amp;#" + std::to_string(rng() % 0x120000) + ";";
  return out;
}

void CheckRow(const std::vector<int64_t>& row, int64_t vocab_size) {
  ASSERT_EQ(row.size(), 77u);
  EXPECT_EQ(row[0], 49406);
  size_t end = 1;
  while (end < row.size() && row[end] != 49407) {
    ASSERT_GE(row[end], 0);
    ASSERT_LT(row[end], vocab_size);
    ++end;
  }
  ASSERT_LT(end, row.size()) << "no end token";
  for (size_t i = end + 1; i < row.size(); ++i) ASSERT_EQ(row[i], 0);
}

TEST(TokenizerFuzzTest, RandomUnicodeEncodes) {
  std::mt19937 rng(20240601);
  for (int i = 0; i < 3000; ++i) {
    const std::string text = RandomUnicode(rng);
    auto row = Clip().EncodeForContext(text);
    ASSERT_OK(row) << "case " << i;
    CheckRow(*row, Clip().vocab_size());
    if (HasFatalFailure()) return;
  }
}

TEST(TokenizerFuzzTest, RandomBytesNeverCrash) {
  std::mt19937 rng(99);
  int valid = 0;
  int invalid = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bytes(rng() % 40, '\0');
    for (char& b : bytes) b = static_cast<char>(rng() % 256);
    const bool utf8_ok = DecodeUtf8(bytes).ok();
    auto row = Clip().EncodeForContext(bytes, 77, Tokenizer::OverLength::kRefuse);
    if (utf8_ok) {
      ASSERT_OK(row) << "case " << i;
      CheckRow(*row, Clip().vocab_size());
      ++valid;
    } else {
      ASSERT_THAT(row, StatusIs(absl::StatusCode::kInvalidArgument)) << "case " << i;
      ++invalid;
    }
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(valid, 0);  // Short strings are sometimes valid.
  EXPECT_GT(invalid, 0);
}

TEST(TokenizerTest, ConcurrentEncodesAgree) {
  std::vector<std::string> texts;
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) texts.push_back(RandomUnicode(rng) + " a photo of a dog");
  std::vector<std::vector<int64_t>> expected;
  for (const auto& t : texts) expected.push_back(*Clip().Encode(t));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          auto ids = Clip().Encode(texts[(i + t * 17) % texts.size()]);
          if (!ids.ok() || *ids != expected[(i + t * 17) % texts.size()]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(mismatches, ElementsAre(0, 0, 0, 0));
}

TEST(TokenizerTest, LoadAndEncodeThousandCaptions) {
  const auto start = std::chrono::steady_clock::now();
  auto tok =
      Tokenizer::FromPath(provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz");
  ASSERT_OK(tok);
  const auto loaded = std::chrono::steady_clock::now();
  static const char* kWords[] = {"photo",     "dog",    "golden",   "retriever",
                                 "satellite", "flower", "aircraft", "texture",
                                 "banded",    "coupe",  "makeup",   "sunflower"};
  std::mt19937 rng(3);
  size_t total = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string caption = "a photo of a";
    for (int w = 0; w < 6; ++w)
      caption += std::string(" ") + kWords[rng() % 12] + std::to_string(i);
    auto row = (*tok)->EncodeForContext(caption);
    ASSERT_OK(row);
    total += row->size();
  }
  const auto done = std::chrono::steady_clock::now();
  EXPECT_EQ(total, 77000u);
  const double load_ms = std::chrono::duration<double, std::milli>(loaded - start).count();
  const double encode_ms = std::chrono::duration<double, std::milli>(done - loaded).count();
  RecordProperty("load_ms", std::to_string(load_ms));
  RecordProperty("encode_1000_ms", std::to_string(encode_ms));
  std::printf("vocabulary load %.1f ms, 1000 captions %.1f ms\n", load_ms, encode_ms);
}

}  // namespace
}  // namespace provp::text
