// `provp-builtin prepare` as a library call: builds the built-in model's
// BPE vocabulary from generated captions, pretrains the small CLIP, writes
// it in the OpenAI safetensors layout next to vocab.json/merges.txt (so
// clip::LoadCheckpoint reads it and finds the tokenizer), and writes the
// demo datasets in the CoOp layout. Results are cached in the data
// directory under a key of every option that changes them; a second call
// with the same options reuses them. Not thread-safe for one data_dir.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/builtin/demo_datasets.h"
#include "core/builtin/pretrain.h"

namespace provp::builtin {

struct PrepareOptions {
  // Output root: model/ and datasets/<Name>/ are created under it.
  std::string data_dir;
  std::string fashion_mnist_dir = kDefaultFashionMnistDir;
  // The model's architecture; vocab_size is replaced by the size of the
  // learned vocabulary. Tests use smaller ones.
  clip::ClipConfig architecture = BuiltinClipConfig(0);
  PretrainOptions pretrain;
  // Demo dataset sizes; the resolution is always architecture's
  // image_resolution.
  DemoSizes sizes;
  // BPE vocabulary: merges learned from this many generated captions.
  int bpe_merges = 1500;
  int vocab_captions = 20000;
  // Ignore the cache and rebuild everything.
  bool force = false;
  // Progress lines (may be empty).
  std::function<void(const std::string&)> log;
};

struct PrepareResult {
  std::string model_dir;     // holds clip.safetensors, vocab.json, merges.txt
  std::string weights_path;  // model_dir/clip.safetensors
  std::map<std::string, std::string> dataset_dirs;  // name -> folder with split_zhou_<name>.json
  bool model_reused = false;
  bool datasets_reused = false;
  int64_t vocab_size = 0;
  double pretrain_seconds = 0;  // of the run that made the cached model
  PretrainStats pretrain;
  // Zero-shot top-1 accuracy on each demo dataset's test split.
  std::map<std::string, double> zero_shot_accuracy;
  // The same test items rendered in the pretraining style: the gap to
  // zero_shot_accuracy is what the domain shift costs.
  std::map<std::string, double> zero_shot_pretrain_style;
};

absl::StatusOr<PrepareResult> PrepareBuiltin(const PrepareOptions& options);

// The captions the vocabulary is learned from: `count` pretraining captions
// (scenes and Fashion-MNIST in the pretraining mix) plus every demo class
// name in the default template. Deterministic for a seed.
std::vector<std::string> VocabularyCorpus(int count, uint64_t seed);

}  // namespace provp::builtin
