// Implementation of classification_service.h.
#include "server/classification_service.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/image/image_io.h"
#include "core/util/status_macros.h"
#include "provp/v1/class_set.pb.h"
#include "server/prompt_sets.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.ClassificationService";
constexpr char kDefaultTemplate[] = "a photo of a {}.";

absl::Status CheckImageCount(int n, const Limits& limits) {
  if (n == 0) return InvalidArgument("NO_IMAGES", "images is empty", "images");
  if (n > limits.max_images_per_request) {
    return InvalidArgument(
        "TOO_MANY_IMAGES",
        absl::StrCat("request has ", n, " images; the limit is ", limits.max_images_per_request),
        "images");
  }
  return absl::OkStatus();
}

void ObserveStage(ServerEnv* env, const char* stage, absl::Time start) {
  if (env->metrics) {
    env->metrics->stage_duration->WithLabels({stage}).Observe(
        absl::ToDoubleSeconds(absl::Now() - start));
  }
}

}  // namespace

absl::StatusOr<engine::Image> DecodeRequestImage(const v1::Image& image, const Limits& limits,
                                                 const std::string& field) {
  switch (image.source_case()) {
    case v1::Image::kEncoded: {
      image::DecodeOptions opts;
      opts.max_pixels = limits.max_pixels_per_image;
      auto rgb = image::DecodeImage(image.encoded(), opts);
      if (!rgb.ok()) {
        bool too_large = rgb.status().message().find("pixel") != absl::string_view::npos &&
                         rgb.status().message().find("limit") != absl::string_view::npos;
        return InvalidArgument(too_large ? "IMAGE_TOO_LARGE" : "IMAGE_DECODE_FAILED",
                               absl::StrCat(field, ": ", rgb.status().message()),
                               field + ".encoded");
      }
      engine::Image out;
      out.height = rgb->height;
      out.width = rgb->width;
      out.rgb = std::move(rgb->pixels);
      return out;
    }
    case v1::Image::kRaw: {
      const v1::RawImage& raw = image.raw();
      const std::string f = field + ".raw";
      if (raw.height() <= 0 || raw.width() <= 0 ||
          (raw.channels() != 1 && raw.channels() != 3 && raw.channels() != 4)) {
        return InvalidArgument("INVALID_RAW_IMAGE",
                               absl::StrCat(f,
                                            ": height and width must be >= 1 and channels "
                                            "1, 3 or 4"),
                               f);
      }
      int64_t pixels = int64_t{raw.height()} * raw.width();
      if (pixels > limits.max_pixels_per_image) {
        return InvalidArgument(
            "IMAGE_TOO_LARGE",
            absl::StrCat(f, ": ", pixels, " pixels; the limit is ", limits.max_pixels_per_image),
            f);
      }
      if (static_cast<int64_t>(raw.data().size()) != pixels * raw.channels()) {
        return InvalidArgument(
            "INVALID_RAW_IMAGE",
            absl::StrCat(f, ".data has ", raw.data().size(),
                         " bytes; height*width*channels = ", pixels * raw.channels()),
            f + ".data");
      }
      engine::Image out;
      out.height = raw.height();
      out.width = raw.width();
      out.rgb.resize(static_cast<size_t>(pixels) * 3);
      const auto* src = reinterpret_cast<const uint8_t*>(raw.data().data());
      const int c = raw.channels();
      const bool bgr = raw.channel_order() == v1::RawImage::BGR;
      for (int64_t i = 0; i < pixels; ++i) {
        const uint8_t* p = src + i * c;
        uint8_t* q = out.rgb.data() + i * 3;
        if (c == 1) {
          q[0] = q[1] = q[2] = p[0];
        } else if (bgr) {
          q[0] = p[2], q[1] = p[1], q[2] = p[0];
        } else {
          q[0] = p[0], q[1] = p[1], q[2] = p[2];
        }
      }
      return out;
    }
    case v1::Image::kUri:
      return MakeError(absl::StatusCode::kUnimplemented, "URI_INPUT_DISABLED",
                       absl::StrCat(field, ".uri: URI inputs are disabled on this server"));
    default:
      return InvalidArgument("EMPTY_IMAGE", absl::StrCat(field, " has no image data"), field);
  }
}

grpc::Status ClassificationServiceImpl::Classify(grpc::ServerContext* ctx,
                                                 const v1::ClassifyRequest* request,
                                                 v1::ClassifyResponse* response) {
  Rpc rpc(*env_, ctx, kService, "Classify", "unary", Scope::kClassify);
  return Handle(rpc, [&] {
    absl::Status s = DoClassify(ctx, rpc.deadline(), *request, response);
    if (env_->metrics && s.code() == absl::StatusCode::kInvalidArgument) {
      env_->metrics->rejected
          ->WithLabels({ReasonOf(s) == "TOO_MANY_IMAGES" ? "too_large" : "invalid"})
          .Increment();
    }
    return s;
  });
}

grpc::Status ClassificationServiceImpl::StreamClassify(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::ClassifyResponse, v1::ClassifyRequest>* stream) {
  Rpc rpc(*env_, ctx, kService, "StreamClassify", "bidi_stream", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    v1::ClassifyRequest request;
    while (stream->Read(&request)) {
      v1::ClassifyResponse response;
      // Streams have no per-message deadline; bound each request by the
      // stream's deadline.
      absl::Status s = DoClassify(ctx, rpc.deadline(), request, &response);
      if (!s.ok()) {
        response.Clear();
        response.set_request_id(request.request_id());
        *response.mutable_error() = ToRpcStatus(s);
      }
      if (!stream->Write(response)) break;
      if (env_->draining.load()) break;
    }
    return absl::OkStatus();
  });
}

absl::Status ClassificationServiceImpl::DoClassify(grpc::ServerContext* ctx, absl::Time deadline,
                                                   const v1::ClassifyRequest& req,
                                                   v1::ClassifyResponse* resp) {
  const absl::Time start = absl::Now();
  const Limits& limits = env_->options.limits;
  resp->set_request_id(req.request_id());
  RETURN_IF_ERROR(CheckImageCount(req.images_size(), limits));
  if (req.top_k() < 0) {
    return InvalidArgument("INVALID_TOP_K", "top_k must be >= 0", "top_k");
  }
  // Prompt set.
  std::shared_ptr<const v1::PromptSet> ps;
  std::string ps_id;
  if (!req.prompt_set().empty()) {
    ASSIGN_OR_RETURN(ps_id, ParseName(req.prompt_set(), "promptSets", "prompt_set"));
    ASSIGN_OR_RETURN(ps, env_->prompt_sets->GetLoaded(ps_id));
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
      ASSIGN_OR_RETURN(std::string cs_id, ParseName(req.class_set(), "classSets", "class_set"));
      auto rec = env_->store->Get(store::Kind::kClassSet, cs_id);
      if (!rec.ok()) {
        if (rec.status().code() == absl::StatusCode::kNotFound) {
          return NotFound("provp.v1.ClassSet", req.class_set());
        }
        return rec.status();
      }
      v1::ClassSet cs;
      if (!cs.ParseFromString(rec->data)) return absl::DataLossError("corrupt class set record");
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
  RETURN_IF_ERROR(ValidateNames(names, names_field, limits, limits.max_classes_per_request));
  RETURN_IF_ERROR(ValidateTemplates(templates, limits));
  if (templates.empty() && ps) templates.assign(ps->templates().begin(), ps->templates().end());
  if (templates.empty()) templates = {kDefaultTemplate};
  // Text features (cached).
  const engine::ModelInfo& info = env_->engine->info();
  bool computed = false;
  absl::Time text_start = absl::Now();
  ASSIGN_OR_RETURN(auto text, env_->text_cache->GetOrCompute(
                                  TextFeatureCache::Key(info.backbone, templates, names), [&] {
                                    computed = true;
                                    return env_->engine->ClassTextFeatures(names, templates);
                                  }));
  if (env_->metrics) {
    (computed ? env_->metrics->cache_misses : env_->metrics->cache_hits)->Increment();
    env_->metrics->cache_entries->Set(env_->text_cache->entries());
    env_->metrics->cache_bytes->Set(env_->text_cache->bytes());
    if (computed) ObserveStage(env_, "text_encode", text_start);
  }
  // Decode.
  absl::Time decode_start = absl::Now();
  const int n = req.images_size();
  std::vector<absl::StatusOr<engine::Image>> decoded;
  decoded.reserve(n);
  std::vector<const engine::Image*> valid;
  std::vector<int> valid_index;
  for (int i = 0; i < n; ++i) {
    decoded.push_back(DecodeRequestImage(req.images(i), limits, absl::StrCat("images[", i, "]")));
    if (decoded.back().ok()) {
      valid.push_back(&*decoded.back());
      valid_index.push_back(i);
    }
  }
  double preprocess_seconds = absl::ToDoubleSeconds(absl::Now() - decode_start);
  ObserveStage(env_, "decode", decode_start);
  // Encode through the batcher.
  BatchResult batch;
  if (!valid.empty()) {
    if (env_->metrics) env_->metrics->inflight->Increment();
    absl::StatusOr<BatchResult> r =
        env_->batcher->Encode(ps_id, valid, deadline, [ctx] { return ctx->IsCancelled(); });
    if (env_->metrics) env_->metrics->inflight->Decrement();
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kInternal) {
        return WithReason(r.status(), "INFERENCE_FAILED");
      }
      return r.status();
    }
    batch = std::move(*r);
  }
  // Score.
  absl::Time score_start = absl::Now();
  const int64_t c = text->rows;
  const int64_t d = text->dim;
  if (!valid.empty() && batch.features.dim != d) {
    return absl::InternalError("image and text feature sizes differ");
  }
  const int k = static_cast<int>(std::min<int64_t>(req.top_k() == 0 ? 5 : req.top_k(), c));
  const double scale = info.logit_scale;
  resp->mutable_results()->Reserve(n);
  for (int i = 0; i < n; ++i) resp->add_results();
  std::vector<double> logits(c), probs(c);
  std::vector<int> order(c);
  for (size_t v = 0; v < valid.size(); ++v) {
    const float* f = batch.features.row(static_cast<int64_t>(v));
    double max_logit = -1e300;
    for (int64_t j = 0; j < c; ++j) {
      const float* t = text->row(j);
      double dot = 0;
      for (int64_t q = 0; q < d; ++q) dot += static_cast<double>(f[q]) * t[q];
      logits[j] = scale * dot;
      max_logit = std::max(max_logit, logits[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += (probs[j] = std::exp(logits[j] - max_logit));
    for (int64_t j = 0; j < c; ++j) probs[j] /= sum;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
      return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
    });
    v1::ImageResult* result = resp->mutable_results(valid_index[v]);
    v1::Prediction* pred = result->mutable_prediction();
    for (int j = 0; j < k; ++j) {
      v1::Label* l = pred->add_labels();
      l->set_label(names[order[j]]);
      l->set_class_index(order[j]);
      l->set_score(static_cast<float>(probs[order[j]]));
      l->set_logit(static_cast<float>(logits[order[j]]));
    }
    if (req.return_all_scores()) {
      for (int64_t j = 0; j < c; ++j) pred->add_all_scores(static_cast<float>(probs[j]));
    }
    v1::Timing* t = result->mutable_timing();
    t->set_queue_seconds(batch.queue_seconds);
    t->set_preprocess_seconds(preprocess_seconds);
    t->set_compute_seconds(batch.compute_seconds);
    t->set_batch_size(batch.batch_size);
  }
  for (int i = 0; i < n; ++i) {
    if (!decoded[i].ok())
      *resp->mutable_results(i)->mutable_error() = ToRpcStatus(decoded[i].status());
  }
  ObserveStage(env_, "score", score_start);
  for (const auto& name : names) resp->add_class_names(name);
  resp->set_prompt_set(req.prompt_set());
  resp->set_backbone(info.backbone);
  if (env_->metrics) {
    const std::string label = ps_id.empty() ? "zero_shot" : ps_id;
    env_->metrics->classify_images->WithLabels({label}).Increment(
        static_cast<double>(valid.size()));
    env_->metrics->request_duration->WithLabels({"Classify", label})
        .Observe(absl::ToDoubleSeconds(absl::Now() - start));
    if (valid.size() < static_cast<size_t>(n)) {
      env_->metrics->rejected->WithLabels({"invalid"})
          .Increment(static_cast<double>(n - valid.size()));
    }
  }
  return absl::OkStatus();
}

grpc::Status ClassificationServiceImpl::EmbedImages(grpc::ServerContext* ctx,
                                                    const v1::EmbedImagesRequest* req,
                                                    v1::EmbedImagesResponse* resp) {
  Rpc rpc(*env_, ctx, kService, "EmbedImages", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    const Limits& limits = env_->options.limits;
    resp->set_request_id(req->request_id());
    RETURN_IF_ERROR(CheckImageCount(req->images_size(), limits));
    std::string ps_id;
    if (!req->prompt_set().empty()) {
      ASSIGN_OR_RETURN(ps_id, ParseName(req->prompt_set(), "promptSets", "prompt_set"));
      ASSIGN_OR_RETURN(auto ps, env_->prompt_sets->GetLoaded(ps_id));
      (void)ps;
    }
    // Reserved up front: `valid` points into `decoded`.
    std::vector<absl::StatusOr<engine::Image>> decoded;
    decoded.reserve(req->images_size());
    std::vector<const engine::Image*> valid;
    std::vector<int> index;
    for (int i = 0; i < req->images_size(); ++i) {
      decoded.push_back(
          DecodeRequestImage(req->images(i), limits, absl::StrCat("images[", i, "]")));
      if (decoded.back().ok()) {
        valid.push_back(&*decoded.back());
        index.push_back(i);
      }
    }
    for (int i = 0; i < req->images_size(); ++i) {
      auto* e = resp->add_embeddings();
      if (!decoded[i].ok()) *e->mutable_error() = ToRpcStatus(decoded[i].status());
    }
    if (!valid.empty()) {
      ASSIGN_OR_RETURN(BatchResult r, env_->batcher->Encode(ps_id, valid, rpc.deadline(),
                                                            [ctx] { return ctx->IsCancelled(); }));
      for (size_t v = 0; v < valid.size(); ++v) {
        auto* e = resp->mutable_embeddings(index[v]);
        const float* f = r.features.row(static_cast<int64_t>(v));
        e->mutable_values()->Add(f, f + r.features.dim);
      }
    }
    resp->set_dimension(env_->engine->info().embed_dim);
    resp->set_backbone(env_->engine->info().backbone);
    return absl::OkStatus();
  });
}

grpc::Status ClassificationServiceImpl::EmbedTexts(grpc::ServerContext* ctx,
                                                   const v1::EmbedTextsRequest* req,
                                                   v1::EmbedTextsResponse* resp) {
  Rpc rpc(*env_, ctx, kService, "EmbedTexts", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    const Limits& limits = env_->options.limits;
    resp->set_request_id(req->request_id());
    std::vector<std::string> texts(req->texts().begin(), req->texts().end());
    if (texts.empty()) return InvalidArgument("NO_TEXTS", "texts is empty", "texts");
    if (static_cast<int>(texts.size()) > limits.max_classes_per_request) {
      return InvalidArgument("TOO_MANY_TEXTS",
                             absl::StrCat("at most ", limits.max_classes_per_request, " texts"),
                             "texts");
    }
    for (size_t i = 0; i < texts.size(); ++i) {
      if (static_cast<int>(texts[i].size()) > limits.max_name_length) {
        return InvalidArgument(
            "NAME_TOO_LONG",
            absl::StrCat("texts[", i, "] is longer than ", limits.max_name_length, " bytes"),
            absl::StrCat("texts[", i, "]"));
      }
    }
    absl::Time start = absl::Now();
    ASSIGN_OR_RETURN(engine::FeatureMatrix m, env_->engine->EncodeTexts(texts));
    ObserveStage(env_, "text_encode", start);
    for (int64_t i = 0; i < m.rows; ++i) {
      resp->add_embeddings()->mutable_values()->Add(m.row(i), m.row(i) + m.dim);
    }
    resp->set_dimension(static_cast<int32_t>(m.dim));
    resp->set_backbone(env_->engine->info().backbone);
    return absl::OkStatus();
  });
}

grpc::Status ClassificationServiceImpl::GetServerInfo(grpc::ServerContext* ctx,
                                                      const v1::GetServerInfoRequest*,
                                                      v1::ServerInfo* resp) {
  Rpc rpc(*env_, ctx, kService, "GetServerInfo", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    const engine::ModelInfo& info = env_->engine->info();
    const Limits& limits = env_->options.limits;
    resp->set_version(PROVP_VERSION);
    resp->set_backbone(info.backbone);
    resp->set_backbone_description(info.description);
    resp->set_device(info.device);
    resp->set_image_resolution(info.image_resolution);
    resp->set_embedding_dimension(info.embed_dim);
    resp->set_max_images_per_request(limits.max_images_per_request);
    resp->set_max_pixels_per_image(limits.max_pixels_per_image);
    resp->set_max_classes_per_request(limits.max_classes_per_request);
    resp->set_max_message_bytes(limits.max_message_bytes);
    resp->add_default_templates(kDefaultTemplate);
    return absl::OkStatus();
  });
}

}  // namespace provp::server
