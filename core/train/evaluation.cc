// Batched accuracy evaluation and the harmonic-mean helper.
#include "core/train/evaluation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::train {
namespace {

// Counts hits per class across batches.
class Tally {
 public:
  explicit Tally(int64_t num_classes)
      : correct_(num_classes, 0), count_(num_classes, 0), k_(std::min<int64_t>(5, num_classes)) {}

  int64_t k() const { return k_; }

  // logits [b,C] (any device), labels the b matching entries.
  void Add(const torch::Tensor& logits, const int64_t* labels) {
    torch::Tensor top =
        std::get<1>(logits.topk(k_, /*dim=*/1)).to(torch::kCPU, torch::kInt64).contiguous();
    const int64_t b = top.size(0);
    const int64_t* idx = top.data_ptr<int64_t>();
    for (int64_t i = 0; i < b; ++i) {
      const int64_t y = labels[i];
      ++count_[y];
      if (idx[i * k_] == y) {
        ++correct_[y];
        ++top1_;
      }
      for (int64_t j = 0; j < k_; ++j) {
        if (idx[i * k_ + j] == y) {
          ++top5_;
          break;
        }
      }
      ++n_;
    }
  }

  EvalResult Result() const {
    EvalResult r;
    r.num_images = n_;
    if (n_ > 0) {
      r.top1 = static_cast<double>(top1_) / n_;
      r.top5 = static_cast<double>(top5_) / n_;
    }
    double sum = 0.0;
    int64_t present = 0;
    for (size_t c = 0; c < count_.size(); ++c) {
      const double acc = count_[c] ? static_cast<double>(correct_[c]) / count_[c] : 0.0;
      r.per_class_accuracy.push_back(acc);
      r.per_class_count.push_back(count_[c]);
      if (count_[c]) {
        sum += acc;
        ++present;
      }
    }
    r.mean_per_class_accuracy = present ? sum / present : 0.0;
    return r;
  }

 private:
  std::vector<int64_t> correct_;
  std::vector<int64_t> count_;
  int64_t k_;
  int64_t top1_ = 0;
  int64_t top5_ = 0;
  int64_t n_ = 0;
};

absl::Status CheckInputs(const clip::ClipModel& model, size_t num_images,
                         const std::vector<int64_t>& labels, const torch::Tensor& text_features,
                         int64_t batch_size) {
  if (!model) return absl::InvalidArgumentError("evaluate: no model");
  if (labels.size() != num_images) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluate: ", num_images, " images but ", labels.size(), " labels"));
  }
  if (!text_features.defined() || text_features.dim() != 2 || text_features.size(0) < 1 ||
      text_features.size(1) != model->config().embed_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluate: text features must be [C,", model->config().embed_dim, "]"));
  }
  const int64_t c = text_features.size(0);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= c) {
      return absl::InvalidArgumentError(
          absl::StrCat("evaluate: label ", labels[i], " of image ", i, " is outside [0, ", c, ")"));
    }
  }
  if (batch_size < 1) return absl::InvalidArgumentError("evaluate: batch_size must be >= 1");
  return absl::OkStatus();
}

struct ModelPlacement {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
};

ModelPlacement PlacementOf(clip::ClipModel& model) {
  ModelPlacement p;
  auto params = model->parameters();
  if (!params.empty()) {
    p.device = params.front().device();
    p.dtype = params.front().scalar_type();
  }
  return p;
}

// Normalised logits-free scores: cosine of image and text features (the
// logit scale does not change rankings).
torch::Tensor Scores(clip::ClipModel& model, const clip::VisualPrompts* prompts,
                     const torch::Tensor& batch, const torch::Tensor& text_normed,
                     const ModelPlacement& place) {
  torch::Tensor f =
      model->EncodeImage(batch.to(place.device, place.dtype), prompts).to(torch::kFloat32);
  f = f / f.norm(2, {-1}, true);
  return torch::matmul(f, text_normed.t());
}

torch::Tensor NormalizedText(const torch::Tensor& text, const ModelPlacement& place) {
  torch::Tensor t = text.to(place.device, torch::kFloat32);
  return t / t.norm(2, {-1}, true);
}

}  // namespace

absl::StatusOr<EvalResult> Evaluate(clip::ClipModel& model, const clip::VisualPrompts* prompts,
                                    const EvalSet& set, const torch::Tensor& text_features,
                                    int64_t batch_size) {
  if (!set.images.defined() || set.images.dim() != 4 || set.images.size(1) != 3) {
    return absl::InvalidArgumentError("evaluate: images must be float [N,3,R,R]");
  }
  RETURN_IF_ERROR(CheckInputs(model, static_cast<size_t>(set.images.size(0)), set.labels,
                              text_features, batch_size));
  return util::TorchCall("Evaluate", [&] {
    torch::NoGradGuard no_grad;
    const ModelPlacement place = PlacementOf(model);
    const torch::Tensor text = NormalizedText(text_features, place);
    Tally tally(text.size(0));
    const int64_t n = set.images.size(0);
    for (int64_t start = 0; start < n; start += batch_size) {
      const int64_t end = std::min(n, start + batch_size);
      tally.Add(Scores(model, prompts, set.images.slice(0, start, end), text, place),
                set.labels.data() + start);
    }
    return tally.Result();
  });
}

absl::StatusOr<EvalResult> EvaluateImages(clip::ClipModel& model,
                                          const clip::VisualPrompts* prompts,
                                          const std::vector<torch::Tensor>& rgb_hwc_uint8,
                                          const std::vector<int64_t>& labels,
                                          const torch::Tensor& text_features, int64_t size,
                                          int64_t batch_size, const image::Normalization& norm) {
  RETURN_IF_ERROR(CheckInputs(model, rgb_hwc_uint8.size(), labels, text_features, batch_size));
  torch::NoGradGuard no_grad;
  ModelPlacement place;
  torch::Tensor text;
  RETURN_IF_ERROR(util::TorchCall("EvaluateImages", [&] {
    place = PlacementOf(model);
    text = NormalizedText(text_features, place);
  }));
  Tally tally(text.size(0));
  const int64_t n = static_cast<int64_t>(rgb_hwc_uint8.size());
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    std::vector<torch::Tensor> batch;
    for (int64_t i = start; i < end; ++i) {
      auto pre = image::PreprocessForEval(rgb_hwc_uint8[i], size, norm);
      if (!pre.ok()) {
        return absl::Status(pre.status().code(),
                            absl::StrCat("evaluate: image ", i, ": ", pre.status().message()));
      }
      batch.push_back(*std::move(pre));
    }
    RETURN_IF_ERROR(util::TorchCall("EvaluateImages", [&] {
      tally.Add(Scores(model, prompts, torch::stack(batch), text, place), labels.data() + start);
    }));
  }
  return tally.Result();
}

absl::StatusOr<EvalSet> MakeEvalSet(const std::vector<torch::Tensor>& rgb_hwc_uint8,
                                    const std::vector<int64_t>& labels, int64_t size,
                                    const image::Normalization& norm) {
  if (rgb_hwc_uint8.size() != labels.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval set: ", rgb_hwc_uint8.size(), " images but ", labels.size(), " labels"));
  }
  if (rgb_hwc_uint8.empty()) return absl::InvalidArgumentError("eval set: no images");
  std::vector<torch::Tensor> pre;
  pre.reserve(rgb_hwc_uint8.size());
  for (size_t i = 0; i < rgb_hwc_uint8.size(); ++i) {
    auto p = image::PreprocessForEval(rgb_hwc_uint8[i], size, norm);
    if (!p.ok()) {
      return absl::Status(p.status().code(),
                          absl::StrCat("eval set: image ", i, ": ", p.status().message()));
    }
    pre.push_back(*std::move(p));
  }
  EvalSet set;
  set.labels = labels;
  RETURN_IF_ERROR(util::TorchCall("MakeEvalSet", [&] { set.images = torch::stack(pre); }));
  return set;
}

nlohmann::json EvalResultToJson(const EvalResult& r) {
  return nlohmann::json{{"num_images", r.num_images},
                        {"top1", r.top1},
                        {"top5", r.top5},
                        {"mean_per_class_accuracy", r.mean_per_class_accuracy},
                        {"per_class_accuracy", r.per_class_accuracy},
                        {"per_class_count", r.per_class_count}};
}

}  // namespace provp::train
