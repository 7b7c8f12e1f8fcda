// libFuzzer target: OpenAI's BPE vocabulary file (bpe_simple_vocab_16e6.txt
// or its .gz), gzip framing, header line and merge lines. An accepted file
// must give a tokenizer that encodes a fixed sentence without error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/text/tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = provp::fuzz::WriteScratchFile(
      "bpe_vocab.txt.gz", std::string_view(reinterpret_cast<const char*>(data), size));
  auto tokenizer = provp::text::Tokenizer::FromBpeFile(path);
  if (!tokenizer.ok()) return 0;
  auto ids = (*tokenizer)->EncodeForContext("a photo of a cat, 2 dogs!");
  if (!ids.ok() || ids->size() != 77) std::abort();
  for (int64_t id : *ids) {
    if (id < 0 || id >= (*tokenizer)->vocab_size()) std::abort();
  }
  return 0;
}
