// The LibTorch Engine: a frozen CLIP (any checkpoint layout LoadCheckpoint
// reads) with the CLIP tokenizer, serving zero-shot and ProVP-prompted
// image features under InferenceMode, class text features, prompt-set
// files (core/train/prompt_set.h) and ProVP-Ref tuning runs (core/train
// Trainer, per-epoch checkpoints, resume) with base/novel evaluation.
// Thread-safe: forwards run concurrently on the shared frozen model; the
// prompt-set map is guarded; one RunTuning at a time (the server's runner).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/engine/engine.h"

namespace provp::engine {

struct TorchEngineOptions {
  // CLIP weights: safetensors / torch.save / TorchScript / HF directory.
  std::string model_path;
  // BPE vocabulary (.txt.gz, or a directory with vocab.json + merges.txt).
  // Empty: the tokenizer files next to the weights.
  std::string vocab_path;
  // "cpu", "cuda", "cuda:N".
  std::string device = "cpu";
  // LibTorch intra-op threads; 0: one per logical CPU.
  int num_threads = 0;
  // Images per forward in evaluation.
  int64_t eval_batch_size = 64;
  // Device memory the loaded prompt sets' tensors may take; beyond it the
  // least recently used ones are evicted (they stay loaded and are read back
  // from their files on next use). 0: no limit.
  int64_t prompt_set_budget_bytes = 0;
  // CUDA only (a CUDA LibTorch build): forwards of up to this many images
  // replay CUDA graphs captured per bucket (1, 2, 4, ... this), padded to
  // the next bucket; zero-shot graphs are captured at Warmup, prompted ones
  // on first use of a (bucket, depth, m, alpha). Each bucket holds its own
  // activation memory. 0: eager only.
  int64_t cuda_graph_max_batch = 64;
  // CUDA only: stage host images in pinned memory and copy them on a
  // separate stream, normalising on the device (false: pageable copy).
  bool pinned_staging = true;
  // Inference first while a tuning job runs (issue 11): a tuning step does
  // not start while an image encode is running (it waits up to
  // tuning_yield_max_ms, so tuning still moves under constant traffic), and
  // on the CPU, while images were encoded in the last second, the tuning
  // thread's LibTorch/OpenMP threads drop to tuning_threads_when_serving so
  // the two do not oversubscribe the cores (0: no change). Back to
  // num_threads when traffic stops.
  int tuning_yield_max_ms = 200;
  int tuning_threads_when_serving = 1;
};

absl::StatusOr<std::unique_ptr<Engine>> CreateTorchEngine(const TorchEngineOptions& options);

}  // namespace provp::engine
