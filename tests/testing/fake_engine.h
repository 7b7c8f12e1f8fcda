// A deterministic, torch-free Engine for the server's tests and the RPC-layer
// load generator; test-only, never linked into provp-server (an operator must
// not be able to serve made-up results). Image features come from the mean
// colour, text features from colour words in the text ("red", "green",
// "blue", ...; others hash to a fixed random direction), so a red image is
// classified "red". Prompt sets are small JSON files whose "bias" shifts
// image features; RunTuning sleeps per step, writes per-epoch checkpoints
// (JSON) it resumes from, honours the stop flag and evaluates the colour
// classifier on the dataset. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/engine/engine.h"

namespace provp::engine {

struct FakeEngineOptions {
  // Feature size (>= 4).
  int dim = 16;
  std::string backbone = "fake-backbone-0001";
  // Sleep per training step (0 = none, for tests that drive jobs
  // step by step).
  int step_milliseconds = 20;
  // Called before each training step with the global 1-based step number,
  // on the training thread: lets a test cancel, stop or break the store at
  // an exact point of a run.
  std::function<void(int64_t step)> before_step;
  // Steps per epoch.
  int steps_per_epoch = 5;
  // Default epochs when the spec leaves them 0.
  int default_epochs = 3;
  // Sleep per EncodeImages call (simulates model time).
  int encode_milliseconds = 0;
  // Makes EncodeImages fail with INTERNAL (error-path tests).
  bool fail_encode = false;
  // Pretends to run on this accelerator (info().device is its device). The
  // allocated bytes then grow by 4096 per image encoded so far, so a test
  // can tell a value read at scrape time from one read at start-up.
  std::optional<DeviceMemory> device_memory;
};

class FakeEngine : public Engine {
 public:
  explicit FakeEngine(FakeEngineOptions options = {});

  const ModelInfo& info() const override { return info_; }
  std::optional<DeviceMemory> DeviceMemoryUsage() const override;
  absl::Status Warmup() override;
  absl::StatusOr<FeatureMatrix> EncodeImages(const std::vector<const Image*>& images,
                                             const std::string& prompt_set) override;
  absl::StatusOr<FeatureMatrix> EncodeTexts(const std::vector<std::string>& texts) override;
  absl::StatusOr<FeatureMatrix> ClassTextFeatures(
      const std::vector<std::string>& class_names,
      const std::vector<std::string>& templates) override;
  absl::StatusOr<PromptSetMeta> InspectPromptSet(const std::string& path) override;
  absl::StatusOr<PromptSetMeta> LoadPromptSet(const std::string& id,
                                              const std::string& path) override;
  absl::Status UnloadPromptSet(const std::string& id) override;
  absl::StatusOr<TuningOutcome> RunTuning(const TuningSpec& spec,
                                          const TuningCallbacks& callbacks) override;

  // Number of EncodeImages calls and images so far (batching tests).
  int64_t encode_calls() const;
  int64_t encoded_images() const;

 private:
  std::vector<float> ImageFeature(const Image& image) const;
  std::vector<float> TextFeature(const std::string& text) const;

  const FakeEngineOptions options_;
  ModelInfo info_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<float>> loaded_;  // prompt set -> bias
  int64_t encode_calls_ = 0;
  int64_t encoded_images_ = 0;
};

}  // namespace provp::engine
