// The OpenAI CLIP architecture as LibTorch modules, registered under the
// checkpoint key names, plus the ProVP prompted vision forward. Internal
// modules live in an unnamed namespace; only ClipModelImpl is public.
// Forwards are read-only on the modules (safe to run concurrently);
// LoadWeights and Build* mutate and need exclusive access.
#include "core/clip/clip_model.h"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/clip/cuda_kernels.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::clip {
namespace {

std::string ShapeString(c10::IntArrayRef sizes) {
  return absl::StrCat("[", absl::StrJoin(sizes, ","), "]");
}

// LayerNorm whose parameters stay fp32 and which normalises in fp32, casting
// the result back to the input dtype (CLIP's LayerNorm subclass). Half
// precision statistics over 768 channels lose too much. On CUDA with bf16/
// fp16 activations it runs LibTorch's kernel on the activations directly
// (statistics accumulate in fp32 inside it) with parameter copies in the
// activation dtype made once (PrepareLowPrecision), instead of casting the
// activations to fp32 and back around every LayerNorm.
class Fp32LayerNormImpl : public torch::nn::Module {
 public:
  Fp32LayerNormImpl(int64_t width, double eps) : width_(width), eps_(eps) {
    weight = register_parameter("weight", torch::ones({width}));
    bias = register_parameter("bias", torch::zeros({width}));
  }

  // [..., W] -> [..., W], same dtype as x.
  torch::Tensor forward(const torch::Tensor& x) {
    if (lowp_weight_.defined() && x.is_cuda() && x.scalar_type() == lowp_weight_.scalar_type()) {
      return at::layer_norm(x, {width_}, lowp_weight_, lowp_bias_, eps_);
    }
    torch::Tensor y = at::layer_norm(x.to(torch::kFloat32), {width_}, weight.to(torch::kFloat32),
                                     bias.to(torch::kFloat32), eps_);
    return y.to(x.scalar_type());
  }

  // Unregistered copies of the parameters in `dtype` for the CUDA path;
  // called after the weights are final (PlaceAndFreeze). fp32: none.
  void PrepareLowPrecision(torch::Dtype dtype) {
    torch::NoGradGuard no_grad;
    if (dtype == torch::kFloat32 || !weight.is_cuda()) {
      lowp_weight_ = lowp_bias_ = torch::Tensor();
      return;
    }
    lowp_weight_ = weight.detach().to(dtype);
    lowp_bias_ = bias.detach().to(dtype);
  }

  double eps() const { return eps_; }

  torch::Tensor weight;
  torch::Tensor bias;

 private:
  int64_t width_;
  double eps_;
  torch::Tensor lowp_weight_;
  torch::Tensor lowp_bias_;
};
TORCH_MODULE(Fp32LayerNorm);

// nn.MultiheadAttention's parameter layout (packed q/k/v in_proj_weight and
// in_proj_bias, out_proj Linear), batch-first.
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t width, int64_t heads) : width_(width), heads_(heads) {
    in_proj_weight = register_parameter("in_proj_weight", torch::zeros({3 * width, width}));
    in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
    out_proj = register_module("out_proj", torch::nn::Linear(width, width));
  }

  // [B,L,W] -> [B,L,W]. `causal` masks future positions (text tower).
  torch::Tensor forward(const torch::Tensor& x, bool causal) { return out_proj(Heads(x, causal)); }

  // Attention output of the first token only, [B,L,W] -> [B,W] (before
  // out_proj, non-causal): keys and values for every token, the query for
  // token 0 alone. Used where nothing downstream reads the other rows.
  torch::Tensor FirstTokenHeads(const torch::Tensor& x) {
    const int64_t b = x.size(0);
    const int64_t l = x.size(1);
    const int64_t head_dim = width_ / heads_;
    torch::Tensor q = at::linear(x.select(1, 0), in_proj_weight.narrow(0, 0, width_),
                                 in_proj_bias.narrow(0, 0, width_));  // [B,W]
    torch::Tensor kv = at::linear(x, in_proj_weight.narrow(0, width_, 2 * width_),
                                  in_proj_bias.narrow(0, width_, 2 * width_));  // [B,L,2W]
    torch::Tensor q_heads = q.view({b, heads_, 1, head_dim});
#if TORCH_VERSION_MAJOR >= 2
    torch::Tensor heads = kv.view({b, l, 2, heads_, head_dim}).permute({2, 0, 3, 1, 4});
    torch::Tensor o = at::scaled_dot_product_attention(q_heads, heads[0], heads[1],
                                                       /*attn_mask=*/{}, 0.0, false);
#else
    // As Heads' math path: one copy to [2,B*H,L,D] so the batched GEMMs read
    // k (transposed by strides) and v in place; softmax in fp32.
    torch::Tensor heads = kv.view({b, l, 2, heads_, head_dim})
                              .permute({2, 0, 3, 1, 4})
                              .contiguous()
                              .view({2, b * heads_, l, head_dim});
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    torch::Tensor q3 = q_heads.reshape({b * heads_, 1, head_dim});
    torch::Tensor scores = at::baddbmm(at::empty({b * heads_, 1, l}, q3.options()), q3,
                                       heads[0].transpose(1, 2), /*beta=*/0.0, /*alpha=*/scale);
    torch::Tensor probs = scores.softmax(-1, torch::kFloat32).to(q3.scalar_type());
    torch::Tensor o = at::bmm(probs, heads[1]);  // [B*H,1,D]
#endif
    return o.reshape({b, width_});
  }

  // residual += attention(x), in place and without the projection's own
  // output tensor (inference only: autograd needs the out-of-place form).
  void AddTo(torch::Tensor& residual, const torch::Tensor& x, bool causal) {
    AddLinearInPlace(residual, Heads(x, causal), out_proj->weight, out_proj->bias);
  }

  // Adds input @ weight^T + bias to `out` in place: one GEMM that
  // accumulates into `out` (beta = 1) and one pass for the bias, instead of
  // two temporaries of out's size. out [..., N] contiguous, input [..., K].
  static void AddLinearInPlace(torch::Tensor& out, const torch::Tensor& input,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    const int64_t n = out.size(-1);
    torch::Tensor out_2d = out.view({-1, n});
    out_2d.addmm_(input.reshape({-1, input.size(-1)}), weight.t());
    out_2d.add_(bias);
  }

 private:
  // [B,L,W] -> attention output before out_proj, [B,L,W].
  torch::Tensor Heads(const torch::Tensor& x, bool causal) {
    const int64_t b = x.size(0);
    const int64_t l = x.size(1);
    const int64_t head_dim = width_ / heads_;
    torch::Tensor qkv = at::linear(x, in_proj_weight, in_proj_bias);  // [B,L,3W]
#if TORCH_VERSION_MAJOR >= 2
    // SDPA takes the strided [B,H,L,D] views as they are (last dim dense).
    torch::Tensor heads = qkv.view({b, l, 3, heads_, head_dim}).permute({2, 0, 3, 1, 4});
    torch::Tensor o = at::scaled_dot_product_attention(heads[0], heads[1], heads[2],
                                                       /*attn_mask=*/{}, 0.0, causal);
    return o.transpose(1, 2).reshape({b, l, width_});
#else
    // Math path. One copy lays q, k and v out as contiguous [B*H,L,D]
    // blocks, so both batched GEMMs read them in place (k transposed by
    // strides) instead of at::matmul copying each 4-D operand again; the
    // 1/sqrt(D) scale rides in the GEMM's alpha.
    torch::Tensor heads = qkv.view({b, l, 3, heads_, head_dim})
                              .permute({2, 0, 3, 1, 4})
                              .contiguous()
                              .view({3, b * heads_, l, head_dim});
    torch::Tensor q = heads[0];
    torch::Tensor k = heads[1];
    torch::Tensor v = heads[2];
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    torch::Tensor scores;
    if (causal) {
      torch::Tensor mask = torch::full({l, l}, -std::numeric_limits<float>::infinity(),
                                       torch::TensorOptions().dtype(q.dtype()).device(q.device()))
                               .triu(1);
      scores = at::baddbmm(mask, q, k.transpose(1, 2), /*beta=*/1.0, /*alpha=*/scale);
    } else {
      scores = at::baddbmm(at::empty({b * heads_, l, l}, q.options()), q, k.transpose(1, 2),
                           /*beta=*/0.0, /*alpha=*/scale);
    }
    // Softmax in fp32 (fp16 softmax over 197+m keys underflows), back to
    // the model dtype for the values; both casts are no-ops in fp32.
    torch::Tensor probs = scores.softmax(-1, torch::kFloat32).to(v.scalar_type());
    torch::Tensor o = at::bmm(probs, v);  // [B*H,L,D]
    return o.view({b, heads_, l, head_dim}).transpose(1, 2).reshape({b, l, width_});
#endif
  }

 public:
  torch::Tensor in_proj_weight;
  torch::Tensor in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t width_;
  int64_t heads_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(int64_t width) {
    c_fc = register_module("c_fc", torch::nn::Linear(width, 4 * width));
    c_proj = register_module("c_proj", torch::nn::Linear(4 * width, width));
  }

  // [..., W] -> [..., W] with QuickGELU x * sigmoid(1.702 x).
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = c_fc(x);
    return c_proj(h * torch::sigmoid(1.702 * h));
  }

  // residual += mlp(x) in place (inference only): QuickGELU in one
  // temporary instead of three, and c_proj accumulated into the residual.
  void AddTo(torch::Tensor& residual, const torch::Tensor& x) {
    torch::Tensor h = c_fc(x);
    torch::Tensor g = h.mul(1.702).sigmoid_().mul_(h);
    AttentionImpl::AddLinearInPlace(residual, g, c_proj->weight, c_proj->bias);
  }

  torch::nn::Linear c_fc{nullptr};
  torch::nn::Linear c_proj{nullptr};
};
TORCH_MODULE(Mlp);

// Pre-LN residual block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t width, int64_t heads, double eps) {
    ln_1 = register_module("ln_1", Fp32LayerNorm(width, eps));
    attn = register_module("attn", Attention(width, heads));
    ln_2 = register_module("ln_2", Fp32LayerNorm(width, eps));
    mlp = register_module("mlp", Mlp(width));
  }

  // [B,L,W] -> [B,L,W]. Without autograd (inference, the Ref teacher) the
  // residual stream is updated in place: `x` must then be a tensor this
  // forward owns (the prompted forward's own temporaries are).
  torch::Tensor forward(torch::Tensor x, bool causal) {
    if (!torch::GradMode::is_enabled() && x.is_contiguous()) {
      if (x.is_cuda() && FusedForward(x, causal)) return x;
      attn->AddTo(x, ln_1(x), causal);
      mlp->AddTo(x, ln_2(x));
      return x;
    }
    x = x + attn(ln_1(x), causal);
    return x + mlp(ln_2(x));
  }

  // The block's output at token 0 only, [B,L,W] -> [B,W] (non-causal).
  // The vision tower's last block feeds only the class token to ln_post, so
  // the other rows' query, attention, out_proj and MLP (10 of the block's 12
  // W x W GEMMs per token) are never needed. Same math as forward() row 0.
  torch::Tensor ForwardFirstToken(const torch::Tensor& x) {
    torch::Tensor r = x.select(1, 0) + attn->out_proj(attn->FirstTokenHeads(ln_1(x)));
    if (!torch::GradMode::is_enabled()) {
      mlp->AddTo(r, ln_2(r));  // r is this call's own tensor
      return r;
    }
    return r + mlp(ln_2(r));
  }

  Fp32LayerNorm ln_1{nullptr};
  Attention attn{nullptr};
  Fp32LayerNorm ln_2{nullptr};
  Mlp mlp{nullptr};

 private:
  // The CUDA inference block with the fused kernels (cuda_kernels.h):
  // residual add + ln_2 in one pass, c_fc's bias + QuickGELU in one pass,
  // c_proj accumulated into the residual by the GEMM. False (x untouched)
  // when the kernels do not apply; then the caller runs the generic path.
  bool FusedForward(torch::Tensor& x, bool causal) {
    if (!CudaKernelsCompiled()) return false;
    const int64_t w = x.size(-1);
    torch::Tensor a = attn(ln_1(x), causal).view({-1, w});
    torch::Tensor x2 = x.view({-1, w});
    torch::Tensor y;
    if (!FusedAddLayerNorm(x2, a, ln_2->weight, ln_2->bias, ln_2->eps(), &y)) {
      x2.add_(a);  // the residual add is done either way; finish generically
      mlp->AddTo(x, ln_2(x));
      return true;
    }
    torch::Tensor h = at::mm(y, mlp->c_fc->weight.t());
    if (!FusedBiasQuickGelu(h, mlp->c_fc->bias)) {
      h.add_(mlp->c_fc->bias);
      h = h.mul(1.702).sigmoid_().mul_(h);
    }
    AttentionImpl::AddLinearInPlace(x, h, mlp->c_proj->weight, mlp->c_proj->bias);
    return true;
  }
};
TORCH_MODULE(ResidualBlock);

// `resblocks.N` stack. Blocks are exposed so the prompted vision forward can
// rewrite the prompt slots between them.
class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int64_t width, int64_t layers, int64_t heads, double eps) {
    torch::nn::ModuleList list;
    for (int64_t i = 0; i < layers; ++i) {
      ResidualBlock block(width, heads, eps);
      blocks.push_back(block);
      list->push_back(block);
    }
    resblocks = register_module("resblocks", list);
  }

  torch::Tensor forward(torch::Tensor x, bool causal) {
    for (auto& block : blocks) x = block(x, causal);
    return x;
  }

  torch::nn::ModuleList resblocks{nullptr};
  std::vector<ResidualBlock> blocks;
};
TORCH_MODULE(Transformer);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const ClipConfig& c) {
    const int64_t w = c.vision_width;
    conv1 = register_module("conv1",
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(3, w, c.vision_patch_size)
                                                  .stride(c.vision_patch_size)
                                                  .bias(false)));
    class_embedding = register_parameter("class_embedding", torch::zeros({w}));
    positional_embedding =
        register_parameter("positional_embedding", torch::zeros({c.num_patches() + 1, w}));
    ln_pre = register_module("ln_pre", Fp32LayerNorm(w, c.layer_norm_eps));
    transformer = register_module(
        "transformer", Transformer(w, c.vision_layers, c.vision_heads, c.layer_norm_eps));
    ln_post = register_module("ln_post", Fp32LayerNorm(w, c.layer_norm_eps));
    proj = register_parameter("proj", torch::zeros({w, c.embed_dim}));
  }

  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding;
  torch::Tensor positional_embedding;
  Fp32LayerNorm ln_pre{nullptr};
  Transformer transformer{nullptr};
  Fp32LayerNorm ln_post{nullptr};
  torch::Tensor proj;
};
TORCH_MODULE(VisionTransformer);

// Deterministic init in the spirit of OpenAI's initialize_parameters: unit
// LayerNorms, zero biases, weights ~ N(0, fan_in^-1/2) so activations keep
// a sane scale through any depth. Only for tests and benchmarks.
void RandomInit(torch::nn::Module& module, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    torch::Tensor t = item.value();
    const bool is_ln = absl::StrContains(name, "ln_");
    if (name == "logit_scale") {
      t.fill_(std::log(1.0 / 0.07));
    } else if (is_ln && absl::EndsWith(name, ".weight")) {
      t.fill_(1.0);
    } else if (absl::EndsWith(name, "bias")) {
      t.zero_();
    } else if (name == "token_embedding.weight") {
      t.normal_(0.0, 0.02, gen);
    } else if (absl::EndsWith(name, "positional_embedding")) {
      t.normal_(0.0, 0.01, gen);
    } else if (name == "visual.class_embedding") {
      t.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(t.size(0))), gen);
    } else if (name == "visual.proj" || name == "text_projection") {
      t.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(t.size(0))), gen);
    } else {
      // Linear / packed in_proj / conv: fan-in is everything past dim 0.
      const double fan_in = static_cast<double>(t.numel() / t.size(0));
      t.normal_(0.0, 1.0 / std::sqrt(fan_in), gen);
    }
  }
}

// Moves the model to the requested device/dtype, keeps LayerNorm parameters
// and logit_scale in fp32, and freezes it (eval, no requires_grad).
absl::Status PlaceAndFreeze(ClipModel& model, const ModelOptions& options) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(options.device);
  } catch (const std::exception&) {
    return absl::InvalidArgumentError(absl::StrCat("ModelOptions.device \"", options.device,
                                                   "\" is not a device (cpu, cuda, cuda:N)"));
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    return absl::FailedPreconditionError(
        absl::StrCat("ModelOptions.device \"", options.device, "\": CUDA is not available"));
  }
  if (!device.is_cpu() && !device.is_cuda()) {
    return absl::InvalidArgumentError(absl::StrCat("ModelOptions.device \"", options.device,
                                                   "\": only cpu and cuda are supported"));
  }
  const torch::Dtype dtype = options.dtype;
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
    return absl::InvalidArgumentError("ModelOptions.dtype must be float32, bfloat16 or float16");
  }
  if (dtype == torch::kFloat16 && device.is_cpu()) {
    return absl::InvalidArgumentError(
        "ModelOptions.dtype float16 needs a CUDA device; use float32 or bfloat16 on CPU");
  }
  return util::TorchCall("PlaceAndFreeze", [&]() {
    model->to(device, dtype);
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters(/*recurse=*/true)) {
      if (absl::StrContains(item.key(), "ln_") || item.key() == "logit_scale") {
        item.value().set_data(item.value().to(torch::kFloat32));
      }
    }
    model->eval();
    for (auto& p : model->parameters(/*recurse=*/true)) p.requires_grad_(false);
    for (auto& module : model->modules(/*include_self=*/false)) {
      if (auto* ln = module->as<Fp32LayerNormImpl>()) ln->PrepareLowPrecision(dtype);
    }
  });
}

}  // namespace

struct ClipModelImpl::Parts {
  VisionTransformer visual{nullptr};
  Transformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  Fp32LayerNorm ln_final{nullptr};
  torch::Tensor positional_embedding;
  torch::Tensor text_projection;
  torch::Tensor logit_scale;
};

ClipModelImpl::ClipModelImpl(const ClipConfig& config)
    : config_(config), parts_(std::make_shared<Parts>()) {
  const ClipConfig& c = config_;
  TORCH_CHECK(ValidateConfig(c).ok(), "invalid ClipConfig: ", ValidateConfig(c).ToString());
  Parts& p = *parts_;
  p.visual = register_module("visual", VisionTransformer(c));
  p.transformer = register_module(
      "transformer", Transformer(c.text_width, c.text_layers, c.text_heads, c.layer_norm_eps));
  p.token_embedding =
      register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.text_width));
  p.positional_embedding =
      register_parameter("positional_embedding", torch::zeros({c.context_length, c.text_width}));
  p.ln_final = register_module("ln_final", Fp32LayerNorm(c.text_width, c.layer_norm_eps));
  p.text_projection =
      register_parameter("text_projection", torch::zeros({c.text_width, c.embed_dim}));
  p.logit_scale = register_parameter("logit_scale", torch::full({}, std::log(1.0 / 0.07)));
}

torch::Tensor ClipModelImpl::EncodeImage(const torch::Tensor& images,
                                         const VisualPrompts* prompts) {
  const ClipConfig& c = config_;
  const int64_t r = c.image_resolution;
  TORCH_CHECK(images.defined() && images.dim() == 4 && images.size(1) == 3 && images.size(2) == r &&
                  images.size(3) == r && images.size(0) >= 1,
              "EncodeImage: expected images [B>=1,3,", r, ",", r, "], got ",
              images.defined() ? ShapeString(images.sizes()) : "an undefined tensor");
  TORCH_CHECK(images.is_floating_point(), "EncodeImage: images must be floating point, got ",
              images.scalar_type());
  VisionTransformerImpl& v = *parts_->visual;
  const int64_t w = c.vision_width;
  const int64_t b = images.size(0);
  const torch::Tensor& conv_w = v.conv1->weight;

  torch::Tensor prompt_tensor;  // [depth,m,W] shared, or [S,depth,m,W] stacked sets
  bool stacked = false;
  torch::Tensor image_set;  // [B] int64 with stacked sets and an index
  int64_t depth = 0;
  int64_t m = 0;
  double alpha = 0.0;
  torch::Tensor alphas;  // [B,1,1] float64, stacked sets with their own alphas
  if (prompts != nullptr) {
    const torch::Tensor& pt = prompts->prompts;
    TORCH_CHECK(pt.defined() && (pt.dim() == 3 || pt.dim() == 4), "EncodeImage: prompts must be ",
                "[depth,m,", w, "] or [S,depth,m,", w, "], got ",
                pt.defined() ? ShapeString(pt.sizes()) : "an undefined tensor");
    stacked = pt.dim() == 4;
    const int64_t lead = stacked ? 1 : 0;
    depth = pt.size(lead);
    m = pt.size(lead + 1);
    TORCH_CHECK(pt.size(lead + 2) == w, "EncodeImage: prompt width ", pt.size(lead + 2),
                " != vision_width ", w);
    TORCH_CHECK(depth >= 1 && depth <= c.vision_layers, "EncodeImage: prompt depth ", depth,
                " must be in [1, ", c.vision_layers, "]");
    TORCH_CHECK(m >= 1, "EncodeImage: prompt length m must be >= 1");
    TORCH_CHECK(pt.is_floating_point(), "EncodeImage: prompts must be floating point");
    alpha = prompts->alpha;
    TORCH_CHECK(std::isfinite(alpha), "EncodeImage: alpha must be finite");
    if (stacked) {
      const int64_t sets = pt.size(0);
      if (prompts->image_set.defined()) {
        const torch::Tensor& is = prompts->image_set;
        TORCH_CHECK(is.dim() == 1 && is.size(0) == b && !is.is_floating_point(),
                    "EncodeImage: image_set must be an integer [", b, "], got ",
                    ShapeString(is.sizes()));
        TORCH_CHECK_INDEX(
            b == 0 || (is.min().item<int64_t>() >= 0 && is.max().item<int64_t>() < sets),
            "EncodeImage: image_set entries must be in [0, ", sets, ")");
        image_set = is.to(conv_w.device(), torch::kLong);
      } else {
        // Row i is image i's: read in place (no gather; CUDA graphs use this).
        TORCH_CHECK(sets == b, "EncodeImage: ", sets, " stacked prompt sets for ", b,
                    " images and no image_set");
      }
      if (prompts->alphas.defined()) {
        TORCH_CHECK(prompts->alphas.numel() == sets, "EncodeImage: one alpha per prompt set");
        torch::Tensor a = prompts->alphas.to(torch::kCPU, torch::kFloat64);
        TORCH_CHECK(a.isfinite().all().item<bool>(), "EncodeImage: alphas must be finite");
        a = a.to(conv_w.device());
        alphas = (image_set.defined() ? a.index_select(0, image_set) : a).view({b, 1, 1});
      }
    }
    // Cast inside the graph so gradients reach an fp32 master copy.
    prompt_tensor = pt.to(conv_w.device(), conv_w.scalar_type());
  }
  // P_l for every image: [B,m,W] (a broadcast view for one shared set).
  auto layer_prompts = [&](int64_t l) {
    if (!stacked) return prompt_tensor[l].unsqueeze(0).expand({b, m, w});
    torch::Tensor p = prompt_tensor.select(1, l);
    return image_set.defined() ? p.index_select(0, image_set) : p;
  };

  torch::Tensor x = v.conv1(images.to(conv_w.device(), conv_w.scalar_type()));  // [B,W,g,g]
  x = x.flatten(2).transpose(1, 2);                                             // [B,N,W]
  torch::Tensor cls = v.class_embedding.to(x.scalar_type()).view({1, 1, w}).expand({b, 1, w});
  x = torch::cat({cls, x}, 1) + v.positional_embedding.to(x.scalar_type());
  x = v.ln_pre(x);

  if (prompt_tensor.defined()) {
    // [CLS, P_0, patches]: prompts enter after ln_pre, without positions.
    x = torch::cat({x.narrow(1, 0, 1), layer_prompts(0), x.narrow(1, 1, x.size(1) - 1)}, 1);
  }
  const bool in_place = !torch::GradMode::is_enabled();
  auto& blocks = v.transformer->blocks;
  const int64_t layers = static_cast<int64_t>(blocks.size());
  torch::Tensor class_token;  // [B,W]: the last block's output at token 0
  for (int64_t l = 0; l < layers; ++l) {
    if (prompt_tensor.defined() && l >= 1 && l < depth) {
      torch::Tensor p = layer_prompts(l);
      if (in_place) {
        // x is this forward's own block output: blend the slots where
        // they are.
        torch::Tensor slots = x.narrow(1, 1, m);
        if (alphas.defined()) {
          slots.mul_(alphas.to(x.scalar_type())).addcmul_(p, (1.0 - alphas).to(x.scalar_type()));
        } else {
          slots.mul_(alpha).add_(p, 1.0 - alpha);
        }
      } else {
        // Progressive rule, out of place so autograd sees both terms.
        torch::Tensor slots = alphas.defined() ? alphas.to(x.scalar_type()) * x.narrow(1, 1, m) +
                                                     (1.0 - alphas).to(x.scalar_type()) * p
                                               : alpha * x.narrow(1, 1, m) + (1.0 - alpha) * p;
        x = torch::cat({x.narrow(1, 0, 1), slots, x.narrow(1, 1 + m, x.size(1) - 1 - m)}, 1);
      }
    }
    if (l + 1 < layers) {
      x = blocks[l](x, /*causal=*/false);
    } else {
      class_token = blocks[l]->ForwardFirstToken(x);  // only row 0 is pooled
    }
  }
  torch::Tensor pooled = v.ln_post(class_token);  // [B,W]
  return at::matmul(pooled, v.proj).to(torch::kFloat32);
}

torch::Tensor ClipModelImpl::EncodeText(const torch::Tensor& tokens) {
  const ClipConfig& c = config_;
  TORCH_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(0) >= 1 &&
                  tokens.size(1) == c.context_length,
              "EncodeText: expected tokens [N>=1,", c.context_length, "], got ",
              tokens.defined() ? ShapeString(tokens.sizes()) : "an undefined tensor");
  TORCH_CHECK(tokens.scalar_type() == torch::kLong || tokens.scalar_type() == torch::kInt,
              "EncodeText: tokens must be int64 or int32, got ", tokens.scalar_type());
  // An out-of-range id is a device-side assert on CUDA; refuse it here.
  const int64_t lo = tokens.min().item<int64_t>();
  const int64_t hi = tokens.max().item<int64_t>();
  TORCH_CHECK_INDEX(lo >= 0 && hi < c.vocab_size, "EncodeText: token ids must be in [0, ",
                    c.vocab_size, "), got range [", lo, ", ", hi, "]");
  Parts& p = *parts_;
  const torch::Tensor& emb = p.token_embedding->weight;
  torch::Tensor t = tokens.to(emb.device(), torch::kLong);
  torch::Tensor x = p.token_embedding(t) + p.positional_embedding.to(emb.scalar_type());
  x = p.transformer(x, /*causal=*/true);
  x = p.ln_final(x);
  // The end token has the largest id in CLIP's vocabulary.
  torch::Tensor eot = t.argmax(-1);
  torch::Tensor rows = torch::arange(t.size(0), t.options());
  torch::Tensor pooled = x.index({rows, eot});  // [N,W]
  return at::matmul(pooled, p.text_projection).to(torch::kFloat32);
}

double ClipModelImpl::LogitScale() const {
  return std::exp(parts_->logit_scale.detach().to(torch::kCPU, torch::kDouble).item<double>());
}

absl::Status ClipModelImpl::LoadWeights(const std::map<std::string, torch::Tensor>& weights) {
  return util::TorchCall("ClipModel::LoadWeights", [&]() -> absl::Status {
    auto params = named_parameters(/*recurse=*/true);
    for (const auto& item : params) {
      auto it = weights.find(item.key());
      if (it == weights.end()) {
        return absl::NotFoundError(absl::StrCat("missing weight ", item.key(), " (expected shape ",
                                                ShapeString(item.value().sizes()), ")"));
      }
      if (!it->second.defined() || it->second.sizes() != item.value().sizes()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "weight ", item.key(), ": expected shape ", ShapeString(item.value().sizes()),
            ", found ", it->second.defined() ? ShapeString(it->second.sizes()) : "undefined"));
      }
      if (!it->second.is_floating_point()) {
        return absl::InvalidArgumentError(absl::StrCat("weight ", item.key(),
                                                       ": expected a floating dtype, found ",
                                                       c10::toString(it->second.scalar_type())));
      }
    }
    for (const auto& [name, tensor] : weights) {
      if (params.find(name) == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected weight ", name, " for ", config_.DebugString()));
      }
    }
    torch::NoGradGuard no_grad;
    for (auto& item : params) {
      item.value().copy_(weights.at(item.key()));
    }
    // New LayerNorm weights: refresh their low-precision CUDA copies.
    const torch::Dtype dtype = parts_->visual->conv1->weight.scalar_type();
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* ln = module->as<Fp32LayerNormImpl>()) ln->PrepareLowPrecision(dtype);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<ClipModel> BuildClipModel(const LoadedCheckpoint& checkpoint,
                                         const ModelOptions& options) {
  RETURN_IF_ERROR(ValidateConfig(checkpoint.config));
  ASSIGN_OR_RETURN(ClipModel model, util::TorchCall("BuildClipModel", [&]() {
                     return ClipModel(checkpoint.config);
                   }));
  RETURN_IF_ERROR(model->LoadWeights(checkpoint.weights));
  RETURN_IF_ERROR(PlaceAndFreeze(model, options));
  return model;
}

absl::StatusOr<ClipModel> BuildRandomClipModel(const ClipConfig& config,
                                               const ModelOptions& options, uint64_t seed) {
  RETURN_IF_ERROR(ValidateConfig(config));
  ASSIGN_OR_RETURN(ClipModel model, util::TorchCall("BuildRandomClipModel", [&]() {
                     ClipModel m(config);
                     RandomInit(*m, seed);
                     return m;
                   }));
  RETURN_IF_ERROR(PlaceAndFreeze(model, options));
  return model;
}

}  // namespace provp::clip
