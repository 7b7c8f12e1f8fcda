// Implementation of classifier.h.
#include "server/state/classifier.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "server/state/errors.h"
#include "server/state/request_checks.h"
#include "server/state/request_images.h"
#include "server/state/resource_names.h"
#include "server/state/scoring.h"

namespace provp::server {

// Decoded images of a request and which of them are usable. `valid` points
// into `decoded`, which is sized up front so it never reallocates.
struct Classifier::DecodedImages {
  std::vector<absl::StatusOr<engine::Image>> decoded;
  std::vector<const engine::Image*> valid;
  std::vector<int> valid_index;
};

Classifier::Classifier(engine::Engine* engine, Batcher* batcher, PreprocessPool* preprocess,
                       TextFeatureCache* text_cache, PromptSetRegistry* prompt_sets,
                       ClassSetRegistry* class_sets, ServerMetrics* metrics,
                       const util::Clock* clock, Limits limits)
    : engine_(engine),
      batcher_(batcher),
      preprocess_(preprocess),
      text_cache_(text_cache),
      prompt_sets_(prompt_sets),
      class_sets_(class_sets),
      metrics_(metrics),
      clock_(clock),
      limits_(limits) {}

void Classifier::ObserveStage(const char* stage, absl::Time start) const {
  metrics_->stage_duration->WithLabels({stage}).Observe(
      absl::ToDoubleSeconds(clock_->Now() - start));
}

// Each image is decoded and then resized to the model's crop by one
// preprocessing task; the decode and resize stages are observed per image.
template <typename Images>
void Classifier::Preprocess(const Images& images, DecodedImages* out) const {
  const int n = images.size();
  out->decoded.assign(static_cast<size_t>(n), absl::UnknownError("not decoded"));
  preprocess_->ParallelFor(n, [&](int i) {
    const absl::Time decode_start = clock_->Now();
    absl::StatusOr<engine::Image> img =
        DecodeRequestImage(images[i], limits_, absl::StrCat("images[", i, "]"));
    ObserveStage("decode", decode_start);
    if (img.ok()) {
      const absl::Time resize_start = clock_->Now();
      img = engine_->PrepareImage(*std::move(img));
      ObserveStage("resize", resize_start);
      if (img.status().code() == absl::StatusCode::kInvalidArgument) {
        img = InvalidArgument("IMAGE_PREPROCESS_FAILED",
                              absl::StrCat("images[", i, "]: ", img.status().message()),
                              absl::StrCat("images[", i, "]"));
      }
    }
    out->decoded[static_cast<size_t>(i)] = std::move(img);
  });
  for (int i = 0; i < n; ++i) {
    if (out->decoded[static_cast<size_t>(i)].ok()) {
      out->valid.push_back(&*out->decoded[static_cast<size_t>(i)]);
      out->valid_index.push_back(i);
    }
  }
}

absl::StatusOr<v1::ClassifyResponse> Classifier::Classify(const v1::ClassifyRequest& req,
                                                          absl::Time deadline,
                                                          const Cancelled& cancelled) {
  const absl::Time start = clock_->Now();
  v1::ClassifyResponse resp;
  resp.set_request_id(req.request_id());
  RETURN_IF_ERROR(CheckImageCount(req.images_size(), limits_));
  if (req.top_k() < 0) {
    return InvalidArgument("INVALID_TOP_K", "top_k must be >= 0", "top_k");
  }
  // Prompt set.
  std::shared_ptr<const v1::PromptSet> ps;
  std::string ps_id;
  if (!req.prompt_set().empty()) {
    ASSIGN_OR_RETURN(ps_id, ParseName(req.prompt_set(), kPromptSets, "prompt_set"));
    ASSIGN_OR_RETURN(ps, prompt_sets_->GetLoaded(ps_id));
  }
  // Classes and templates.
  std::vector<std::string> names;
  std::vector<std::string> templates(req.templates().begin(), req.templates().end());
  std::string names_field = "inline_classes.names";
  switch (req.classes_case()) {
    case v1::ClassifyRequest::kInlineClasses:
      names.assign(req.inline_classes().names().begin(), req.inline_classes().names().end());
      break;
    case v1::ClassifyRequest::kClassSet: {
      ASSIGN_OR_RETURN(std::string cs_id, ParseName(req.class_set(), kClassSets, "class_set"));
      ASSIGN_OR_RETURN(v1::ClassSet cs, class_sets_->Get(cs_id));
      names.assign(cs.class_names().begin(), cs.class_names().end());
      if (templates.empty()) templates.assign(cs.templates().begin(), cs.templates().end());
      names_field = "class_set";
      break;
    }
    default:
      if (!ps) {
        return InvalidArgument("NO_CLASSES", "zero-shot requests need class_set or inline_classes",
                               "inline_classes");
      }
      names.assign(ps->base_class_names().begin(), ps->base_class_names().end());
      names.insert(names.end(), ps->novel_class_names().begin(), ps->novel_class_names().end());
      names_field = "prompt_set";
  }
  RETURN_IF_ERROR(ValidateNames(names, names_field, limits_, limits_.max_classes_per_request));
  RETURN_IF_ERROR(ValidateTemplates(templates, limits_));
  if (templates.empty() && ps) templates.assign(ps->templates().begin(), ps->templates().end());
  if (templates.empty()) templates = {kDefaultClassifyTemplate};
  // A place in the inference queue before any text encoding or image
  // decoding: a request that cannot be queued is refused while that refusal
  // is still cheap.
  ASSIGN_OR_RETURN(Batcher::Reservation seat, batcher_->Reserve(req.images_size()));
  // Text features (cached).
  const engine::ModelInfo& info = engine_->info();
  bool computed = false;
  const absl::Time text_start = clock_->Now();
  ASSIGN_OR_RETURN(auto text, text_cache_->GetOrCompute(
                                  TextFeatureCache::Key(info.backbone, templates, names), [&] {
                                    computed = true;
                                    return engine_->ClassTextFeatures(names, templates);
                                  }));
  (computed ? metrics_->cache_misses : metrics_->cache_hits)->Increment();
  metrics_->cache_entries->Set(text_cache_->entries());
  metrics_->cache_bytes->Set(text_cache_->bytes());
  if (computed) ObserveStage("text_encode", text_start);
  // Decode and resize, in parallel on the preprocessing pool.
  const absl::Time decode_start = clock_->Now();
  const int n = req.images_size();
  DecodedImages images;
  Preprocess(req.images(), &images);
  const double preprocess_seconds = absl::ToDoubleSeconds(clock_->Now() - decode_start);
  // Encode through the batcher.
  BatchResult batch;
  if (!images.valid.empty()) {
    metrics_->inflight->Increment();
    absl::StatusOr<BatchResult> r =
        batcher_->Encode(std::move(seat), ps_id, images.valid, deadline, cancelled);
    metrics_->inflight->Decrement();
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kInternal) {
        return WithReason(r.status(), "INFERENCE_FAILED");
      }
      return r.status();
    }
    batch = std::move(*r);
  }
  // Score.
  const absl::Time score_start = clock_->Now();
  if (!images.valid.empty() && batch.features.dim != text->dim) {
    return absl::InternalError("image and text feature sizes differ");
  }
  const int k = req.top_k() == 0 ? 5 : req.top_k();
  resp.mutable_results()->Reserve(n);
  for (int i = 0; i < n; ++i) resp.add_results();
  for (size_t v = 0; v < images.valid.size(); ++v) {
    ImageScores scores = ScoreImage(batch.features.row(static_cast<int64_t>(v)), *text,
                                    info.logit_scale, k, req.return_all_scores());
    v1::ImageResult* result = resp.mutable_results(images.valid_index[v]);
    v1::Prediction* pred = result->mutable_prediction();
    for (const ClassScore& s : scores.top) {
      v1::Label* l = pred->add_labels();
      l->set_label(names[s.class_index]);
      l->set_class_index(s.class_index);
      l->set_score(static_cast<float>(s.probability));
      l->set_logit(static_cast<float>(s.logit));
    }
    for (double p : scores.all_probabilities) pred->add_all_scores(static_cast<float>(p));
    v1::Timing* t = result->mutable_timing();
    t->set_queue_seconds(batch.queue_seconds);
    t->set_preprocess_seconds(preprocess_seconds);
    t->set_compute_seconds(batch.compute_seconds);
    t->set_batch_size(batch.batch_size);
  }
  for (int i = 0; i < n; ++i) {
    if (!images.decoded[i].ok()) {
      *resp.mutable_results(i)->mutable_error() = ToRpcStatus(images.decoded[i].status());
    }
  }
  ObserveStage("score", score_start);
  for (const auto& name : names) resp.add_class_names(name);
  resp.set_prompt_set(req.prompt_set());
  resp.set_backbone(info.backbone);
  const std::string label = ps_id.empty() ? "zero_shot" : ps_id;
  metrics_->classify_images->WithLabels({label}).Increment(
      static_cast<double>(images.valid.size()));
  metrics_->request_duration->WithLabels({"Classify", label})
      .Observe(absl::ToDoubleSeconds(clock_->Now() - start));
  if (images.valid.size() < static_cast<size_t>(n)) {
    metrics_->rejected->WithLabels({"invalid"})
        .Increment(static_cast<double>(n - images.valid.size()));
  }
  return resp;
}

absl::StatusOr<v1::EmbedImagesResponse> Classifier::EmbedImages(const v1::EmbedImagesRequest& req,
                                                                absl::Time deadline,
                                                                const Cancelled& cancelled) {
  v1::EmbedImagesResponse resp;
  resp.set_request_id(req.request_id());
  RETURN_IF_ERROR(CheckImageCount(req.images_size(), limits_));
  std::string ps_id;
  if (!req.prompt_set().empty()) {
    ASSIGN_OR_RETURN(ps_id, ParseName(req.prompt_set(), kPromptSets, "prompt_set"));
    // Only whether it is loaded matters here; the engine applies it.
    RETURN_IF_ERROR(prompt_sets_->GetLoaded(ps_id).status());
  }
  // Queue place first, decode second (see Classify).
  ASSIGN_OR_RETURN(Batcher::Reservation seat, batcher_->Reserve(req.images_size()));
  DecodedImages images;
  Preprocess(req.images(), &images);
  for (int i = 0; i < req.images_size(); ++i) {
    auto* e = resp.add_embeddings();
    if (!images.decoded[i].ok()) *e->mutable_error() = ToRpcStatus(images.decoded[i].status());
  }
  if (!images.valid.empty()) {
    ASSIGN_OR_RETURN(BatchResult r,
                     batcher_->Encode(std::move(seat), ps_id, images.valid, deadline, cancelled));
    for (size_t v = 0; v < images.valid.size(); ++v) {
      auto* e = resp.mutable_embeddings(images.valid_index[v]);
      const float* f = r.features.row(static_cast<int64_t>(v));
      e->mutable_values()->Add(f, f + r.features.dim);
    }
  }
  resp.set_dimension(engine_->info().embed_dim);
  resp.set_backbone(engine_->info().backbone);
  return resp;
}

absl::StatusOr<v1::EmbedTextsResponse> Classifier::EmbedTexts(const v1::EmbedTextsRequest& req) {
  v1::EmbedTextsResponse resp;
  resp.set_request_id(req.request_id());
  std::vector<std::string> texts(req.texts().begin(), req.texts().end());
  if (texts.empty()) return InvalidArgument("NO_TEXTS", "texts is empty", "texts");
  if (static_cast<int>(texts.size()) > limits_.max_classes_per_request) {
    return InvalidArgument("TOO_MANY_TEXTS",
                           absl::StrCat("at most ", limits_.max_classes_per_request, " texts"),
                           "texts");
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    if (static_cast<int>(texts[i].size()) > limits_.max_name_length) {
      return InvalidArgument(
          "NAME_TOO_LONG",
          absl::StrCat("texts[", i, "] is longer than ", limits_.max_name_length, " bytes"),
          absl::StrCat("texts[", i, "]"));
    }
  }
  const absl::Time start = clock_->Now();
  ASSIGN_OR_RETURN(engine::FeatureMatrix m, engine_->EncodeTexts(texts));
  ObserveStage("text_encode", start);
  for (int64_t i = 0; i < m.rows; ++i) {
    resp.add_embeddings()->mutable_values()->Add(m.row(i), m.row(i) + m.dim);
  }
  resp.set_dimension(static_cast<int32_t>(m.dim));
  resp.set_backbone(engine_->info().backbone);
  return resp;
}

}  // namespace provp::server
