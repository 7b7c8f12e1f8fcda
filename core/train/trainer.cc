// Trainer: the epoch/step loop, SGD state save/restore and selection.
#include "core/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/image/preprocess.h"
#include "core/train/checkpoint.h"
#include "core/train/lr_schedule.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::train {
namespace {

using Clock = std::chrono::steady_clock;

// Offsets the sampler stream from the prompt-init stream, which uses the
// same user seed.
constexpr uint64_t kSamplerSeedSalt = 0x9E3779B97F4A7C15ULL;

// Unbiased index in [0, n) from the 64-bit engine (rejection sampling), so
// the sampler order is fixed by the seed on every standard library.
int64_t UniformIndex(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return static_cast<int64_t>(x % n);
}

// RandomSampler: a fresh permutation each epoch (Fisher-Yates).
std::vector<int64_t> Permutation(int64_t n, std::mt19937_64& rng) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[i], p[UniformIndex(rng, static_cast<uint64_t>(i + 1))]);
  return p;
}

// torch::optim keys its per-parameter state by the TensorImpl address: a
// string in LibTorch 1.x, the pointer itself in later releases. Deriving
// the key type from the map keeps one code path for both.
template <typename Map>
typename Map::key_type StateKey(const torch::Tensor& param) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << static_cast<const void*>(param.unsafeGetTensorImpl());
    return os.str();
  } else {
    return reinterpret_cast<Key>(param.unsafeGetTensorImpl());
  }
}

torch::Tensor GetMomentum(torch::optim::SGD& opt, const torch::Tensor& param) {
  auto& state = opt.state();
  using Map = std::decay_t<decltype(state)>;
  auto it = state.find(StateKey<Map>(param));
  if (it == state.end()) return {};
  auto& sgd_state = static_cast<torch::optim::SGDParamState&>(*it->second);
  return sgd_state.momentum_buffer();
}

void SetMomentum(torch::optim::SGD& opt, const torch::Tensor& param, const torch::Tensor& buffer) {
  auto& state = opt.state();
  using Map = std::decay_t<decltype(state)>;
  auto s = std::make_unique<torch::optim::SGDParamState>();
  s->momentum_buffer(buffer.to(param.device(), param.scalar_type()).clone());
  state[StateKey<Map>(param)] = std::move(s);
}

std::string RngToString(const std::mt19937_64& rng) {
  std::ostringstream os;
  os << rng;
  return os.str();
}

absl::Status RngFromString(const std::string& text, std::mt19937_64* rng) {
  std::istringstream is(text);
  is >> *rng;
  if (is.fail())
    return absl::InvalidArgumentError("checkpoint: rng_state is not a std::mt19937_64 state");
  return absl::OkStatus();
}

absl::Status CheckTrainingSet(const TrainingSet& data, int64_t num_classes) {
  if (data.images.empty()) return absl::InvalidArgumentError("training set: no images");
  if (data.images.size() != data.labels.size()) {
    return absl::InvalidArgumentError(absl::StrCat("training set: ", data.images.size(),
                                                   " images but ", data.labels.size(), " labels"));
  }
  for (size_t i = 0; i < data.images.size(); ++i) {
    const torch::Tensor& im = data.images[i];
    if (!im.defined() || im.dim() != 3 || im.size(2) != 3 || im.size(0) < 1 || im.size(1) < 1 ||
        im.scalar_type() != torch::kUInt8) {
      return absl::InvalidArgumentError(
          absl::StrCat("training set: image ", i, " must be uint8 [H,W,3]"));
    }
    if (data.labels[i] < 0 || data.labels[i] >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("training set: label ", data.labels[i],
                                                     " of image ", i, " is outside [0, ",
                                                     num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

// Names the first config field that differs, so a refused resume says why.
std::string FirstConfigDifference(const TrainConfig& a, const TrainConfig& b) {
  const nlohmann::json ja = ConfigToJson(a);
  const nlohmann::json jb = ConfigToJson(b);
  for (const auto& [key, value] : ja.items()) {
    if (!jb.contains(key) || jb[key] != value) return key;
  }
  return "";
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

}  // namespace

int64_t StepsPerEpoch(int64_t num_images, int64_t batch_size) {
  if (num_images <= 0 || batch_size <= 0) return 0;
  return num_images >= batch_size ? num_images / batch_size : 1;
}

std::string TrainingSetFingerprint(const TrainingSet& data) {
  uint64_t h = util::Fnv1a64(nullptr, 0);
  const uint64_t n = data.images.size();
  h = util::Fnv1a64(&n, sizeof(n), h);
  if (!data.labels.empty())
    h = util::Fnv1a64(data.labels.data(), data.labels.size() * sizeof(int64_t), h);
  for (const auto& im : data.images) {
    for (int64_t d = 0; d < im.dim(); ++d) {
      const int64_t s = im.size(d);
      h = util::Fnv1a64(&s, sizeof(s), h);
    }
  }
  return absl::StrFormat("%016x", h);
}

Trainer::Trainer(std::unique_ptr<provp::ProvpModel> model, TrainerOptions options)
    : model_(std::move(model)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(clip::ClipModel clip,
                                                         TrainerOptions options) {
  RETURN_IF_ERROR(ValidateConfig(options.config));
  if (!clip) return absl::InvalidArgumentError("trainer: no CLIP model given");
  ASSIGN_OR_RETURN(auto model, provp::ProvpModel::Create(std::move(clip), options.config.model,
                                                         options.config.seed));
  return std::unique_ptr<Trainer>(new Trainer(std::move(model), std::move(options)));
}

absl::StatusOr<TrainResult> Trainer::Run(const TrainingSet& data,
                                         const torch::Tensor& text_features,
                                         const EvalSet* validation) {
  const TrainConfig& cfg = options_.config;
  const clip::ClipConfig& clip_config = model_->clip()->config();
  if (!text_features.defined() || text_features.dim() != 2 || text_features.size(0) < 1 ||
      text_features.size(1) != clip_config.embed_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("trainer: text features must be [C,", clip_config.embed_dim, "]"));
  }
  RETURN_IF_ERROR(CheckTrainingSet(data, text_features.size(0)));
  if (cfg.selection == ModelSelection::kBestValidation && validation == nullptr) {
    return absl::InvalidArgumentError("trainer: selection best_validation needs a validation set");
  }

  TrainResult result;
  const Clock::time_point t0 = Clock::now();
  if (!provp::HasPrompts(model_->options())) return result;  // zero-shot: nothing to learn

  const torch::Device device = model_->device();
  const int64_t n = static_cast<int64_t>(data.images.size());
  const int64_t batch = std::min(cfg.batch_size, n);
  const int64_t steps_per_epoch = StepsPerEpoch(n, cfg.batch_size);
  const int64_t total_steps = cfg.epochs * steps_per_epoch;
  // The encoder takes exactly its own resolution, so the crop size follows
  // the model whatever the config says.
  image::AugmentOptions augment = cfg.augment;
  augment.size = clip_config.image_resolution;

  std::vector<torch::Tensor> images;
  torch::Tensor labels_all, text;
  RETURN_IF_ERROR(util::TorchCall("trainer: staging data", [&] {
    images.reserve(data.images.size());
    for (const auto& im : data.images) images.push_back(im.device() == device ? im : im.to(device));
    labels_all = torch::tensor(data.labels, torch::kInt64);
    text = text_features.to(device, torch::kFloat32);
  }));

  const torch::Tensor param = model_->trainable_parameters().front();
  torch::optim::SGD opt({param}, torch::optim::SGDOptions(cfg.learning_rate)
                                     .momentum(cfg.momentum)
                                     .dampening(0.0)
                                     .weight_decay(cfg.weight_decay)
                                     .nesterov(false));
  std::mt19937_64 rng(cfg.seed ^ kSamplerSeedSalt);

  TrainCheckpoint state;
  state.config = cfg;
  state.backbone_fingerprint = options_.backbone_fingerprint;
  state.data_fingerprint = TrainingSetFingerprint(data);
  bool restored_momentum = false;
  if (!options_.checkpoint_path.empty() && options_.resume &&
      std::filesystem::exists(options_.checkpoint_path)) {
    ASSIGN_OR_RETURN(TrainCheckpoint ck, LoadTrainCheckpoint(options_.checkpoint_path));
    const std::string diff = FirstConfigDifference(ck.config, cfg);
    if (!diff.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("checkpoint ", options_.checkpoint_path,
                                                        " was written with a different '", diff,
                                                        "'; refusing to resume it"));
    }
    if (!ck.backbone_fingerprint.empty() && !state.backbone_fingerprint.empty() &&
        ck.backbone_fingerprint != state.backbone_fingerprint) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint ", options_.checkpoint_path, " belongs to backbone ",
                       ck.backbone_fingerprint, ", not ", state.backbone_fingerprint));
    }
    if (ck.data_fingerprint != state.data_fingerprint) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", options_.checkpoint_path, " was trained on a different training set"));
    }
    if (ck.epochs_completed < 0 || ck.epochs_completed > cfg.epochs) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint ", options_.checkpoint_path,
                                                     ": epochs_completed ", ck.epochs_completed,
                                                     " outside [0, ", cfg.epochs, "]"));
    }
    RETURN_IF_ERROR(model_->SetPrompts(ck.prompts));
    if (ck.momentum_buffer.defined()) {
      if (ck.momentum_buffer.sizes() != param.sizes()) {
        return absl::InvalidArgumentError(
            absl::StrCat("checkpoint ", options_.checkpoint_path,
                         ": momentum_buffer shape differs from prompts"));
      }
      RETURN_IF_ERROR(util::TorchCall("trainer: restore momentum",
                                      [&] { SetMomentum(opt, param, ck.momentum_buffer); }));
      restored_momentum = true;
    }
    RETURN_IF_ERROR(RngFromString(ck.rng_state, &rng));
    ck.prompts = torch::Tensor();
    ck.momentum_buffer = torch::Tensor();
    ck.backbone_fingerprint = state.backbone_fingerprint;
    state = std::move(ck);
    result.resumed_from_epoch = state.epochs_completed;
  }

  const LrScheduleOptions schedule = ScheduleOf(cfg);
  int64_t global_step = state.epochs_completed * steps_per_epoch;
  int64_t steps_this_run = 0;
  const Clock::time_point run_start = Clock::now();
  auto cancelled = [&]() {
    return options_.cancel && options_.cancel->load(std::memory_order_relaxed);
  };

  for (int64_t epoch = state.epochs_completed; epoch < cfg.epochs; ++epoch) {
    const double lr = LearningRateForEpoch(schedule, epoch);
    for (auto& group : opt.param_groups())
      static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    const std::vector<int64_t> order = Permutation(n, rng);
    const Clock::time_point epoch_start = Clock::now();
    double sum_loss = 0, sum_ce = 0, sum_ref = 0;
    int64_t correct = 0, seen = 0;

    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      if (cancelled()) {
        return absl::CancelledError(
            absl::StrCat("training cancelled at epoch ", epoch + 1, " step ", step + 1));
      }
      std::vector<torch::Tensor> batch_images;
      std::vector<int64_t> batch_labels;
      batch_images.reserve(batch);
      for (int64_t i = 0; i < batch; ++i) {
        const int64_t idx = order[step * batch + i];
        batch_images.push_back(images[idx]);
        batch_labels.push_back(data.labels[idx]);
      }
      ASSIGN_OR_RETURN(torch::Tensor x, image::AugmentBatch(batch_images, augment, rng, device));
      torch::Tensor y;
      RETURN_IF_ERROR(util::TorchCall(
          "trainer: labels", [&] { y = torch::tensor(batch_labels, torch::kInt64).to(device); }));
      ASSIGN_OR_RETURN(provp::LossTerms terms, model_->Loss(x, y, text));
      double loss = 0, ce = 0, ref = 0;
      int64_t batch_correct = 0;
      RETURN_IF_ERROR(util::TorchCall("trainer: step", [&]() -> absl::Status {
        loss = terms.total.item<double>();
        ce = terms.ce.item<double>();
        ref = terms.ref.item<double>();
        if (!std::isfinite(loss)) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "training diverged: non-finite loss %g at epoch %d step %d (ce %g, ref %g, lr %g)",
              loss, epoch, step, ce, ref, lr));
        }
        opt.zero_grad();
        terms.total.backward();
        opt.step();
        batch_correct = terms.logits.argmax(1).eq(y).sum().item<int64_t>();
        return absl::OkStatus();
      }));
      if (restored_momentum) {
        // A wrong state key would make SGD start a second, fresh buffer.
        if (opt.state().size() != 1) {
          return absl::InternalError(
              "trainer: restored SGD momentum was not picked up by the optimizer");
        }
        restored_momentum = false;
      }
      ++global_step;
      ++steps_this_run;
      sum_loss += loss;
      sum_ce += ce;
      sum_ref += ref;
      correct += batch_correct;
      seen += batch;
      if (options_.on_progress && options_.report_steps) {
        const double elapsed = Seconds(run_start);
        TrainProgress p;
        p.kind = TrainProgress::Kind::kStep;
        p.epoch = epoch + 1;
        p.epochs = cfg.epochs;
        p.step = step + 1;
        p.steps_per_epoch = steps_per_epoch;
        p.global_step = global_step;
        p.total_steps = total_steps;
        p.learning_rate = lr;
        p.loss = loss;
        p.ce = ce;
        p.ref = ref;
        p.train_accuracy = static_cast<double>(batch_correct) / batch;
        p.elapsed_seconds = elapsed;
        p.images_per_second = elapsed > 0 ? steps_this_run * batch / elapsed : 0.0;
        p.eta_seconds = (total_steps - global_step) * (elapsed / steps_this_run);
        if (!options_.on_progress(p)) {
          return absl::CancelledError(
              absl::StrCat("training cancelled at epoch ", epoch + 1, " step ", step + 1));
        }
      }
    }

    const double steps = static_cast<double>(steps_per_epoch);
    nlohmann::json summary = {{"epoch", epoch + 1},
                              {"learning_rate", lr},
                              {"loss", sum_loss / steps},
                              {"ce", sum_ce / steps},
                              {"ref", sum_ref / steps},
                              {"train_accuracy", seen ? static_cast<double>(correct) / seen : 0.0},
                              {"seconds", Seconds(epoch_start)}};
    double val_acc = -1.0;
    if (validation != nullptr) {
      ASSIGN_OR_RETURN(EvalResult ev,
                       Evaluate(model_->clip(), model_->visual_prompts(), *validation, text));
      val_acc = ev.top1;
      summary["validation_accuracy"] = val_acc;
      // Strict '>' keeps the earliest epoch on ties (as Dassl does, Q20).
      if (val_acc > state.best_validation_accuracy) {
        state.best_validation_accuracy = val_acc;
        state.best_epoch = epoch;
        RETURN_IF_ERROR(util::TorchCall("trainer: best prompts", [&] {
          state.best_prompts = param.detach().to(torch::kCPU).clone();
        }));
      }
    }
    state.history.push_back(summary);
    state.epochs_completed = epoch + 1;
    state.global_step = global_step;
    if (!options_.checkpoint_path.empty()) {
      RETURN_IF_ERROR(util::TorchCall("trainer: checkpoint", [&] {
        state.prompts = param.detach().to(torch::kCPU).clone();
        torch::Tensor m = GetMomentum(opt, param);
        state.momentum_buffer = m.defined() ? m.detach().to(torch::kCPU).clone() : torch::Tensor();
      }));
      state.rng_state = RngToString(rng);
      RETURN_IF_ERROR(SaveTrainCheckpoint(options_.checkpoint_path, state));
    }
    if (options_.on_progress) {
      const double elapsed = Seconds(run_start);
      TrainProgress p;
      p.kind = TrainProgress::Kind::kEpoch;
      p.epoch = epoch + 1;
      p.epochs = cfg.epochs;
      p.step = steps_per_epoch;
      p.steps_per_epoch = steps_per_epoch;
      p.global_step = global_step;
      p.total_steps = total_steps;
      p.learning_rate = lr;
      p.loss = summary["loss"].get<double>();
      p.ce = summary["ce"].get<double>();
      p.ref = summary["ref"].get<double>();
      p.train_accuracy = summary["train_accuracy"].get<double>();
      p.elapsed_seconds = elapsed;
      p.images_per_second = elapsed > 0 ? steps_this_run * batch / elapsed : 0.0;
      p.eta_seconds =
          steps_this_run ? (total_steps - global_step) * (elapsed / steps_this_run) : 0.0;
      p.validation_accuracy = val_acc;
      if (!options_.on_progress(p)) {
        return absl::CancelledError(absl::StrCat("training cancelled after epoch ", epoch + 1));
      }
    }
  }

  result.epochs_completed = state.epochs_completed;
  result.steps = steps_this_run;
  result.history = state.history;
  result.best_validation_accuracy = state.best_validation_accuracy;
  if (!state.history.empty()) {
    const auto& last = state.history.back();
    result.final_loss = last.value("loss", 0.0);
    result.final_ce = last.value("ce", 0.0);
    result.final_ref = last.value("ref", 0.0);
    result.final_train_accuracy = last.value("train_accuracy", 0.0);
  }
  result.selected_epoch = state.epochs_completed;
  if (cfg.selection == ModelSelection::kBestValidation && state.best_epoch >= 0 &&
      state.best_prompts.defined()) {
    RETURN_IF_ERROR(model_->SetPrompts(state.best_prompts));
    result.selected_epoch = state.best_epoch + 1;  // the checkpoint keeps a 0-based index
  }
  RETURN_IF_ERROR(util::TorchCall(
      "trainer: result", [&] { result.prompts = param.detach().to(torch::kCPU).clone(); }));
  result.seconds = Seconds(t0);
  const double run_seconds = Seconds(run_start);
  result.images_per_second = run_seconds > 0 ? steps_this_run * batch / run_seconds : 0.0;
  return result;
}

}  // namespace provp::train
