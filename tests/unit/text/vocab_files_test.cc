// Tests vocabulary loading failures: missing files, truncated or corrupt
// gzip, malformed vocab.json, merges naming unknown symbols, duplicates, and
// missing special or byte tokens all give clear errors, never a crash.
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/text/text_cleaning.h"
#include "core/text/tokenizer.h"
#include "core/util/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"
#include "zlib.h"

namespace provp::text {
namespace {

using ::provp::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class VocabFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/provp_text_vocab_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    // Start empty: files from an earlier run would hide "missing" cases.
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  std::string Write(const std::string& name, const std::string& data) {
    const std::string path = dir_ + "/" + name;
    EXPECT_OK(util::WriteFileAtomic(path, data));
    return path;
  }
  // A minimal valid HF vocabulary: byte symbols, the same with </w>, "ab</w>"
  // and the specials, as JSON text.
  static std::string MiniVocabJson(bool with_end = true, bool with_all_bytes = true) {
    std::string json = "{";
    int id = 0;
    for (uint8_t b : ByteSymbolOrder()) {
      if (!with_all_bytes && b == 'z') continue;
      absl::StrAppend(&json, id ? "," : "", "\"", Escape(ByteSymbol(b)), "\":", id);
      ++id;
    }
    for (uint8_t b : ByteSymbolOrder()) {
      absl::StrAppend(&json, ",\"", Escape(ByteSymbol(b)), "</w>\":", id++);
    }
    absl::StrAppend(&json, ",\"ab</w>\":", id, ",\"<|startoftext|>\":", id + 1);
    if (with_end) absl::StrAppend(&json, ",\"<|endoftext|>\":", id + 2);
    return json + "}";
  }
  static std::string Escape(const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    return out;
  }
  static std::string SharedGz() {
    return provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz";
  }
  std::string dir_;
};

TEST_F(VocabFilesTest, MiniHfVocabularyLoads) {
  auto tok = Tokenizer::FromVocabAndMerges(Write("vocab.json", MiniVocabJson()),
                                           Write("merges.txt", "#version: 0.2\na b</w>\n"));
  ASSERT_OK(tok);
  EXPECT_EQ((*tok)->vocab_size(), 515);
  auto ids = (*tok)->Encode("ab ba");
  ASSERT_OK(ids);
  // "ab" merges to one token; "ba" falls back to byte symbols.
  EXPECT_EQ(ids->size(), 3u);
  EXPECT_EQ((*ids)[0], 512);
}

TEST_F(VocabFilesTest, MissingFiles) {
  EXPECT_THAT(Tokenizer::FromPath(dir_ + "/nope.txt.gz"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.txt.gz")));
  // An existing directory without vocab.json.
  EXPECT_THAT(Tokenizer::FromPath(dir_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("vocab.json")));
  const std::string vocab = Write("vocab.json", MiniVocabJson());
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(vocab, dir_ + "/merges.txt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("merges.txt")));
}

TEST_F(VocabFilesTest, TruncatedAndCorruptGzip) {
  auto data = util::ReadFile(SharedGz());
  ASSERT_OK(data);
  const std::string truncated = Write("truncated.txt.gz", data->substr(0, data->size() / 2));
  EXPECT_THAT(Tokenizer::FromBpeFile(truncated),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("truncated.txt.gz"), HasSubstr("truncated"))));
  std::string corrupt = *data;
  for (size_t i = 100; i < 400; ++i) corrupt[i] = static_cast<char>(i * 7);
  EXPECT_THAT(Tokenizer::FromBpeFile(Write("corrupt.txt.gz", corrupt)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gzip")));
  EXPECT_THAT(Tokenizer::FromBpeFile(Write("header_only.gz", data->substr(0, 10))),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(VocabFilesTest, GzipBombIsCapped) {
  // 80 MiB of 'a' compresses to ~80 kB; inflating it must stop at the cap.
  const std::string path = dir_ + "/bomb.gz";
  gzFile f = gzopen(path.c_str(), "wb1");
  ASSERT_NE(f, nullptr);
  const std::string chunk(size_t{1} << 20, 'a');
  for (int i = 0; i < 80; ++i) {
    ASSERT_EQ(gzwrite(f, chunk.data(), static_cast<unsigned>(chunk.size())),
              static_cast<int>(chunk.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
  EXPECT_THAT(Tokenizer::FromBpeFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("decompresses to more than")));
}

TEST_F(VocabFilesTest, PlainTextMergeFile) {
  // The uncompressed form of the OpenAI file is accepted too.
  auto tok = Tokenizer::FromBpeFile(Write("plain.txt", "header\na b</w>\n"));
  ASSERT_OK(tok);
  EXPECT_EQ((*tok)->vocab_size(), 512 + 1 + 2);
  EXPECT_EQ((*tok)->start_token(), 513);
  EXPECT_EQ((*tok)->end_token(), 514);
  auto ids = (*tok)->Encode("ab");
  ASSERT_OK(ids);
  EXPECT_THAT(*ids, ::testing::ElementsAre(512));
  EXPECT_THAT(Tokenizer::FromBpeFile(Write("empty.txt", "header only\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no BPE merges")));
  EXPECT_THAT(Tokenizer::FromBpeFile(Write("three.txt", "header\na b c\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 2")));
}

TEST_F(VocabFilesTest, MalformedVocabJson) {
  const std::string merges = Write("merges.txt", "#version: 0.2\n");
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(Write("v1.json", "{\"a\": 1,"), merges),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("v1.json"), HasSubstr("malformed JSON"))));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(Write("v2.json", "[1, 2]"), merges),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON object")));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(Write("v3.json", "{\"a\": \"1\"}"), merges),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-integer id")));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(Write("v4.json", "{\"a\": -3}"), merges),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(Write("v5.json", "{\"a\": 1, \"b\": 1}"), merges),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than one token")));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(Write("v6.json", "{\"a\": 99999999999}"), merges),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(VocabFilesTest, MissingSpecialOrByteTokens) {
  const std::string merges = Write("merges.txt", "#version: 0.2\n");
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(Write("v1.json", MiniVocabJson(false)), merges),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("<|endoftext|>")));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(Write("v2.json", MiniVocabJson(true, false)), merges),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte symbol")));
}

TEST_F(VocabFilesTest, MergesReferencingUnknownSymbols) {
  const std::string vocab = Write("vocab.json", MiniVocabJson());
  // "c d</w>" joins to "cd</w>", which vocab.json lacks.
  EXPECT_THAT(
      Tokenizer::FromVocabAndMerges(vocab, Write("m1.txt", "#version: 0.2\na b</w>\nc d</w>\n")),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("merge 2"), HasSubstr("unknown symbol \"cd</w>\""))));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(vocab, Write("m2.txt", "xyz b</w>\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown symbol \"xyz\"")));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(vocab, Write("m3.txt", "a b</w>\na b</w>\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
  EXPECT_THAT(Tokenizer::FromVocabAndMerges(vocab, Write("m4.txt", "#version: 0.2\nab\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("m4.txt line 2"), HasSubstr("two symbols"))));
}

}  // namespace
}  // namespace provp::text
