// `provp classify`: sends image files (or folders) to ClassificationService,
// batched, and prints the top-k labels per image, or JSON with --json.
// Images travel encoded; the server decodes them (the CLI links no LibTorch
// or OpenCV). An image the server cannot decode fails only its own line.
#include <fstream>
#include <sstream>

#include "client/commands/command.h"
#include "provp/v1/classification.grpc.pb.h"

namespace provp::client {
namespace {

struct ClassifyFlags {
  std::vector<std::string> inputs;
  std::string prompt_set;
  std::string classes;
  std::string classes_file;
  std::string class_set;
  std::vector<std::string> templates;
  int top_k = 5;
  int batch_size = 16;
};

bool ReadFileBytes(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

void RunClassify(Cli& cli, const ClassifyFlags& f) {
  std::vector<std::string> names = SplitNames(f.classes);
  if (!f.classes_file.empty()) {
    std::ifstream in(f.classes_file);
    if (!in) return Fail(cli, "cannot read classes file " + f.classes_file);
    for (std::string line; std::getline(in, line);) {
      const auto b = line.find_first_not_of(" \t\r");
      const auto e = line.find_last_not_of(" \t\r");
      if (b != std::string::npos) names.push_back(line.substr(b, e - b + 1));
    }
  }
  if (names.empty() && f.class_set.empty() && f.prompt_set.empty()) {
    return Fail(cli,
                "zero-shot classification needs classes: --classes, --classes-file or --class-set");
  }
  const std::vector<std::string> files = ExpandImageInputs(f.inputs);
  if (files.empty()) return Fail(cli, "no input images");
  auto conn = Connect(cli);
  if (!conn) return;
  auto stub = provp::v1::ClassificationService::NewStub(conn->channel());

  int failed = 0;
  for (size_t start = 0; start < files.size(); start += f.batch_size) {
    provp::v1::ClassifyRequest req;
    if (!f.prompt_set.empty()) req.set_prompt_set(ResourceName("promptSets", f.prompt_set));
    if (!names.empty()) {
      for (const auto& n : names) req.mutable_inline_classes()->add_names(n);
    } else if (!f.class_set.empty()) {
      req.set_class_set(ResourceName("classSets", f.class_set));
    }
    for (const auto& t : f.templates) req.add_templates(t);
    req.set_top_k(f.top_k);
    const size_t end = std::min(files.size(), start + static_cast<size_t>(f.batch_size));
    for (size_t i = start; i < end; ++i) {
      std::string bytes;
      if (!ReadFileBytes(files[i], &bytes)) return Fail(cli, "cannot read " + files[i]);
      req.add_images()->set_encoded(std::move(bytes));
    }
    provp::v1::ClassifyResponse resp;
    auto ctx = conn->NewContext();
    grpc::Status st = stub->Classify(ctx.get(), req, &resp);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    for (int i = 0; i < resp.results_size(); ++i) {
      const auto& r = resp.results(i);
      const std::string& file = files[start + i];
      if (r.has_error()) {
        ++failed;
        if (!cli.json) std::printf("%s\terror: %s\n", file.c_str(), r.error().message().c_str());
        continue;
      }
      if (cli.json) continue;
      std::printf("%s\n", file.c_str());
      for (const auto& l : r.prediction().labels()) {
        std::printf("  %6.2f%%  %s\n", 100.0 * l.score(), l.label().c_str());
      }
    }
    if (cli.json) PrintJson(resp);
  }
  if (failed > 0) {
    std::fprintf(stderr, "provp: %d of %zu images could not be classified\n", failed, files.size());
    cli.exit_code = 1;
  }
}

}  // namespace

void AddClassifyCommand(CLI::App& app, Cli& cli) {
  auto f = std::make_shared<ClassifyFlags>();
  auto* cmd = app.add_subcommand("classify", "Classify image files or folders");
  cmd->add_option("images", f->inputs, "Image files or folders")->required();
  cmd->add_option("--prompt-set,-p", f->prompt_set, "Prompt set id (default: zero-shot CLIP)");
  cmd->add_option("--classes,-c", f->classes, "Comma-separated class names (any, novel welcome)");
  cmd->add_option("--classes-file", f->classes_file, "File with one class name per line");
  cmd->add_option("--class-set", f->class_set, "Stored class set id");
  cmd->add_option("--template", f->templates, "Prompt template with {} (repeatable)");
  cmd->add_option("--top-k,-k", f->top_k, "Labels per image")->check(CLI::Range(1, 1000));
  cmd->add_option("--batch-size", f->batch_size, "Images per request")->check(CLI::Range(1, 256));
  cmd->callback([&cli, f] { RunClassify(cli, *f); });
}

}  // namespace provp::client
