// Zero-shot accuracy: text features once, then image features in chunks of
// 256 under NoGradGuard.
#include "core/builtin/evaluate.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/builtin/pretrain.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::builtin {

absl::StatusOr<double> ZeroShotAccuracy(clip::ClipModel& model, const text::Tokenizer& tokenizer,
                                        const std::vector<std::string>& class_names,
                                        const std::vector<LabeledRaster>& items,
                                        const std::string& text_template) {
  if (class_names.empty() || items.empty()) {
    return absl::InvalidArgumentError("ZeroShotAccuracy: no classes or no items");
  }
  const clip::ClipConfig& c = model->config();
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].label < 0 || items[i].label >= static_cast<int>(class_names.size())) {
      return absl::InvalidArgumentError(absl::StrCat("ZeroShotAccuracy: item ", i, " has label ",
                                                     items[i].label, " outside [0, ",
                                                     class_names.size(), ")"));
    }
    if (items[i].image.height != c.image_resolution || items[i].image.width != c.image_resolution) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ZeroShotAccuracy: item ", i, " is ", items[i].image.width, "x", items[i].image.height,
          ", the model takes ", c.image_resolution, "x", c.image_resolution));
    }
  }
  std::vector<int64_t> ids;
  for (const std::string& name : class_names) {
    std::string prompt = text_template;
    const size_t at = prompt.find("{}");
    const std::string spaced = absl::StrReplaceAll(name, {{"_", " "}});
    if (at == std::string::npos) {
      prompt += " " + spaced;
    } else {
      prompt.replace(at, 2, spaced);
    }
    ASSIGN_OR_RETURN(std::vector<int64_t> one,
                     tokenizer.EncodeForContext(prompt, c.context_length));
    ids.insert(ids.end(), one.begin(), one.end());
  }
  return util::TorchCall("ZeroShotAccuracy", [&]() {
    torch::NoGradGuard no_grad;
    const int64_t n_classes = static_cast<int64_t>(class_names.size());
    torch::Tensor tokens =
        torch::from_blob(ids.data(), {n_classes, c.context_length}, torch::kLong).clone();
    torch::Tensor text = model->EncodeText(tokens).to(torch::kFloat32);
    text = text / text.norm(2, -1, true);
    int64_t correct = 0;
    for (size_t begin = 0; begin < items.size(); begin += 256) {
      const size_t end = std::min(items.size(), begin + 256);
      std::vector<Raster> chunk;
      std::vector<int64_t> labels;
      for (size_t i = begin; i < end; ++i) {
        chunk.push_back(items[i].image);
        labels.push_back(items[i].label);
      }
      torch::Tensor img = model->EncodeImage(RastersToTensor(chunk)).to(torch::kFloat32);
      img = img / img.norm(2, -1, true);
      torch::Tensor pred = torch::matmul(img, text.t()).argmax(1);
      torch::Tensor truth = torch::tensor(labels, torch::kLong);
      correct += pred.eq(truth).sum().item<int64_t>();
    }
    return static_cast<double>(correct) / static_cast<double>(items.size());
  });
}

}  // namespace provp::builtin
