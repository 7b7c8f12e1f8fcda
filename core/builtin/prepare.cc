// PrepareBuiltin: vocabulary -> pretraining -> safetensors + vocab files ->
// demo datasets -> zero-shot check, each step skipped when its cached
// output carries the same key. Keys hash the options that change the output
// plus a format version bumped whenever generation code changes results.
#include "core/builtin/prepare.h"

#include <filesystem>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/builtin/evaluate.h"
#include "core/builtin/scenes.h"
#include "core/clip/safetensors.h"
#include "core/text/bpe_trainer.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::builtin {
namespace {

// Bump when code changes what a given set of options produces: the model
// version for the vocabulary, captions, pretraining data or loop; the
// dataset version for the demo datasets' rendering.
constexpr int kModelVersion = 4;
constexpr int kDatasetVersion = 4;
constexpr char kManifestName[] = "builtin.json";
constexpr char kStampName[] = ".provp_builtin_stamp";

std::string Hex(uint64_t v) { return absl::StrFormat("%016x", v); }

std::string ModelKey(const PrepareOptions& o) {
  const PretrainOptions& p = o.pretrain;
  clip::ClipConfig c = o.architecture;
  c.vocab_size = 0;
  const std::string canon = absl::StrCat(
      "v", kModelVersion, "|steps", p.steps, "|bs", p.batch_size, "|lr", p.learning_rate, "|wd",
      p.weight_decay, "|wu", p.warmup_steps, "|ff", p.fashion_fraction, "|tw",
      p.shape_twin_fraction, "|bare", p.bare_shape_caption_fraction, "|seed", p.seed, "|bpe",
      o.bpe_merges, "|vc", o.vocab_captions, "|", c.DebugString());
  return Hex(util::Fnv1a64(canon.data(), canon.size()));
}

std::string DatasetKey(const DemoSizes& s) {
  const std::string canon = absl::StrCat("v", kDatasetVersion, "|", s.train_per_class, "|",
                                         s.val_per_class, "|", s.test_per_class, "|", s.resolution,
                                         "|", s.seed, "|style", static_cast<int>(s.style));
  return Hex(util::Fnv1a64(canon.data(), canon.size()));
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

void Log(const PrepareOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

}  // namespace

std::vector<std::string> VocabularyCorpus(int count, uint64_t seed) {
  Random rng(seed);
  std::vector<std::string> corpus;
  corpus.reserve(count + 32);
  for (int i = 0; i < count; ++i) {
    if (rng.Bernoulli(0.5)) {
      corpus.push_back(FashionCaption(rng.Int(10), rng));
    } else {
      corpus.push_back(SceneCaption(RandomScene(rng), rng));
    }
  }
  for (const auto& names : {ShapeNames(), FashionClassNames()}) {
    for (const std::string& name : names)
      corpus.push_back(absl::StrCat("a photo of a ", name, "."));
  }
  return corpus;
}

absl::StatusOr<PrepareResult> PrepareBuiltin(const PrepareOptions& o) {
  if (o.data_dir.empty()) return absl::InvalidArgumentError("PrepareOptions.data_dir is empty");
  if (o.bpe_merges < 0 || o.bpe_merges > 100000 || o.vocab_captions < 1 ||
      o.vocab_captions > 10000000) {
    return absl::InvalidArgumentError(
        "PrepareOptions: bpe_merges must be in [0, 100000] and vocab_captions in [1, 1e7]");
  }
  PrepareResult result;
  result.model_dir = o.data_dir + "/model";
  result.weights_path = result.model_dir + "/clip.safetensors";
  const std::string manifest_path = result.model_dir + "/" + kManifestName;
  const std::string model_key = ModelKey(o);
  DemoSizes sizes = o.sizes;
  sizes.resolution = static_cast<int>(o.architecture.image_resolution);
  const std::string dataset_key = DatasetKey(sizes);

  // --- Model ---------------------------------------------------------------
  nlohmann::json manifest;
  bool reuse = false;
  if (!o.force && Exists(manifest_path) && Exists(result.weights_path) &&
      Exists(result.model_dir + "/vocab.json") && Exists(result.model_dir + "/merges.txt")) {
    auto text = util::ReadFile(manifest_path, 1 << 20);
    if (text.ok()) {
      manifest = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      reuse = manifest.is_object() && manifest.value("key", "") == model_key;
    }
  }
  std::unique_ptr<text::Tokenizer> tokenizer;
  std::optional<clip::ClipModel> model;
  if (reuse) {
    result.model_reused = true;
    Log(o, absl::StrCat("model: reusing ", result.weights_path));
    ASSIGN_OR_RETURN(tokenizer, text::Tokenizer::FromPath(result.model_dir));
  } else {
    std::error_code ec;
    std::filesystem::create_directories(result.model_dir, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", result.model_dir, ": ", ec.message()));
    }
    // An interrupted rebuild must not leave an old manifest vouching for
    // new, half-written files.
    std::filesystem::remove(manifest_path, ec);
    Log(o,
        absl::StrCat("vocabulary: ", o.bpe_merges, " merges from ", o.vocab_captions, " captions"));
    ASSIGN_OR_RETURN(text::BpeVocabulary vocab,
                     text::BuildBpeVocabulary(VocabularyCorpus(o.vocab_captions, o.pretrain.seed),
                                              o.bpe_merges));
    RETURN_IF_ERROR(vocab.WriteHfVocabulary(result.model_dir));
    ASSIGN_OR_RETURN(tokenizer, text::Tokenizer::FromPath(result.model_dir));
    clip::ClipConfig config = o.architecture;
    config.vocab_size = tokenizer->vocab_size();
    RETURN_IF_ERROR(clip::ValidateConfig(config));
    Log(o, absl::StrCat("model: ", config.DebugString()));
    ASSIGN_OR_RETURN(clip::ClipModel fresh,
                     clip::BuildRandomClipModel(config, clip::ModelOptions{}, o.pretrain.seed));
    model = fresh;
    Log(o, absl::StrCat("fashion-mnist: reading ", o.fashion_mnist_dir));
    ASSIGN_OR_RETURN(FashionMnist fashion, LoadFashionMnist(o.fashion_mnist_dir, /*train=*/true));
    PretrainOptions popts = o.pretrain;
    if (!popts.on_progress && o.log) {
      popts.on_progress = [&o, total = popts.steps](int64_t step, double loss, double acc,
                                                    double scale) {
        o.log(absl::StrFormat("pretrain: step %d/%d loss %.3f batch-acc %.3f logit-scale %.1f",
                              step, total, loss, acc, scale));
      };
    }
    ASSIGN_OR_RETURN(result.pretrain, Pretrain(*model, *tokenizer, fashion, popts));
    result.pretrain_seconds = result.pretrain.seconds;
    Log(o, absl::StrFormat("pretrain: %d steps in %.1f s", result.pretrain.steps,
                           result.pretrain.seconds));
    std::map<std::string, torch::Tensor> weights;
    for (const auto& item : (*model)->named_parameters(/*recurse=*/true)) {
      weights[item.key()] = item.value().detach().to(torch::kCPU, torch::kFloat32);
    }
    RETURN_IF_ERROR(
        clip::WriteSafetensors(result.weights_path, weights,
                               {{"format", "pt"},
                                {"provp_builtin_key", model_key},
                                {"provp_builtin_version", absl::StrCat(kModelVersion)}}));
  }
  result.vocab_size = tokenizer->vocab_size();

  // --- Datasets ------------------------------------------------------------
  ASSIGN_OR_RETURN(FashionMnist t10k, LoadFashionMnist(o.fashion_mnist_dir, /*train=*/false));
  std::vector<DemoDataset> datasets;
  {
    ASSIGN_OR_RETURN(DemoDataset shapes, MakeDemoShapes(sizes));
    datasets.push_back(std::move(shapes));
    ASSIGN_OR_RETURN(DemoDataset fashion, MakeDemoFashion(t10k, sizes));
    datasets.push_back(std::move(fashion));
    ASSIGN_OR_RETURN(DemoDataset colors, MakeDemoColors(sizes));
    datasets.push_back(std::move(colors));
  }
  result.datasets_reused = true;
  for (const DemoDataset& d : datasets) {
    const std::string dir = absl::StrCat(o.data_dir, "/datasets/", d.name);
    const std::string stamp = dir + "/" + kStampName;
    result.dataset_dirs[d.name] = dir;
    auto old = util::ReadFile(stamp, 4096);
    if (!o.force && old.ok() && *old == dataset_key &&
        Exists(absl::StrCat(dir, "/split_zhou_", d.name, ".json"))) {
      Log(o, absl::StrCat("dataset ", d.name, ": reusing ", dir));
      continue;
    }
    result.datasets_reused = false;
    Log(o, absl::StrCat("dataset ", d.name, ": writing ", d.train.size(), "/", d.val.size(), "/",
                        d.test.size(), " train/val/test images to ", dir));
    std::error_code ec;
    std::filesystem::remove(stamp, ec);
    RETURN_IF_ERROR(WriteCoopDataset(d, dir));
    RETURN_IF_ERROR(util::WriteFileAtomic(stamp, dataset_key));
  }

  // --- Zero-shot check -----------------------------------------------------
  if (reuse && manifest.contains("zero_shot") && manifest["zero_shot"].is_object() &&
      manifest.value("dataset_key", "") == dataset_key) {
    for (const auto& [name, acc] : manifest["zero_shot"].items()) {
      if (acc.is_number()) result.zero_shot_accuracy[name] = acc.get<double>();
    }
    if (manifest.contains("zero_shot_pretrain_style") &&
        manifest["zero_shot_pretrain_style"].is_object()) {
      for (const auto& [name, acc] : manifest["zero_shot_pretrain_style"].items()) {
        if (acc.is_number()) result.zero_shot_pretrain_style[name] = acc.get<double>();
      }
    }
    result.pretrain_seconds = manifest.value("pretrain_seconds", 0.0);
  } else {
    if (!model) {
      // Cached weights but a new dataset key: load the weights back.
      ASSIGN_OR_RETURN(clip::SafetensorsContents contents,
                       clip::ReadSafetensors(result.weights_path));
      clip::ClipConfig config = o.architecture;
      config.vocab_size = tokenizer->vocab_size();
      ASSIGN_OR_RETURN(clip::ClipModel loaded,
                       clip::BuildRandomClipModel(config, clip::ModelOptions{}, 0));
      RETURN_IF_ERROR(loaded->LoadWeights(contents.tensors));
      model = loaded;
      result.pretrain_seconds = manifest.value("pretrain_seconds", 0.0);
    }
    for (const DemoDataset& d : datasets) {
      ASSIGN_OR_RETURN(double acc, ZeroShotAccuracy(*model, *tokenizer, d.class_names, d.test));
      result.zero_shot_accuracy[d.name] = acc;
    }
    DemoSizes in_domain = sizes;
    in_domain.style = RenderStyle::kPretrain;
    ASSIGN_OR_RETURN(DemoDataset shapes, MakeDemoShapes(in_domain));
    ASSIGN_OR_RETURN(DemoDataset fashion, MakeDemoFashion(t10k, in_domain));
    ASSIGN_OR_RETURN(DemoDataset colors, MakeDemoColors(in_domain));
    for (const DemoDataset* d : {&shapes, &fashion, &colors}) {
      ASSIGN_OR_RETURN(double acc, ZeroShotAccuracy(*model, *tokenizer, d->class_names, d->test));
      result.zero_shot_pretrain_style[d->name] = acc;
    }
  }
  for (const auto& [name, acc] : result.zero_shot_accuracy) {
    const auto in_domain = result.zero_shot_pretrain_style.find(name);
    Log(o,
        absl::StrFormat(
            "zero-shot %s: %.1f%% (chance %.1f%%; %.1f%% in the pretraining style)", name,
            100 * acc, name == kDemoShapesName ? 100.0 / kNumShapes : 10.0,
            in_domain == result.zero_shot_pretrain_style.end() ? -1.0 : 100 * in_domain->second));
  }

  nlohmann::json out = {
      {"key", model_key},
      {"dataset_key", dataset_key},
      {"model_version", kModelVersion},
      {"dataset_version", kDatasetVersion},
      {"vocab_size", result.vocab_size},
      {"pretrain_seconds", result.pretrain_seconds},
      {"zero_shot", result.zero_shot_accuracy},
      {"zero_shot_pretrain_style", result.zero_shot_pretrain_style},
  };
  if (!reuse) {
    out["pretrain"] = {{"steps", result.pretrain.steps},
                       {"final_loss", result.pretrain.final_loss},
                       {"final_batch_accuracy", result.pretrain.final_batch_accuracy},
                       {"logit_scale", result.pretrain.logit_scale}};
  } else if (manifest.contains("pretrain")) {
    out["pretrain"] = manifest["pretrain"];
  }
  RETURN_IF_ERROR(util::WriteFileAtomic(manifest_path, out.dump(2)));
  return result;
}

}  // namespace provp::builtin
