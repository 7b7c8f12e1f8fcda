// libFuzzer target: CLIP's text cleaning (UTF-8 decoding, NFC, HTML
// unescape, lower-casing), word splitting and BPE with the real vocabulary,
// on untrusted text (class names and prompts come from requests). Invariants:
// valid UTF-8 in gives valid UTF-8 pieces out, ids stay inside the
// vocabulary, and EncodeForContext always returns exactly 77 ids framed by
// the start and end tokens.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/text/text_cleaning.h"
#include "core/text/tokenizer.h"
#include "fuzz/fuzz_util.h"

namespace {

const provp::text::Tokenizer& ClipTokenizer() {
  static const provp::text::Tokenizer* tokenizer = [] {
    auto t = provp::text::Tokenizer::FromBpeFile(provp::fuzz::SharedDir() +
                                                 "/clip/bpe_simple_vocab_16e6.txt.gz");
    if (!t.ok()) {
      fprintf(stderr, "tokenizer_fuzzer: %s\n", std::string(t.status().message()).c_str());
      std::abort();
    }
    return t->release();
  }();
  return *tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ClipTokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto cleaned = provp::text::CleanText(text);
  if (cleaned.ok()) {
    for (const std::string& piece : provp::text::PreTokenize(*cleaned)) {
      if (!provp::text::DecodeUtf8(piece).ok()) std::abort();
    }
  }
  const provp::text::Tokenizer& tokenizer = ClipTokenizer();
  auto ids = tokenizer.EncodeForContext(text);
  if (ids.ok() != cleaned.ok()) std::abort();  // Both refuse exactly bad UTF-8 / size.
  if (!ids.ok()) return 0;
  if (ids->size() != 77 || (*ids)[0] != tokenizer.start_token()) std::abort();
  bool ended = false;
  for (int64_t id : *ids) {
    if (id < 0 || id >= tokenizer.vocab_size()) std::abort();
    if (id == tokenizer.end_token()) ended = true;
  }
  if (!ended) std::abort();
  return 0;
}
