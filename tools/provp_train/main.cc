// provp-train: the paper's protocol offline, without a server.
//   provp-train --model ViT-B-16.pt --dataset-root $DATA --dataset OxfordPets
//               --setting base2novel --seeds 1,2,3 --out runs/pets
// Prints per-epoch progress and a final table (base, novel, HM; mean and std
// over seeds), writes prompts_seed<S>.safetensors and result.json to --out.
// Exit code 0 on success; 1 with a one-line reason on any error; 130 when
// interrupted (the epoch checkpoint stays; rerun with --resume).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/train/hyperparameters.h"
#include "core/util/blas_kernels.h"
#include "core/util/torch_threads.h"
#include "tools/provp_train/run_protocol.h"

namespace {

std::atomic<bool> g_cancel{false};

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  for (const provp::train::PresetSpec& p : provp::train::kPresets) names.emplace_back(p.name);
  return names;
}

std::vector<std::string> VariantNames() {
  return std::vector<std::string>(std::begin(provp::train::kVariantNames),
                                  std::end(provp::train::kVariantNames));
}

extern "C" void OnSignal(int) { g_cancel.store(true); }

}  // namespace

int main(int argc, char** argv) {
  provp::util::ReexecWithBestBlasKernels(argv, "provp-train");
  provp::util::SetTorchThreads(0);
  CLI::App app{"provp-train: ProVP-Ref few-shot / base-to-novel protocol on CoOp-layout data"};
  provp::tools::RunOptions o;
  o.seeds.clear();

  app.add_option("--model", o.model_path, "CLIP weights: .safetensors, .pt, or a HF directory")
      ->required();
  app.add_option("--vocab", o.vocab_path,
                 "BPE vocab (.txt.gz or folder with vocab.json+merges.txt); default: next to the "
                 "weights, then $PROVP_CLIP_VOCAB");
  app.add_option("--dataset-root", o.dataset_root,
                 "$DATA folder (coop), class-folder root (folders) or manifest file (manifest)")
      ->required();
  app.add_option("--dataset", o.dataset_name,
                 "CoOp dataset name (OxfordPets, ...) or <name> of split_zhou_<name>.json");
  app.add_option("--layout", o.layout, "coop, folders or manifest")
      ->check(CLI::IsMember({"coop", "folders", "manifest"}));
  app.add_option("--image-root", o.image_root, "Image folder for a generic split_zhou JSON");
  app.add_option("--shots", o.shots,
                 absl::StrCat("Training images per class (recipes exist for ",
                              provp::train::JoinedShotLadder(), ")"))
      ->check(CLI::Range(int64_t{1}, provp::train::kMaxShots));
  app.add_option("--seeds", o.seeds, "Comma-separated seeds, e.g. 1,2,3")->delimiter(',');
  app.add_flag("--strict-shots", o.strict_shots,
               "Fail when a class has fewer training images than --shots");
  app.add_option("--fewshot-list", o.fewshot_list,
                 "JSON few-shot list ({\"train\": [paths], \"val\": [...]}); {seed} and {shots} "
                 "are substituted");
  app.add_option("--setting", o.setting, "all (few-shot) or base2novel")
      ->check(CLI::IsMember({"all", "base2novel"}));
  app.add_option("--novel-classes", o.novel_classes,
                 "base2novel: comma-separated novel class names (default: the protocol's cut, "
                 "the classes after the first ceil(n/2))")
      ->delimiter(',');

  // Hyperparameters: the names and caps of core/train/hyperparameters.h,
  // the same a server job takes; only flags given override the preset.
  provp::train::HyperparameterRequest& hp = o.hyperparameters;
  int64_t epochs = 0, num_prompts = 0, depth = 0, batch_size = 0;
  double learning_rate = 0, weight_decay = 0, alpha = 0, ref_lambda = 0, min_crop_scale = 0;
  bool no_ref = false;
  std::string config_json;
  app.add_option("--preset", hp.preset,
                 absl::StrCat("Recipe: ", provp::train::JoinedPresetNames(),
                              " (default: base_to_novel for base2novel, else few_shot_K for the "
                              "largest K in {",
                              provp::train::JoinedShotLadder(), "} <= --shots)"))
      ->check(CLI::IsMember(PresetNames()));
  auto* o_epochs = app.add_option(
      "--epochs", epochs, absl::StrCat("Training epochs (1-", provp::train::kMaxEpochs, ")"));
  auto* o_lr = app.add_option(
      "--learning-rate", learning_rate,
      absl::StrCat("Peak SGD learning rate (0-", provp::train::kMaxLearningRate, "]"));
  auto* o_wd = app.add_option("--weight-decay", weight_decay, "SGD weight decay");
  auto* o_np = app.add_option(
      "--num-prompts", num_prompts,
      absl::StrCat("Prompt tokens per layer, m (1-", provp::train::kMaxNumPrompts, ")"));
  auto* o_alpha = app.add_option("--alpha", alpha, "Progressive blend weight, [0, 1] (0.01)");
  auto* o_depth = app.add_option("--depth", depth, "Prompted layers (0 = all)");
  auto* o_lambda = app.add_option("--ref-lambda", ref_lambda, "Ref loss weight (1; 0 = no Ref)");
  app.add_flag("--no-ref", no_ref, "Train without the Ref loss (ref_lambda 0)");
  app.add_option("--variant", hp.variant, provp::train::JoinedVariantNames())
      ->check(CLI::IsMember(VariantNames()));
  auto* o_batch =
      app.add_option("--batch-size", batch_size,
                     absl::StrCat("Training batch size (32; 1-", provp::train::kMaxBatchSize, ")"));
  auto* o_crop = app.add_option("--min-crop-scale", min_crop_scale,
                                "Random-resized-crop area floor, (0, 1] (0.08)");
  app.add_option("--selection", hp.selection,
                 "Model selection: last (default) or best_val (best validation top-1)")
      ->check(CLI::IsMember({std::string(provp::train::kSelectionLast),
                             std::string(provp::train::kSelectionBestVal)}));
  app.add_option("--config", config_json,
                 "Extra training-config JSON object applied last, e.g. '{\"momentum\": 0.8}'");

  app.add_option("--template", o.templates,
                 "Text template(s) with {} (repeatable); default: the dataset's template");
  app.add_option("--device", o.device, "cpu, cuda or cuda:N");
  app.add_option("--precision", o.precision,
                 "fp32, bf16 or fp16 (default fp32 on CPU, bf16 on CUDA)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_option("--eval-batch-size", o.eval_batch_size, "Images per evaluation forward")
      ->check(CLI::Range(1, 65536));
  app.add_option("--out", o.out_dir, "Output folder")->required();
  app.add_flag("--resume", o.resume, "Continue from the per-seed epoch checkpoints in --out");
  bool quiet = false;
  app.add_flag("--quiet", quiet, "Only print the final table");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.seeds.empty()) o.seeds = {1};

  if (o_epochs->count() > 0) hp.epochs = epochs;
  if (o_lr->count() > 0) hp.learning_rate = learning_rate;
  if (o_wd->count() > 0) hp.weight_decay = weight_decay;
  if (o_np->count() > 0) hp.num_prompts = num_prompts;
  if (o_alpha->count() > 0) hp.alpha = alpha;
  if (o_depth->count() > 0) hp.depth = depth;
  if (o_lambda->count() > 0) hp.ref_lambda = ref_lambda;
  if (no_ref) hp.use_ref = false;
  if (o_batch->count() > 0) hp.batch_size = batch_size;
  if (o_crop->count() > 0) hp.min_crop_scale = min_crop_scale;
  if (!config_json.empty()) {
    nlohmann::json extra = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
    if (extra.is_discarded() || !extra.is_object()) {
      std::fprintf(stderr, "provp-train: --config is not a JSON object\n");
      return 1;
    }
    o.config_patch = extra;
  }
  o.log = quiet ? nullptr : &std::cout;
  o.cancel = &g_cancel;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  try {
    absl::StatusOr<nlohmann::json> result = provp::tools::RunProtocol(o);
    if (!result.ok()) {
      std::fprintf(stderr, "provp-train: %s\n", std::string(result.status().message()).c_str());
      return result.status().code() == absl::StatusCode::kCancelled ? 130 : 1;
    }
    std::cout << "\n" << provp::tools::FormatResultTable(*result);
    std::cout << "wrote " << o.out_dir << "/result.json and " << (*result)["runs"].size()
              << " prompt set file(s)" << std::endl;
  } catch (const std::exception& e) {
    // Defensive: the core returns Status, but never die with a stack trace.
    std::fprintf(stderr, "provp-train: %s\n", e.what());
    return 1;
  }
  return 0;
}
