// libFuzzer target: LoadCheckpoint on one untrusted file, the path a user's
// --model takes. The same target is built twice with different seed corpora:
// torch.save zip archives (pickle + tensor records) and TorchScript archives
// (code, constants, pickled module); LoadCheckpoint picks the reader from
// the bytes, as it does in the product. Any outcome but a crash is fine.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/clip/checkpoint_loader.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = provp::fuzz::WriteScratchFile(
      "model.pt", std::string_view(reinterpret_cast<const char*>(data), size));
  auto loaded = provp::clip::LoadCheckpoint(path);
  (void)loaded;
  return 0;
}
