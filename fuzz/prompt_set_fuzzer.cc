// libFuzzer target: prompt-set files (safetensors with a "prompts" tensor
// and the "provp.prompt_set" JSON metadata), as an import or a restart reads
// them. An accepted file must hold prompts of the shape its metadata claims
// and must check cleanly (OK or a Status) against the tiny backbone.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/clip/config.h"
#include "core/train/prompt_set.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = provp::fuzz::WriteScratchFile(
      "set.provp", std::string_view(reinterpret_cast<const char*>(data), size));
  auto set = provp::train::ReadPromptSet(path);
  if (!set.ok()) return 0;
  if (set->prompts.defined()) {
    if (set->prompts.dim() != 3 || set->prompts.size(2) != set->info.vision_width) std::abort();
  }
  (void)provp::train::CheckPromptSetMatches(*set, provp::clip::TinyConfig(), "");
  return 0;
}
