// libFuzzer target: the safetensors parser (8-byte header length, JSON
// header, tensor bytes) on untrusted bytes. Every accepted file must hold
// tensors whose byte size matches their shape and dtype, and must survive a
// serialize/parse round trip unchanged in names and shapes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "core/clip/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = provp::clip::ParseSafetensors(bytes, "fuzz input");
  if (!parsed.ok()) return 0;
  for (const auto& [name, tensor] : parsed->tensors) {
    if (!tensor.is_contiguous()) std::abort();
    if (tensor.numel() * static_cast<int64_t>(tensor.element_size()) > static_cast<int64_t>(size)) {
      std::abort();  // A tensor larger than its file: the bounds checks failed.
    }
  }
  auto again = provp::clip::SerializeSafetensors(parsed->tensors, parsed->metadata);
  if (!again.ok()) return 0;  // E.g. a name the writer refuses.
  auto reparsed = provp::clip::ParseSafetensors(*again, "round trip");
  if (!reparsed.ok() || reparsed->tensors.size() != parsed->tensors.size()) std::abort();
  for (const auto& [name, tensor] : parsed->tensors) {
    auto it = reparsed->tensors.find(name);
    if (it == reparsed->tensors.end() || it->second.sizes() != tensor.sizes()) std::abort();
  }
  return 0;
}
