// `provp prompt-sets list|get|delete|load|unload|export|import`. Export and
// import move a prompt-set file (prompts in safetensors + metadata) in
// chunks, so files of any size respect the message limit.
#include <fstream>

#include "client/commands/command.h"
#include "provp/v1/prompt_set.grpc.pb.h"

namespace provp::client {
namespace {

using provp::v1::PromptSet;
constexpr size_t kChunkBytes = 1 << 20;

void PrintPromptSet(Cli& cli, const PromptSet& p) {
  if (cli.json) return PrintJson(p);
  std::printf("%s  %s  %s  prompts %dx%d  base %d / novel %d classes", p.name().c_str(),
              PromptSet::State_Name(p.state()).c_str(), p.variant().c_str(), p.prompt_depth(),
              p.num_prompts(), p.base_class_names_size(), p.novel_class_names_size());
  if (p.has_evaluation()) {
    std::printf("  base %.2f%%", 100 * p.evaluation().base_accuracy());
    if (p.evaluation().num_novel_images() > 0) {
      std::printf(" novel %.2f%% HM %.2f%%", 100 * p.evaluation().novel_accuracy(),
                  100 * p.evaluation().harmonic_mean());
    }
  }
  std::printf("\n");
}

// Registers a subcommand that takes one id and calls a unary RPC on it.
template <typename Req, typename Resp, typename Call, typename Print>
void AddUnary(CLI::App& parent, Cli& cli, const char* name, const char* help, Call call,
              Print print) {
  auto id = std::make_shared<std::string>();
  auto* cmd = parent.add_subcommand(name, help);
  cmd->add_option("id", *id, "Prompt set id")->required();
  cmd->callback([&cli, id, call, print] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::PromptSetService::NewStub(conn->channel());
    Req req;
    req.set_name(ResourceName("promptSets", *id));
    Resp resp;
    auto ctx = conn->NewContext();
    grpc::Status st = call(*stub, ctx.get(), req, &resp);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    print(cli, req, resp);
  });
}

}  // namespace

void AddPromptSetsCommand(CLI::App& app, Cli& cli) {
  using Stub = provp::v1::PromptSetService::Stub;
  auto* cmd = app.add_subcommand("prompt-sets", "Manage learned prompt sets");
  cmd->require_subcommand(1);

  auto* list = cmd->add_subcommand("list", "List prompt sets");
  list->callback([&cli] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::PromptSetService::NewStub(conn->channel());
    provp::v1::ListPromptSetsRequest req;
    req.set_page_size(100);
    do {
      provp::v1::ListPromptSetsResponse resp;
      auto ctx = conn->NewContext();
      grpc::Status st = stub->ListPromptSets(ctx.get(), req, &resp);
      if (!st.ok()) return Fail(cli, DescribeStatus(st));
      for (const auto& p : resp.prompt_sets()) PrintPromptSet(cli, p);
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
  });

  auto print_set = [](Cli& c, const auto&, const PromptSet& p) { PrintPromptSet(c, p); };
  AddUnary<provp::v1::GetPromptSetRequest, PromptSet>(
      *cmd, cli, "get", "Show one prompt set",
      [](Stub& s, grpc::ClientContext* c, const auto& r, PromptSet* p) {
        return s.GetPromptSet(c, r, p);
      },
      print_set);
  AddUnary<provp::v1::LoadPromptSetRequest, PromptSet>(
      *cmd, cli, "load", "Load a prompt set for classification",
      [](Stub& s, grpc::ClientContext* c, const auto& r, PromptSet* p) {
        return s.LoadPromptSet(c, r, p);
      },
      print_set);
  AddUnary<provp::v1::UnloadPromptSetRequest, PromptSet>(
      *cmd, cli, "unload", "Unload a prompt set",
      [](Stub& s, grpc::ClientContext* c, const auto& r, PromptSet* p) {
        return s.UnloadPromptSet(c, r, p);
      },
      print_set);
  AddUnary<provp::v1::DeletePromptSetRequest, provp::v1::DeletePromptSetResponse>(
      *cmd, cli, "delete", "Delete a prompt set",
      [](Stub& s, grpc::ClientContext* c, const auto& r, provp::v1::DeletePromptSetResponse* p) {
        return s.DeletePromptSet(c, r, p);
      },
      [](Cli&, const auto& r, const auto&) { std::printf("deleted %s\n", r.name().c_str()); });

  auto ex_id = std::make_shared<std::string>();
  auto ex_out = std::make_shared<std::string>();
  auto* ex = cmd->add_subcommand("export", "Download a prompt set file");
  ex->add_option("id", *ex_id, "Prompt set id")->required();
  ex->add_option("--output,-o", *ex_out, "File to write")->required();
  ex->callback([&cli, ex_id, ex_out] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::PromptSetService::NewStub(conn->channel());
    provp::v1::ExportPromptSetRequest req;
    req.set_name(ResourceName("promptSets", *ex_id));
    auto ctx = conn->NewContext(/*with_deadline=*/false);
    auto reader = stub->ExportPromptSet(ctx.get(), req);
    const std::string tmp = *ex_out + ".part";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Fail(cli, "cannot write " + tmp);
    provp::v1::ExportPromptSetResponse msg;
    size_t bytes = 0;
    PromptSet meta;
    while (reader->Read(&msg)) {
      if (msg.has_prompt_set()) meta = msg.prompt_set();
      if (msg.payload_case() == provp::v1::ExportPromptSetResponse::kChunk) {
        out.write(msg.chunk().data(), static_cast<std::streamsize>(msg.chunk().size()));
        bytes += msg.chunk().size();
      }
    }
    grpc::Status st = reader->Finish();
    out.close();
    if (!st.ok() || !out) {
      std::remove(tmp.c_str());
      return Fail(cli, st.ok() ? "cannot write " + *ex_out : DescribeStatus(st));
    }
    if (std::rename(tmp.c_str(), ex_out->c_str()) != 0)
      return Fail(cli, "cannot rename to " + *ex_out);
    std::printf("exported %s (%zu bytes) to %s\n", meta.name().c_str(), bytes, ex_out->c_str());
  });

  auto im_file = std::make_shared<std::string>();
  auto im_meta = std::make_shared<provp::v1::ImportPromptSetMetadata>();
  auto* im = cmd->add_subcommand("import", "Upload a prompt set file exported from a server");
  im->add_option("file", *im_file, "Prompt set file")->required()->check(CLI::ExistingFile);
  im->add_option_function<std::string>(
        "--id", [im_meta](const std::string& v) { im_meta->set_prompt_set_id(v); }, "Prompt set id")
      ->required();
  im->add_flag_function(
      "--load", [im_meta](int64_t n) { im_meta->set_load(n > 0); }, "Load it after import");
  im->callback([&cli, im_file, im_meta] {
    std::ifstream in(*im_file, std::ios::binary);
    if (!in) return Fail(cli, "cannot read " + *im_file);
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::PromptSetService::NewStub(conn->channel());
    auto ctx = conn->NewContext(/*with_deadline=*/false);
    PromptSet result;
    auto writer = stub->ImportPromptSet(ctx.get(), &result);
    provp::v1::ImportPromptSetRequest msg;
    *msg.mutable_metadata() = *im_meta;
    bool ok = writer->Write(msg);
    std::string buf(kChunkBytes, '\0');
    while (ok && in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto n = in.gcount();
      if (n <= 0) break;
      msg.Clear();
      msg.set_chunk(buf.data(), static_cast<size_t>(n));
      ok = writer->Write(msg);
    }
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    PrintPromptSet(cli, result);
  });
}

}  // namespace provp::client
