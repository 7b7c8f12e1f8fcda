// Implementation of torch_engine.h. Every torch call runs inside TorchCall,
// so c10 exceptions become Status values and never reach the server.
#include "core/engine/torch_engine.h"

#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include <torch/torch.h>
#include <torch/version.h>

#include "absl/strings/str_cat.h"
#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/device_memory.h"
#include "core/clip/zero_shot.h"
#include "core/data/dataset.h"
#include "core/data/few_shot.h"
#include "core/image/preprocess.h"
#include "core/provp/provp_options.h"
#include "core/text/tokenizer.h"
#include "core/train/evaluation.h"
#include "core/train/prompt_set.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"
#include "core/train/tuning_run.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"
#include "core/util/torch_threads.h"

namespace provp::engine {
namespace {

// A loaded prompt set; shared so an unload never frees prompts mid-forward.
struct LoadedPromptSet {
  clip::VisualPrompts prompts;
  PromptSetMeta meta;
};

FeatureMatrix ToMatrix(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  FeatureMatrix m;
  m.rows = c.size(0);
  m.dim = c.size(1);
  m.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return m;
}

torch::Tensor ToTensor(const Image& image) {
  return torch::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3},
                          torch::kUInt8)
      .clone();
}

PromptSetMeta MetaOf(const train::PromptSet& set) {
  PromptSetMeta meta;
  meta.backbone = set.info.backbone_fingerprint;
  meta.num_prompts = static_cast<int>(set.info.model.num_prompts);
  meta.depth = static_cast<int>(set.info.model.depth);
  meta.alpha = set.info.model.alpha;
  meta.variant = provp::VariantName(set.info.model.variant);
  meta.base_class_names = set.info.class_names;
  meta.templates = set.info.templates;
  if (set.info.training_summary.is_object() &&
      set.info.training_summary.contains("novel_class_names")) {
    meta.novel_class_names =
        set.info.training_summary["novel_class_names"].get<std::vector<std::string>>();
  }
  meta.memory_bytes = set.prompts.defined() ? set.prompts.numel() * 4 : 0;
  return meta;
}

class TorchEngine : public Engine {
 public:
  TorchEngine(TorchEngineOptions options, clip::LoadedCheckpoint checkpoint, clip::ClipModel model,
              std::shared_ptr<const text::Tokenizer> tokenizer)
      : options_(std::move(options)),
        config_(checkpoint.config),
        model_(std::move(model)),
        tokenizer_(std::move(tokenizer)) {
    info_.backbone = checkpoint.fingerprint;
    info_.description = config_.DebugString();
    info_.device = options_.device;
    info_.image_resolution = static_cast<int>(config_.image_resolution);
    info_.embed_dim = static_cast<int>(config_.embed_dim);
    info_.logit_scale = model_->LogitScale();
  }

  const ModelInfo& info() const override { return info_; }

  std::optional<DeviceMemory> DeviceMemoryUsage() const override {
    if (info_.device.rfind("cuda", 0) != 0) return std::nullopt;
    absl::StatusOr<clip::DeviceMemoryStats> stats = clip::QueryDeviceMemory(info_.device);
    if (!stats.ok()) return std::nullopt;
    return DeviceMemory{absl::StrCat("cuda:", stats->device_index), stats->allocated_bytes,
                        stats->reserved_bytes, stats->total_bytes};
  }

  absl::Status Warmup() override {
    Image black{config_.image_resolution > 0 ? static_cast<int>(config_.image_resolution) : 32,
                static_cast<int>(config_.image_resolution),
                {}};
    black.rgb.assign(static_cast<size_t>(black.height) * black.width * 3, 0);
    RETURN_IF_ERROR(EncodeImages({&black}, "").status());
    RETURN_IF_ERROR(ClassTextFeatures({"cat", "dog"}, {}).status());
    return absl::OkStatus();
  }

  absl::StatusOr<FeatureMatrix> EncodeImages(const std::vector<const Image*>& images,
                                             const std::string& prompt_set) override {
    std::shared_ptr<const LoadedPromptSet> ps;
    if (!prompt_set.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = loaded_.find(prompt_set);
      if (it == loaded_.end()) {
        return absl::FailedPreconditionError("prompt set " + prompt_set + " is not loaded");
      }
      ps = it->second;
    }
    return util::TorchCall("encode images", [&]() -> absl::StatusOr<FeatureMatrix> {
      c10::InferenceMode guard;
      std::vector<torch::Tensor> batch;
      batch.reserve(images.size());
      for (const Image* img : images) {
        ASSIGN_OR_RETURN(torch::Tensor x,
                         image::PreprocessForEval(ToTensor(*img), config_.image_resolution));
        batch.push_back(x);
      }
      torch::Tensor x = torch::stack(batch).to(torch::Device(options_.device));
      torch::Tensor f = model_->EncodeImage(x, ps ? &ps->prompts : nullptr).to(torch::kFloat32);
      f = f / f.norm(2, -1, true);
      return ToMatrix(f);
    });
  }

  absl::StatusOr<FeatureMatrix> EncodeTexts(const std::vector<std::string>& texts) override {
    std::vector<int64_t> ids;
    for (const auto& t : texts) {
      ASSIGN_OR_RETURN(auto row, tokenizer_->EncodeForContext(t, config_.context_length));
      ids.insert(ids.end(), row.begin(), row.end());
    }
    return util::TorchCall("encode texts", [&]() -> absl::StatusOr<FeatureMatrix> {
      c10::InferenceMode guard;
      torch::Tensor tokens = torch::tensor(ids, torch::kInt64)
                                 .view({static_cast<int64_t>(texts.size()), config_.context_length})
                                 .to(torch::Device(options_.device));
      torch::Tensor f = model_->EncodeText(tokens).to(torch::kFloat32);
      f = f / f.norm(2, -1, true);
      return ToMatrix(f);
    });
  }

  absl::StatusOr<FeatureMatrix> ClassTextFeatures(
      const std::vector<std::string>& class_names,
      const std::vector<std::string>& templates) override {
    return util::TorchCall("class text features", [&]() -> absl::StatusOr<FeatureMatrix> {
      ASSIGN_OR_RETURN(torch::Tensor f,
                       clip::ClassTextFeatures(model_, *tokenizer_, class_names, templates));
      return ToMatrix(f);
    });
  }

  absl::StatusOr<PromptSetMeta> InspectPromptSet(const std::string& path) override {
    return util::TorchCall("read prompt set", [&]() -> absl::StatusOr<PromptSetMeta> {
      ASSIGN_OR_RETURN(train::PromptSet set, train::ReadPromptSet(path));
      RETURN_IF_ERROR(train::CheckPromptSetMatches(set, config_, info_.backbone));
      return MetaOf(set);
    });
  }

  absl::StatusOr<PromptSetMeta> LoadPromptSet(const std::string& id,
                                              const std::string& path) override {
    return util::TorchCall("load prompt set", [&]() -> absl::StatusOr<PromptSetMeta> {
      ASSIGN_OR_RETURN(train::PromptSet set, train::LoadPromptSet(path, config_, info_.backbone));
      auto loaded = std::make_shared<LoadedPromptSet>();
      loaded->meta = MetaOf(set);
      if (set.prompts.defined()) {
        loaded->prompts.prompts = set.prompts.to(torch::Device(options_.device));
      }
      loaded->prompts.alpha = set.info.model.alpha;
      std::lock_guard<std::mutex> lock(mu_);
      loaded_[id] = loaded;
      return loaded->meta;
    });
  }

  absl::Status UnloadPromptSet(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (loaded_.erase(id) == 0) return absl::NotFoundError(id + " is not loaded");
    return absl::OkStatus();
  }

  absl::StatusOr<TuningOutcome> RunTuning(const TuningSpec& spec,
                                          const TuningCallbacks& cb) override {
    return util::TorchCall("tuning", [&]() { return RunTuningImpl(spec, cb); });
  }

 private:
  // The request's values over the preset (hyperparameters.h resolves them
  // for every front end alike).
  absl::StatusOr<train::TrainConfig> ConfigFor(const TuningSpec& spec) {
    train::HyperparameterRequest req;
    req.preset = spec.preset;
    req.variant = spec.variant;
    req.shots = spec.shots;
    req.has_novel_classes = !spec.novel_classes.empty();
    if (spec.num_prompts > 0) req.num_prompts = spec.num_prompts;
    if (spec.epochs > 0) req.epochs = spec.epochs;
    if (spec.learning_rate > 0) req.learning_rate = spec.learning_rate;
    if (spec.batch_size > 0) req.batch_size = spec.batch_size;
    req.alpha = spec.alpha;
    req.use_ref = spec.use_feature_reformation;
    req.ref_lambda = spec.ref_lambda;
    req.weight_decay = spec.weight_decay;
    req.min_crop_scale = spec.min_crop_scale;
    req.seed = spec.seed;
    req.selection = spec.selection;
    ASSIGN_OR_RETURN(train::ResolvedHyperparameters resolved, train::ResolveHyperparameters(req));
    ASSIGN_OR_RETURN(train::TrainConfig config, train::ConfigFromResolved(resolved));
    config.augment.size = config_.image_resolution;
    return config;
  }

  // The server's dataset in the core's form: every class, items in the
  // server's order with their labels, so the draw is the protocol's.
  absl::StatusOr<TuningOutcome> RunTuningImpl(const TuningSpec& spec, const TuningCallbacks& cb) {
    train::TuningRunSpec run;
    run.dataset.name = spec.job_id;
    run.dataset.class_names = spec.class_names;
    for (const TuningItem& it : spec.items) {
      data::Split split = it.split == Split::kTrain ? data::Split::kTrain
                          : it.split == Split::kVal ? data::Split::kVal
                                                    : data::Split::kTest;
      run.dataset.mutable_items(split).push_back(data::Item{it.path, it.label});
    }
    if (!spec.novel_classes.empty()) {
      run.novel = train::NovelClasses::kExplicit;
      run.novel_labels = spec.novel_classes;
    }
    ASSIGN_OR_RETURN(run.config, ConfigFor(spec));
    run.templates = spec.templates;
    run.load_image = [&spec](const data::Item& item,
                             data::Split split) -> absl::StatusOr<torch::Tensor> {
      Split s = split == data::Split::kTrain ? Split::kTrain
                : split == data::Split::kVal ? Split::kVal
                                             : Split::kTest;
      ASSIGN_OR_RETURN(Image img, spec.load_image(TuningItem{item.path, item.label, s}));
      return ToTensor(img);
    };
    run.eval_batch_size = options_.eval_batch_size;
    run.checkpoint_path = spec.checkpoint_path;
    run.output_path = spec.output_path;
    run.resume = true;
    run.cancel = cb.stop;
    run.on_message = cb.on_message;
    run.report_steps = true;
    run.on_progress = [&cb](const train::TrainProgress& p) {
      if (cb.on_progress) {
        TuningProgress q;
        q.epoch_end = p.kind == train::TrainProgress::Kind::kEpoch;
        q.epoch = static_cast<int>(p.epoch);
        q.total_epochs = static_cast<int>(p.epochs);
        q.step = p.global_step;
        q.total_steps = p.total_steps;
        q.learning_rate = p.learning_rate;
        q.loss = p.loss;
        q.loss_xe = p.ce;
        q.loss_ref = p.ref;
        q.train_accuracy = p.train_accuracy;
        q.images_per_second = p.images_per_second;
        q.eta_seconds = p.eta_seconds;
        q.validation_accuracy = p.validation_accuracy;
        cb.on_progress(q);
      }
      return !(cb.stop && cb.stop->load());
    };
    train::TuningBackbone backbone{model_, tokenizer_.get(), info_.backbone};
    ASSIGN_OR_RETURN(train::TuningRunResult r, train::RunTuning(backbone, run));

    TuningOutcome out;
    out.prompt_set = MetaOf(r.prompt_set);
    out.hyperparameters = train::ResolvedFromConfig(r.config);
    for (const data::Item& it : r.few_shot.train) out.train_image_paths.push_back(it.path);
    out.resumed_from_epoch = static_cast<int>(r.training.resumed_from_epoch);
    out.epochs_completed = static_cast<int>(r.training.epochs_completed);
    out.selected_epoch = static_cast<int>(r.training.selected_epoch);
    out.best_validation_accuracy = r.training.best_validation_accuracy;
    for (const nlohmann::json& e : r.training.history) {
      EpochSummary h;
      h.epoch = e.value("epoch", 0);
      h.learning_rate = e.value("learning_rate", 0.0);
      h.loss = e.value("loss", 0.0);
      h.train_accuracy = e.value("train_accuracy", 0.0);
      h.validation_accuracy = e.value("validation_accuracy", -1.0);
      out.history.push_back(h);
    }
    TuningEvaluation& ev = out.evaluation;
    ev.base_accuracy = r.base.tuned.top1;
    ev.zero_shot_base_accuracy = r.base.zero_shot.top1;
    ev.num_base_images = r.base.tuned.num_images;
    ev.harmonic_mean = r.harmonic_mean;
    for (size_t c = 0; c < r.base.tuned.per_class_accuracy.size(); ++c) {
      ev.per_class.push_back({r.base.class_names[c], r.base.tuned.per_class_accuracy[c],
                              r.base.tuned.per_class_count[c], false});
    }
    if (r.novel) {
      ev.novel_accuracy = r.novel->tuned.top1;
      ev.zero_shot_novel_accuracy = r.novel->zero_shot.top1;
      ev.num_novel_images = r.novel->tuned.num_images;
      for (size_t c = 0; c < r.novel->tuned.per_class_accuracy.size(); ++c) {
        ev.per_class.push_back({r.novel->class_names[c], r.novel->tuned.per_class_accuracy[c],
                                r.novel->tuned.per_class_count[c], true});
      }
    }
    return out;
  }

  const TorchEngineOptions options_;
  const clip::ClipConfig config_;
  clip::ClipModel model_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  ModelInfo info_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const LoadedPromptSet>> loaded_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> CreateTorchEngine(const TorchEngineOptions& options) {
  util::SetTorchThreads(options.num_threads);
  ASSIGN_OR_RETURN(clip::LoadedCheckpoint checkpoint, util::TorchCall("load checkpoint", [&] {
                     return clip::LoadCheckpoint(options.model_path);
                   }));
  clip::ModelOptions mo;
  mo.device = options.device;
  mo.dtype = torch::kFloat32;
  if (options.device.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError("--device " + options.device +
                                           " but CUDA is not available");
    }
    mo.dtype = torch::kBFloat16;
  }
  ASSIGN_OR_RETURN(clip::ClipModel model, util::TorchCall("build model", [&] {
                     return clip::BuildClipModel(checkpoint, mo);
                   }));
  std::string vocab = !options.vocab_path.empty() ? options.vocab_path : checkpoint.tokenizer_dir;
  if (vocab.empty()) {
    return absl::InvalidArgumentError(
        "no tokenizer files next to " + options.model_path +
        "; pass --vocab (bpe_simple_vocab_16e6.txt.gz or a vocab.json + merges.txt folder)");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<text::Tokenizer> tokenizer, text::Tokenizer::FromPath(vocab));
  std::shared_ptr<const text::Tokenizer> shared(std::move(tokenizer));
  return std::unique_ptr<Engine>(
      new TorchEngine(options, std::move(checkpoint), std::move(model), std::move(shared)));
}

}  // namespace provp::engine
