// libFuzzer target: a dataset manifest ({name, image_root, class_names,
// items: [{path, label, split}]}), loaded without checking image files. An
// accepted manifest must pass ValidateDataset.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/data/dataset.h"
#include "core/data/loaders.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = provp::fuzz::WriteScratchFile(
      "manifest.json", std::string_view(reinterpret_cast<const char*>(data), size));
  provp::data::LoadOptions options;
  options.check_files = false;
  auto dataset = provp::data::LoadManifest(path, options);
  if (dataset.ok() && !provp::data::ValidateDataset(*dataset).ok()) std::abort();
  return 0;
}
