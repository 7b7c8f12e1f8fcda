// Zero-shot CLIP classification in the core API: text features for class
// names filled into one or more templates (averaged and renormalised when
// several), cached per (model, template, name); image features; softmax over
// the given classes; top-k. The same classifier scores prompted (ProVP)
// image features when given VisualPrompts.
// Thread-safe: the cache is guarded; forwards run under InferenceMode.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "core/clip/clip_model.h"
#include "core/data/templates.h"
#include "core/text/tokenizer.h"

namespace provp::clip {

// The default template when none is given (its home is core/data).
using data::kDefaultTemplate;

// Fills `{}` in `text_template` with `class_name` ('_' becomes a space, as
// the reference does). INVALID_ARGUMENT when the template has no "{}".
absl::StatusOr<std::string> FillTemplate(const std::string& text_template,
                                         const std::string& class_name);

// L2-normalised [C, D] float32 text features of `class_names`, each the
// renormalised mean over `templates` (empty = {kDefaultTemplate}). Uncached;
// runs under NoGradGuard on the model's device.
absl::StatusOr<torch::Tensor> ClassTextFeatures(ClipModel& model, const text::Tokenizer& tokenizer,
                                                const std::vector<std::string>& class_names,
                                                const std::vector<std::string>& templates);

struct Prediction {
  int64_t class_index = 0;
  std::string label;
  float probability = 0.0f;  // softmax over the given classes
  float logit = 0.0f;        // exp(logit_scale) * cosine
};

struct ZeroShotOptions {
  // Text features kept in the (template, name) cache; least recently used
  // entries are evicted beyond this.
  size_t cache_capacity = 100000;
  // Identifies the backbone in cache keys (e.g. LoadedCheckpoint::fingerprint).
  std::string model_id;
};

class ZeroShotClassifier {
 public:
  // Shares ownership of the (frozen) model and the tokenizer.
  ZeroShotClassifier(ClipModel model, std::shared_ptr<const text::Tokenizer> tokenizer,
                     ZeroShotOptions options = {});

  // Cached version of ClassTextFeatures: [C, D] float32, normalised.
  absl::StatusOr<torch::Tensor> TextFeatures(const std::vector<std::string>& class_names,
                                             const std::vector<std::string>& templates);

  // L2-normalised image features [B, D] float32 of preprocessed images
  // [B,3,R,R] (any device; moved to the model's), optionally prompted.
  absl::StatusOr<torch::Tensor> ImageFeatures(const torch::Tensor& images,
                                              const VisualPrompts* prompts = nullptr);

  // Top-k predictions per image (k clamped to the number of classes).
  absl::StatusOr<std::vector<std::vector<Prediction>>> Classify(
      const torch::Tensor& images, const std::vector<std::string>& class_names,
      const std::vector<std::string>& templates, int64_t top_k,
      const VisualPrompts* prompts = nullptr);

  // Scores normalised image features against normalised text features:
  // top-k of softmax(exp(logit_scale) * img . text^T).
  std::vector<std::vector<Prediction>> TopK(const torch::Tensor& image_features,
                                            const torch::Tensor& text_features,
                                            const std::vector<std::string>& class_names,
                                            int64_t top_k) const;

  struct CacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t entries = 0;
    size_t bytes = 0;
  };
  CacheStats cache_stats() const;

  ClipModel& model() { return model_; }
  const text::Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  ClipModel model_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  ZeroShotOptions options_;

  mutable std::mutex mu_;  // Guards the cache below.
  // LRU of (model_id, template, name) -> normalised [D] float32 feature on CPU.
  std::list<std::pair<std::string, torch::Tensor>> lru_;
  std::unordered_map<std::string, std::list<std::pair<std::string, torch::Tensor>>::iterator>
      index_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace provp::clip
