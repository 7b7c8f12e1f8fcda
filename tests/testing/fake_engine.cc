// Implementation of fake_engine.h.
#include "tests/testing/fake_engine.h"

#include <chrono>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/util/error_reason.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace provp::engine {
namespace {

void Normalize(std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += double{x} * x;
  n = std::sqrt(n);
  if (n > 0) {
    for (float& x : v) x = static_cast<float>(x / n);
  }
}

}  // namespace

FakeEngine::FakeEngine(FakeEngineOptions options) : options_(options) {
  info_.backbone = options_.backbone;
  info_.description = absl::StrCat("fake colour model, dim ", options_.dim);
  info_.device = options_.device_memory ? options_.device_memory->device : "cpu";
  info_.image_resolution = 32;
  info_.embed_dim = options_.dim;
  info_.logit_scale = 100.0;
}

std::optional<DeviceMemory> FakeEngine::DeviceMemoryUsage() const {
  if (!options_.device_memory) return std::nullopt;
  DeviceMemory now = *options_.device_memory;
  std::lock_guard<std::mutex> lock(mu_);
  now.allocated_bytes += 4096 * encoded_images_;
  return now;
}

absl::Status FakeEngine::Warmup() { return absl::OkStatus(); }

std::vector<float> FakeEngine::ImageFeature(const Image& image) const {
  std::vector<float> f(options_.dim, 0.0f);
  const int64_t n = int64_t{image.height} * image.width;
  double sum[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) sum[c] += image.rgb[i * 3 + c];
  }
  for (int c = 0; c < 3; ++c) f[c] = static_cast<float>(sum[c] / std::max<int64_t>(1, n) / 255.0);
  f[3] = 0.05f;  // keeps black images from being the zero vector
  Normalize(f);
  return f;
}

std::vector<float> FakeEngine::TextFeature(const std::string& text) const {
  std::vector<float> f(options_.dim, 0.0f);
  std::string t = absl::AsciiStrToLower(text);
  bool colour = false;
  auto has = [&](const char* w) { return t.find(w) != std::string::npos; };
  if (has("red")) f[0] += 1, colour = true;
  if (has("green")) f[1] += 1, colour = true;
  if (has("blue")) f[2] += 1, colour = true;
  if (has("yellow")) f[0] += 1, f[1] += 1, colour = true;
  if (has("white")) f[0] += 1, f[1] += 1, f[2] += 1, colour = true;
  if (has("black")) f[3] += 1, colour = true;
  if (!colour) {
    uint64_t h = util::Fnv1a64(t.data(), t.size());
    for (int i = 0; i < options_.dim; ++i) {
      h = h * 6364136223846793005ULL + 1442695040888963407ULL;
      f[i] = static_cast<float>(static_cast<int64_t>(h >> 33) % 2001 - 1000) / 1000.0f;
    }
  }
  Normalize(f);
  return f;
}

absl::StatusOr<FeatureMatrix> FakeEngine::EncodeImages(const std::vector<const Image*>& images,
                                                       const std::string& prompt_set) {
  std::vector<float> bias;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++encode_calls_;
    encoded_images_ += static_cast<int64_t>(images.size());
    if (!prompt_set.empty()) {
      auto it = loaded_.find(prompt_set);
      if (it == loaded_.end()) {
        return absl::FailedPreconditionError("prompt set " + prompt_set + " is not loaded");
      }
      bias = it->second;
    }
  }
  if (options_.fail_encode) return absl::InternalError("fake engine: injected failure");
  if (options_.encode_milliseconds > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.encode_milliseconds));
  }
  FeatureMatrix m;
  m.rows = static_cast<int64_t>(images.size());
  m.dim = options_.dim;
  m.data.reserve(m.rows * m.dim);
  for (const Image* img : images) {
    if (img->rgb.size() != static_cast<size_t>(img->height) * img->width * 3) {
      return absl::InvalidArgumentError("image buffer does not match its size");
    }
    std::vector<float> f = ImageFeature(*img);
    if (!bias.empty()) {
      for (int i = 0; i < m.dim; ++i) f[i] += bias[i];
      Normalize(f);
    }
    m.data.insert(m.data.end(), f.begin(), f.end());
  }
  return m;
}

absl::StatusOr<FeatureMatrix> FakeEngine::EncodeTexts(const std::vector<std::string>& texts) {
  FeatureMatrix m;
  m.rows = static_cast<int64_t>(texts.size());
  m.dim = options_.dim;
  for (const auto& t : texts) {
    auto f = TextFeature(t);
    m.data.insert(m.data.end(), f.begin(), f.end());
  }
  return m;
}

absl::StatusOr<FeatureMatrix> FakeEngine::ClassTextFeatures(
    const std::vector<std::string>& class_names, const std::vector<std::string>& templates) {
  std::vector<std::string> tmpl =
      templates.empty() ? std::vector<std::string>{"a photo of a {}."} : templates;
  FeatureMatrix m;
  m.rows = static_cast<int64_t>(class_names.size());
  m.dim = options_.dim;
  for (const auto& name : class_names) {
    std::vector<float> acc(options_.dim, 0.0f);
    for (const auto& t : tmpl) {
      auto f = TextFeature(absl::StrReplaceAll(t, {{"{}", name}}));
      for (int i = 0; i < m.dim; ++i) acc[i] += f[i];
    }
    Normalize(acc);
    m.data.insert(m.data.end(), acc.begin(), acc.end());
  }
  return m;
}

absl::StatusOr<PromptSetMeta> FakeEngine::InspectPromptSet(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, util::ReadFile(path, 1 << 20));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("fake_prompt_set")) {
    return absl::InvalidArgumentError(path + ": not a prompt set file");
  }
  PromptSetMeta meta;
  try {
    meta.backbone = j.at("backbone").get<std::string>();
    meta.num_prompts = j.value("num_prompts", 4);
    meta.depth = j.value("depth", 2);
    meta.alpha = j.value("alpha", 0.01);
    meta.variant = j.value("variant", std::string("provp_ref"));
    meta.base_class_names = j.value("base_class_names", std::vector<std::string>{});
    meta.novel_class_names = j.value("novel_class_names", std::vector<std::string>{});
    meta.templates = j.value("templates", std::vector<std::string>{});
    auto bias = j.value("bias", std::vector<float>{});
    if (!bias.empty() && static_cast<int>(bias.size()) != options_.dim) {
      return absl::InvalidArgumentError(path + ": bias has the wrong size");
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  if (meta.backbone != info_.backbone) {
    return util::WithErrorReason(
        absl::FailedPreconditionError(
            absl::StrCat(path, " was made for backbone ", meta.backbone, ", not ", info_.backbone)),
        util::kReasonBackboneMismatch);
  }
  meta.memory_bytes = options_.dim * 4;
  return meta;
}

absl::StatusOr<PromptSetMeta> FakeEngine::LoadPromptSet(const std::string& id,
                                                        const std::string& path) {
  ASSIGN_OR_RETURN(PromptSetMeta meta, InspectPromptSet(path));
  ASSIGN_OR_RETURN(std::string text, util::ReadFile(path, 1 << 20));
  auto j = nlohmann::json::parse(text, nullptr, false);
  std::vector<float> bias = j.value("bias", std::vector<float>(options_.dim, 0.0f));
  std::lock_guard<std::mutex> lock(mu_);
  loaded_[id] = bias;
  return meta;
}

absl::Status FakeEngine::UnloadPromptSet(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (loaded_.erase(id) == 0) return absl::NotFoundError(id + " is not loaded");
  return absl::OkStatus();
}

absl::StatusOr<TuningOutcome> FakeEngine::RunTuning(const TuningSpec& spec,
                                                    const TuningCallbacks& cb) {
  const int epochs = spec.epochs > 0 ? spec.epochs : options_.default_epochs;
  const int steps = options_.steps_per_epoch;
  TuningOutcome out;
  int start_epoch = 0;
  if (auto ck = util::ReadFile(spec.checkpoint_path, 1 << 20); ck.ok()) {
    auto j = nlohmann::json::parse(*ck, nullptr, false);
    if (!j.is_discarded() && j.is_object()) start_epoch = j.value("epochs_completed", 0);
    if (start_epoch > 0 && cb.on_message) {
      cb.on_message(absl::StrCat("resumed from checkpoint after epoch ", start_epoch));
    }
  }
  out.resumed_from_epoch = start_epoch;
  // Validate the data the way a real run would: decode every train image.
  int train_images = 0;
  for (const auto& item : spec.items) {
    if (item.split != Split::kTrain) continue;
    ASSIGN_OR_RETURN(Image img, spec.load_image(item));
    (void)img;
    ++train_images;
  }
  if (train_images == 0) return absl::InvalidArgumentError("no training images");
  for (int e = start_epoch; e < epochs; ++e) {
    for (int s = 0; s < steps; ++s) {
      if (options_.before_step) options_.before_step(int64_t{e} * steps + s + 1);
      if (cb.stop && cb.stop->load()) return absl::CancelledError("training stopped");
      if (options_.step_milliseconds > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(options_.step_milliseconds));
      }
      TuningProgress p;
      p.epoch = e + 1;
      p.total_epochs = epochs;
      p.step = int64_t{e} * steps + s + 1;
      p.total_steps = int64_t{epochs} * steps;
      p.learning_rate = spec.learning_rate > 0 ? spec.learning_rate : 0.1;
      p.loss = 2.0 / (1.0 + p.step);
      p.loss_xe = p.loss * 0.7;
      p.loss_ref = p.loss * 0.3;
      p.train_accuracy = 1.0 - p.loss / 2.0;
      p.images_per_second = 1000.0 / std::max(1, options_.step_milliseconds);
      p.eta_seconds = (p.total_steps - p.step) * options_.step_milliseconds / 1000.0;
      if (s == steps - 1) {
        RETURN_IF_ERROR(util::WriteFileAtomic(spec.checkpoint_path,
                                              nlohmann::json{{"epochs_completed", e + 1}}.dump()));
        p.epoch_end = true;
      }
      if (cb.on_progress) cb.on_progress(p);
    }
  }
  // Evaluate the colour classifier on the test split (train when empty).
  bool has_test = false;
  for (const auto& it : spec.items) has_test |= it.split == Split::kTest;
  std::vector<bool> novel(spec.class_names.size(), false);
  for (int c : spec.novel_classes) novel[c] = true;
  std::vector<int> base_idx, novel_idx;
  for (size_t c = 0; c < spec.class_names.size(); ++c) {
    (novel[c] ? novel_idx : base_idx).push_back(static_cast<int>(c));
  }
  std::vector<int64_t> correct(spec.class_names.size(), 0), total(spec.class_names.size(), 0);
  for (const auto& it : spec.items) {
    if (it.split != (has_test ? Split::kTest : Split::kTrain)) continue;
    ASSIGN_OR_RETURN(Image img, spec.load_image(it));
    auto f = ImageFeature(img);
    const auto& group = novel[it.label] ? novel_idx : base_idx;
    int best = -1;
    double best_score = -1e9;
    for (int c : group) {
      auto t = TextFeature(spec.class_names[c]);
      double d = 0;
      for (int i = 0; i < options_.dim; ++i) d += f[i] * t[i];
      if (d > best_score) best_score = d, best = c;
    }
    total[it.label]++;
    if (best == it.label) correct[it.label]++;
  }
  auto acc = [&](const std::vector<int>& idx, int64_t* n) {
    int64_t c = 0, t = 0;
    for (int i : idx) c += correct[i], t += total[i];
    *n = t;
    return t > 0 ? static_cast<double>(c) / t : 0.0;
  };
  TuningEvaluation& ev = out.evaluation;
  ev.base_accuracy = acc(base_idx, &ev.num_base_images);
  ev.novel_accuracy = acc(novel_idx, &ev.num_novel_images);
  ev.harmonic_mean =
      novel_idx.empty() ? ev.base_accuracy
      : (ev.base_accuracy + ev.novel_accuracy) > 0
          ? 2 * ev.base_accuracy * ev.novel_accuracy / (ev.base_accuracy + ev.novel_accuracy)
          : 0.0;
  ev.zero_shot_base_accuracy = ev.base_accuracy;
  ev.zero_shot_novel_accuracy = ev.novel_accuracy;
  for (size_t c = 0; c < spec.class_names.size(); ++c) {
    ev.per_class.push_back({spec.class_names[c],
                            total[c] ? static_cast<double>(correct[c]) / total[c] : 0.0, total[c],
                            novel[c]});
  }
  PromptSetMeta& meta = out.prompt_set;
  meta.backbone = info_.backbone;
  meta.num_prompts = spec.num_prompts > 0 ? spec.num_prompts : 4;
  meta.depth = 2;
  meta.alpha = spec.alpha.value_or(0.01);
  meta.variant = spec.variant.empty() ? "provp_ref" : spec.variant;
  for (int c : base_idx) meta.base_class_names.push_back(spec.class_names[c]);
  for (int c : novel_idx) meta.novel_class_names.push_back(spec.class_names[c]);
  meta.templates = spec.templates;
  nlohmann::json j = {{"fake_prompt_set", 1},
                      {"backbone", meta.backbone},
                      {"num_prompts", meta.num_prompts},
                      {"depth", meta.depth},
                      {"alpha", meta.alpha},
                      {"variant", meta.variant},
                      {"base_class_names", meta.base_class_names},
                      {"novel_class_names", meta.novel_class_names},
                      {"templates", meta.templates},
                      {"bias", std::vector<float>(options_.dim, 0.0f)}};
  RETURN_IF_ERROR(util::WriteFileAtomic(spec.output_path, j.dump()));
  out.epochs_completed = epochs;
  return out;
}

int64_t FakeEngine::encode_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return encode_calls_;
}

int64_t FakeEngine::encoded_images() const {
  std::lock_guard<std::mutex> lock(mu_);
  return encoded_images_;
}

}  // namespace provp::engine
