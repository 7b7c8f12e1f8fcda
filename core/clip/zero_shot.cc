// Implementation of zero_shot.h. Text features are computed one template at
// a time for the names missing from the cache, so a repeated class list costs
// a hash lookup per name and no forward pass.
#include "core/clip/zero_shot.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::clip {
namespace {

const std::vector<std::string>& OrDefault(const std::vector<std::string>& templates) {
  static const std::vector<std::string>* const kDefault =
      new std::vector<std::string>{kDefaultTemplate};
  return templates.empty() ? *kDefault : templates;
}

absl::Status CheckClassNames(const std::vector<std::string>& class_names) {
  if (class_names.empty()) return absl::InvalidArgumentError("the class list is empty");
  for (size_t i = 0; i < class_names.size(); ++i) {
    if (class_names[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("class name ", i, " is empty"));
    }
  }
  return absl::OkStatus();
}

// Tokenises `texts` into a [N, context] int64 tensor on `device`.
absl::StatusOr<torch::Tensor> Tokenize(const text::Tokenizer& tokenizer,
                                       const std::vector<std::string>& texts,
                                       int64_t context_length, const torch::Device& device) {
  std::vector<int64_t> flat;
  flat.reserve(texts.size() * context_length);
  for (const std::string& t : texts) {
    ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizer.EncodeForContext(t, context_length));
    flat.insert(flat.end(), ids.begin(), ids.end());
  }
  return util::TorchCall("tokenize", [&] {
    return torch::tensor(flat, torch::kInt64)
        .view({static_cast<int64_t>(texts.size()), context_length})
        .to(device);
  });
}

// Normalised [N, D] float32 features of one template filled with each name.
absl::StatusOr<torch::Tensor> EncodeNames(ClipModel& model, const text::Tokenizer& tokenizer,
                                          const std::vector<std::string>& names,
                                          const std::string& text_template) {
  std::vector<std::string> texts;
  texts.reserve(names.size());
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(std::string filled, FillTemplate(text_template, name));
    texts.push_back(std::move(filled));
  }
  const torch::Device device = model->parameters().front().device();
  ASSIGN_OR_RETURN(torch::Tensor tokens,
                   Tokenize(tokenizer, texts, model->config().context_length, device));
  return util::TorchCall("encode text", [&] {
    torch::NoGradGuard no_grad;
    torch::Tensor f = model->EncodeText(tokens).to(torch::kFloat32);
    return f / f.norm(2, -1, true);
  });
}

}  // namespace

absl::StatusOr<std::string> FillTemplate(const std::string& text_template,
                                         const std::string& class_name) {
  if (text_template.find("{}") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("template \"", text_template, "\" has no {} placeholder for the class name"));
  }
  const std::string name = absl::StrReplaceAll(class_name, {{"_", " "}});
  return absl::StrReplaceAll(text_template, {{"{}", name}});
}

absl::StatusOr<torch::Tensor> ClassTextFeatures(ClipModel& model, const text::Tokenizer& tokenizer,
                                                const std::vector<std::string>& class_names,
                                                const std::vector<std::string>& templates) {
  RETURN_IF_ERROR(CheckClassNames(class_names));
  torch::Tensor sum;
  for (const std::string& t : OrDefault(templates)) {
    ASSIGN_OR_RETURN(torch::Tensor f, EncodeNames(model, tokenizer, class_names, t));
    sum = sum.defined() ? sum + f : f;
  }
  return util::TorchCall("normalise text features", [&] { return sum / sum.norm(2, -1, true); });
}

ZeroShotClassifier::ZeroShotClassifier(ClipModel model,
                                       std::shared_ptr<const text::Tokenizer> tokenizer,
                                       ZeroShotOptions options)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(std::move(options)) {}

absl::StatusOr<torch::Tensor> ZeroShotClassifier::TextFeatures(
    const std::vector<std::string>& class_names, const std::vector<std::string>& templates) {
  RETURN_IF_ERROR(CheckClassNames(class_names));
  const std::vector<std::string>& tmpls = OrDefault(templates);
  torch::Tensor sum;
  for (const std::string& t : tmpls) {
    // Look every name up; encode the missing ones in one batch.
    std::vector<torch::Tensor> rows(class_names.size());
    std::vector<std::string> missing_names;
    std::vector<size_t> missing_index;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < class_names.size(); ++i) {
        const std::string key = absl::StrCat(options_.model_id, "\x1f", t, "\x1f", class_names[i]);
        auto it = index_.find(key);
        if (it != index_.end()) {
          lru_.splice(lru_.begin(), lru_, it->second);
          rows[i] = it->second->second;
          ++hits_;
        } else {
          missing_names.push_back(class_names[i]);
          missing_index.push_back(i);
          ++misses_;
        }
      }
    }
    if (!missing_names.empty()) {
      ASSIGN_OR_RETURN(torch::Tensor f, EncodeNames(model_, *tokenizer_, missing_names, t));
      f = f.cpu();
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t j = 0; j < missing_names.size(); ++j) {
        torch::Tensor row = f[static_cast<int64_t>(j)].clone();
        rows[missing_index[j]] = row;
        const std::string key =
            absl::StrCat(options_.model_id, "\x1f", t, "\x1f", missing_names[j]);
        if (index_.count(key)) continue;  // Another thread raced us here.
        lru_.emplace_front(key, row);
        index_[key] = lru_.begin();
        while (lru_.size() > options_.cache_capacity) {
          index_.erase(lru_.back().first);
          lru_.pop_back();
        }
      }
    }
    ASSIGN_OR_RETURN(torch::Tensor stacked,
                     util::TorchCall("stack text features", [&] { return torch::stack(rows); }));
    sum = sum.defined() ? sum + stacked : stacked;
  }
  if (tmpls.size() == 1) return sum;
  return util::TorchCall("normalise text features", [&] { return sum / sum.norm(2, -1, true); });
}

absl::StatusOr<torch::Tensor> ZeroShotClassifier::ImageFeatures(const torch::Tensor& images,
                                                                const VisualPrompts* prompts) {
  return util::TorchCall("encode image", [&] {
    c10::InferenceMode guard;
    // EncodeImage moves the images to the model's device and dtype.
    torch::Tensor f = model_->EncodeImage(images, prompts).to(torch::kFloat32);
    return f / f.norm(2, -1, true);
  });
}

std::vector<std::vector<Prediction>> ZeroShotClassifier::TopK(
    const torch::Tensor& image_features, const torch::Tensor& text_features,
    const std::vector<std::string>& class_names, int64_t top_k) const {
  const int64_t k = std::max<int64_t>(1, std::min<int64_t>(top_k, text_features.size(0)));
  torch::Tensor logits =
      model_->LogitScale() *
      image_features.to(torch::kCPU, torch::kFloat32).matmul(text_features.to(torch::kCPU).t());
  torch::Tensor probs = torch::softmax(logits, -1);
  auto [top_p, top_i] = probs.topk(k, -1);
  auto pa = top_p.accessor<float, 2>();
  auto ia = top_i.accessor<int64_t, 2>();
  auto la = logits.accessor<float, 2>();
  std::vector<std::vector<Prediction>> out(static_cast<size_t>(logits.size(0)));
  for (int64_t b = 0; b < logits.size(0); ++b) {
    for (int64_t j = 0; j < k; ++j) {
      Prediction p;
      p.class_index = ia[b][j];
      p.label = class_names[static_cast<size_t>(p.class_index)];
      p.probability = pa[b][j];
      p.logit = la[b][p.class_index];
      out[b].push_back(std::move(p));
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<Prediction>>> ZeroShotClassifier::Classify(
    const torch::Tensor& images, const std::vector<std::string>& class_names,
    const std::vector<std::string>& templates, int64_t top_k, const VisualPrompts* prompts) {
  if (top_k < 1) return absl::InvalidArgumentError("top_k must be at least 1");
  ASSIGN_OR_RETURN(torch::Tensor text, TextFeatures(class_names, templates));
  ASSIGN_OR_RETURN(torch::Tensor img, ImageFeatures(images, prompts));
  return util::TorchCall("score", [&] { return TopK(img, text, class_names, top_k); });
}

ZeroShotClassifier::CacheStats ZeroShotClassifier::cache_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CacheStats s;
  s.hits = hits_;
  s.misses = misses_;
  s.entries = lru_.size();
  for (const auto& [key, t] : lru_) s.bytes += key.size() + t.numel() * t.element_size();
  return s;
}

}  // namespace provp::clip
