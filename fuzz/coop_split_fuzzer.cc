// libFuzzer target: a CoOp split_zhou_<name>.json file
// ({"train"|"val"|"test": [[path, label, classname], ...]}), loaded without
// checking image files. An accepted split must pass ValidateDataset.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/data/dataset.h"
#include "core/data/loaders.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = provp::fuzz::WriteScratchFile(
      "split_zhou_Fuzz.json", std::string_view(reinterpret_cast<const char*>(data), size));
  provp::data::LoadOptions options;
  options.check_files = false;
  auto dataset =
      provp::data::LoadSplitJson(path, provp::fuzz::ScratchDir() + "/images", "Fuzz", options);
  if (dataset.ok() && !provp::data::ValidateDataset(*dataset).ok()) std::abort();
  return 0;
}
