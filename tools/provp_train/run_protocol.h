// The offline ProVP-Ref protocol behind `provp-train`: load a dataset
// (CoOp layout, class folders or a manifest) and the model, then per seed
// one train::RunTuning (the same run a server job does: draw on all
// classes, base/novel cut, train, evaluate, write the prompt set) and the
// whole result as JSON. This file keeps only provp-train's input and
// output: OpenCV decoding, the console lines and result.json. No flags:
// main.cc maps flags onto RunOptions. Not thread-safe; one run at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "core/train/hyperparameters.h"

namespace provp::tools {

struct RunOptions {
  // CLIP weights in any layout LoadCheckpoint reads.
  std::string model_path;
  // BPE vocabulary (.txt.gz or a folder with vocab.json + merges.txt);
  // empty: the folder next to the weights, then $PROVP_CLIP_VOCAB.
  std::string vocab_path;

  // "coop" (LoadCoopDataset), "folders" (LoadClassFolders) or "manifest"
  // (dataset_root is then the manifest file).
  std::string layout = "coop";
  std::string dataset_root;
  // CoOp name ("OxfordPets"), a generic split_zhou_<name>.json name, or
  // empty (the only split_zhou_*.json in the root). Selects the template.
  std::string dataset_name;
  // Generic split_zhou mode: folder the JSON's paths are relative to.
  std::string image_root;

  int64_t shots = 16;
  std::vector<int64_t> seeds = {1};
  // Fail instead of keeping all images of a class with fewer than `shots`.
  bool strict_shots = false;
  // Explicit few-shot list (ApplyFewShotList) instead of sampling; "{seed}"
  // and "{shots}" in the path are replaced per run.
  std::string fewshot_list;

  // "all" (few-shot on every class) or "base2novel".
  std::string setting = "all";
  // base2novel: the novel classes by name (hand-picked); empty = the
  // protocol's cut (the sorted labels after the first ceil(n/2)).
  std::vector<std::string> novel_classes;
  // What the flags asked for (shots and seed are set from the fields
  // above); resolved by train::ResolveHyperparameters like a server job.
  train::HyperparameterRequest hyperparameters;
  // Extra training-config keys applied last (train::MergeConfigJson).
  nlohmann::json config_patch = nlohmann::json::object();
  // Text templates with "{}"; empty: TemplateForDataset(dataset name).
  std::vector<std::string> templates;

  std::string device = "cpu";
  // "fp32", "bf16" or "fp16"; empty: fp32 on CPU, bf16 on CUDA.
  std::string precision;
  int64_t eval_batch_size = 256;
  // Test images decoded at a time (bounds memory on large test sets).
  int64_t eval_chunk = 1024;

  // Output folder: prompts_seed<S>.safetensors, result.json, checkpoints/.
  std::string out_dir;
  // Continue from checkpoints/seed<S>.ckpt when present.
  bool resume = false;

  // Progress lines go here (nullptr: silent).
  std::ostream* log = nullptr;
  // Set from another thread (e.g. SIGINT) to stop; the run returns CANCELLED.
  const std::atomic<bool>* cancel = nullptr;
};

// Runs every seed and writes the files; returns the JSON also written to
// out_dir/result.json. Errors name the file, field or flag at fault.
absl::StatusOr<nlohmann::json> RunProtocol(const RunOptions& options);

// The final table (per seed, mean and std over seeds; base, novel and HM in
// base2novel mode) from a RunProtocol result.
std::string FormatResultTable(const nlohmann::json& result);

}  // namespace provp::tools
