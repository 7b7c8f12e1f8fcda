// libFuzzer target: a Hugging Face vocab.json + merges.txt pair. One input
// holds both files, split at the first "\n----\n" (vocab.json before it).
// An accepted pair must encode a fixed sentence to ids inside the
// vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/text/tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [vocab, merges] = provp::fuzz::SplitInput(
      std::string_view(reinterpret_cast<const char*>(data), size), "\n----\n");
  const std::string vocab_path = provp::fuzz::WriteScratchFile("vocab.json", vocab);
  const std::string merges_path = provp::fuzz::WriteScratchFile("merges.txt", merges);
  auto tokenizer = provp::text::Tokenizer::FromVocabAndMerges(vocab_path, merges_path);
  if (!tokenizer.ok()) return 0;
  auto ids = (*tokenizer)->EncodeForContext("a photo of a cat, 2 dogs!");
  if (!ids.ok()) return 0;  // A vocabulary may lack symbols this text needs.
  for (int64_t id : *ids) {
    if (id < 0 || id >= (*tokenizer)->vocab_size()) std::abort();
  }
  return 0;
}
