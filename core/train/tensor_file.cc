// WriteTensorFile / ReadTensorFile over clip's safetensors reader/writer.
#include "core/train/tensor_file.h"

#include "absl/strings/str_cat.h"
#include "core/clip/safetensors.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::train {

absl::Status WriteTensorFile(const std::string& path, const TensorFile& file, util::Env* env) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, tensor] : file.tensors) {
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", name, "' is undefined"));
    }
  }
  RETURN_IF_ERROR(util::TorchCall("WriteTensorFile", [&] {
    for (const auto& [name, tensor] : file.tensors) {
      torch::Tensor t = tensor.detach().to(torch::kCPU);
      if (t.scalar_type() != torch::kInt64) t = t.to(torch::kFloat32);
      tensors[name] = t.contiguous();
    }
  }));
  return clip::WriteSafetensors(path, tensors, file.metadata, env);
}

absl::StatusOr<TensorFile> ReadTensorFile(const std::string& path) {
  ASSIGN_OR_RETURN(clip::SafetensorsContents contents, clip::ReadSafetensors(path));
  TensorFile out;
  out.metadata = std::move(contents.metadata);
  RETURN_IF_ERROR(util::TorchCall("ReadTensorFile", [&] {
    for (auto& [name, t] : contents.tensors) {
      const auto type = t.scalar_type();
      out.tensors[name] =
          (type == torch::kFloat16 || type == torch::kBFloat16 || type == torch::kFloat64)
              ? t.to(torch::kFloat32)
              : t;
    }
  }));
  return out;
}

absl::StatusOr<nlohmann::json> ReadVersionedMetadata(const TensorFile& file, const std::string& key,
                                                     int version, const std::string& kind,
                                                     const std::string& path) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " ", path, ": ", what));
  };
  auto it = file.metadata.find(key);
  if (it == file.metadata.end()) return bad(absl::StrCat("no '", key, "' metadata"));
  nlohmann::json meta = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded() || !meta.is_object()) return bad("metadata is not a JSON object");
  if (meta.value("format_version", 0) != version) {
    return bad(absl::StrCat("unsupported format_version (expected ", version, ")"));
  }
  return meta;
}

}  // namespace provp::train
