// Tests the BPE vocabulary builder: layout of the written HF files, that
// Tokenizer::FromPath loads them, one token per corpus word with enough
// merges, byte fallback for unseen words, deterministic tie-breaking and
// input errors.
#include "core/text/bpe_trainer.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/text/text_cleaning.h"
#include "core/text/tokenizer.h"
#include "core/util/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::text {
namespace {

using ::provp::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

const std::vector<std::string>& Captions() {
  static const auto* corpus = new std::vector<std::string>{
      "a photo of a dog.",
      "a photo of a cat on the grass",
      "A Photo Of Two Dogs & a cat!",
      "the satellite photo shows annual crop land",
      "a texture of banded stone, it's striped",
      "café crème brûlée on a plate",
      "一只猫的照片",
      "an aircraft, a photo of a 737-800.",
  };
  return *corpus;
}

std::string TempDir(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/provp_bpe_trainer_", name);
}

TEST(BpeTrainerTest, BaseSymbolsFirstSpecialsLast) {
  auto vocab = BuildBpeVocabulary(Captions(), 50);
  ASSERT_OK(vocab);
  EXPECT_EQ(vocab->merges.size(), 50u);
  ASSERT_EQ(vocab->tokens.size(), 512u + 50u + 2u);  // Every merge is new here.
  for (int i = 0; i < 256; ++i) {
    EXPECT_EQ(vocab->tokens[i], ByteSymbol(ByteSymbolOrder()[i]));
    EXPECT_EQ(vocab->tokens[256 + i], ByteSymbol(ByteSymbolOrder()[i]) + "</w>");
  }
  EXPECT_EQ(vocab->tokens[vocab->tokens.size() - 2], "<|startoftext|>");
  EXPECT_EQ(vocab->tokens.back(), "<|endoftext|>");
  // Single-letter words have no pairs; "h o" (five "photo", one "shows")
  // outnumbers "p h" (5) and "o f</w>" (4).
  EXPECT_THAT(vocab->merges[0], Pair("h", "o"));
}

TEST(BpeTrainerTest, WrittenVocabularyLoadsAndEncodesCorpusWordsAsOneToken) {
  auto vocab = BuildBpeVocabulary(Captions(), 100000);
  ASSERT_OK(vocab);
  EXPECT_LT(vocab->merges.size(), 100000u);  // Stopped when every word was whole.
  const std::string dir = TempDir("full");
  ASSERT_OK(vocab->WriteHfVocabulary(dir));
  auto merges_text = util::ReadFile(dir + "/merges.txt");
  ASSERT_OK(merges_text);
  EXPECT_EQ(merges_text->rfind("#version: 0.2\n", 0), 0u);

  auto tok = Tokenizer::FromPath(dir);
  ASSERT_OK(tok);
  const auto n = static_cast<int64_t>(vocab->tokens.size());
  EXPECT_EQ((*tok)->vocab_size(), n);
  EXPECT_EQ((*tok)->start_token(), n - 2);
  EXPECT_EQ((*tok)->end_token(), n - 1);
  for (const std::string& caption : Captions()) {
    auto cleaned = CleanText(caption);
    ASSERT_OK(cleaned);
    for (const std::string& word : PreTokenize(*cleaned)) {
      auto ids = (*tok)->Encode(word);
      ASSERT_OK(ids);
      EXPECT_EQ(ids->size(), 1u) << word;
      EXPECT_EQ(vocab->tokens[(*ids)[0]], [&] {
        std::string symbols;
        for (char c : word) symbols += ByteSymbol(static_cast<uint8_t>(c));
        return symbols + "</w>";
      }()) << word;
    }
  }
  // Unseen words fall back to smaller pieces, down to single bytes.
  auto unseen = (*tok)->Encode("zebra \xf0\x9f\xa6\x93 qq");
  ASSERT_OK(unseen);
  // "zebra" is not in the corpus; the emoji's 4 bytes never co-occur.
  EXPECT_GE(unseen->size(), 2u + 4u + 1u);
  for (int64_t id : *unseen) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, n - 2);
  }
  // Six words, each one token, plus start and end fill a context of 8.
  auto row = (*tok)->EncodeForContext("a photo of a dog.", 8, Tokenizer::OverLength::kRefuse);
  ASSERT_OK(row);
  EXPECT_EQ(row->front(), n - 2);
  EXPECT_EQ(vocab->tokens[(*row)[6]], ".</w>");
  EXPECT_EQ((*row)[7], n - 1);
}

TEST(BpeTrainerTest, TiesBreakLexicographicallyAndRunsAreDeterministic) {
  // Each pair occurs once; the smallest (left, right) strings win.
  auto vocab = BuildBpeVocabulary({"cd", "ab", "ba"}, 3);
  ASSERT_OK(vocab);
  EXPECT_THAT(vocab->merges,
              ElementsAre(Pair("a", "b</w>"), Pair("b", "a</w>"), Pair("c", "d</w>")));
  auto again = BuildBpeVocabulary(Captions(), 80);
  auto first = BuildBpeVocabulary(Captions(), 80);
  ASSERT_OK(again);
  ASSERT_OK(first);
  EXPECT_EQ(again->merges, first->merges);
  EXPECT_EQ(again->tokens, first->tokens);
}

TEST(BpeTrainerTest, CountsWordFrequency) {
  // "low" x3 outweighs "abc"; (l,o) and (o,w</w>) tie at 3, "l" < "o".
  auto vocab = BuildBpeVocabulary({"low low low abc"}, 2);
  ASSERT_OK(vocab);
  EXPECT_THAT(vocab->merges, ElementsAre(Pair("l", "o"), Pair("lo", "w</w>")));
}

TEST(BpeTrainerTest, NoMergesGivesByteVocabulary) {
  auto vocab = BuildBpeVocabulary(Captions(), 0);
  ASSERT_OK(vocab);
  EXPECT_TRUE(vocab->merges.empty());
  EXPECT_EQ(vocab->tokens.size(), 514u);
  const std::string dir = TempDir("bytes");
  ASSERT_OK(vocab->WriteHfVocabulary(dir));
  auto tok = Tokenizer::FromPath(dir);
  ASSERT_OK(tok);
  auto ids = (*tok)->Encode("dog");
  ASSERT_OK(ids);
  EXPECT_EQ(ids->size(), 3u);
}

TEST(BpeTrainerTest, SpecialTokensAreNotTrained) {
  auto vocab = BuildBpeVocabulary({"<|endoftext|> <|endoftext|> <|startoftext|> ab"}, 100);
  ASSERT_OK(vocab);
  EXPECT_THAT(vocab->merges, ElementsAre(Pair("a", "b</w>")));
}

TEST(BpeTrainerTest, BadInput) {
  EXPECT_THAT(BuildBpeVocabulary({"ok", "bad \xff"}, 10),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("corpus[1]")));
  EXPECT_THAT(BuildBpeVocabulary({"ok"}, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_merges")));
  EXPECT_THAT(BuildBpeVocabulary({"ok"}, 2'000'000),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_merges")));
  BpeVocabulary dup;
  dup.tokens = {"a", "a"};
  EXPECT_THAT(dup.WriteHfVocabulary(TempDir("dup")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
}

}  // namespace
}  // namespace provp::text
