// `provp datasets upload|register|list|get|delete`. Upload reads a local
// class-per-folder or CoOp-layout directory with the same loaders the server
// uses (core/data, no LibTorch), then streams metadata followed by chunks of
// labelled encoded images with a progress bar. The base/novel split can be
// given by name or by the paper's rule (--novel auto: the last floor(n/2)
// labels are novel).
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "client/commands/command.h"
#include "client/progress.h"
#include "core/data/loaders.h"
#include "provp/v1/dataset.grpc.pb.h"

namespace provp::client {
namespace {

namespace fs = std::filesystem;
constexpr size_t kChunkBytes = 4 << 20;

struct UploadFlags {
  std::string dir;
  std::string id;
  std::string display_name;
  std::string layout = "auto";
  std::string split_name;
  std::string novel;
  int min_shots = 0;
  std::string request_id;
};

absl::StatusOr<data::Dataset> LoadLocal(const UploadFlags& f) {
  std::string layout = f.layout;
  if (layout == "auto") {
    layout = "folders";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(f.dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("split_", 0) == 0 && e.path().extension() == ".json") layout = "coop";
    }
    if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", f.dir, ": ", ec.message()));
  }
  if (layout == "coop") return data::LoadCoopDataset(f.dir, f.split_name);
  if (layout == "folders") return data::LoadClassFolders(f.dir, f.id);
  return absl::InvalidArgumentError("--layout must be auto, coop or folders");
}

provp::v1::Split ToProto(data::Split s) {
  switch (s) {
    case data::Split::kTrain:
      return provp::v1::TRAIN;
    case data::Split::kVal:
      return provp::v1::VAL;
    case data::Split::kTest:
      return provp::v1::TEST;
  }
  return provp::v1::TRAIN;
}

void PrintDataset(Cli& cli, const provp::v1::Dataset& d) {
  if (cli.json) return PrintJson(d);
  std::printf("%s  %s  classes=%d (novel %d)  train=%lld val=%lld test=%lld  max_shots=%lld\n",
              d.name().c_str(), provp::v1::Dataset::State_Name(d.state()).c_str(),
              d.class_names_size(), d.novel_class_names_size(),
              static_cast<long long>(d.stats().num_train_images()),
              static_cast<long long>(d.stats().num_val_images()),
              static_cast<long long>(d.stats().num_test_images()),
              static_cast<long long>(d.stats().max_shots()));
}

void RunUpload(Cli& cli, const UploadFlags& f) {
  auto ds = LoadLocal(f);
  if (!ds.ok()) return Fail(cli, std::string(ds.status().message()));
  provp::v1::UploadDatasetRequest meta_msg;
  auto* meta = meta_msg.mutable_metadata();
  meta->set_dataset_id(f.id);
  meta->set_display_name(f.display_name.empty() ? ds->name : f.display_name);
  for (const auto& n : ds->class_names) meta->add_class_names(n);
  if (f.novel == "auto") {
    const size_t n = ds->class_names.size();
    for (size_t i = (n + 1) / 2; i < n; ++i) meta->add_novel_class_names(ds->class_names[i]);
  } else {
    for (const auto& n : SplitNames(f.novel)) meta->add_novel_class_names(n);
  }
  meta->set_min_shots(f.min_shots);
  meta->set_request_id(f.request_id);

  struct Entry {
    const data::Item* item;
    data::Split split;
  };
  std::vector<Entry> entries;
  uint64_t total_bytes = 0;
  for (data::Split s : {data::Split::kTrain, data::Split::kVal, data::Split::kTest}) {
    for (const auto& item : ds->items(s)) {
      entries.push_back({&item, s});
      std::error_code ec;
      total_bytes += fs::file_size(item.path, ec);
    }
  }
  if (entries.empty()) return Fail(cli, "no images found in " + f.dir);

  auto conn = Connect(cli);
  if (!conn) return;
  auto stub = provp::v1::DatasetService::NewStub(conn->channel());
  auto ctx = conn->NewContext(/*with_deadline=*/false);
  provp::v1::Dataset result;
  auto writer = stub->UploadDataset(ctx.get(), &result);
  if (!writer->Write(meta_msg)) {
    grpc::Status st = writer->Finish();
    return Fail(cli, DescribeStatus(st));
  }
  ProgressBar bar;
  provp::v1::UploadDatasetRequest chunk;
  size_t chunk_bytes = 0;
  uint64_t sent = 0;
  bool broken = false;
  for (size_t i = 0; i < entries.size() && !broken; ++i) {
    std::ifstream in(entries[i].item->path, std::ios::binary);
    if (!in) {
      writer->WritesDone();
      writer->Finish();
      return Fail(cli, "cannot read " + entries[i].item->path);
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    auto* img = chunk.mutable_images()->add_images();
    img->set_label(entries[i].item->label);
    img->set_split(ToProto(entries[i].split));
    img->set_encoded(ss.str());
    chunk_bytes += img->encoded().size();
    sent += img->encoded().size();
    if (chunk_bytes >= kChunkBytes || i + 1 == entries.size()) {
      if (!writer->Write(chunk)) broken = true;
      chunk.Clear();
      chunk_bytes = 0;
      bar.Update(total_bytes ? static_cast<double>(sent) / total_bytes : 1.0,
                 absl::StrCat(i + 1, "/", entries.size(), " images"));
    }
  }
  bar.Finish();
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) return Fail(cli, DescribeStatus(st));
  PrintDataset(cli, result);
}

}  // namespace

void AddDatasetsCommand(CLI::App& app, Cli& cli) {
  auto* cmd = app.add_subcommand("datasets", "Upload, register, list, inspect, delete datasets");
  cmd->require_subcommand(1);

  auto up = std::make_shared<UploadFlags>();
  auto* upload =
      cmd->add_subcommand("upload", "Upload a class-per-folder or CoOp-layout directory");
  upload->add_option("dir", up->dir, "Local dataset directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  upload->add_option("--id", up->id, "Dataset id ([a-z0-9][a-z0-9-_]*)")->required();
  upload->add_option("--display-name", up->display_name, "Free text name");
  upload->add_option("--layout", up->layout, "auto, coop or folders")
      ->check(CLI::IsMember({"auto", "coop", "folders"}));
  upload->add_option("--split-name", up->split_name, "CoOp: the <Name> of split_zhou_<Name>.json");
  upload->add_option("--novel", up->novel,
                     "Novel classes: comma-separated names, or 'auto' (last half)");
  upload->add_option("--min-shots", up->min_shots, "Require this many train images per base class");
  upload->add_option("--request-id", up->request_id, "Idempotency key");
  upload->callback([&cli, up] { RunUpload(cli, *up); });

  auto reg = std::make_shared<provp::v1::RegisterDatasetRequest>();
  auto reg_layout = std::make_shared<std::string>("auto");
  auto reg_novel = std::make_shared<std::string>();
  auto* registr = cmd->add_subcommand("register", "Register a directory that lives on the server");
  registr
      ->add_option_function<std::string>(
          "path", [reg](const std::string& v) { reg->set_path(v); }, "Absolute path on the server")
      ->required();
  registr
      ->add_option_function<std::string>(
          "--id", [reg](const std::string& v) { reg->set_dataset_id(v); }, "Dataset id")
      ->required();
  registr->add_option("--layout", *reg_layout, "auto, coop or folders")
      ->check(CLI::IsMember({"auto", "coop", "folders"}));
  registr->add_option_function<std::string>(
      "--split-file", [reg](const std::string& v) { reg->set_split_file(v); },
      "CoOp split file name");
  registr->add_option("--novel", *reg_novel, "Comma-separated novel class names");
  registr->add_option_function<int>(
      "--min-shots", [reg](int v) { reg->set_min_shots(v); },
      "Minimum train images per base class");
  registr->callback([&cli, reg, reg_layout, reg_novel] {
    reg->set_layout(*reg_layout == "coop" ? provp::v1::RegisterDatasetRequest::COOP
                    : *reg_layout == "folders"
                        ? provp::v1::RegisterDatasetRequest::CLASS_FOLDERS
                        : provp::v1::RegisterDatasetRequest::LAYOUT_UNSPECIFIED);
    for (const auto& n : SplitNames(*reg_novel)) reg->add_novel_class_names(n);
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::DatasetService::NewStub(conn->channel());
    provp::v1::Dataset d;
    auto ctx = conn->NewContext();
    grpc::Status st = stub->RegisterDataset(ctx.get(), *reg, &d);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    PrintDataset(cli, d);
  });

  auto* list = cmd->add_subcommand("list", "List datasets");
  list->callback([&cli] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::DatasetService::NewStub(conn->channel());
    provp::v1::ListDatasetsRequest req;
    req.set_page_size(100);
    do {
      provp::v1::ListDatasetsResponse resp;
      auto ctx = conn->NewContext();
      grpc::Status st = stub->ListDatasets(ctx.get(), req, &resp);
      if (!st.ok()) return Fail(cli, DescribeStatus(st));
      for (const auto& d : resp.datasets()) PrintDataset(cli, d);
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
  });

  auto get_id = std::make_shared<std::string>();
  auto* get = cmd->add_subcommand("get", "Show one dataset");
  get->add_option("id", *get_id, "Dataset id")->required();
  get->callback([&cli, get_id] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::DatasetService::NewStub(conn->channel());
    provp::v1::GetDatasetRequest req;
    req.set_name(ResourceName("datasets", *get_id));
    provp::v1::Dataset d;
    auto ctx = conn->NewContext();
    grpc::Status st = stub->GetDataset(ctx.get(), req, &d);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    if (cli.json) return PrintJson(d);
    PrintDataset(cli, d);
    for (int i = 0; i < d.class_names_size(); ++i) {
      std::printf("  %3d  %s\n", i, d.class_names(i).c_str());
    }
  });

  auto del_id = std::make_shared<std::string>();
  auto* del = cmd->add_subcommand("delete", "Delete a dataset");
  del->add_option("id", *del_id, "Dataset id")->required();
  del->callback([&cli, del_id] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::DatasetService::NewStub(conn->channel());
    provp::v1::DeleteDatasetRequest req;
    req.set_name(ResourceName("datasets", *del_id));
    provp::v1::DeleteDatasetResponse resp;
    auto ctx = conn->NewContext();
    grpc::Status st = stub->DeleteDataset(ctx.get(), req, &resp);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    std::printf("deleted %s\n", req.name().c_str());
  });
}

}  // namespace provp::client
