// Checks the tokenizer against the reference CLIP SimpleTokenizer's output
// stored in each fixture directory's tokenizer_cases.json (env
// PROVP_PARITY_FIXTURES, colon-separated; default shared/fixtures/tiny), with
// the OpenAI .gz, the shared HF vocab.json + merges.txt, and the fixture's own
// hf/ vocabulary when it has one (an hf/ with weights only is skipped). A
// listed directory that is missing fails. The test names do not depend on the
// directories, which each test reads from the environment when it runs. Also
// checks the repository's ftfy rule cases (tests/testdata/text).
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "core/text/text_cleaning.h"
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
  std::string rule;  // The ftfy rule a repository case exercises; "" in fixtures.
  std::string text;
  std::string cleaned;  // CLIP's cleaned text, when the case file gives it.
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

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> FixtureDirs() {
  return provp::testing::DirsFromEnv("PROVP_PARITY_FIXTURES",
                                     provp::testing::SharedDir() + "/fixtures/tiny");
}

// Reads a case file; adds a failure and returns false if it is missing or
// malformed.
bool LoadCaseFile(const std::string& path, CaseFile* out) {
  auto data = util::ReadFile(path);
  if (!data.ok()) {
    ADD_FAILURE() << data.status();
    return false;
  }
  nlohmann::json json = nlohmann::json::parse(*data, nullptr, false);
  if (json.is_discarded() || !json.contains("cases") || !json["cases"].is_array()) {
    ADD_FAILURE() << path << " is malformed";
    return false;
  }
  out->sot = json.at("sot").get<int64_t>();
  out->eot = json.at("eot").get<int64_t>();
  for (const auto& c : json["cases"]) {
    out->cases.push_back({c.value("rule", ""), c.at("text").get<std::string>(),
                          c.value("cleaned", ""), c.at("ids").get<std::vector<int64_t>>(),
                          c.at("tokens77").get<std::vector<int64_t>>(),
                          c.at("too_long").get<bool>()});
  }
  if (out->cases.empty()) {
    ADD_FAILURE() << path << " has no cases";
    return false;
  }
  return true;
}

// Reads <dir>/tokenizer_cases.json; a missing directory fails.
bool LoadCases(const std::string& dir, CaseFile* out) {
  if (!IsDir(dir)) {
    ADD_FAILURE() << "fixture directory " << dir << " does not exist";
    return false;
  }
  return LoadCaseFile(dir + "/tokenizer_cases.json", out);
}

// The repository's cases, one group per ftfy rule, computed by the Python
// reference (ftfy.fix_text + OpenAI's CLIP tokenizer) with
// tests/testdata/text/gen_ftfy_cases.py.
std::string FtfyCasePath() {
  return std::string(PROVP_TEXT_TESTDATA_DIR) + "/ftfy_tokenizer_cases.json";
}

void CheckCases(const Tokenizer& tok, const CaseFile& file) {
  EXPECT_EQ(tok.start_token(), file.sot);
  EXPECT_EQ(tok.end_token(), file.eot);
  int too_long_seen = 0;
  for (const Case& c : file.cases) {
    SCOPED_TRACE((c.rule.empty() ? "" : "rule " + c.rule + ", ") + "text: \"" +
                 c.text.substr(0, 60) + "\"");
    if (!c.cleaned.empty()) {
      auto cleaned = CleanText(c.text);
      ASSERT_OK(cleaned);
      EXPECT_EQ(EncodeUtf8(*cleaned), c.cleaned);
    }
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

// Class names such as "St. John’s wort", "ﬁsh", "ＣＡＴ" and "&amp;amp;" get
// the ids OpenAI's tokenizer gives, with both vocabulary layouts.
TEST(TokenizerParityTest, FtfyRuleCases) {
  CaseFile file;
  ASSERT_TRUE(LoadCaseFile(FtfyCasePath(), &file));
  std::set<std::string> rules;
  for (const Case& c : file.cases) rules.insert(c.rule);
  // One group per ftfy step that can act on valid UTF-8 text, plus the
  // class names of the issue and a truncated row.
  for (const char* rule :
       {"uncurl_quotes", "fix_latin_ligatures", "fix_character_width", "unescape_html",
        "html5_entities", "remove_terminal_escapes", "remove_control_chars", "fix_line_breaks",
        "fix_c1_controls", "normalization_nfc", "fix_encoding", "restore_byte_a0",
        "replace_lossy_sequences", "decode_inconsistent_utf8", "class_names", "too_long"}) {
    EXPECT_EQ(rules.count(rule), 1u) << "no cases for " << rule;
  }
  for (const std::string& vocab :
       {provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz",
        provp::testing::SharedDir() + "/clip"}) {
    SCOPED_TRACE("vocabulary: " + vocab);
    auto tok = Tokenizer::FromPath(vocab);
    ASSERT_OK(tok);
    CheckCases(**tok, file);
  }
}

TEST(TokenizerParityTest, FixtureOwnHfVocabulary) {
  int checked = 0;
  for (const std::string& dir : FixtureDirs()) {
    SCOPED_TRACE("fixtures: " + dir);
    CaseFile file;
    if (!LoadCases(dir, &file)) continue;
    // hf/ may hold only weights (config.json + model.safetensors): a valid
    // layout that simply brings no vocabulary of its own. Half a vocabulary
    // (one of the two files) is broken and fails below.
    const bool has_vocab = Exists(dir + "/hf/vocab.json");
    const bool has_merges = Exists(dir + "/hf/merges.txt");
    if (!has_vocab && !has_merges) continue;
    auto tok = Tokenizer::FromVocabAndMerges(dir + "/hf/vocab.json", dir + "/hf/merges.txt");
    ASSERT_OK(tok);
    CheckCases(**tok, file);
    ++checked;
  }
  if (checked == 0)
    GTEST_SKIP() << "no fixture directory carries an hf/ vocabulary (vocab.json + merges.txt)";
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
