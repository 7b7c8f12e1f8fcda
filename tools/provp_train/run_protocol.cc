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
#include <set>
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
#include "core/train/tuning_run.h"
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

// The request resolved as a server job resolves it, then --config's extra
// keys.
absl::StatusOr<train::TrainConfig> BuildConfig(const RunOptions& o, int64_t seed,
                                               int64_t resolution) {
  train::HyperparameterRequest request = o.hyperparameters;
  request.shots = o.shots;
  request.seed = seed;
  request.has_novel_classes = o.setting == "base2novel";
  absl::StatusOr<train::ResolvedHyperparameters> resolved = train::ResolveHyperparameters(request);
  if (!resolved.ok()) {
    const std::string field = train::InvalidHyperparameterField(resolved.status());
    return absl::InvalidArgumentError(absl::StrCat(
        field.empty() ? "" : absl::StrCat("--", absl::StrReplaceAll(field, {{"_", "-"}}), ": "),
        resolved.status().message()));
  }
  ASSIGN_OR_RETURN(train::TrainConfig config, train::ConfigFromResolved(*resolved));
  json patch = o.config_patch;
  // The presets assume 224 px; use the backbone's own resolution unless the
  // caller set an augmentation size.
  if (!patch.contains("augment") || !patch["augment"].contains("size")) {
    patch["augment"]["size"] = resolution;
  }
  absl::StatusOr<train::TrainConfig> merged = train::MergeConfigJson(config, patch);
  if (!merged.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("training configuration: ", merged.status().message()));
  }
  return merged;
}

absl::StatusOr<torch::Tensor> DecodeToTensor(const std::string& path) {
  ASSIGN_OR_RETURN(image::RgbImage img, image::DecodeImageFile(path));
  torch::Tensor out;
  RETURN_IF_ERROR(util::TorchCall("decode " + path, [&] {
    out = torch::from_blob(img.pixels.data(), {img.height, img.width, 3}, torch::kUInt8).clone();
  }));
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
  if (!o.novel_classes.empty() && o.setting != "base2novel") {
    return absl::InvalidArgumentError("--novel-classes needs --setting base2novel");
  }
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

  // Hand-picked novel classes by name.
  std::vector<int> novel_labels;
  for (const std::string& name : o.novel_classes) {
    auto it = std::find(dataset.class_names.begin(), dataset.class_names.end(), name);
    if (it == dataset.class_names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--novel-classes: '", name, "' is not a class of ", dataset.name));
    }
    novel_labels.push_back(static_cast<int>(it - dataset.class_names.begin()));
  }
  train::TuningBackbone backbone{clip_model, tokenizer.get(), checkpoint.fingerprint};

  for (int64_t seed : o.seeds) {
    ASSIGN_OR_RETURN(train::TrainConfig config, BuildConfig(o, seed, resolution));
    train::TuningRunSpec spec;
    spec.dataset = dataset;
    spec.novel = !b2n                   ? train::NovelClasses::kNone
                 : novel_labels.empty() ? train::NovelClasses::kProtocol
                                        : train::NovelClasses::kExplicit;
    spec.novel_labels = novel_labels;
    spec.config = config;
    spec.strict_shots = o.strict_shots;
    if (!o.fewshot_list.empty()) spec.fewshot_list = ExpandListPath(o.fewshot_list, seed, o.shots);
    spec.templates = templates;
    spec.load_image = [](const data::Item& item, data::Split) { return DecodeToTensor(item.path); };
    spec.eval_batch_size = o.eval_batch_size;
    spec.eval_chunk = o.eval_chunk;
    spec.checkpoint_path =
        (fs::path(o.out_dir) / "checkpoints" / absl::StrCat("seed", seed, ".ckpt")).string();
    spec.resume = o.resume;
    spec.cancel = o.cancel;
    spec.report_steps = false;
    spec.on_message = [&o, seed](const std::string& m) {
      Log(o, absl::StrCat("seed ", seed, ": ", m));
    };
    spec.on_progress = [&o, seed](const train::TrainProgress& p) {
      if (p.kind == train::TrainProgress::Kind::kEpoch) {
        std::string line = absl::StrFormat(
            "seed %d epoch %d/%d  lr %.3g  loss %.4f (ce %.4f ref %.4f)  train acc %.1f%%", seed,
            p.epoch, p.epochs, p.learning_rate, p.loss, p.ce, p.ref, Percent(p.train_accuracy));
        if (p.validation_accuracy >= 0) {
          absl::StrAppendFormat(&line, "  val acc %.1f%%", Percent(p.validation_accuracy));
        }
        absl::StrAppendFormat(&line, "  %.0f img/s  eta %.0fs", p.images_per_second, p.eta_seconds);
        Log(o, line);
      }
      return o.cancel == nullptr || !o.cancel->load();
    };
    spec.output_path =
        (fs::path(o.out_dir) / absl::StrCat("prompts_seed", seed, ".safetensors")).string();
    Log(o, absl::StrFormat("seed %d: %s, %d epochs, %d prompts, variant %s", seed, config.preset,
                           config.epochs, config.model.num_prompts,
                           ::provp::provp::VariantName(config.model.variant)));
    ASSIGN_OR_RETURN(train::TuningRunResult r, train::RunTuning(backbone, spec));

    // Short val classes are routine (val takes min(K, 4)); they stay in the
    // JSON but only short training classes are worth a console line.
    std::vector<data::ShortClass> short_train;
    for (const data::ShortClass& sc : r.short_classes) {
      if (sc.split == data::Split::kTrain) short_train.push_back(sc);
    }
    if (!short_train.empty()) {
      std::string text = data::DescribeShortClasses(short_train);
      if (!text.empty() && text.back() == '\n') text.pop_back();
      Log(o, absl::StrCat("seed ", seed, ": classes with fewer images than shots (all kept):\n",
                          text));
    }
    const train::TrainResult& trained = r.training;
    std::vector<std::string> train_paths;
    for (const data::Item& item : r.few_shot.train) train_paths.push_back(item.path);
    int64_t base_train = 0, base_val = 0;
    {
      std::set<int> base(r.base_labels.begin(), r.base_labels.end());
      for (const data::Item& item : r.few_shot.train) base_train += base.count(item.label);
      for (const data::Item& item : r.few_shot.val) base_val += base.count(item.label);
    }
    json run = {{"seed", seed},
                {"train_images", base_train},
                {"val_images", base_val},
                {"drawn_train_images", train_paths},
                {"short_classes", ShortClassesJson(r.short_classes)},
                {"config", train::ConfigToJson(r.config)},
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
    const double base_pct = Percent(r.base.tuned.top1);
    base_acc.push_back(base_pct);
    if (b2n) {
      const double novel_pct = Percent(r.novel->tuned.top1);
      novel_acc.push_back(novel_pct);
      run["base_accuracy"] = base_pct;
      run["novel_accuracy"] = novel_pct;
      run["hm"] = data::HarmonicMean(base_pct, novel_pct);
      run["zero_shot_base_accuracy"] = Percent(r.base.zero_shot.top1);
      run["zero_shot_novel_accuracy"] = Percent(r.novel->zero_shot.top1);
      run["base_classes"] = r.base.class_names;
      run["novel_classes"] = r.novel->class_names;
      evaluation = {{"base", train::EvalResultToJson(r.base.tuned)},
                    {"novel", train::EvalResultToJson(r.novel->tuned)}};
      Log(o, absl::StrFormat(
                 "seed %d: base %.2f%%  novel %.2f%%  HM %.2f  (zero-shot %.2f%% / %.2f%%)", seed,
                 base_pct, novel_pct, data::HarmonicMean(base_pct, novel_pct),
                 Percent(r.base.zero_shot.top1), Percent(r.novel->zero_shot.top1)));
    } else {
      run["accuracy"] = base_pct;
      run["zero_shot_accuracy"] = Percent(r.base.zero_shot.top1);
      evaluation = {{"test", train::EvalResultToJson(r.base.tuned)}};
      Log(o, absl::StrFormat("seed %d: test accuracy %.2f%%  (zero-shot %.2f%%)", seed, base_pct,
                             Percent(r.base.zero_shot.top1)));
    }
    run["evaluation"] = evaluation;
    run["prompt_set"] = spec.output_path;
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
