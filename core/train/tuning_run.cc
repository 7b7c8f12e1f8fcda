// The tuning run of tuning_run.h: draw, cut, train, evaluate, write.
#include "core/train/tuning_run.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/clip/zero_shot.h"
#include "core/data/accuracy.h"
#include "core/data/base_novel.h"
#include "core/data/templates.h"
#include "core/util/status_macros.h"

namespace provp::train {
namespace {

absl::Status LoadItems(const TuningImageLoader& load, const std::vector<data::Item>& items,
                       data::Split split, std::vector<torch::Tensor>& images,
                       std::vector<int64_t>& labels) {
  images.clear();
  labels.clear();
  images.reserve(items.size());
  labels.reserve(items.size());
  for (const data::Item& item : items) {
    ASSIGN_OR_RETURN(torch::Tensor image, load(item, split));
    images.push_back(std::move(image));
    labels.push_back(item.label);
  }
  return absl::OkStatus();
}

// Top-1/top-5/per-class accuracy over `items`, decoding `chunk` images at a
// time and pooling the chunks, so a large test split never sits in memory.
absl::StatusOr<EvalResult> EvaluateItems(clip::ClipModel& model, const clip::VisualPrompts* prompts,
                                         const std::vector<data::Item>& items, data::Split split,
                                         const torch::Tensor& text_features,
                                         const TuningRunSpec& spec) {
  const int64_t num_classes = text_features.size(0);
  std::vector<double> correct(static_cast<size_t>(num_classes), 0.0);
  std::vector<int64_t> count(static_cast<size_t>(num_classes), 0);
  double top1 = 0.0;
  double top5 = 0.0;
  const int64_t resolution = model->config().image_resolution;
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, spec.eval_chunk));
  for (size_t start = 0; start < items.size(); start += chunk) {
    const size_t end = std::min(items.size(), start + chunk);
    const std::vector<data::Item> part(items.begin() + static_cast<std::ptrdiff_t>(start),
                                       items.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<torch::Tensor> images;
    std::vector<int64_t> labels;
    RETURN_IF_ERROR(LoadItems(spec.load_image, part, split, images, labels));
    ASSIGN_OR_RETURN(EvalResult r, EvaluateImages(model, prompts, images, labels, text_features,
                                                  resolution, spec.eval_batch_size));
    top1 += r.top1 * static_cast<double>(r.num_images);
    top5 += r.top5 * static_cast<double>(r.num_images);
    for (size_t c = 0; c < r.per_class_count.size() && c < count.size(); ++c) {
      correct[c] += r.per_class_accuracy[c] * static_cast<double>(r.per_class_count[c]);
      count[c] += r.per_class_count[c];
    }
  }
  EvalResult out;
  out.num_images = static_cast<int64_t>(items.size());
  if (out.num_images > 0) {
    out.top1 = top1 / static_cast<double>(out.num_images);
    out.top5 = top5 / static_cast<double>(out.num_images);
  }
  double sum = 0.0;
  int64_t classes_with_images = 0;
  for (size_t c = 0; c < count.size(); ++c) {
    const double acc = count[c] > 0 ? correct[c] / static_cast<double>(count[c]) : 0.0;
    out.per_class_accuracy.push_back(acc);
    out.per_class_count.push_back(count[c]);
    if (count[c] > 0) {
      sum += acc;
      ++classes_with_images;
    }
  }
  out.mean_per_class_accuracy = classes_with_images > 0 ? sum / classes_with_images : 0.0;
  return out;
}

// Scores one class group (labels already group-local) on its evaluation
// items: among its own classes only, with the prompts and, when asked,
// without them.
absl::StatusOr<GroupEvaluation> EvaluateGroup(const TuningBackbone& backbone,
                                              clip::ClipModel& model,
                                              const clip::VisualPrompts* prompts,
                                              const data::Dataset& group, bool on_test,
                                              const std::vector<std::string>& templates,
                                              const TuningRunSpec& spec) {
  GroupEvaluation g;
  g.class_names = group.class_names;
  const std::vector<data::Item>& items = on_test ? group.test : group.train;
  const data::Split split = on_test ? data::Split::kTest : data::Split::kTrain;
  if (items.empty() || group.class_names.empty()) return g;
  ASSIGN_OR_RETURN(torch::Tensor text, clip::ClassTextFeatures(model, *backbone.tokenizer,
                                                               group.class_names, templates));
  ASSIGN_OR_RETURN(g.tuned, EvaluateItems(model, prompts, items, split, text, spec));
  if (spec.evaluate_zero_shot) {
    ASSIGN_OR_RETURN(g.zero_shot, EvaluateItems(model, nullptr, items, split, text, spec));
  }
  return g;
}

}  // namespace

absl::StatusOr<TuningRunResult> RunTuning(const TuningBackbone& backbone,
                                          const TuningRunSpec& spec) {
  auto say = [&](const std::string& message) {
    if (spec.on_message) spec.on_message(message);
  };
  if (!backbone.model || backbone.tokenizer == nullptr) {
    return absl::InvalidArgumentError("tuning run: no backbone model or tokenizer");
  }
  if (!spec.load_image) return absl::InvalidArgumentError("tuning run: no image loader");
  RETURN_IF_ERROR(data::ValidateDataset(spec.dataset));
  if (spec.dataset.train.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset ", spec.dataset.name, " has no training images"));
  }
  const TrainConfig& config = spec.config;
  if (config.shots < 1) {
    return absl::InvalidArgumentError("tuning run: config.shots must be >= 1");
  }
  TuningRunResult out;
  out.config = config;

  // 1. Few-shot subset on all classes (CoOp: train, then val with min(K, 4)
  // from the same Python random stream).
  if (!spec.fewshot_list.empty()) {
    ASSIGN_OR_RETURN(out.few_shot, data::ApplyFewShotList(spec.dataset, spec.fewshot_list));
  } else {
    data::FewShotOptions fso;
    fso.shots = static_cast<int>(config.shots);
    fso.seed = static_cast<int64_t>(config.seed);
    fso.sample_val = true;
    fso.error_if_fewer = spec.strict_shots;
    ASSIGN_OR_RETURN(data::FewShotResult sampled, data::SampleFewShot(spec.dataset, fso));
    out.few_shot = std::move(sampled.dataset);
    out.short_classes = std::move(sampled.short_classes);
  }

  // 2. The base/novel cut, after the draw.
  data::Dataset base_ds = out.few_shot;
  data::Dataset novel_ds;
  bool has_novel = spec.novel != NovelClasses::kNone;
  if (has_novel) {
    std::vector<int> novel_labels = spec.novel_labels;
    if (spec.novel == NovelClasses::kProtocol) {
      ASSIGN_OR_RETURN(novel_labels, data::ProtocolNovelLabels(out.few_shot));
    }
    if (novel_labels.empty()) {
      has_novel = false;
    } else {
      ASSIGN_OR_RETURN(data::BaseNovelSplit split,
                       data::SplitBaseNovel(out.few_shot, novel_labels));
      base_ds = std::move(split.base);
      novel_ds = std::move(split.novel);
      out.base_labels = std::move(split.base_labels);
      out.novel_labels = std::move(split.novel_labels);
    }
  }
  if (!has_novel) {
    for (int c = 0; c < spec.dataset.num_classes(); ++c) out.base_labels.push_back(c);
  }
  if (base_ds.train.empty()) {
    return absl::InvalidArgumentError("tuning run: no training images in the base classes");
  }
  if (config.selection == ModelSelection::kBestValidation && base_ds.val.empty()) {
    return absl::InvalidArgumentError(
        "selection best_val needs a validation split, and the dataset has no validation images "
        "of the base classes");
  }
  const std::vector<std::string> templates =
      spec.templates.empty() ? std::vector<std::string>{data::kDefaultTemplate} : spec.templates;
  const bool on_test = !spec.dataset.test.empty();
  out.evaluated_on_test = on_test;

  // 3. Train on the base classes.
  clip::ClipModel model = backbone.model;
  ASSIGN_OR_RETURN(out.model_options,
                   provp::ResolveOptions(config.model, model->config().vision_layers));
  ASSIGN_OR_RETURN(
      torch::Tensor base_text,
      clip::ClassTextFeatures(model, *backbone.tokenizer, base_ds.class_names, templates));
  TrainingSet train_set;
  RETURN_IF_ERROR(LoadItems(spec.load_image, base_ds.train, data::Split::kTrain, train_set.images,
                            train_set.labels));
  std::unique_ptr<EvalSet> validation;
  if (!base_ds.val.empty()) {
    std::vector<torch::Tensor> images;
    std::vector<int64_t> labels;
    RETURN_IF_ERROR(LoadItems(spec.load_image, base_ds.val, data::Split::kVal, images, labels));
    ASSIGN_OR_RETURN(EvalSet set, MakeEvalSet(images, labels, model->config().image_resolution));
    validation = std::make_unique<EvalSet>(std::move(set));
  }
  say(absl::StrCat("drew ", base_ds.train.size(), " training and ", base_ds.val.size(),
                   " validation images (", config.shots, " shots) of ", base_ds.num_classes(),
                   has_novel ? " base" : "", " classes; ", config.epochs, " epochs, batch ",
                   config.batch_size, ", learning rate ", config.learning_rate, ", selection ",
                   ModelSelectionName(config.selection)));
  if (spec.resume && !spec.checkpoint_path.empty() &&
      std::filesystem::exists(spec.checkpoint_path)) {
    say("found an epoch checkpoint; resuming from it");
  }
  if (!spec.resume && !spec.checkpoint_path.empty()) {
    std::error_code ec;
    std::filesystem::remove(spec.checkpoint_path, ec);
  }
  TrainerOptions topt;
  topt.config = config;
  topt.checkpoint_path = spec.checkpoint_path;
  topt.resume = spec.resume;
  topt.backbone_fingerprint = backbone.fingerprint;
  topt.cancel = spec.cancel;
  topt.report_steps = spec.report_steps;
  topt.on_progress = spec.on_progress;
  ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(model, topt));
  ASSIGN_OR_RETURN(out.training, trainer->Run(train_set, base_text, validation.get()));
  train_set = {};
  validation.reset();
  if (out.training.resumed_from_epoch > 0) {
    say(absl::StrCat("resumed from the checkpoint after epoch ", out.training.resumed_from_epoch));
  }

  // 4. Base among base, novel among novel (CoOp protocol).
  say(on_test ? "evaluating on the test split" : "evaluating on the training pool (no test split)");
  const clip::VisualPrompts* prompts = trainer->model().visual_prompts();
  clip::ClipModel& eval_model = trainer->model().clip();
  ASSIGN_OR_RETURN(out.base,
                   EvaluateGroup(backbone, eval_model, prompts, base_ds, on_test, templates, spec));
  if (has_novel) {
    ASSIGN_OR_RETURN(GroupEvaluation novel, EvaluateGroup(backbone, eval_model, prompts, novel_ds,
                                                          on_test, templates, spec));
    out.novel = std::move(novel);
    out.harmonic_mean = data::HarmonicMean(out.base.tuned.top1, out.novel->tuned.top1);
  } else {
    out.harmonic_mean = out.base.tuned.top1;
  }

  // 5. The prompt set.
  out.prompt_set = PromptSetFromRun(out.model_options, config, out.training, model->config(),
                                    backbone.fingerprint, base_ds.class_names, templates);
  if (has_novel) out.prompt_set.info.training_summary["novel_class_names"] = novel_ds.class_names;
  nlohmann::json evaluation = {{"base", GroupEvaluationToJson(out.base)},
                               {"base_accuracy", out.base.tuned.top1},
                               {"harmonic_mean", out.harmonic_mean},
                               {"on", on_test ? "test" : "train"}};
  if (out.novel) {
    evaluation["novel"] = GroupEvaluationToJson(*out.novel);
    evaluation["novel_accuracy"] = out.novel->tuned.top1;
  }
  out.prompt_set.info.evaluation = std::move(evaluation);
  if (!spec.output_path.empty()) RETURN_IF_ERROR(SavePromptSet(spec.output_path, out.prompt_set));
  return out;
}

nlohmann::json GroupEvaluationToJson(const GroupEvaluation& group) {
  nlohmann::json j = {{"class_names", group.class_names}, {"tuned", EvalResultToJson(group.tuned)}};
  if (group.zero_shot.num_images > 0) j["zero_shot"] = EvalResultToJson(group.zero_shot);
  return j;
}

}  // namespace provp::train
