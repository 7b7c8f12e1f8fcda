// provp-tool: the developer CLI over the core libraries, without a server.
//   provp-tool classify --model PATH --classes "dog,cat" img.jpg ...
//   provp-tool info --model PATH
//   provp-tool tokenize [--vocab PATH] "a photo of a dog."
// Exit code 0 on success; 1 with a one-line reason on any error.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/zero_shot.h"
#include "core/image/image_io.h"
#include "core/image/preprocess.h"
#include "core/text/tokenizer.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"
#include "nlohmann/json.hpp"

namespace provp {
namespace {

namespace fs = std::filesystem;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "provp-tool: %s\n", std::string(status.message()).c_str());
  return 1;
}

// Where the BPE vocabulary comes from: the flag, the model directory, or
// PROVP_CLIP_VOCAB; nothing is downloaded.
absl::StatusOr<std::shared_ptr<const text::Tokenizer>> OpenTokenizer(const std::string& flag,
                                                                     const std::string& model_dir) {
  std::string path = flag;
  if (path.empty()) path = model_dir;
  if (path.empty()) {
    if (const char* env = std::getenv("PROVP_CLIP_VOCAB"); env && *env) path = env;
  }
  if (path.empty()) {
    return absl::FailedPreconditionError(
        "no tokenizer vocabulary: pass --vocab (bpe_simple_vocab_16e6.txt.gz or a directory with "
        "vocab.json + merges.txt) or set PROVP_CLIP_VOCAB");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<text::Tokenizer> tok, text::Tokenizer::FromPath(path));
  return std::shared_ptr<const text::Tokenizer>(std::move(tok));
}

// Expands folders into their image files (sorted), keeps files as given.
std::vector<std::string> ExpandInputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(in, ec)) {
        if (!e.is_regular_file()) continue;
        std::string ext = e.path().extension().string();
        for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp") {
          found.push_back(e.path().string());
        }
      }
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(in);
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadClasses(const std::string& inline_list,
                                                     const std::string& file) {
  std::vector<std::string> names;
  if (!file.empty()) {
    ASSIGN_OR_RETURN(std::string data, util::ReadFile(file, 64 << 20));
    for (absl::string_view line : absl::StrSplit(data, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (!line.empty()) names.emplace_back(line);
    }
  }
  for (absl::string_view part : absl::StrSplit(inline_list, ',', absl::SkipEmpty())) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) names.emplace_back(part);
  }
  if (names.empty())
    return absl::InvalidArgumentError("no classes: pass --classes or --classes-file");
  return names;
}

struct ClassifyArgs {
  std::string model;
  std::string vocab;
  std::string classes;
  std::string classes_file;
  std::vector<std::string> templates;
  std::vector<std::string> inputs;
  int top_k = 5;
  int batch_size = 32;
  std::string device = "cpu";
  bool json = false;
};

int RunClassify(const ClassifyArgs& args) {
  auto names = ReadClasses(args.classes, args.classes_file);
  if (!names.ok()) return Fail(names.status());
  auto ckpt = clip::LoadCheckpoint(args.model);
  if (!ckpt.ok()) return Fail(ckpt.status());
  auto tokenizer = OpenTokenizer(args.vocab, ckpt->tokenizer_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status());
  clip::ModelOptions mopts;
  mopts.device = args.device;
  if (args.device != "cpu") mopts.dtype = torch::kBFloat16;
  auto model = clip::BuildClipModel(*ckpt, mopts);
  if (!model.ok()) return Fail(model.status());
  clip::ZeroShotOptions zopts;
  zopts.model_id = ckpt->fingerprint;
  clip::ZeroShotClassifier classifier(*model, *tokenizer, zopts);
  const int64_t resolution = ckpt->config.image_resolution;

  const std::vector<std::string> files = ExpandInputs(args.inputs);
  if (files.empty()) return Fail(absl::InvalidArgumentError("no input images"));
  nlohmann::json results = nlohmann::json::array();
  int failures = 0;
  for (size_t start = 0; start < files.size(); start += args.batch_size) {
    const size_t end = std::min(files.size(), start + static_cast<size_t>(args.batch_size));
    // Decode and preprocess the batch; remember per-file errors so results
    // print in input order.
    std::vector<torch::Tensor> batch;
    std::vector<std::string> errors(end - start);
    for (size_t i = start; i < end; ++i) {
      auto img = image::DecodeImageFile(files[i]);
      if (!img.ok()) {
        errors[i - start] = std::string(img.status().message());
        continue;
      }
      torch::Tensor hwc =
          torch::from_blob(img->pixels.data(), {img->height, img->width, 3}, torch::kUInt8);
      auto pre = image::PreprocessForEval(hwc, resolution);
      if (!pre.ok()) {
        errors[i - start] = std::string(pre.status().message());
        continue;
      }
      batch.push_back(*pre);
    }
    std::vector<std::vector<clip::Prediction>> preds;
    if (!batch.empty()) {
      auto p = classifier.Classify(torch::stack(batch), *names, args.templates, args.top_k);
      if (!p.ok()) return Fail(p.status());
      preds = std::move(*p);
    }
    size_t next = 0;
    for (size_t i = start; i < end; ++i) {
      const std::string& error = errors[i - start];
      if (!error.empty()) {
        ++failures;
        if (args.json) {
          results.push_back({{"file", files[i]}, {"error", error}});
        } else {
          std::printf("%s\terror: %s\n", files[i].c_str(), error.c_str());
        }
        continue;
      }
      const auto& top = preds[next++];
      if (args.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& p : top) {
          list.push_back({{"label", p.label},
                          {"class_index", p.class_index},
                          {"probability", p.probability},
                          {"logit", p.logit}});
        }
        results.push_back({{"file", files[i]}, {"top_k", list}});
      } else {
        std::printf("%s\n", files[i].c_str());
        for (const auto& p : top) {
          std::printf("  %6.2f%%  %s\n", 100.0 * p.probability, p.label.c_str());
        }
      }
    }
  }
  if (args.json) std::printf("%s\n", results.dump(2).c_str());
  return failures == 0 ? 0 : 1;
}

int RunInfo(const std::string& model_path) {
  auto ckpt = clip::LoadCheckpoint(model_path);
  if (!ckpt.ok()) return Fail(ckpt.status());
  std::printf("layout       %s\n", clip::CheckpointLayoutName(ckpt->layout));
  std::printf("architecture %s\n", ckpt->config.DebugString().c_str());
  std::printf("tensors      %zu\n", ckpt->weights.size());
  std::printf("fingerprint  %s\n", ckpt->fingerprint.c_str());
  std::printf("tokenizer    %s\n", ckpt->tokenizer_dir.empty() ? "(none next to the weights)"
                                                               : ckpt->tokenizer_dir.c_str());
  return 0;
}

int RunTokenize(const std::string& vocab, const std::vector<std::string>& texts) {
  auto tok = OpenTokenizer(vocab, "");
  if (!tok.ok()) return Fail(tok.status());
  for (const std::string& t : texts) {
    auto ids = (*tok)->EncodeForContext(t);
    if (!ids.ok()) return Fail(ids.status());
    std::string line;
    for (int64_t id : *ids) {
      if (id == 0) break;
      line += (line.empty() ? "" : " ") + std::to_string(id);
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace provp

int main(int argc, char** argv) {
  CLI::App app{"provp-tool: CLIP zero-shot classification and model inspection, no server"};
  app.require_subcommand(1);

  provp::ClassifyArgs c;
  auto* classify = app.add_subcommand("classify", "Zero-shot classify image files or folders");
  classify->add_option("--model", c.model, "CLIP weights: .safetensors, .pt, or a HF directory")
      ->required();
  classify->add_option("--vocab", c.vocab, "BPE vocab (.txt.gz or dir with vocab.json+merges.txt)");
  classify->add_option("--classes", c.classes, "Comma-separated class names");
  classify->add_option("--classes-file", c.classes_file, "File with one class name per line");
  classify->add_option("--template", c.templates, "Prompt template(s) with {} (repeatable)");
  classify->add_option("--top-k", c.top_k, "Labels printed per image")->check(CLI::Range(1, 1000));
  classify->add_option("--batch-size", c.batch_size, "Images per forward")
      ->check(CLI::Range(1, 4096));
  classify->add_option("--device", c.device, "cpu, cuda or cuda:N");
  classify->add_flag("--json", c.json, "Print JSON");
  classify->add_option("images", c.inputs, "Image files or folders")->required();

  std::string info_model;
  auto* info = app.add_subcommand("info", "Print a checkpoint's layout, sizes and fingerprint");
  info->add_option("--model", info_model, "CLIP weights")->required();

  std::string tok_vocab;
  std::vector<std::string> tok_texts;
  auto* tokenize = app.add_subcommand("tokenize", "Print CLIP token ids of each text");
  tokenize->add_option("--vocab", tok_vocab, "BPE vocab");
  tokenize->add_option("texts", tok_texts, "Texts")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*classify) return provp::RunClassify(c);
    if (*info) return provp::RunInfo(info_model);
    if (*tokenize) return provp::RunTokenize(tok_vocab, tok_texts);
  } catch (const std::exception& e) {
    // Defensive: core APIs return Status, but never die with a stack trace.
    std::fprintf(stderr, "provp-tool: %s\n", e.what());
    return 1;
  }
  return 1;
}
