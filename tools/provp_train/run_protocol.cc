// The offline protocol runner; see run_protocol.h. Images are decoded with
// OpenCV (provp::image_io) into uint8 [H,W,3] tensors: the few-shot training
// and validation images once per seed, the test split in chunks so a large
// test set never sits in memory whole.
#include "tools/provp_train/run_protocol.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <utility>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/zero_shot.h"
#include "core/data/accuracy.h"
#include "core/data/base_novel.h"
#include "core/data/dataset.h"
#include "core/data/few_shot.h"
#include "core/data/loaders.h"
#include "core/data/templates.h"
#include "core/image/image_io.h"
#include "core/provp/provp_options.h"
#include "core/text/tokenizer.h"
#include "core/train/evaluation.h"
#include "core/train/prompt_set.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::tools {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void Log(const RunOptions& o, const std::string& line) {
  if (o.log != nullptr) *o.log << line << std::endl;
}

absl::StatusOr<data::Dataset> LoadData(const RunOptions& o) {
  data::LoadOptions lo;
  lo.image_root = o.image_root;
  if (o.dataset_root.empty()) return absl::InvalidArgumentError("--dataset-root is required");
  if (o.layout == "coop") return data::LoadCoopDataset(o.dataset_root, o.dataset_name, lo);
  if (o.layout == "folders") {
    std::string name = o.dataset_name;
    if (name.empty()) name = fs::path(o.dataset_root).lexically_normal().filename().string();
    return data::LoadClassFolders(o.dataset_root, name, lo);
  }
  if (o.layout == "manifest") {
    ASSIGN_OR_RETURN(data::Dataset d, data::LoadManifest(o.dataset_root, lo));
    if (!o.dataset_name.empty()) d.name = o.dataset_name;
    return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--layout must be coop, folders or manifest, got '", o.layout, "'"));
}

absl::StatusOr<std::unique_ptr<text::Tokenizer>> OpenTokenizer(const RunOptions& o,
                                                               const std::string& model_dir) {
  std::string path = o.vocab_path;
  if (path.empty()) path = model_dir;
  if (path.empty()) {
    if (const char* env = std::getenv("PROVP_CLIP_VOCAB"); env != nullptr && *env != '\0') {
      path = env;
    }
  }
  if (path.empty()) {
    return absl::FailedPreconditionError(
        "no tokenizer vocabulary: pass --vocab (bpe_simple_vocab_16e6.txt.gz or a folder with "
        "vocab.json + merges.txt) or set PROVP_CLIP_VOCAB");
  }
  return text::Tokenizer::FromPath(path);
}

absl::StatusOr<torch::Dtype> DtypeFor(const RunOptions& o) {
  if (o.precision.empty()) return o.device == "cpu" ? torch::kFloat32 : torch::kBFloat16;
  if (o.precision == "fp32") return torch::kFloat32;
  if (o.precision == "bf16") return torch::kBFloat16;
  if (o.precision == "fp16") return torch::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("--precision must be fp32, bf16 or fp16, got '", o.precision, "'"));
}

// The preset for the setting, then the explicit overrides, then the seed.
absl::StatusOr<train::TrainConfig> BuildConfig(const RunOptions& o, int64_t seed,
                                               int64_t resolution) {
  train::TrainConfig base;
  if (!o.preset.empty()) {
    ASSIGN_OR_RETURN(base, train::PresetConfig(o.preset));
  } else if (o.setting == "base2novel") {
    ASSIGN_OR_RETURN(base, train::PresetConfig("base_to_novel"));
  } else {
    absl::StatusOr<train::TrainConfig> preset = train::PresetForShots(o.shots);
    if (!preset.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no preset for ", o.shots, " shots (", preset.status().message(),
                       "): pass --preset or explicit --epochs/--lr/--weight-decay"));
    }
    base = *std::move(preset);
  }
  json patch = o.overrides;
  patch["seed"] = seed;
  patch["shots"] = o.shots;
  // The presets assume 224 px; use the backbone's own resolution unless the
  // caller set an augmentation size.
  if (!patch.contains("augment") || !patch["augment"].contains("size")) {
    patch["augment"]["size"] = resolution;
  }
  absl::StatusOr<train::TrainConfig> config = train::MergeConfigJson(base, patch);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("training configuration: ", config.status().message()));
  }
  return config;
}

absl::StatusOr<torch::Tensor> DecodeToTensor(const std::string& path) {
  ASSIGN_OR_RETURN(image::RgbImage img, image::DecodeImageFile(path));
  torch::Tensor out;
  RETURN_IF_ERROR(util::TorchCall("decode " + path, [&] {
    out = torch::from_blob(img.pixels.data(), {img.height, img.width, 3}, torch::kUInt8).clone();
  }));
  return out;
}

absl::Status DecodeItems(const std::vector<data::Item>& items, std::vector<torch::Tensor>& images,
                         std::vector<int64_t>& labels) {
  images.clear();
  labels.clear();
  images.reserve(items.size());
  labels.reserve(items.size());
  for (const data::Item& item : items) {
    ASSIGN_OR_RETURN(torch::Tensor t, DecodeToTensor(item.path));
    images.push_back(std::move(t));
    labels.push_back(item.label);
  }
  return absl::OkStatus();
}

// Test accuracy over `items`, decoding `chunk` images at a time and pooling
// the per-chunk results into one EvalResult.
absl::StatusOr<train::EvalResult> EvaluateItems(clip::ClipModel& model,
                                                const clip::VisualPrompts* prompts,
                                                const std::vector<data::Item>& items,
                                                const torch::Tensor& text_features,
                                                int64_t resolution, const RunOptions& o) {
  if (items.empty()) return absl::InvalidArgumentError("the test split has no images");
  const int64_t num_classes = text_features.size(0);
  std::vector<double> correct(static_cast<size_t>(num_classes), 0.0);
  std::vector<int64_t> count(static_cast<size_t>(num_classes), 0);
  double top1 = 0.0;
  double top5 = 0.0;
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, o.eval_chunk));
  for (size_t start = 0; start < items.size(); start += chunk) {
    const size_t end = std::min(items.size(), start + chunk);
    std::vector<data::Item> part(items.begin() + static_cast<std::ptrdiff_t>(start),
                                 items.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<torch::Tensor> images;
    std::vector<int64_t> labels;
    RETURN_IF_ERROR(DecodeItems(part, images, labels));
    ASSIGN_OR_RETURN(train::EvalResult r,
                     train::EvaluateImages(model, prompts, images, labels, text_features,
                                           resolution, o.eval_batch_size));
    top1 += r.top1 * static_cast<double>(r.num_images);
    top5 += r.top5 * static_cast<double>(r.num_images);
    for (size_t c = 0; c < r.per_class_count.size() && c < count.size(); ++c) {
      correct[c] += r.per_class_accuracy[c] * static_cast<double>(r.per_class_count[c]);
      count[c] += r.per_class_count[c];
    }
  }
  train::EvalResult out;
  out.num_images = static_cast<int64_t>(items.size());
  out.top1 = top1 / static_cast<double>(out.num_images);
  out.top5 = top5 / static_cast<double>(out.num_images);
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

std::string ExpandListPath(const std::string& pattern, int64_t seed, int64_t shots) {
  return absl::StrReplaceAll(pattern,
                             {{"{seed}", absl::StrCat(seed)}, {"{shots}", absl::StrCat(shots)}});
}

json ShortClassesJson(const std::vector<data::ShortClass>& shorts) {
  json out = json::array();
  for (const data::ShortClass& s : shorts) {
    out.push_back({{"split", std::string(data::SplitName(s.split))},
                   {"label", s.label},
                   {"class_name", s.class_name},
                   {"available", s.available},
                   {"requested", s.requested}});
  }
  return out;
}

double Percent(double fraction) { return 100.0 * fraction; }

}  // namespace

absl::StatusOr<json> RunProtocol(const RunOptions& o) {
  if (o.setting != "all" && o.setting != "base2novel") {
    return absl::InvalidArgumentError(
        absl::StrCat("--setting must be all or base2novel, got '", o.setting, "'"));
  }
  if (o.seeds.empty()) return absl::InvalidArgumentError("--seeds: at least one seed");
  if (o.shots < 1) return absl::InvalidArgumentError("--shots must be >= 1");
  if (o.out_dir.empty()) return absl::InvalidArgumentError("--out is required");
  const bool b2n = o.setting == "base2novel";
  ASSIGN_OR_RETURN(torch::Dtype dtype, DtypeFor(o));

  ASSIGN_OR_RETURN(data::Dataset dataset, LoadData(o));
  if (dataset.test.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset ", dataset.name, " (", o.dataset_root, ") has no test images"));
  }
  Log(o, absl::StrFormat("dataset %s: %d classes, %d train / %d val / %d test images", dataset.name,
                         dataset.num_classes(), dataset.train.size(), dataset.val.size(),
                         dataset.test.size()));
  const std::vector<std::string> templates =
      o.templates.empty() ? std::vector<std::string>{data::TemplateForDataset(dataset.name)}
                          : o.templates;

  ASSIGN_OR_RETURN(clip::LoadedCheckpoint checkpoint, clip::LoadCheckpoint(o.model_path));
  ASSIGN_OR_RETURN(std::unique_ptr<text::Tokenizer> tokenizer,
                   OpenTokenizer(o, checkpoint.tokenizer_dir));
  clip::ModelOptions model_options;
  model_options.device = o.device;
  model_options.dtype = dtype;
  ASSIGN_OR_RETURN(clip::ClipModel clip_model, clip::BuildClipModel(checkpoint, model_options));
  const clip::ClipConfig clip_config = checkpoint.config;
  const int64_t resolution = clip_config.image_resolution;
  // The weights now live in the model; the loaded copy is not needed again.
  checkpoint.weights.clear();
  Log(o, absl::StrCat("model ", o.model_path, ": ", clip_config.DebugString(), ", fingerprint ",
                      checkpoint.fingerprint, ", device ", o.device));

  std::error_code ec;
  fs::create_directories(fs::path(o.out_dir) / "checkpoints", ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create output folder ", o.out_dir, ": ", ec.message()));
  }

  json result = {{"dataset", dataset.name},
                 {"dataset_root", o.dataset_root},
                 {"layout", o.layout},
                 {"setting", o.setting},
                 {"shots", o.shots},
                 {"seeds", o.seeds},
                 {"templates", templates},
                 {"model",
                  {{"path", o.model_path},
                   {"fingerprint", checkpoint.fingerprint},
                   {"architecture", clip_config.DebugString()}}},
                 {"device", o.device},
                 {"runs", json::array()}};
  std::vector<double> base_acc;
  std::vector<double> novel_acc;

  for (int64_t seed : o.seeds) {
    // Few-shot subset on all classes first, then the class split (CoCoOp).
    data::Dataset few = dataset;
    json short_classes = json::array();
    if (!o.fewshot_list.empty()) {
      ASSIGN_OR_RETURN(
          few, data::ApplyFewShotList(dataset, ExpandListPath(o.fewshot_list, seed, o.shots)));
    } else {
      data::FewShotOptions fso;
      fso.shots = static_cast<int>(o.shots);
      fso.seed = seed;
      fso.error_if_fewer = o.strict_shots;
      ASSIGN_OR_RETURN(data::FewShotResult sampled, data::SampleFewShot(dataset, fso));
      // Short val classes are routine (val takes min(K, 4)); they stay in
      // the JSON but only short training classes are worth a console line.
      std::vector<data::ShortClass> short_train;
      for (const data::ShortClass& s : sampled.short_classes) {
        if (s.split == data::Split::kTrain) short_train.push_back(s);
      }
      if (!short_train.empty()) {
        std::string text = data::DescribeShortClasses(short_train);
        if (!text.empty() && text.back() == '\n') text.pop_back();
        Log(o, absl::StrCat("seed ", seed, ": classes with fewer images than shots (all kept):\n",
                            text));
      }
      short_classes = ShortClassesJson(sampled.short_classes);
      few = std::move(sampled.dataset);
    }
    data::Dataset train_ds = few;
    data::Dataset novel_ds;
    if (b2n) {
      ASSIGN_OR_RETURN(train_ds, data::SubsampleClasses(few, data::ClassSubset::kBase));
      ASSIGN_OR_RETURN(novel_ds, data::SubsampleClasses(few, data::ClassSubset::kNovel));
    }
    if (train_ds.train.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("seed ", seed, ": no training images"));
    }
    ASSIGN_OR_RETURN(train::TrainConfig config, BuildConfig(o, seed, resolution));
    ASSIGN_OR_RETURN(::provp::provp::ProvpOptions resolved,
                     ::provp::provp::ResolveOptions(config.model, clip_config.vision_layers));

    ASSIGN_OR_RETURN(
        torch::Tensor base_text,
        clip::ClassTextFeatures(clip_model, *tokenizer, train_ds.class_names, templates));
    train::TrainingSet train_set;
    RETURN_IF_ERROR(DecodeItems(train_ds.train, train_set.images, train_set.labels));
    std::unique_ptr<train::EvalSet> validation;
    if (!train_ds.val.empty()) {
      std::vector<torch::Tensor> val_images;
      std::vector<int64_t> val_labels;
      RETURN_IF_ERROR(DecodeItems(train_ds.val, val_images, val_labels));
      ASSIGN_OR_RETURN(train::EvalSet val_set,
                       train::MakeEvalSet(val_images, val_labels, resolution));
      validation = std::make_unique<train::EvalSet>(std::move(val_set));
    }
    Log(o, absl::StrFormat("seed %d: training on %d images of %d %s classes (%s, %d epochs, "
                           "%d prompts, variant %s)",
                           seed, train_set.images.size(), train_ds.num_classes(), b2n ? "base" : "",
                           config.preset, config.epochs, resolved.num_prompts,
                           ::provp::provp::VariantName(resolved.variant)));

    train::TrainerOptions topt;
    topt.config = config;
    topt.checkpoint_path =
        (fs::path(o.out_dir) / "checkpoints" / absl::StrCat("seed", seed, ".ckpt")).string();
    if (!o.resume) fs::remove(topt.checkpoint_path, ec);
    topt.resume = o.resume;
    topt.backbone_fingerprint = checkpoint.fingerprint;
    topt.cancel = o.cancel;
    topt.report_steps = false;
    topt.on_progress = [&o, seed](const train::TrainProgress& p) {
      if (p.kind == train::TrainProgress::Kind::kEpoch) {
        std::string line = absl::StrFormat(
            "seed %d epoch %d/%d  lr %.3g  loss %.4f (ce %.4f ref %.4f)  train acc %.1f%%", seed,
            p.epoch + 1, p.epochs, p.lr, p.loss, p.ce, p.ref, Percent(p.train_accuracy));
        if (p.validation_accuracy >= 0) {
          absl::StrAppendFormat(&line, "  val acc %.1f%%", Percent(p.validation_accuracy));
        }
        absl::StrAppendFormat(&line, "  %.0f img/s  eta %.0fs", p.images_per_second, p.eta_seconds);
        Log(o, line);
      }
      return o.cancel == nullptr || !o.cancel->load();
    };
    ASSIGN_OR_RETURN(std::unique_ptr<train::Trainer> trainer,
                     train::Trainer::Create(clip_model, topt));
    ASSIGN_OR_RETURN(train::TrainResult trained,
                     trainer->Run(train_set, base_text, validation.get()));
    train_set = {};
    validation.reset();

    const clip::VisualPrompts* prompts = trainer->model().visual_prompts();
    ASSIGN_OR_RETURN(
        train::EvalResult base_eval,
        EvaluateItems(trainer->model().clip(), prompts, train_ds.test, base_text, resolution, o));
    json run = {{"seed", seed},
                {"train_images", train_ds.train.size()},
                {"val_images", train_ds.val.size()},
                {"short_classes", short_classes},
                {"config", train::ConfigToJson(config)},
                {"training",
                 {{"epochs_completed", trained.epochs_completed},
                  {"selected_epoch", trained.selected_epoch},
                  {"steps", trained.steps},
                  {"final_loss", trained.final_loss},
                  {"final_ce", trained.final_ce},
                  {"final_ref", trained.final_ref},
                  {"final_train_accuracy", trained.final_train_accuracy},
                  {"best_validation_accuracy", trained.best_validation_accuracy},
                  {"seconds", trained.seconds},
                  {"images_per_second", trained.images_per_second},
                  {"history", trained.history}}}};
    json evaluation;
    const double base_pct = Percent(base_eval.top1);
    base_acc.push_back(base_pct);
    if (b2n) {
      ASSIGN_OR_RETURN(
          torch::Tensor novel_text,
          clip::ClassTextFeatures(clip_model, *tokenizer, novel_ds.class_names, templates));
      ASSIGN_OR_RETURN(train::EvalResult novel_eval,
                       EvaluateItems(trainer->model().clip(), prompts, novel_ds.test, novel_text,
                                     resolution, o));
      const double novel_pct = Percent(novel_eval.top1);
      novel_acc.push_back(novel_pct);
      run["base_accuracy"] = base_pct;
      run["novel_accuracy"] = novel_pct;
      run["hm"] = data::HarmonicMean(base_pct, novel_pct);
      run["base_classes"] = train_ds.class_names;
      run["novel_classes"] = novel_ds.class_names;
      evaluation = {{"base", train::EvalResultToJson(base_eval)},
                    {"novel", train::EvalResultToJson(novel_eval)}};
      Log(o, absl::StrFormat("seed %d: base %.2f%%  novel %.2f%%  HM %.2f", seed, base_pct,
                             novel_pct, data::HarmonicMean(base_pct, novel_pct)));
    } else {
      run["accuracy"] = base_pct;
      evaluation = {{"test", train::EvalResultToJson(base_eval)}};
      Log(o, absl::StrFormat("seed %d: test accuracy %.2f%%", seed, base_pct));
    }
    run["evaluation"] = evaluation;

    train::PromptSet set =
        train::PromptSetFromRun(resolved, config, trained, clip_config, checkpoint.fingerprint,
                                train_ds.class_names, templates);
    set.info.evaluation = evaluation;
    const std::string set_path =
        (fs::path(o.out_dir) / absl::StrCat("prompts_seed", seed, ".safetensors")).string();
    RETURN_IF_ERROR(train::SavePromptSet(set_path, set));
    run["prompt_set"] = set_path;
    result["runs"].push_back(std::move(run));
  }

  json summary;
  const data::MeanStd base = data::ComputeMeanStd(base_acc);
  if (b2n) {
    const data::MeanStd novel = data::ComputeMeanStd(novel_acc);
    summary = {{"base", {{"mean", base.mean}, {"std", base.std}}},
               {"novel", {{"mean", novel.mean}, {"std", novel.std}}},
               // As the protocol reports it: HM of the seed-averaged accuracies.
               {"hm", data::HarmonicMean(base.mean, novel.mean)}};
  } else {
    summary = {{"accuracy", {{"mean", base.mean}, {"std", base.std}}}};
  }
  summary["unit"] = "percent";
  result["summary"] = summary;
  const std::string result_path = (fs::path(o.out_dir) / "result.json").string();
  RETURN_IF_ERROR(util::WriteFileAtomic(result_path, result.dump(2) + "\n"));
  return result;
}

std::string FormatResultTable(const json& result) {
  const bool b2n = result.value("setting", "") == "base2novel";
  std::string out;
  auto number = [](const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  if (b2n) {
    absl::StrAppendFormat(&out, "%-8s %8s %8s %8s\n", "seed", "base", "novel", "HM");
  } else {
    absl::StrAppendFormat(&out, "%-8s %8s\n", "seed", "accuracy");
  }
  for (const json& run : result.value("runs", json::array())) {
    const std::string seed = absl::StrCat(run.value("seed", int64_t{0}));
    if (b2n) {
      absl::StrAppendFormat(&out, "%-8s %8.2f %8.2f %8.2f\n", seed, number(run, "base_accuracy"),
                            number(run, "novel_accuracy"), number(run, "hm"));
    } else {
      absl::StrAppendFormat(&out, "%-8s %8.2f\n", seed, number(run, "accuracy"));
    }
  }
  const json summary = result.value("summary", json::object());
  if (b2n) {
    const json base = summary.value("base", json::object());
    const json novel = summary.value("novel", json::object());
    absl::StrAppendFormat(&out, "%-8s %8.2f %8.2f %8.2f\n", "mean", number(base, "mean"),
                          number(novel, "mean"), number(summary, "hm"));
    absl::StrAppendFormat(&out, "%-8s %8.2f %8.2f %8s\n", "std", number(base, "std"),
                          number(novel, "std"), "");
  } else {
    const json acc = summary.value("accuracy", json::object());
    absl::StrAppendFormat(&out, "%-8s %8.2f\n", "mean", number(acc, "mean"));
    absl::StrAppendFormat(&out, "%-8s %8.2f\n", "std", number(acc, "std"));
  }
  return out;
}

}  // namespace provp::tools
