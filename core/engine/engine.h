// What the server sees of the model: an inference and tuning engine over a
// frozen CLIP backbone, in plain types and absl::Status (no LibTorch in this
// header), so the server and its tests build and run against a fake.
// The LibTorch implementation is torch_engine.h. Implementations are
// thread-safe: encode calls may run concurrently with each other, with
// prompt-set loads and with one RunTuning.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/train/hyperparameters.h"

namespace provp::engine {

// Decoded 8-bit RGB, row-major [height, width, 3]; or, once
// Engine::PrepareImage has run (eval_crop), the model's test-time crop as
// three planes [3, height, width] of 8-bit levels.
struct Image {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> rgb;
  bool eval_crop = false;
};

// Row-major float matrix [rows, dim]; rows are L2-normalised features.
struct FeatureMatrix {
  int64_t rows = 0;
  int64_t dim = 0;
  std::vector<float> data;

  const float* row(int64_t i) const { return data.data() + i * dim; }
  int64_t bytes() const { return static_cast<int64_t>(data.size() * sizeof(float)); }
};

struct ModelInfo {
  // Fingerprint of the backbone weights (prompt sets record it).
  std::string backbone;
  // One-line description of the architecture.
  std::string description;
  // "cpu", "cuda:0", ...
  std::string device;
  int image_resolution = 0;
  int embed_dim = 0;
  // exp(logit_scale): logits = logit_scale * cosine.
  double logit_scale = 100.0;
};

// Memory of the engine's accelerator (see clip::QueryDeviceMemory).
struct DeviceMemory {
  std::string device;           // "cuda:0", ...
  int64_t allocated_bytes = 0;  // held by live tensors
  int64_t reserved_bytes = 0;   // held by LibTorch's caching allocator
  int64_t total_bytes = 0;      // the device's size
};

// What a prompt-set file says about itself.
struct PromptSetMeta {
  std::string backbone;
  int num_prompts = 0;
  int depth = 0;
  double alpha = 0.0;
  std::string variant;
  // Classes it was trained on, and the dataset's novel classes.
  std::vector<std::string> base_class_names;
  std::vector<std::string> novel_class_names;
  // Templates used in training (the default for classification).
  std::vector<std::string> templates;
  // Memory the prompts take when loaded.
  int64_t memory_bytes = 0;
};

// The engine's prompt-set residency (TorchEngineOptions.prompt_set_budget_bytes):
// sets stay registered when their tensors are evicted and are read back
// from their files on next use.
struct PromptSetCacheStats {
  int64_t loads = 0;      // tensor loads from files, first loads included
  int64_t evictions = 0;  // tensors dropped to stay within the budget
  int64_t resident_bytes = 0;
  int64_t resident_sets = 0;
  int64_t registered_sets = 0;
  int64_t budget_bytes = 0;  // 0: no limit
};

enum class Split { kTrain, kVal, kTest };

// One dataset image as the server stores it.
struct TuningItem {
  std::string path;
  int label = 0;  // index into TuningSpec::class_names
  Split split = Split::kTrain;
};

struct TuningSpec {
  std::string job_id;
  // All classes; labels index this list.
  std::vector<std::string> class_names;
  // Indices of the novel classes (never trained on; evaluated separately).
  std::vector<int> novel_classes;
  std::vector<TuningItem> items;
  // Reads and decodes one item (the server owns decoding and its limits).
  std::function<absl::StatusOr<Image>(const TuningItem&)> load_image;
  // Text templates with "{}"; empty = the default.
  std::vector<std::string> templates;

  // Hyperparameters; 0 / unset = the preset's value.
  int shots = 0;
  int num_prompts = 0;
  int epochs = 0;
  double learning_rate = 0.0;
  int batch_size = 0;
  int64_t seed = 1;
  std::string variant;  // "provp_ref" (default), "provp", "vpt_deep", "vpt_shallow"
  std::string preset;
  std::optional<bool> use_feature_reformation;
  std::optional<double> alpha;
  std::optional<double> ref_lambda;
  std::optional<double> weight_decay;
  std::optional<double> min_crop_scale;  // random-resized-crop area floor
  std::string selection;                 // "last" (default) or "best_val"

  // Per-epoch checkpoint; resumed from when it exists and matches.
  std::string checkpoint_path;
  // Where the finished prompt set is written (atomically).
  std::string output_path;
};

struct TuningProgress {
  bool epoch_end = false;
  int epoch = 0;  // 1-based epoch in progress / just finished
  int total_epochs = 0;
  int64_t step = 0;  // global, 1-based
  int64_t total_steps = 0;
  double learning_rate = 0.0;
  double loss = 0.0;
  double loss_xe = 0.0;
  double loss_ref = 0.0;
  double train_accuracy = 0.0;
  double images_per_second = 0.0;
  double eta_seconds = 0.0;
  // Epoch ends: top-1 on the few-shot validation split (min(K, 4) images
  // per base class); -1 when the dataset has no validation split.
  double validation_accuracy = -1.0;
};

struct TuningCallbacks {
  // Step and epoch-end reports (epoch ends come after the checkpoint is
  // written).
  std::function<void(const TuningProgress&)> on_progress;
  // Free-text milestones ("resumed from epoch 3", "evaluating").
  std::function<void(const std::string&)> on_message;
  // Polled between steps; true stops the run with CANCELLED (the last
  // epoch checkpoint stays for a later resume).
  const std::atomic<bool>* stop = nullptr;
};

struct ClassAccuracy {
  std::string class_name;
  double accuracy = 0.0;
  int64_t num_images = 0;
  bool novel = false;
};

struct TuningEvaluation {
  double base_accuracy = 0.0;
  double novel_accuracy = 0.0;
  double harmonic_mean = 0.0;
  int64_t num_base_images = 0;
  int64_t num_novel_images = 0;
  double zero_shot_base_accuracy = 0.0;
  double zero_shot_novel_accuracy = 0.0;
  std::vector<ClassAccuracy> per_class;
};

// One finished epoch, as the job's history keeps it.
struct EpochSummary {
  int epoch = 0;  // 1-based
  double learning_rate = 0.0;
  double loss = 0.0;
  double train_accuracy = 0.0;
  double validation_accuracy = -1.0;  // -1: no validation split
};

struct TuningOutcome {
  PromptSetMeta prompt_set;
  TuningEvaluation evaluation;
  // The values the run used (preset, variant and overrides resolved).
  train::ResolvedHyperparameters hyperparameters;
  // Paths of the drawn training images, in draw order (all classes; the
  // novel ones are not trained on).
  std::vector<std::string> train_image_paths;
  std::vector<EpochSummary> history;
  // 1-based epoch whose prompts were kept (selection), 0 when none.
  int selected_epoch = 0;
  double best_validation_accuracy = -1.0;
  // Epoch the run resumed from (0 = fresh start).
  int resumed_from_epoch = 0;
  int epochs_completed = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  virtual const ModelInfo& info() const = 0;

  // The accelerator's memory now; nullopt on CPU or when it cannot be read.
  // Cheap and thread-safe: every metrics scrape calls it.
  virtual std::optional<DeviceMemory> DeviceMemoryUsage() const = 0;

  // Runs a few forwards so the first request does not pay for lazy
  // initialisation. The server reports SERVING only after this succeeds.
  virtual absl::Status Warmup() = 0;

  // Resizes and crops a decoded image to the model's input (the 8-bit
  // levels of its test-time preprocessing, eval_crop set), so that this
  // work runs on the caller's thread (the server's preprocessing pool)
  // rather than on the thread that runs the model, which then only
  // normalises. Encoding the prepared image gives the same features as
  // encoding the decoded one. INVALID_ARGUMENT for an image the
  // preprocessing refuses. Thread-safe; the default leaves the image as it
  // is (engines that resize nothing).
  virtual absl::StatusOr<Image> PrepareImage(Image image) const { return image; }

  // L2-normalised image features [N, D], with the visual prompts of a
  // loaded prompt set (`prompt_set` = its id) or none ("" = zero-shot).
  // FAILED_PRECONDITION for a prompt set that is not loaded.
  virtual absl::StatusOr<FeatureMatrix> EncodeImages(const std::vector<const Image*>& images,
                                                     const std::string& prompt_set) = 0;

  // One batch whose images use different prompt sets: prompt_sets[i] is
  // image i's ("" = zero-shot). Rows come back in input order and equal
  // EncodeImages of each image with its own set (to float rounding). This
  // default runs one EncodeImages per distinct set; TorchEngine instead
  // runs one forward per prompt shape (depth, m) with each image's prompts
  // gathered, and one for the zero-shot images.
  virtual absl::StatusOr<FeatureMatrix> EncodeImagesMixed(
      const std::vector<const Image*>& images, const std::vector<std::string>& prompt_sets) {
    if (images.size() != prompt_sets.size()) {
      return absl::InvalidArgumentError("EncodeImagesMixed: one prompt set per image");
    }
    std::map<std::string, std::vector<size_t>> by_set;
    for (size_t i = 0; i < images.size(); ++i) by_set[prompt_sets[i]].push_back(i);
    FeatureMatrix out;
    out.rows = static_cast<int64_t>(images.size());
    for (const auto& [set, rows] : by_set) {
      std::vector<const Image*> group;
      for (size_t i : rows) group.push_back(images[i]);
      absl::StatusOr<FeatureMatrix> f = EncodeImages(group, set);
      if (!f.ok()) return f.status();
      if (out.data.empty()) {
        out.dim = f->dim;
        out.data.assign(static_cast<size_t>(out.rows * out.dim), 0.0f);
      }
      for (size_t j = 0; j < rows.size(); ++j) {
        std::copy(f->row(static_cast<int64_t>(j)), f->row(static_cast<int64_t>(j)) + f->dim,
                  out.data.begin() + static_cast<int64_t>(rows[j]) * out.dim);
      }
    }
    return out;
  }

  // Loads, evictions and resident bytes of the prompt-set cache.
  virtual PromptSetCacheStats PromptSetCache() const { return {}; }

  // L2-normalised features of texts used verbatim.
  virtual absl::StatusOr<FeatureMatrix> EncodeTexts(const std::vector<std::string>& texts) = 0;

  // L2-normalised [C, D] class features: each class name filled into every
  // template ("{}"), features averaged over templates and renormalised.
  // Empty templates = the default ("a photo of a {}.").
  virtual absl::StatusOr<FeatureMatrix> ClassTextFeatures(
      const std::vector<std::string>& class_names, const std::vector<std::string>& templates) = 0;

  // Reads a prompt-set file's metadata (validates it). FAILED_PRECONDITION
  // when it was made for another backbone (reason
  // util::kReasonBackboneMismatch) or its prompts do not fit this one
  // (util::kReasonPromptShapeMismatch, core/util/error_reason.h);
  // INVALID_ARGUMENT when malformed.
  virtual absl::StatusOr<PromptSetMeta> InspectPromptSet(const std::string& path) = 0;
  // Loads a prompt-set file under `id` (replacing one already loaded).
  virtual absl::StatusOr<PromptSetMeta> LoadPromptSet(const std::string& id,
                                                      const std::string& path) = 0;
  // Unloads; NOT_FOUND when not loaded.
  virtual absl::Status UnloadPromptSet(const std::string& id) = 0;

  // Trains a prompt set (blocking). CANCELLED when callbacks.stop was set.
  virtual absl::StatusOr<TuningOutcome> RunTuning(const TuningSpec& spec,
                                                  const TuningCallbacks& callbacks) = 0;
};

}  // namespace provp::engine
