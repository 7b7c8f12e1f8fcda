// WriteTensorFile / ReadTensorFile over clip's safetensors reader/writer.
#include "core/train/tensor_file.h"

#include "absl/strings/str_cat.h"
#include "core/clip/safetensors.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::train {

absl::Status WriteTensorFile(const std::string& path, const TensorFile& file) {
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
  return clip::WriteSafetensors(path, tensors, file.metadata);
}

absl::StatusOr<TensorFile> ReadTensorFile(const std::string& path) {
  ASSIGN_OR_RETURN(clip::SafetensorsContents contents, clip::ReadSafetensors(path));
  TensorFile out;
  out.metadata = std::move(contents.metadata);
  RETURN_IF_ERROR(util::TorchCall("ReadTensorFile", [&] {
    for (auto& [name, t] : contents.tensors) {
      const auto type = t.scalar_type();
      out.tensors[name] =
          (type == torch::kFloat16 || type == torch::kBFloat16 || type == torch::kFloat64) ? t.to(torch::kFloat32) : t;
    }
  }));
  return out;
}

}  // namespace provp::train
