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
#include "core/util/torch_threads.h"
#include "tools/provp_train/run_protocol.h"

namespace {

std::atomic<bool> g_cancel{false};

extern "C" void OnSignal(int) { g_cancel.store(true); }

}  // namespace

int main(int argc, char** argv) {
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
  app.add_option("--shots", o.shots, "Training images per class")->check(CLI::Range(1, 100000));
  app.add_option("--seeds", o.seeds, "Comma-separated seeds, e.g. 1,2,3")->delimiter(',');
  app.add_flag("--strict-shots", o.strict_shots,
               "Fail when a class has fewer training images than --shots");
  app.add_option("--fewshot-list", o.fewshot_list,
                 "JSON few-shot list ({\"train\": [paths], \"val\": [...]}); {seed} and {shots} "
                 "are substituted");
  app.add_option("--setting", o.setting, "all (few-shot) or base2novel")
      ->check(CLI::IsMember({"all", "base2novel"}));
  app.add_option("--preset", o.preset,
                 "Recipe: few_shot_{1,2,4,8,16}[_no_ref], base_to_novel, imagenet");

  int64_t epochs = 0, num_prompts = 0, depth = 0, batch_size = 0;
  double lr = 0, weight_decay = 0, alpha = 0, lambda = 0;
  std::string variant, selection, config_json;
  auto* o_epochs = app.add_option("--epochs", epochs, "Training epochs");
  auto* o_lr = app.add_option("--lr", lr, "SGD learning rate");
  auto* o_wd = app.add_option("--weight-decay", weight_decay, "SGD weight decay");
  auto* o_np = app.add_option("--num-prompts", num_prompts, "Prompt tokens per layer (m)");
  auto* o_alpha = app.add_option("--alpha", alpha, "Progressive blend weight (0.01)");
  auto* o_depth = app.add_option("--depth", depth, "Prompted layers (0 = all)");
  auto* o_lambda = app.add_option("--lambda", lambda, "Ref loss weight (1; 0 = no Ref)");
  auto* o_variant =
      app.add_option("--variant", variant, "provp_ref, provp, vpt_deep, vpt_shallow, zero_shot");
  auto* o_batch = app.add_option("--batch-size", batch_size, "Training batch size (32)");
  auto* o_sel = app.add_option("--selection", selection, "last_epoch or best_validation")
                    ->check(CLI::IsMember({"last_epoch", "best_validation"}));
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

  nlohmann::json overrides = nlohmann::json::object();
  // Only flags given on the command line override the preset;
  // MergeConfigJson applies a variant's own defaults before the other keys.
  if (o_variant->count() > 0) overrides["variant"] = variant;
  if (o_epochs->count() > 0) overrides["epochs"] = epochs;
  if (o_lr->count() > 0) overrides["lr"] = lr;
  if (o_wd->count() > 0) overrides["weight_decay"] = weight_decay;
  if (o_np->count() > 0) overrides["num_prompts"] = num_prompts;
  if (o_alpha->count() > 0) overrides["alpha"] = alpha;
  if (o_depth->count() > 0) overrides["depth"] = depth;
  if (o_lambda->count() > 0) overrides["lambda_ref"] = lambda;
  if (o_batch->count() > 0) overrides["batch_size"] = batch_size;
  if (o_sel->count() > 0) overrides["selection"] = selection;
  if (!config_json.empty()) {
    nlohmann::json extra = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
    if (extra.is_discarded() || !extra.is_object()) {
      std::fprintf(stderr, "provp-train: --config is not a JSON object\n");
      return 1;
    }
    for (const auto& [key, value] : extra.items()) overrides[key] = value;
  }
  o.overrides = overrides;
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
