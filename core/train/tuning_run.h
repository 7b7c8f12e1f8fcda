// The one implementation of a tuning run, in the protocol's order
// (METHOD.md section 6): draw the few-shot subset on ALL classes exactly as
// CoOp does (Python random, train then min(K, 4) validation shots), then cut
// base/novel classes (the CoCoOp cut or hand-picked novel classes), train on
// the base classes (validation accuracy every epoch; selection last or
// best_val, never the test split), evaluate base among base and novel
// among novel with and without the prompts, and write the prompt set.
// The server's engine, provp-train and the quality benchmark call it and
// keep only their own input and output code (how images are read, what is
// printed or stored).
// One run at a time per backbone model (the trainer is not thread-safe);
// the cancel flag and callbacks may be used from other threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "core/clip/clip_model.h"
#include "core/data/dataset.h"
#include "core/data/few_shot.h"
#include "core/provp/provp_options.h"
#include "core/text/tokenizer.h"
#include "core/train/evaluation.h"
#include "core/train/prompt_set.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"

namespace provp::train {

// The frozen model a run trains prompts for.
struct TuningBackbone {
  clip::ClipModel model{nullptr};
  const text::Tokenizer* tokenizer = nullptr;
  // Recorded in checkpoints and the prompt set.
  std::string fingerprint;
};

// Reads one dataset image as uint8 [H,W,3] (the front end owns decoding
// and its limits).
using TuningImageLoader =
    std::function<absl::StatusOr<torch::Tensor>(const data::Item& item, data::Split split)>;

// Which classes are held out as novel.
enum class NovelClasses {
  kNone,      // few-shot on every class; evaluated among all of them
  kProtocol,  // CoCoOp: the sorted train labels after the first ceil(n/2)
  kExplicit,  // TuningRunSpec::novel_labels (hand-picked)
};

struct TuningRunSpec {
  // All classes with their full train/val/test splits (labels index
  // class_names; the item order is the order shots are drawn in).
  data::Dataset dataset;
  NovelClasses novel = NovelClasses::kNone;
  std::vector<int> novel_labels;  // kExplicit only
  // Resolved configuration; config.shots and config.seed drive the draw.
  TrainConfig config;
  // Few-shot draw: a class with fewer than `shots` images keeps all (CoOp)
  // unless strict_shots; a non-empty fewshot_list file replaces the draw
  // (data::ApplyFewShotList).
  bool strict_shots = false;
  std::string fewshot_list;
  // Templates with "{}"; empty = data::kDefaultTemplate.
  std::vector<std::string> templates;
  TuningImageLoader load_image;

  // Evaluation: test images decoded `eval_chunk` at a time, `eval_batch_size`
  // per forward. When the dataset has no test split the training pool is
  // evaluated instead (TuningRunResult::evaluated_on_test says which).
  int64_t eval_batch_size = 256;
  int64_t eval_chunk = 1024;
  // Also score the frozen model without prompts on the same images.
  bool evaluate_zero_shot = true;

  // Per-epoch checkpoint ("" = none); resumed from when `resume` and it
  // exists and matches, otherwise overwritten.
  std::string checkpoint_path;
  bool resume = true;
  // Progress (epoch reports carry validation accuracy), free-text
  // milestones and cancellation, as in TrainerOptions.
  ProgressCallback on_progress;
  bool report_steps = true;
  std::function<void(const std::string&)> on_message;
  const std::atomic<bool>* cancel = nullptr;

  // Where the prompt set is written (atomically); "" = not written.
  std::string output_path;
};

// One class group's scores.
struct GroupEvaluation {
  std::vector<std::string> class_names;
  EvalResult tuned;
  // Frozen model, no prompts; num_images 0 when not evaluated.
  EvalResult zero_shot;
};

struct TuningRunResult {
  // The drawn subset on all classes, original labels (train and val).
  data::Dataset few_shot;
  std::vector<data::ShortClass> short_classes;
  // Original labels of the two groups, sorted (novel empty for kNone).
  std::vector<int> base_labels;
  std::vector<int> novel_labels;
  TrainConfig config;
  // The model options resolved against the backbone (depth filled in).
  provp::ProvpOptions model_options;
  TrainResult training;
  bool evaluated_on_test = true;
  GroupEvaluation base;
  std::optional<GroupEvaluation> novel;
  // HM of base and novel top-1 (fractions); the base top-1 without novel.
  double harmonic_mean = 0.0;
  PromptSet prompt_set;
};

// Runs the protocol. INVALID_ARGUMENT for bad input (no base classes, a
// label out of range, best_val without a validation split, ...), errors
// of the loader and the trainer as they come (CANCELLED when cancelled).
absl::StatusOr<TuningRunResult> RunTuning(const TuningBackbone& backbone,
                                          const TuningRunSpec& spec);

// JSON of a group's scores (tuned and zero-shot EvalResultToJson).
nlohmann::json GroupEvaluationToJson(const GroupEvaluation& group);

}  // namespace provp::train
