// Implementation of torch_engine.h. Every torch call runs inside TorchCall,
// so c10 exceptions become Status values and never reach the server.
#include "core/engine/torch_engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include <torch/torch.h>
#include <torch/version.h>

// CMake defines this with a CUDA LibTorch (scripts/cuda-build.sh, the GPU
// host); Debian's CPU LibTorch builds the eager path only.
#ifdef PROVP_ENGINE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "absl/strings/str_cat.h"
#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/device_memory.h"
#include "core/clip/zero_shot.h"
#include "core/data/dataset.h"
#include "core/data/few_shot.h"
#include "core/image/preprocess.h"
#include "core/provp/provp_options.h"
#include "core/text/tokenizer.h"
#include "core/train/evaluation.h"
#include "core/train/prompt_set.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"
#include "core/train/tuning_run.h"
#include "core/util/host_memory.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"
#include "core/util/torch_threads.h"

namespace provp::engine {
namespace {

// A prompt set's tensors on the device; shared so an unload or eviction
// never frees prompts mid-forward.
struct LoadedPromptSet {
  clip::VisualPrompts prompts;
  PromptSetMeta meta;
  int64_t bytes = 0;
};

// A registered prompt set: its file, and its tensors while resident.
struct PromptSetEntry {
  std::string path;
  PromptSetMeta meta;
  std::shared_ptr<const LoadedPromptSet> resident;  // null once evicted
  uint64_t last_use = 0;
};

#ifdef PROVP_ENGINE_CUDA
// One captured forward: static input/prompt buffers the replay reads and
// the output it writes. Replays of one graph are serialised by `mu`.
struct CapturedForward {
  at::cuda::CUDAGraph graph;
  torch::Tensor input;    // [bucket,3,R,R] model dtype
  torch::Tensor prompts;  // [bucket,depth,m,W] model dtype, one row per image; undefined zero-shot
  torch::Tensor output;   // [bucket,D] fp32, L2-normalised
  std::mutex mu;
};
#endif

int64_t NextBucket(int64_t n) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return b;
}

FeatureMatrix ToMatrix(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  FeatureMatrix m;
  m.rows = c.size(0);
  m.dim = c.size(1);
  m.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return m;
}

torch::Tensor ToTensor(const Image& image) {
  return torch::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3},
                          torch::kUInt8)
      .clone();
}

PromptSetMeta MetaOf(const train::PromptSet& set) {
  PromptSetMeta meta;
  meta.backbone = set.info.backbone_fingerprint;
  meta.num_prompts = static_cast<int>(set.info.model.num_prompts);
  meta.depth = static_cast<int>(set.info.model.depth);
  meta.alpha = set.info.model.alpha;
  meta.variant = provp::VariantName(set.info.model.variant);
  meta.base_class_names = set.info.class_names;
  meta.templates = set.info.templates;
  if (set.info.training_summary.is_object() &&
      set.info.training_summary.contains("novel_class_names")) {
    meta.novel_class_names =
        set.info.training_summary["novel_class_names"].get<std::vector<std::string>>();
  }
  meta.memory_bytes = set.prompts.defined() ? set.prompts.numel() * 4 : 0;
  return meta;
}

class TorchEngine : public Engine {
 public:
  TorchEngine(TorchEngineOptions options, clip::LoadedCheckpoint checkpoint, clip::ClipModel model,
              std::shared_ptr<const text::Tokenizer> tokenizer)
      : options_(std::move(options)),
        config_(checkpoint.config),
        model_(std::move(model)),
        tokenizer_(std::move(tokenizer)) {
    info_.backbone = checkpoint.fingerprint;
    info_.description = config_.DebugString();
    info_.device = options_.device;
    info_.image_resolution = static_cast<int>(config_.image_resolution);
    info_.embed_dim = static_cast<int>(config_.embed_dim);
    info_.logit_scale = model_->LogitScale();
  }

  const ModelInfo& info() const override { return info_; }

  std::optional<DeviceMemory> DeviceMemoryUsage() const override {
    if (info_.device.rfind("cuda", 0) != 0) return std::nullopt;
    absl::StatusOr<clip::DeviceMemoryStats> stats = clip::QueryDeviceMemory(info_.device);
    if (!stats.ok()) return std::nullopt;
    return DeviceMemory{absl::StrCat("cuda:", stats->device_index), stats->allocated_bytes,
                        stats->reserved_bytes, stats->total_bytes};
  }

  absl::Status Warmup() override {
    Image black{config_.image_resolution > 0 ? static_cast<int>(config_.image_resolution) : 32,
                static_cast<int>(config_.image_resolution),
                {}};
    black.rgb.assign(static_cast<size_t>(black.height) * black.width * 3, 0);
    RETURN_IF_ERROR(EncodeImages({&black}, "").status());
    RETURN_IF_ERROR(ClassTextFeatures({"cat", "dog"}, {}).status());
#ifdef PROVP_ENGINE_CUDA
    if (info_.device.rfind("cuda", 0) == 0 && options_.cuda_graph_max_batch > 0) {
      // Zero-shot graphs for every bucket now; prompted ones on first use.
      RETURN_IF_ERROR(util::TorchCall("capture CUDA graphs", [&] {
        c10::InferenceMode guard;
        const int64_t r = config_.image_resolution;
        for (int64_t b = 1; b <= options_.cuda_graph_max_batch; b *= 2) {
          Forward(torch::zeros({b, 3, r, r}, torch::TensorOptions().device(info_.device)), nullptr);
        }
      }));
    }
#endif
    return absl::OkStatus();
  }

  // Marks an image encode as running for the tuning thread
  // (YieldToInference).
  class EncodeScope {
   public:
    explicit EncodeScope(TorchEngine* engine) : engine_(engine) { ++engine_->encodes_running_; }
    ~EncodeScope() {
      engine_->last_encode_end_ns_ = SteadyNanos();
      --engine_->encodes_running_;
    }
    EncodeScope(const EncodeScope&) = delete;
    EncodeScope& operator=(const EncodeScope&) = delete;

   private:
    TorchEngine* const engine_;
  };

  static int64_t SteadyNanos() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // Runs on the tuning thread before each step: waits (bounded) for a
  // running encode to finish, and on the CPU gives the tuning thread fewer
  // OpenMP threads while inference traffic is about. *reduced tracks what
  // this thread has now.
  void YieldToInference(bool* reduced) {
    const auto start = std::chrono::steady_clock::now();
    const auto most = std::chrono::milliseconds(std::max(0, options_.tuning_yield_max_ms));
    while (encodes_running_.load() > 0 && std::chrono::steady_clock::now() - start < most) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (info_.device != "cpu" || options_.tuning_threads_when_serving <= 0) return;
    const bool serving = encodes_running_.load() > 0 ||
                         SteadyNanos() - last_encode_end_ns_.load() < int64_t{1000000000};
    if (serving == *reduced) return;
    if (util::SetThisThreadTorchThreads(serving ? options_.tuning_threads_when_serving
                                                : at::get_num_threads())) {
      *reduced = serving;
    }
  }

  absl::StatusOr<Image> PrepareImage(Image image) const override {
    if (image.eval_crop) return image;
    // One OpenMP thread for this image: the parallelism is the pool's (a
    // thread per image), and a team per pool thread would oversubscribe the
    // cores the model runs on. The caller's count is restored after (an RPC
    // thread also encodes text).
    const bool single = util::SetThisThreadTorchThreads(1);
    struct Restore {
      bool active;
      ~Restore() {
        if (active) util::SetThisThreadTorchThreads(at::get_num_threads());
      }
    } restore{single};
    return util::TorchCall("prepare image", [&]() -> absl::StatusOr<Image> {
      c10::InferenceMode guard;
      ASSIGN_OR_RETURN(torch::Tensor crop, EvalCrop(image));
      crop = crop.contiguous();
      Image out;
      out.height = static_cast<int>(crop.size(1));
      out.width = static_cast<int>(crop.size(2));
      out.eval_crop = true;
      out.rgb.assign(crop.data_ptr<uint8_t>(), crop.data_ptr<uint8_t>() + crop.numel());
      return out;
    });
  }

  absl::StatusOr<FeatureMatrix> EncodeImages(const std::vector<const Image*>& images,
                                             const std::string& prompt_set) override {
    EncodeScope running(this);
    std::shared_ptr<const LoadedPromptSet> ps;
    if (!prompt_set.empty()) {
      ASSIGN_OR_RETURN(ps, Acquire(prompt_set));
    }
    return util::TorchCall("encode images", [&]() -> absl::StatusOr<FeatureMatrix> {
      c10::InferenceMode guard;
      ASSIGN_OR_RETURN(torch::Tensor x, Preprocess(images));
      return ToMatrix(Forward(x, ps && ps->prompts.prompts.defined() ? &ps->prompts : nullptr));
    });
  }

  // Groups the images by prompt shape (depth, m): each group is one forward
  // in which every image gathers its own set's prompt rows; zero-shot
  // images (no prompt tokens, a shorter sequence) form their own forward.
  absl::StatusOr<FeatureMatrix> EncodeImagesMixed(
      const std::vector<const Image*>& images,
      const std::vector<std::string>& prompt_sets) override {
    if (images.size() != prompt_sets.size()) {
      return absl::InvalidArgumentError(absl::StrCat("EncodeImagesMixed: ", images.size(),
                                                     " images but ", prompt_sets.size(),
                                                     " prompt-set ids"));
    }
    EncodeScope running(this);
    std::map<std::string, std::shared_ptr<const LoadedPromptSet>> sets;
    for (const std::string& id : prompt_sets) {
      if (id.empty() || sets.count(id)) continue;
      ASSIGN_OR_RETURN(sets[id], Acquire(id));
    }
    // (depth, m) -> rows; (0, 0) holds the zero-shot rows.
    std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>> groups;
    for (size_t i = 0; i < images.size(); ++i) {
      std::pair<int64_t, int64_t> key{0, 0};
      if (!prompt_sets[i].empty()) {
        const torch::Tensor& p = sets.at(prompt_sets[i])->prompts.prompts;
        if (p.defined()) key = {p.size(0), p.size(1)};
      }
      groups[key].push_back(static_cast<int64_t>(i));
    }
    return util::TorchCall("encode mixed images", [&]() -> absl::StatusOr<FeatureMatrix> {
      c10::InferenceMode guard;
      ASSIGN_OR_RETURN(torch::Tensor x, Preprocess(images));
      const torch::Device device = x.device();
      torch::Tensor out;
      for (const auto& [key, rows] : groups) {
        torch::Tensor index = torch::tensor(rows, torch::kLong).to(device);
        torch::Tensor xg = groups.size() == 1 ? x : x.index_select(0, index);
        torch::Tensor f;
        if (key.first == 0) {
          f = Forward(xg, nullptr);
        } else {
          // Stack each distinct set of the group once; image_set maps rows to it.
          std::map<std::string, int64_t> slot;
          std::vector<torch::Tensor> stacked;
          std::vector<double> alphas;
          std::vector<int64_t> image_set;
          for (int64_t r : rows) {
            const std::string& id = prompt_sets[static_cast<size_t>(r)];
            auto [it, fresh] = slot.emplace(id, static_cast<int64_t>(stacked.size()));
            if (fresh) {
              stacked.push_back(sets.at(id)->prompts.prompts);
              alphas.push_back(sets.at(id)->prompts.alpha);
            }
            image_set.push_back(it->second);
          }
          clip::VisualPrompts vp;
          if (stacked.size() == 1) {
            vp.prompts = stacked.front();  // one set: the single-set forward exactly
            vp.alpha = alphas.front();
          } else {
            vp.prompts = torch::stack(stacked);
            vp.image_set = torch::tensor(image_set, torch::kLong).to(device);
            vp.alpha = alphas.front();
            if (std::any_of(alphas.begin(), alphas.end(),
                            [&](double a) { return a != alphas.front(); })) {
              vp.alphas = torch::tensor(alphas, torch::kFloat64);
            }
          }
          f = Forward(xg, &vp);
        }
        if (groups.size() == 1) {
          out = f;
        } else {
          if (!out.defined()) out = torch::empty({x.size(0), f.size(1)}, f.options());
          out.index_copy_(0, index, f);
        }
      }
      return ToMatrix(out);
    });
  }

  PromptSetCacheStats PromptSetCache() const override {
    std::lock_guard<std::mutex> lock(mu_);
    PromptSetCacheStats s = cache_stats_;
    s.registered_sets = static_cast<int64_t>(sets_.size());
    s.budget_bytes = options_.prompt_set_budget_bytes;
    return s;
  }

  absl::StatusOr<FeatureMatrix> EncodeTexts(const std::vector<std::string>& texts) override {
    std::vector<int64_t> ids;
    for (const auto& t : texts) {
      ASSIGN_OR_RETURN(auto row, tokenizer_->EncodeForContext(t, config_.context_length));
      ids.insert(ids.end(), row.begin(), row.end());
    }
    return util::TorchCall("encode texts", [&]() -> absl::StatusOr<FeatureMatrix> {
      c10::InferenceMode guard;
      torch::Tensor tokens = torch::tensor(ids, torch::kInt64)
                                 .view({static_cast<int64_t>(texts.size()), config_.context_length})
                                 .to(torch::Device(options_.device));
      torch::Tensor f = model_->EncodeText(tokens).to(torch::kFloat32);
      f = f / f.norm(2, -1, true);
      return ToMatrix(f);
    });
  }

  absl::StatusOr<FeatureMatrix> ClassTextFeatures(
      const std::vector<std::string>& class_names,
      const std::vector<std::string>& templates) override {
    return util::TorchCall("class text features", [&]() -> absl::StatusOr<FeatureMatrix> {
      ASSIGN_OR_RETURN(torch::Tensor f,
                       clip::ClassTextFeatures(model_, *tokenizer_, class_names, templates));
      return ToMatrix(f);
    });
  }

  absl::StatusOr<PromptSetMeta> InspectPromptSet(const std::string& path) override {
    return util::TorchCall("read prompt set", [&]() -> absl::StatusOr<PromptSetMeta> {
      ASSIGN_OR_RETURN(train::PromptSet set, train::ReadPromptSet(path));
      RETURN_IF_ERROR(train::CheckPromptSetMatches(set, config_, info_.backbone));
      return MetaOf(set);
    });
  }

  absl::StatusOr<PromptSetMeta> LoadPromptSet(const std::string& id,
                                              const std::string& path) override {
    ASSIGN_OR_RETURN(std::shared_ptr<const LoadedPromptSet> loaded, ReadPromptSetTensors(path));
    std::lock_guard<std::mutex> lock(mu_);
    PromptSetEntry& e = sets_[id];
    if (e.resident) DropResidentLocked(e);
    e.path = path;
    e.meta = loaded->meta;
    e.last_use = ++use_clock_;
    MakeResidentLocked(id, e, loaded);
    return loaded->meta;
  }

  absl::Status UnloadPromptSet(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sets_.find(id);
    if (it == sets_.end()) return absl::NotFoundError(id + " is not loaded");
    if (it->second.resident) DropResidentLocked(it->second);
    sets_.erase(it);
    return absl::OkStatus();
  }

  absl::StatusOr<TuningOutcome> RunTuning(const TuningSpec& spec,
                                          const TuningCallbacks& cb) override {
    return util::TorchCall("tuning", [&]() { return RunTuningImpl(spec, cb); });
  }

 private:
  // uint8 images -> normalised [N,3,R,R] on the engine's device. Images
  // PrepareImage has cropped are only stacked here; others are resized
  // first (tuning evaluation, callers that skip PrepareImage). On CUDA
  // with pinned_staging the 8-bit crops go through a pinned host buffer
  // and a copy stream, and normalisation runs on the device (a quarter of
  // the bytes of float crops cross the bus).
  absl::StatusOr<torch::Tensor> Preprocess(const std::vector<const Image*>& images) {
    if (images.empty()) return absl::InvalidArgumentError("no images to encode");
    const torch::Device device(options_.device);
    std::vector<torch::Tensor> crops;
    crops.reserve(images.size());
    for (const Image* img : images) {
      ASSIGN_OR_RETURN(torch::Tensor c, EvalCrop(*img));
      crops.push_back(std::move(c));
    }
    torch::Tensor stacked = torch::stack(crops);
    if (device.is_cuda() && options_.pinned_staging) return StageToDevice(stacked);
    // NormalizeForModel of the stacked crops equals stacking
    // PreprocessForEval of each image exactly (preprocess.h).
    return image::NormalizeForModel(stacked).to(device);
  }

  // The 8-bit test-time crop [3,R,R] of one image: a view of a prepared
  // image's planes, or computed now.
  absl::StatusOr<torch::Tensor> EvalCrop(const Image& img) const {
    const int64_t r = config_.image_resolution;
    if (!img.eval_crop) return image::ResizeCropForEval(ToTensor(img), r);
    if (img.height != r || img.width != r || static_cast<int64_t>(img.rgb.size()) != 3 * r * r) {
      return absl::InvalidArgumentError(absl::StrCat("a prepared image is ", img.width, "x",
                                                     img.height, ", not this model's ", r, "x", r,
                                                     " crop"));
    }
    return torch::from_blob(const_cast<uint8_t*>(img.rgb.data()), {3, r, r}, torch::kUInt8);
  }

  // uint8 [N,3,R,R] host crops -> normalised float on the device.
  torch::Tensor StageToDevice(const torch::Tensor& crops) {
    const torch::Device device(options_.device);
#ifdef PROVP_ENGINE_CUDA
    torch::Tensor pinned = torch::empty(crops.sizes(), crops.options().pinned_memory(true));
    pinned.copy_(crops);
    c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device.index());
    c10::cuda::CUDAStream copy = c10::cuda::getStreamFromPool(false, device.index());
    torch::Tensor on_device;
    {
      c10::cuda::CUDAStreamGuard guard(copy);
      on_device = pinned.to(device, /*non_blocking=*/true);
    }
    // The compute stream waits for the copy; the caching allocator must not
    // reuse either buffer before the copy is done.
    at::cuda::CUDAEvent copied;
    copied.record(copy);
    copied.block(compute);
    c10::cuda::CUDACachingAllocator::recordStream(on_device.storage().data_ptr(), compute);
    return image::NormalizeForModel(on_device);
#else
    return image::NormalizeForModel(crops.to(device));
#endif
  }

  // Normalised features [N,D] fp32 of a preprocessed batch. On CUDA, batches
  // of up to cuda_graph_max_batch images replay a captured graph.
  torch::Tensor Forward(const torch::Tensor& x, const clip::VisualPrompts* vp) {
#ifdef PROVP_ENGINE_CUDA
    if (x.is_cuda() && x.size(0) <= options_.cuda_graph_max_batch &&
        (vp == nullptr || !vp->alphas.defined())) {
      return GraphForward(x, vp);
    }
#endif
    torch::Tensor f = model_->EncodeImage(x, vp).to(torch::kFloat32);
    return f / f.norm(2, -1, true);
  }

#ifdef PROVP_ENGINE_CUDA
  torch::Tensor GraphForward(const torch::Tensor& x, const clip::VisualPrompts* vp) {
    const int64_t n = x.size(0);
    const int64_t bucket = NextBucket(n);
    int64_t depth = 0, m = 0;
    double alpha = 0.0;
    torch::Tensor per_image;  // [n,depth,m,W]
    if (vp != nullptr) {
      const torch::Tensor& p = vp->prompts;
      if (p.dim() == 3) {
        per_image = p.unsqueeze(0).expand({n, p.size(0), p.size(1), p.size(2)});
      } else {
        per_image = vp->image_set.defined() ? p.index_select(0, vp->image_set.to(p.device())) : p;
      }
      depth = per_image.size(1);
      m = per_image.size(2);
      alpha = vp->alpha;
    }
    std::shared_ptr<CapturedForward> g = Captured(bucket, depth, m, alpha, x.device());
    std::lock_guard<std::mutex> lock(g->mu);
    g->input.narrow(0, 0, n).copy_(x);
    if (depth > 0) g->prompts.narrow(0, 0, n).copy_(per_image);
    g->graph.replay();
    return g->output.narrow(0, 0, n).clone();
  }

  // The graph for (bucket, depth, m, alpha), captured on first use.
  std::shared_ptr<CapturedForward> Captured(int64_t bucket, int64_t depth, int64_t m, double alpha,
                                            const torch::Device& device) {
    const std::tuple<int64_t, int64_t, int64_t, double> key{bucket, depth, m, alpha};
    std::lock_guard<std::mutex> lock(graphs_mu_);  // one capture at a time
    auto it = graphs_.find(key);
    if (it != graphs_.end()) return it->second;
    auto g = std::make_shared<CapturedForward>();
    const torch::Dtype dtype = model_->parameters().front().scalar_type();
    const int64_t r = config_.image_resolution;
    const auto opts = torch::TensorOptions().device(device).dtype(dtype);
    g->input = torch::zeros({bucket, 3, r, r}, opts);
    clip::VisualPrompts cvp;
    if (depth > 0) {
      g->prompts = torch::zeros({bucket, depth, m, config_.vision_width}, opts);
      cvp.prompts = g->prompts;
      cvp.alpha = alpha;
    }
    torch::cuda::synchronize(device.index());
    c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
    {
      c10::cuda::CUDAStreamGuard guard(side);
      for (int i = 0; i < 2; ++i) model_->EncodeImage(g->input, depth > 0 ? &cvp : nullptr);
      side.synchronize();
      // Thread-local capture: other threads' eager work may go on.
      g->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
      torch::Tensor f =
          model_->EncodeImage(g->input, depth > 0 ? &cvp : nullptr).to(torch::kFloat32);
      g->output = f / f.norm(2, -1, true);
      g->graph.capture_end();
      side.synchronize();
    }
    graphs_[key] = g;
    return g;
  }
#endif

  absl::StatusOr<std::shared_ptr<const LoadedPromptSet>> ReadPromptSetTensors(
      const std::string& path) {
    return util::TorchCall(
        "load prompt set", [&]() -> absl::StatusOr<std::shared_ptr<const LoadedPromptSet>> {
          ASSIGN_OR_RETURN(train::PromptSet set,
                           train::LoadPromptSet(path, config_, info_.backbone));
          auto loaded = std::make_shared<LoadedPromptSet>();
          loaded->meta = MetaOf(set);
          if (set.prompts.defined()) {
            loaded->prompts.prompts = set.prompts.to(torch::Device(options_.device));
            loaded->bytes = loaded->prompts.prompts.numel() *
                            static_cast<int64_t>(loaded->prompts.prompts.element_size());
          }
          loaded->prompts.alpha = set.info.model.alpha;
          return std::shared_ptr<const LoadedPromptSet>(loaded);
        });
  }

  // The set's tensors, read back from its file when they were evicted.
  absl::StatusOr<std::shared_ptr<const LoadedPromptSet>> Acquire(const std::string& id) {
    std::string path;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sets_.find(id);
      if (it == sets_.end()) {
        return absl::FailedPreconditionError("prompt set " + id + " is not loaded");
      }
      it->second.last_use = ++use_clock_;
      if (it->second.resident) return it->second.resident;
      path = it->second.path;
    }
    // Read outside the lock: other sets keep serving meanwhile.
    ASSIGN_OR_RETURN(std::shared_ptr<const LoadedPromptSet> loaded, ReadPromptSetTensors(path));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sets_.find(id);
    if (it == sets_.end()) {
      return absl::FailedPreconditionError("prompt set " + id + " was unloaded");
    }
    if (!it->second.resident) MakeResidentLocked(id, it->second, loaded);
    return it->second.resident;
  }

  void MakeResidentLocked(const std::string& id, PromptSetEntry& e,
                          std::shared_ptr<const LoadedPromptSet> loaded) {
    e.resident = std::move(loaded);
    ++cache_stats_.loads;
    ++cache_stats_.resident_sets;
    cache_stats_.resident_bytes += e.resident->bytes;
    // Evict least recently used sets (never the one just loaded) until the
    // budget holds; a forward still using an evicted set keeps its tensors.
    const int64_t budget = options_.prompt_set_budget_bytes;
    while (budget > 0 && cache_stats_.resident_bytes > budget) {
      PromptSetEntry* oldest = nullptr;
      for (auto& [other_id, other] : sets_) {
        if (other_id == id || !other.resident) continue;
        if (oldest == nullptr || other.last_use < oldest->last_use) oldest = &other;
      }
      if (oldest == nullptr) break;
      DropResidentLocked(*oldest);
      ++cache_stats_.evictions;
    }
  }

  void DropResidentLocked(PromptSetEntry& e) {
    cache_stats_.resident_bytes -= e.resident->bytes;
    --cache_stats_.resident_sets;
    e.resident.reset();
  }

  // The request's values over the preset (hyperparameters.h resolves them
  // for every front end alike).
  absl::StatusOr<train::TrainConfig> ConfigFor(const TuningSpec& spec) {
    train::HyperparameterRequest req;
    req.preset = spec.preset;
    req.variant = spec.variant;
    req.shots = spec.shots;
    req.has_novel_classes = !spec.novel_classes.empty();
    if (spec.num_prompts > 0) req.num_prompts = spec.num_prompts;
    if (spec.epochs > 0) req.epochs = spec.epochs;
    if (spec.learning_rate > 0) req.learning_rate = spec.learning_rate;
    if (spec.batch_size > 0) req.batch_size = spec.batch_size;
    req.alpha = spec.alpha;
    req.use_ref = spec.use_feature_reformation;
    req.ref_lambda = spec.ref_lambda;
    req.weight_decay = spec.weight_decay;
    req.min_crop_scale = spec.min_crop_scale;
    req.seed = spec.seed;
    req.selection = spec.selection;
    ASSIGN_OR_RETURN(train::ResolvedHyperparameters resolved, train::ResolveHyperparameters(req));
    ASSIGN_OR_RETURN(train::TrainConfig config, train::ConfigFromResolved(resolved));
    config.augment.size = config_.image_resolution;
    return config;
  }

  // The server's dataset in the core's form: every class, items in the
  // server's order with their labels, so the draw is the protocol's.
  absl::StatusOr<TuningOutcome> RunTuningImpl(const TuningSpec& spec, const TuningCallbacks& cb) {
    // From the process's thread count (YieldToInference lowers it).
    util::SetThisThreadTorchThreads(at::get_num_threads());
    train::TuningRunSpec run;
    run.dataset.name = spec.job_id;
    run.dataset.class_names = spec.class_names;
    for (const TuningItem& it : spec.items) {
      data::Split split = it.split == Split::kTrain ? data::Split::kTrain
                          : it.split == Split::kVal ? data::Split::kVal
                                                    : data::Split::kTest;
      run.dataset.mutable_items(split).push_back(data::Item{it.path, it.label});
    }
    if (!spec.novel_classes.empty()) {
      run.novel = train::NovelClasses::kExplicit;
      run.novel_labels = spec.novel_classes;
    }
    ASSIGN_OR_RETURN(run.config, ConfigFor(spec));
    run.templates = spec.templates;
    run.load_image = [&spec](const data::Item& item,
                             data::Split split) -> absl::StatusOr<torch::Tensor> {
      Split s = split == data::Split::kTrain ? Split::kTrain
                : split == data::Split::kVal ? Split::kVal
                                             : Split::kTest;
      ASSIGN_OR_RETURN(Image img, spec.load_image(TuningItem{item.path, item.label, s}));
      return ToTensor(img);
    };
    run.eval_batch_size = options_.eval_batch_size;
    run.checkpoint_path = spec.checkpoint_path;
    run.output_path = spec.output_path;
    run.resume = true;
    run.cancel = cb.stop;
    run.on_message = cb.on_message;
    run.report_steps = true;
    bool reduced_threads = false;
    run.on_progress = [&cb, this, &reduced_threads](const train::TrainProgress& p) {
      YieldToInference(&reduced_threads);
      if (cb.on_progress) {
        TuningProgress q;
        q.epoch_end = p.kind == train::TrainProgress::Kind::kEpoch;
        q.epoch = static_cast<int>(p.epoch);
        q.total_epochs = static_cast<int>(p.epochs);
        q.step = p.global_step;
        q.total_steps = p.total_steps;
        q.learning_rate = p.learning_rate;
        q.loss = p.loss;
        q.loss_xe = p.ce;
        q.loss_ref = p.ref;
        q.train_accuracy = p.train_accuracy;
        q.images_per_second = p.images_per_second;
        q.eta_seconds = p.eta_seconds;
        q.validation_accuracy = p.validation_accuracy;
        cb.on_progress(q);
      }
      return !(cb.stop && cb.stop->load());
    };
    train::TuningBackbone backbone{model_, tokenizer_.get(), info_.backbone};
    absl::StatusOr<train::TuningRunResult> result = train::RunTuning(backbone, run);
    if (reduced_threads) util::SetThisThreadTorchThreads(at::get_num_threads());
    ASSIGN_OR_RETURN(train::TuningRunResult r, std::move(result));

    TuningOutcome out;
    out.prompt_set = MetaOf(r.prompt_set);
    out.hyperparameters = train::ResolvedFromConfig(r.config);
    for (const data::Item& it : r.few_shot.train) out.train_image_paths.push_back(it.path);
    out.resumed_from_epoch = static_cast<int>(r.training.resumed_from_epoch);
    out.epochs_completed = static_cast<int>(r.training.epochs_completed);
    out.selected_epoch = static_cast<int>(r.training.selected_epoch);
    out.best_validation_accuracy = r.training.best_validation_accuracy;
    for (const nlohmann::json& e : r.training.history) {
      EpochSummary h;
      h.epoch = e.value("epoch", 0);
      h.learning_rate = e.value("learning_rate", 0.0);
      h.loss = e.value("loss", 0.0);
      h.train_accuracy = e.value("train_accuracy", 0.0);
      h.validation_accuracy = e.value("validation_accuracy", -1.0);
      out.history.push_back(h);
    }
    TuningEvaluation& ev = out.evaluation;
    ev.base_accuracy = r.base.tuned.top1;
    ev.zero_shot_base_accuracy = r.base.zero_shot.top1;
    ev.num_base_images = r.base.tuned.num_images;
    ev.harmonic_mean = r.harmonic_mean;
    for (size_t c = 0; c < r.base.tuned.per_class_accuracy.size(); ++c) {
      ev.per_class.push_back({r.base.class_names[c], r.base.tuned.per_class_accuracy[c],
                              r.base.tuned.per_class_count[c], false});
    }
    if (r.novel) {
      ev.novel_accuracy = r.novel->tuned.top1;
      ev.zero_shot_novel_accuracy = r.novel->zero_shot.top1;
      ev.num_novel_images = r.novel->tuned.num_images;
      for (size_t c = 0; c < r.novel->tuned.per_class_accuracy.size(); ++c) {
        ev.per_class.push_back({r.novel->class_names[c], r.novel->tuned.per_class_accuracy[c],
                                r.novel->tuned.per_class_count[c], true});
      }
    }
    return out;
  }

  const TorchEngineOptions options_;
  const clip::ClipConfig config_;
  clip::ClipModel model_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  ModelInfo info_;
  // Inference first while tuning (TorchEngineOptions.tuning_yield_max_ms):
  // encodes running now, and when the last one ended (steady clock, ns).
  std::atomic<int> encodes_running_{0};
  std::atomic<int64_t> last_encode_end_ns_{0};
  mutable std::mutex mu_;  // guards sets_, use_clock_, cache_stats_
  std::map<std::string, PromptSetEntry> sets_;
  uint64_t use_clock_ = 0;
  PromptSetCacheStats cache_stats_;
#ifdef PROVP_ENGINE_CUDA
  std::mutex graphs_mu_;  // guards graphs_ and serialises captures
  std::map<std::tuple<int64_t, int64_t, int64_t, double>, std::shared_ptr<CapturedForward>> graphs_;
#endif
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> CreateTorchEngine(const TorchEngineOptions& options) {
  util::SetTorchThreads(options.num_threads);
  util::KeepFreedHostMemory();
  ASSIGN_OR_RETURN(clip::LoadedCheckpoint checkpoint, util::TorchCall("load checkpoint", [&] {
                     return clip::LoadCheckpoint(options.model_path);
                   }));
  clip::ModelOptions mo;
  mo.device = options.device;
  mo.dtype = torch::kFloat32;
  if (options.device.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError("--device " + options.device +
                                           " but CUDA is not available");
    }
    mo.dtype = torch::kBFloat16;
  }
  ASSIGN_OR_RETURN(clip::ClipModel model, util::TorchCall("build model", [&] {
                     return clip::BuildClipModel(checkpoint, mo);
                   }));
  std::string vocab = !options.vocab_path.empty() ? options.vocab_path : checkpoint.tokenizer_dir;
  if (vocab.empty()) {
    return absl::InvalidArgumentError(
        "no tokenizer files next to " + options.model_path +
        "; pass --vocab (bpe_simple_vocab_16e6.txt.gz or a vocab.json + merges.txt folder)");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<text::Tokenizer> tokenizer, text::Tokenizer::FromPath(vocab));
  std::shared_ptr<const text::Tokenizer> shared(std::move(tokenizer));
  return std::unique_ptr<Engine>(
      new TorchEngine(options, std::move(checkpoint), std::move(model), std::move(shared)));
}

}  // namespace provp::engine
