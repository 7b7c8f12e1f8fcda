// Checks the tokenizer against the reference CLIP SimpleTokenizer's output
// stored in each fixture directory's tokenizer_cases.json (env
// PROVP_PARITY_FIXTURES, colon-separated; default shared/fixtures/tiny), with
// the OpenAI .gz, the shared HF vocab.json + merges.txt, and the fixture's own
// hf/ vocabulary when it has one. A listed directory that is missing fails.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "core/text/tokenizer.h"
#include "core/util/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::text {
namespace {

using ::testing::ElementsAreArray;

struct Case {
  std::string text;
  std::vector<int64_t> ids;
  std::vector<int64_t> tokens77;  // Without the zero padding.
  bool too_long = false;
};

struct CaseFile {
  int64_t sot = 0;
  int64_t eot = 0;
  std::vector<Case> cases;
};

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> FixtureDirs() {
  return provp::testing::DirsFromEnv("PROVP_PARITY_FIXTURES",
                                     provp::testing::SharedDir() + "/fixtures/tiny");
}

// Reads <dir>/tokenizer_cases.json; adds a failure and returns false if the
// directory or file is missing or malformed.
bool LoadCases(const std::string& dir, CaseFile* out) {
  if (!IsDir(dir)) {
    ADD_FAILURE() << "fixture directory " << dir << " does not exist";
    return false;
  }
  auto data = util::ReadFile(dir + "/tokenizer_cases.json");
  if (!data.ok()) {
    ADD_FAILURE() << data.status();
    return false;
  }
  nlohmann::json json = nlohmann::json::parse(*data, nullptr, false);
  if (json.is_discarded() || !json.contains("cases") || !json["cases"].is_array()) {
    ADD_FAILURE() << dir << "/tokenizer_cases.json is malformed";
    return false;
  }
  out->sot = json.at("sot").get<int64_t>();
  out->eot = json.at("eot").get<int64_t>();
  for (const auto& c : json["cases"]) {
    out->cases.push_back({c.at("text").get<std::string>(), c.at("ids").get<std::vector<int64_t>>(),
                          c.at("tokens77").get<std::vector<int64_t>>(),
                          c.at("too_long").get<bool>()});
  }
  if (out->cases.empty()) {
    ADD_FAILURE() << dir << "/tokenizer_cases.json has no cases";
    return false;
  }
  return true;
}

void CheckCases(const Tokenizer& tok, const CaseFile& file) {
  EXPECT_EQ(tok.start_token(), file.sot);
  EXPECT_EQ(tok.end_token(), file.eot);
  int too_long_seen = 0;
  for (const Case& c : file.cases) {
    SCOPED_TRACE("text: \"" + c.text.substr(0, 60) + "\"");
    auto ids = tok.Encode(c.text);
    ASSERT_OK(ids);
    EXPECT_THAT(*ids, ElementsAreArray(c.ids));

    auto row = tok.EncodeForContext(c.text, 77, Tokenizer::OverLength::kTruncate);
    ASSERT_OK(row);
    std::vector<int64_t> expected = c.tokens77;
    expected.resize(77, 0);
    EXPECT_THAT(*row, ElementsAreArray(expected));

    auto refused = tok.EncodeForContext(c.text, 77, Tokenizer::OverLength::kRefuse);
    if (c.too_long) {
      ++too_long_seen;
      EXPECT_THAT(refused, provp::testing::StatusIs(absl::StatusCode::kInvalidArgument));
    } else {
      ASSERT_OK(refused);
      EXPECT_EQ(*refused, *row);
    }
  }
  // The reference file must exercise truncation, or the kTruncate path
  // above would go unchecked.
  EXPECT_GT(too_long_seen, 0);
}

void CheckWithVocab(const std::string& vocab_path) {
  auto tok = Tokenizer::FromPath(vocab_path);
  ASSERT_OK(tok);
  for (const std::string& dir : FixtureDirs()) {
    SCOPED_TRACE("fixtures: " + dir + ", vocabulary: " + vocab_path);
    CaseFile file;
    if (!LoadCases(dir, &file)) continue;
    CheckCases(**tok, file);
  }
}

TEST(TokenizerParityTest, OpenAiGzipVocabulary) {
  CheckWithVocab(provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz");
}

TEST(TokenizerParityTest, HuggingFaceVocabulary) {
  CheckWithVocab(provp::testing::SharedDir() + "/clip");
}

TEST(TokenizerParityTest, FixtureOwnHfVocabulary) {
  int checked = 0;
  for (const std::string& dir : FixtureDirs()) {
    SCOPED_TRACE("fixtures: " + dir);
    CaseFile file;
    if (!LoadCases(dir, &file)) continue;
    if (!IsDir(dir + "/hf")) continue;
    auto tok = Tokenizer::FromVocabAndMerges(dir + "/hf/vocab.json", dir + "/hf/merges.txt");
    ASSERT_OK(tok);
    CheckCases(**tok, file);
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no fixture directory carries an hf/ vocabulary";
}

TEST(TokenizerParityTest, LayoutsGiveIdenticalVocabularies) {
  auto gz = Tokenizer::FromPath(provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz");
  auto hf = Tokenizer::FromPath(provp::testing::SharedDir() + "/clip");
  ASSERT_OK(gz);
  ASSERT_OK(hf);
  EXPECT_EQ((*gz)->vocab_size(), 49408);
  EXPECT_EQ((*hf)->vocab_size(), 49408);
  EXPECT_EQ((*gz)->start_token(), 49406);
  EXPECT_EQ((*gz)->end_token(), 49407);
  EXPECT_EQ((*hf)->start_token(), 49406);
  EXPECT_EQ((*hf)->end_token(), 49407);
  // Words that need many merges, rare scripts and byte fallbacks.
  for (const std::string text :
       {"photosynthesis under the microscope", "Ωμέγα ψ", "日本語のテキスト", "🦜🦜 parrots",
        "x\xcc\x81y", "ab'sll'VE 42"}) {
    SCOPED_TRACE(text);
    auto a = (*gz)->Encode(text);
    auto b = (*hf)->Encode(text);
    ASSERT_OK(a);
    ASSERT_OK(b);
    EXPECT_FALSE(a->empty());
    EXPECT_EQ(*a, *b);
  }
}

}  // namespace
}  // namespace provp::text
