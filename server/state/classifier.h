// The data plane of the server core: Classify and the embedding calls.
// Decodes and resizes images on the preprocessing pool (per-item errors;
// the batch worker gets ready crops), resolves the classes (the prompt
// set's own, a stored class set or inline names) and their cached text
// features, encodes images through the dynamic batcher and scores on the
// CPU (scoring.h). Collaborators come in through the
// constructor and must outlive it. Thread-safe; one instance serves all
// calls.
#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/engine/engine.h"
#include "core/util/clock.h"
#include "provp/v1/classification.pb.h"
#include "server/state/batcher.h"
#include "server/state/class_set_registry.h"
#include "server/state/limits.h"
#include "server/state/preprocess_pool.h"
#include "server/state/prompt_set_registry.h"
#include "server/state/server_metrics.h"
#include "server/state/text_feature_cache.h"

namespace provp::server {

// The template used when neither the request, the class set nor the prompt
// set names one.
inline constexpr char kDefaultClassifyTemplate[] = "a photo of a {}.";

class Classifier {
 public:
  // Polled while a request waits in the batcher; true drops it (CANCELLED).
  using Cancelled = std::function<bool()>;

  Classifier(engine::Engine* engine, Batcher* batcher, PreprocessPool* preprocess,
             TextFeatureCache* text_cache, PromptSetRegistry* prompt_sets,
             ClassSetRegistry* class_sets, ServerMetrics* metrics, const util::Clock* clock,
             Limits limits);

  // Images that fail to decode get a per-item error; the call fails only
  // for request-level problems.
  absl::StatusOr<v1::ClassifyResponse> Classify(const v1::ClassifyRequest& request,
                                                absl::Time deadline, const Cancelled& cancelled);
  absl::StatusOr<v1::EmbedImagesResponse> EmbedImages(const v1::EmbedImagesRequest& request,
                                                      absl::Time deadline,
                                                      const Cancelled& cancelled);
  absl::StatusOr<v1::EmbedTextsResponse> EmbedTexts(const v1::EmbedTextsRequest& request);

  const engine::ModelInfo& model_info() const { return engine_->info(); }
  const Limits& limits() const { return limits_; }

 private:
  struct DecodedImages;
  void ObserveStage(const char* stage, absl::Time start) const;
  template <typename Images>
  void Preprocess(const Images& images, DecodedImages* out) const;

  engine::Engine* const engine_;
  Batcher* const batcher_;
  PreprocessPool* const preprocess_;
  TextFeatureCache* const text_cache_;
  PromptSetRegistry* const prompt_sets_;
  ClassSetRegistry* const class_sets_;
  ServerMetrics* const metrics_;
  const util::Clock* const clock_;
  const Limits limits_;
};

}  // namespace provp::server
