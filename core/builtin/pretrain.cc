// The pretraining loop. Batches are generated on the fly (scenes are
// unlimited; Fashion-MNIST items are drawn with replacement) and encoded
// with the project's tokenizer; everything torch-side runs inside TorchCall.
#include "core/builtin/pretrain.h"

#include <chrono>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::builtin {
namespace {

namespace F = torch::nn::functional;

// CLIP's normalisation (the same constants as core/image preprocessing).
constexpr double kMean[3] = {0.48145466, 0.4578275, 0.40821073};
constexpr double kStd[3] = {0.26862954, 0.26130258, 0.27577711};
constexpr double kMaxLogitScale = 100.0;

double LearningRate(const PretrainOptions& o, int64_t step) {
  if (step < o.warmup_steps) return o.learning_rate * (step + 1) / o.warmup_steps;
  const double t =
      static_cast<double>(step - o.warmup_steps) / std::max<int64_t>(1, o.steps - o.warmup_steps);
  return o.learning_rate * 0.5 * (1 + std::cos(3.141592653589793 * t));
}

struct Batch {
  std::vector<Raster> images;
  std::vector<int64_t> tokens;  // [B * context]
  // Which captions truthfully describe which images (the positives):
  // items of one group describe each other (a Fashion-MNIST class is one
  // group, as its captions are phrasings of one fact; every scene is its
  // own), and a bare shape caption ("a photo of a star") also describes
  // every scene of that shape.
  std::vector<int64_t> groups;
  std::vector<int64_t> image_shapes;    // the scene's shape, -1 for Fashion-MNIST
  std::vector<int64_t> caption_shapes;  // the shape a bare shape caption names, else -1
};

absl::StatusOr<Batch> MakeBatch(const PretrainOptions& o, int64_t context, int resolution,
                                const text::Tokenizer& tokenizer, const FashionMnist& fashion,
                                Random& rng) {
  Batch b;
  b.images.reserve(o.batch_size);
  b.tokens.reserve(o.batch_size * context);
  b.groups.reserve(o.batch_size);
  auto add = [&](Raster image, const std::string& caption, int64_t group, int shape,
                 bool bare) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizer.EncodeForContext(caption, context));
    b.images.push_back(std::move(image));
    b.tokens.insert(b.tokens.end(), ids.begin(), ids.end());
    b.groups.push_back(group);
    b.image_shapes.push_back(shape);
    b.caption_shapes.push_back(bare ? shape : -1);
    return absl::OkStatus();
  };
  auto scene_caption = [&](const SceneSpec& spec, bool bare, Random& words) {
    return bare ? ShapeCaption(spec.shape, words) : SceneCaption(spec, words);
  };
  // Scene groups start past the Fashion-MNIST classes.
  int64_t next_scene_group = 1000;
  while (static_cast<int64_t>(b.images.size()) < o.batch_size) {
    if (fashion.size() > 0 && rng.Bernoulli(o.fashion_fraction)) {
      const int k = rng.Int(fashion.size());
      RETURN_IF_ERROR(add(RenderFashion(fashion.image(k), fashion.rows, fashion.cols, resolution,
                                        RenderStyle::kPretrain, rng),
                          FashionCaption(fashion.labels[k], rng), fashion.labels[k], -1, false));
      continue;
    }
    const SceneSpec spec = RandomScene(rng);
    Raster image = RenderScene(spec, resolution, RenderStyle::kPretrain, rng);
    const bool bare = rng.Bernoulli(o.bare_shape_caption_fraction);
    Random twin_words = rng;  // the twin's caption makes the same word choices
    RETURN_IF_ERROR(add(std::move(image), scene_caption(spec, bare, rng), next_scene_group++,
                        static_cast<int>(spec.shape), bare));
    // A twin that differs only in its shape, with a caption that differs
    // only in the shape word: in-batch contrast alone is mostly won on
    // colour and background words, and the twin makes the shape the only
    // way to tell the two pairs apart.
    if (static_cast<int64_t>(b.images.size()) < o.batch_size &&
        rng.Bernoulli(o.shape_twin_fraction)) {
      SceneSpec twin = spec;
      twin.shape = static_cast<Shape>((static_cast<int>(spec.shape) + 1 + rng.Int(kNumShapes - 1)) %
                                      kNumShapes);
      RETURN_IF_ERROR(add(RenderScene(twin, resolution, RenderStyle::kPretrain, rng),
                          scene_caption(twin, bare, twin_words), next_scene_group++,
                          static_cast<int>(twin.shape), bare));
    }
  }
  return b;
}

// positives[i][j] = 1 when caption j describes image i (see Batch).
torch::Tensor Positives(const Batch& b) {
  const auto g = torch::tensor(b.groups, torch::kLong);
  const auto image_shape = torch::tensor(b.image_shapes, torch::kLong);
  const auto caption_shape = torch::tensor(b.caption_shapes, torch::kLong);
  const auto same_group = g.unsqueeze(1).eq(g.unsqueeze(0));
  const auto shape_caption_fits =
      image_shape.unsqueeze(1).eq(caption_shape.unsqueeze(0)) & caption_shape.ge(0).unsqueeze(0);
  return (same_group | shape_caption_fits).to(torch::kFloat32);
}

}  // namespace

clip::ClipConfig BuiltinClipConfig(int64_t vocab_size) {
  clip::ClipConfig c;
  c.embed_dim = 128;
  c.image_resolution = 32;
  c.vision_patch_size = 8;
  c.vision_width = 128;
  c.vision_layers = 3;
  c.vision_heads = 2;
  c.context_length = 24;
  c.vocab_size = vocab_size;
  c.text_width = 128;
  c.text_layers = 3;
  c.text_heads = 2;
  return c;
}

torch::Tensor RastersToTensor(const std::vector<Raster>& rasters) {
  TORCH_CHECK(!rasters.empty(), "RastersToTensor: no images");
  const int h = rasters[0].height;
  const int w = rasters[0].width;
  auto bytes = torch::empty({static_cast<int64_t>(rasters.size()), h, w, 3}, torch::kUInt8);
  uint8_t* dst = bytes.data_ptr<uint8_t>();
  for (const Raster& r : rasters) {
    TORCH_CHECK(r.height == h && r.width == w, "RastersToTensor: mixed image sizes");
    std::copy(r.rgb.begin(), r.rgb.end(), dst);
    dst += r.rgb.size();
  }
  auto x = bytes.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0);
  auto mean = torch::tensor({kMean[0], kMean[1], kMean[2]}, torch::kFloat32).view({1, 3, 1, 1});
  auto stdev = torch::tensor({kStd[0], kStd[1], kStd[2]}, torch::kFloat32).view({1, 3, 1, 1});
  return ((x - mean) / stdev).contiguous();
}

absl::StatusOr<PretrainStats> Pretrain(clip::ClipModel& model, const text::Tokenizer& tokenizer,
                                       const FashionMnist& fashion,
                                       const PretrainOptions& options) {
  if (options.steps < 1 || options.batch_size < 2 || options.batch_size > 4096 ||
      !(options.learning_rate > 0) || options.warmup_steps < 1 ||
      !(options.fashion_fraction >= 0 && options.fashion_fraction <= 1) ||
      !(options.shape_twin_fraction >= 0 && options.shape_twin_fraction <= 1) ||
      !(options.bare_shape_caption_fraction >= 0 && options.bare_shape_caption_fraction <= 1) ||
      options.log_every < 1) {
    return absl::InvalidArgumentError(
        "PretrainOptions: need steps >= 1, batch_size in [2, 4096], learning_rate > 0, "
        "warmup_steps >= 1, fashion_fraction, shape_twin_fraction and "
        "bare_shape_caption_fraction in [0, 1], log_every >= 1");
  }
  const clip::ClipConfig& c = model->config();
  if (tokenizer.vocab_size() > c.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("Pretrain: tokenizer has ",
                                                   tokenizer.vocab_size(),
                                                   " tokens but the model only ", c.vocab_size));
  }
  const auto start = std::chrono::steady_clock::now();
  Random rng(options.seed);
  PretrainStats stats;

  absl::Status status = util::TorchCall("Pretrain", [&]() -> absl::Status {
    torch::Tensor logit_scale;
    std::vector<torch::Tensor> decay, no_decay;
    for (auto& item : model->named_parameters(/*recurse=*/true)) {
      item.value().requires_grad_(true);
      if (item.key() == "logit_scale") logit_scale = item.value();
      (item.value().dim() >= 2 ? decay : no_decay).push_back(item.value());
    }
    TORCH_CHECK(logit_scale.defined(), "model has no logit_scale parameter");
    model->train();
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(options.learning_rate)
                                       .betas({0.9, 0.98})
                                       .eps(1e-6)
                                       .weight_decay(options.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                      torch::optim::AdamWOptions(options.learning_rate)
                                          .betas({0.9, 0.98})
                                          .eps(1e-6)
                                          .weight_decay(0.0)));
    torch::optim::AdamW optimizer(std::move(groups));

    double loss_sum = 0, acc_sum = 0;
    int64_t window = 0;
    for (int64_t step = 0; step < options.steps; ++step) {
      ASSIGN_OR_RETURN(Batch batch,
                       MakeBatch(options, c.context_length, static_cast<int>(c.image_resolution),
                                 tokenizer, fashion, rng));
      const double lr = LearningRate(options, step);
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      }
      torch::Tensor images = RastersToTensor(batch.images);
      torch::Tensor tokens = torch::from_blob(batch.tokens.data(),
                                              {options.batch_size, c.context_length}, torch::kLong)
                                 .clone();
      torch::Tensor img =
          F::normalize(model->EncodeImage(images), F::NormalizeFuncOptions().dim(-1));
      torch::Tensor txt =
          F::normalize(model->EncodeText(tokens), F::NormalizeFuncOptions().dim(-1));
      torch::Tensor logits = logit_scale.exp() * torch::matmul(img, txt.t());
      // Symmetric InfoNCE with soft targets: each image's probability mass
      // spread over the captions that describe it, each caption's over the
      // images it describes.
      const torch::Tensor positives = Positives(batch);
      const torch::Tensor targets = positives / positives.sum(1, /*keepdim=*/true);
      const torch::Tensor text_targets = positives.t() / positives.t().sum(1, /*keepdim=*/true);
      torch::Tensor loss = 0.5 * (-(targets * torch::log_softmax(logits, 1)).sum(1).mean() -
                                  (text_targets * torch::log_softmax(logits.t(), 1)).sum(1).mean());
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      {
        torch::NoGradGuard no_grad;
        logit_scale.clamp_(0.0, std::log(kMaxLogitScale));
      }
      TORCH_CHECK(std::isfinite(loss.item<double>()), "loss became non-finite at step ", step);
      loss_sum += loss.item<double>();
      // In-batch accuracy: the best-scoring caption describes the image.
      acc_sum += targets.gather(1, logits.detach().argmax(1, /*keepdim=*/true))
                     .gt(0)
                     .to(torch::kFloat32)
                     .mean()
                     .item<double>();
      ++window;
      if ((step + 1) % options.log_every == 0 || step + 1 == options.steps) {
        stats.final_loss = loss_sum / window;
        stats.final_batch_accuracy = acc_sum / window;
        stats.logit_scale = std::exp(logit_scale.item<double>());
        if (options.on_progress) {
          options.on_progress(step + 1, stats.final_loss, stats.final_batch_accuracy,
                              stats.logit_scale);
        }
        loss_sum = acc_sum = 0;
        window = 0;
      }
    }
    stats.steps = options.steps;
    return absl::OkStatus();
  });
  // Leave the backbone frozen, as every other user of ClipModel expects.
  model->eval();
  for (auto& p : model->parameters(/*recurse=*/true)) p.requires_grad_(false);
  RETURN_IF_ERROR(status);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace provp::builtin
