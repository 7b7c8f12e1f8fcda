// Shared helpers of the `provp` subcommands (command.h).
#include "client/commands/command.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace provp::client {

void Fail(Cli& cli, const std::string& reason) {
  std::fprintf(stderr, "provp: %s\n", reason.c_str());
  cli.exit_code = 1;
}

std::unique_ptr<Connection> Connect(Cli& cli) {
  ApplyEnvironment(cli.connection);
  auto c = Connection::Open(cli.connection);
  if (!c.ok()) {
    Fail(cli, std::string(c.status().message()));
    return nullptr;
  }
  return std::move(*c);
}

std::string ResourceName(const std::string& collection, const std::string& id_or_name) {
  if (absl::StartsWith(id_or_name, collection + "/")) return id_or_name;
  return collection + "/" + id_or_name;
}

std::vector<std::string> SplitNames(const std::string& inline_list) {
  std::vector<std::string> names;
  for (absl::string_view part : absl::StrSplit(inline_list, ',', absl::SkipEmpty())) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) names.emplace_back(part);
  }
  return names;
}

std::vector<std::string> ExpandImageInputs(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      out.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(in, ec)) {
      if (!e.is_regular_file()) continue;
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp") {
        found.push_back(e.path().string());
      }
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

void PrintJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  const auto rendered = google::protobuf::util::MessageToJsonString(message, &out, opts);
  if (!rendered.ok()) {
    // Only a message the client itself built can fail here; say so on
    // stderr instead of printing half a document.
    std::fprintf(stderr, "provp: cannot print the %s as JSON: %s\n",
                 message.GetDescriptor()->full_name().c_str(), rendered.ToString().c_str());
    return;
  }
  std::printf("%s", out.c_str());
  if (out.empty() || out.back() != '\n') std::printf("\n");
}

}  // namespace provp::client
