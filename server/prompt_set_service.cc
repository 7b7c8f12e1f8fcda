// Implementation of prompt_set_service.h.
#include "server/prompt_set_service.h"

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "provp/v1/tuning.pb.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;
constexpr char kService[] = "provp.v1.PromptSetService";
constexpr size_t kChunkBytes = 1 << 20;

}  // namespace

grpc::Status PromptSetServiceImpl::ListPromptSets(grpc::ServerContext* ctx,
                                                  const v1::ListPromptSetsRequest* req,
                                                  v1::ListPromptSetsResponse* resp) {
  Rpc rpc(*env_, ctx, kService, "ListPromptSets", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(RecordPage page, ListRecordPage(*env_->store, store::Kind::kPromptSet,
                                                     req->page_size(), req->page_token()));
    for (const std::string& data : page.records) resp->add_prompt_sets()->ParseFromString(data);
    resp->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status PromptSetServiceImpl::GetPromptSet(grpc::ServerContext* ctx,
                                                const v1::GetPromptSetRequest* req,
                                                v1::PromptSet* resp) {
  Rpc rpc(*env_, ctx, kService, "GetPromptSet", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "promptSets", "name"));
    ASSIGN_OR_RETURN(*resp, env_->prompt_sets->Get(id));
    return absl::OkStatus();
  });
}

grpc::Status PromptSetServiceImpl::DeletePromptSet(grpc::ServerContext* ctx,
                                                   const v1::DeletePromptSetRequest* req,
                                                   v1::DeletePromptSetResponse*) {
  Rpc rpc(*env_, ctx, kService, "DeletePromptSet", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "promptSets", "name"));
    // Refuse while an unfinished job will publish under this id.
    store::ListOptions o;
    o.states = {"QUEUED", "RUNNING", "CANCELLING"};
    ASSIGN_OR_RETURN(auto jobs, env_->store->List(store::Kind::kJob, o));
    for (const auto& r : jobs) {
      v1::TuningJob job;
      if (job.ParseFromString(r.data) && job.base_prompt_set() == req->name()) {
        return FailedPrecondition("PROMPT_SET_IN_USE", req->name(),
                                  absl::StrCat(req->name(), " is used by ", job.name()));
      }
    }
    return env_->prompt_sets->Delete(id);
  });
}

grpc::Status PromptSetServiceImpl::LoadPromptSet(grpc::ServerContext* ctx,
                                                 const v1::LoadPromptSetRequest* req,
                                                 v1::PromptSet* resp) {
  Rpc rpc(*env_, ctx, kService, "LoadPromptSet", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "promptSets", "name"));
    ASSIGN_OR_RETURN(*resp, env_->prompt_sets->Load(id));
    return absl::OkStatus();
  });
}

grpc::Status PromptSetServiceImpl::UnloadPromptSet(grpc::ServerContext* ctx,
                                                   const v1::UnloadPromptSetRequest* req,
                                                   v1::PromptSet* resp) {
  Rpc rpc(*env_, ctx, kService, "UnloadPromptSet", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "promptSets", "name"));
    ASSIGN_OR_RETURN(*resp, env_->prompt_sets->Unload(id));
    return absl::OkStatus();
  });
}

grpc::Status PromptSetServiceImpl::ImportPromptSet(
    grpc::ServerContext* ctx, grpc::ServerReader<v1::ImportPromptSetRequest>* reader,
    v1::PromptSet* resp) {
  Rpc rpc(*env_, ctx, kService, "ImportPromptSet", "client_stream", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    absl::Status s = DoImport(reader, resp);
    if (env_->metrics) {
      env_->metrics->uploads->WithLabels({"prompt_set", s.ok() ? "ok" : "error"}).Increment();
    }
    return s;
  });
}

absl::Status PromptSetServiceImpl::DoImport(grpc::ServerReader<v1::ImportPromptSetRequest>* reader,
                                            v1::PromptSet* resp) {
  {
    const Limits& limits = env_->options.limits;
    v1::ImportPromptSetRequest msg;
    if (!reader->Read(&msg) || !msg.has_metadata()) {
      return InvalidArgument("METADATA_FIRST", "the first message must carry metadata", "metadata");
    }
    const v1::ImportPromptSetMetadata meta = msg.metadata();
    RETURN_IF_ERROR(ValidateId(meta.prompt_set_id(), "metadata.prompt_set_id"));
    if (static_cast<int>(meta.display_name().size()) > limits.max_name_length) {
      return InvalidArgument("NAME_TOO_LONG", "display_name is too long", "metadata.display_name");
    }
    if (env_->prompt_sets->Get(meta.prompt_set_id()).ok()) {
      ErrorDetail d;
      d.resource_type = "provp.v1.PromptSet";
      d.resource_name = "promptSets/" + meta.prompt_set_id();
      return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                       absl::StrCat("promptSets/", meta.prompt_set_id(), " already exists"), d);
    }
    ASSIGN_OR_RETURN(int64_t count, env_->store->Count(store::Kind::kPromptSet, {}));
    if (count >= limits.max_prompt_sets) {
      return ResourceExhausted(
          "TOO_MANY_PROMPT_SETS", "max_prompt_sets",
          absl::StrCat("the server holds its limit of ", limits.max_prompt_sets, " prompt sets"));
    }
    std::string data;
    while (reader->Read(&msg)) {
      if (!msg.has_chunk() && msg.has_metadata()) {
        return InvalidArgument("METADATA_TWICE", "only the first message may carry metadata",
                               "metadata");
      }
      if (static_cast<int64_t>(data.size() + msg.chunk().size()) > limits.max_upload_bytes) {
        return ResourceExhausted(
            "UPLOAD_TOO_LARGE", "max_upload_bytes",
            absl::StrCat("import exceeds ", limits.max_upload_bytes, " bytes"));
      }
      data += msg.chunk();
    }
    if (data.empty()) return InvalidArgument("EMPTY_FILE", "no file bytes were sent", "chunk");
    // Validate a staged copy before it takes the final name.
    const std::string staged =
        absl::StrCat(env_->options.data_dir, "/prompt_sets/.import-", RandomHex(8));
    RETURN_IF_ERROR(util::WriteFileAtomic(staged, data));
    auto meta_or = env_->engine->InspectPromptSet(staged);
    if (!meta_or.ok()) {
      std::remove(staged.c_str());
      if (meta_or.status().code() == absl::StatusCode::kFailedPrecondition) {
        return FailedPrecondition("BACKBONE_MISMATCH", "promptSets/" + meta.prompt_set_id(),
                                  meta_or.status().message());
      }
      return InvalidArgument("INVALID_PROMPT_SET_FILE", meta_or.status().message(), "chunk");
    }
    std::error_code ec;
    fs::rename(staged, env_->prompt_sets->PathFor(meta.prompt_set_id()), ec);
    if (ec) return absl::InternalError("moving imported prompt set: " + ec.message());
    v1::PromptSet ps;
    ps.set_display_name(meta.display_name());
    for (const auto& [k, v] : meta.labels()) (*ps.mutable_labels())[k] = v;
    ASSIGN_OR_RETURN(*resp, env_->prompt_sets->Register(ps, meta.prompt_set_id(), meta.load()));
    return absl::OkStatus();
  }
}

grpc::Status PromptSetServiceImpl::ExportPromptSet(
    grpc::ServerContext* ctx, const v1::ExportPromptSetRequest* req,
    grpc::ServerWriter<v1::ExportPromptSetResponse>* writer) {
  Rpc rpc(*env_, ctx, kService, "ExportPromptSet", "server_stream", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "promptSets", "name"));
    ASSIGN_OR_RETURN(v1::PromptSet ps, env_->prompt_sets->Get(id));
    ASSIGN_OR_RETURN(std::string data, util::ReadFile(env_->prompt_sets->PathFor(id),
                                                      env_->options.limits.max_upload_bytes));
    v1::ExportPromptSetResponse first;
    *first.mutable_prompt_set() = ps;
    if (!writer->Write(first)) return absl::OkStatus();
    for (size_t off = 0; off < data.size(); off += kChunkBytes) {
      v1::ExportPromptSetResponse chunk;
      chunk.set_chunk(data.substr(off, kChunkBytes));
      if (!writer->Write(chunk)) return absl::OkStatus();
    }
    return absl::OkStatus();
  });
}

}  // namespace provp::server
