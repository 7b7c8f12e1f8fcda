// Contrastive pretraining of the built-in small CLIP on generated
// image-caption pairs: rendered scenes with compositional captions and
// Fashion-MNIST training images with class captions. The loss is CLIP's
// symmetric InfoNCE over the batch with a learnable logit scale (clamped at
// 100), where every caption that truthfully describes an image counts as
// its positive (all captions of a Fashion-MNIST class; a bare shape caption
// for every scene of that shape), not only its own; scenes come with
// shape-only twins as hard negatives. AdamW with linear warm-up and cosine decay. Batches come from
// a seeded Random, so a run is a function of its options (and of the
// thread count, which fixes the float summation order).
// Not thread-safe: trains the model it is given.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "core/builtin/fashion_mnist.h"
#include "core/clip/clip_model.h"
#include "core/clip/config.h"
#include "core/text/tokenizer.h"

namespace provp::builtin {

// The built-in model's architecture for a vocabulary of `vocab_size`
// tokens: 32 px images, patch 8 (16 patches), vision width 128 x 3 layers,
// text width 128 x 3 layers over 24 tokens, joint embedding 128: sized so
// that pretraining fits in minutes on two CPU cores. Heads are
// width / 64 as in OpenAI checkpoints, so the loader infers the same model.
clip::ClipConfig BuiltinClipConfig(int64_t vocab_size);

struct PretrainOptions {
  // 500, not more: the main job promises ProVP-Ref a clear lead over
  // zero-shot on every machine (issue 15). At 1500 steps zero-shot was
  // stronger but left tuning +2.6 HM points on AVX-512 kernels and -1.1 on
  // Haswell's (BLAS summation order, amplified through pretraining); at 500
  // the lead was +6.6 to +8.1 on Prescott, Haswell and SkylakeX kernels
  // (docs/quality.md) and
  // pretraining fits the 10-minute budget with SSE3 kernels too.
  int64_t steps = 500;
  int64_t batch_size = 64;
  double learning_rate = 1e-3;
  double weight_decay = 0.05;  // AdamW, on matrices only
  int64_t warmup_steps = 100;
  // Share of each batch drawn from Fashion-MNIST (the rest are scenes).
  double fashion_fraction = 0.5;
  // Chance that a scene is followed by a twin that differs only in shape.
  double shape_twin_fraction = 0.5;
  // Chance that a scene's caption names its shape alone ("a photo of a
  // star"); such a caption is a positive for every scene of that shape.
  double bare_shape_caption_fraction = 0.5;
  uint64_t seed = 1;
  // Called every `log_every` steps and after the last one.
  int64_t log_every = 100;
  std::function<void(int64_t step, double loss, double batch_accuracy, double logit_scale)>
      on_progress;
};

struct PretrainStats {
  int64_t steps = 0;
  double seconds = 0;
  // Mean symmetric InfoNCE loss over the last `log_every` steps.
  double final_loss = 0;
  // In-batch image->text top-1 accuracy over the same steps.
  double final_batch_accuracy = 0;
  double logit_scale = 0;
};

// Images normalised as CLIP expects: uint8 RGB rasters -> [N,3,R,R] float.
torch::Tensor RastersToTensor(const std::vector<Raster>& rasters);

// Trains every parameter of `model` (it re-enables gradients and train mode,
// and leaves the model frozen and in eval mode again afterwards). Captions
// are encoded with `tokenizer` to the model's context length (truncated).
// `fashion` may be empty (then only scenes are used).
absl::StatusOr<PretrainStats> Pretrain(clip::ClipModel& model, const text::Tokenizer& tokenizer,
                                       const FashionMnist& fashion, const PretrainOptions& options);

}  // namespace provp::builtin
