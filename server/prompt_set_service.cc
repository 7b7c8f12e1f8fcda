// Implementation of prompt_set_service.h.
#include "server/prompt_set_service.h"

#include <string>

#include "core/util/status_macros.h"
#include "server/state/resource_names.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.PromptSetService";
constexpr size_t kChunkBytes = 1 << 20;

}  // namespace

PromptSetServiceImpl::PromptSetServiceImpl(RpcEnv env, PromptSetRegistry* prompt_sets)
    : RpcService(env, kService), prompt_sets_(prompt_sets) {
  AddUnary("ListPromptSets", Scope::kClassify, &PromptSetServiceImpl::ListPromptSets);
  AddUnary("GetPromptSet", Scope::kClassify, &PromptSetServiceImpl::GetPromptSet);
  AddUnary("DeletePromptSet", Scope::kAdmin, &PromptSetServiceImpl::DeletePromptSet);
  AddUnary("LoadPromptSet", Scope::kAdmin, &PromptSetServiceImpl::LoadPromptSet);
  AddUnary("UnloadPromptSet", Scope::kAdmin, &PromptSetServiceImpl::UnloadPromptSet);
  AddClientStream("ImportPromptSet", Scope::kAdmin, &PromptSetServiceImpl::ImportPromptSet);
  AddServerStream("ExportPromptSet", Scope::kAdmin, &PromptSetServiceImpl::ExportPromptSet);
}

absl::Status PromptSetServiceImpl::ListPromptSets(Rpc& rpc, const v1::ListPromptSetsRequest* req,
                                                  v1::ListPromptSetsResponse* resp) {
  ASSIGN_OR_RETURN(auto page, prompt_sets_->List(req->page_size(), req->page_token()));
  for (v1::PromptSet& ps : page.items) *resp->add_prompt_sets() = std::move(ps);
  resp->set_next_page_token(page.next_page_token);
  return absl::OkStatus();
}

absl::Status PromptSetServiceImpl::GetPromptSet(Rpc& rpc, const v1::GetPromptSetRequest* req,
                                                v1::PromptSet* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kPromptSets, "name"));
  ASSIGN_OR_RETURN(*resp, prompt_sets_->Get(id));
  return absl::OkStatus();
}

absl::Status PromptSetServiceImpl::DeletePromptSet(Rpc& rpc, const v1::DeletePromptSetRequest* req,
                                                   v1::DeletePromptSetResponse*) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kPromptSets, "name"));
  return prompt_sets_->Delete(id);
}

absl::Status PromptSetServiceImpl::LoadPromptSet(Rpc& rpc, const v1::LoadPromptSetRequest* req,
                                                 v1::PromptSet* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kPromptSets, "name"));
  ASSIGN_OR_RETURN(*resp, prompt_sets_->Load(id));
  return absl::OkStatus();
}

absl::Status PromptSetServiceImpl::UnloadPromptSet(Rpc& rpc, const v1::UnloadPromptSetRequest* req,
                                                   v1::PromptSet* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kPromptSets, "name"));
  ASSIGN_OR_RETURN(*resp, prompt_sets_->Unload(id));
  return absl::OkStatus();
}

absl::Status PromptSetServiceImpl::ImportPromptSet(
    Rpc& rpc, RequestReader<v1::ImportPromptSetRequest>& reader, v1::PromptSet* resp) {
  // A message that does not parse aborts the import (nothing is stored).
  absl::StatusOr<v1::PromptSet> imported =
      prompt_sets_->Import([&reader](v1::ImportPromptSetRequest* msg) { return reader.Read(msg); });
  env_.metrics.uploads->WithLabels({"prompt_set", imported.ok() ? "ok" : "error"}).Increment();
  RETURN_IF_ERROR(imported.status());
  *resp = *std::move(imported);
  return absl::OkStatus();
}

absl::Status PromptSetServiceImpl::ExportPromptSet(
    Rpc& rpc, const v1::ExportPromptSetRequest* req,
    grpc::ServerWriter<v1::ExportPromptSetResponse>* writer) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kPromptSets, "name"));
  ASSIGN_OR_RETURN(v1::PromptSet ps, prompt_sets_->Get(id));
  ASSIGN_OR_RETURN(std::string data, prompt_sets_->ReadFile(id));
  // A failed Write means the client went away; there is no one to tell.
  v1::ExportPromptSetResponse first;
  *first.mutable_prompt_set() = ps;
  if (!writer->Write(first)) return absl::OkStatus();
  for (size_t off = 0; off < data.size(); off += kChunkBytes) {
    v1::ExportPromptSetResponse chunk;
    chunk.set_chunk(data.substr(off, kChunkBytes));
    if (!writer->Write(chunk)) return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace provp::server
