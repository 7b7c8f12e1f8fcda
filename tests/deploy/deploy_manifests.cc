// Implementation of deploy_manifests.h. YAML through libyaml's document
// API (aliases resolved by libyaml; `<<` merge keys applied here, as compose
// uses them); Dockerfile instructions by a line reader that knows
// continuations, comments, exec (JSON) and shell forms.
#include "tests/deploy/deploy_manifests.h"

#include <yaml.h>

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace provp::deploy {
namespace {

// --- a small YAML tree -------------------------------------------------------

struct Node {
  enum class Kind { kNull, kScalar, kSequence, kMapping };
  Kind kind = Kind::kNull;
  std::string scalar;
  std::vector<Node> items;                           // kSequence
  std::vector<std::pair<std::string, Node>> fields;  // kMapping, in file order

  const Node* Get(absl::string_view key) const {
    if (kind != Kind::kMapping) return nullptr;
    for (const auto& [k, v] : fields) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  std::string Str(absl::string_view key) const {
    const Node* n = Get(key);
    return n != nullptr && n->kind == Kind::kScalar ? n->scalar : "";
  }
  // A nested scalar, "" when any step is missing.
  std::string Path(absl::string_view a, absl::string_view b) const {
    const Node* n = Get(a);
    return n != nullptr ? n->Str(b) : "";
  }
};

Node Convert(yaml_document_t* doc, yaml_node_t* node, int depth) {
  Node out;
  if (node == nullptr || depth > 64) return out;
  switch (node->type) {
    case YAML_SCALAR_NODE:
      out.kind = Node::Kind::kScalar;
      out.scalar.assign(reinterpret_cast<const char*>(node->data.scalar.value),
                        node->data.scalar.length);
      break;
    case YAML_SEQUENCE_NODE:
      out.kind = Node::Kind::kSequence;
      for (yaml_node_item_t* it = node->data.sequence.items.start;
           it < node->data.sequence.items.top; ++it) {
        out.items.push_back(Convert(doc, yaml_document_get_node(doc, *it), depth + 1));
      }
      break;
    case YAML_MAPPING_NODE: {
      out.kind = Node::Kind::kMapping;
      std::vector<Node> merged;
      for (yaml_node_pair_t* p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
           ++p) {
        Node key = Convert(doc, yaml_document_get_node(doc, p->key), depth + 1);
        Node value = Convert(doc, yaml_document_get_node(doc, p->value), depth + 1);
        if (key.scalar == "<<") {
          merged.push_back(std::move(value));
        } else {
          out.fields.emplace_back(key.scalar, std::move(value));
        }
      }
      // Merge keys: fields of the merged mapping(s) that the node lacks.
      std::vector<const Node*> sources;
      for (const Node& m : merged) {
        if (m.kind == Node::Kind::kSequence) {
          for (const Node& i : m.items) sources.push_back(&i);
        } else {
          sources.push_back(&m);
        }
      }
      for (const Node* src : sources) {
        for (const auto& [k, v] : src->fields) {
          if (out.Get(k) == nullptr) out.fields.emplace_back(k, v);
        }
      }
      break;
    }
    default:
      break;
  }
  return out;
}

absl::StatusOr<std::vector<Node>> ParseYaml(absl::string_view text) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return absl::InternalError("libyaml: cannot initialise");
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  std::vector<Node> docs;
  while (true) {
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
      std::string reason = absl::StrCat("YAML error at line ", parser.problem_mark.line + 1, ": ",
                                        parser.problem ? parser.problem : "unknown");
      yaml_parser_delete(&parser);
      return absl::InvalidArgumentError(reason);
    }
    yaml_node_t* root = yaml_document_get_root_node(&doc);
    if (root == nullptr) {
      yaml_document_delete(&doc);
      break;
    }
    docs.push_back(Convert(&doc, root, 0));
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  return docs;
}

// A compose/Kubernetes command: a list, or a string split on whitespace
// (compose's string form; no quoting is used in our files).
std::vector<std::string> Words(const Node* n) {
  std::vector<std::string> out;
  if (n == nullptr) return out;
  if (n->kind == Node::Kind::kSequence) {
    for (const Node& i : n->items) out.push_back(i.scalar);
  } else if (n->kind == Node::Kind::kScalar) {
    out = absl::StrSplit(n->scalar, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  }
  return out;
}

// --- Dockerfile --------------------------------------------------------------

// Exec form `["a", "b"]` or shell form `a b` (run by /bin/sh -c).
absl::StatusOr<std::vector<std::string>> CommandForm(absl::string_view rest) {
  rest = absl::StripAsciiWhitespace(rest);
  if (absl::StartsWith(rest, "[")) {
    nlohmann::json j = nlohmann::json::parse(rest, nullptr, /*allow_exceptions=*/false);
    if (!j.is_array()) return absl::InvalidArgumentError(absl::StrCat("bad JSON array: ", rest));
    std::vector<std::string> out;
    for (const auto& v : j) {
      if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat("non-string in ", rest));
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  return std::vector<std::string>{"/bin/sh", "-c", std::string(rest)};
}

const DockerStage* FindStage(const std::vector<DockerStage>& stages, absl::string_view name) {
  for (const DockerStage& s : stages) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

absl::StatusOr<Launch> StageLaunch(const DockerStage& stage, absl::string_view origin) {
  if (stage.entrypoint.empty() && stage.cmd.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": neither ENTRYPOINT nor CMD"));
  }
  Launch l;
  l.origin = std::string(origin);
  l.argv = stage.entrypoint;
  l.argv.insert(l.argv.end(), stage.cmd.begin(), stage.cmd.end());
  l.env = stage.env;
  if (!stage.healthcheck.empty()) {
    Probe p;
    p.name = "HEALTHCHECK";
    p.kind = Probe::Kind::kExec;
    p.command = stage.healthcheck;
    l.probes.push_back(p);
  }
  return l;
}

}  // namespace

absl::StatusOr<std::vector<DockerStage>> ParseDockerfile(absl::string_view text) {
  // Join continuation lines; drop comment lines (also inside continuations,
  // as Docker does).
  std::vector<std::string> instructions;
  std::string current;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    absl::string_view line = absl::StripTrailingAsciiWhitespace(raw);
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "#")) continue;
    const bool continues = absl::ConsumeSuffix(&line, "\\");
    absl::StrAppend(&current, current.empty() ? "" : " ", absl::StripAsciiWhitespace(line));
    if (!continues) {
      if (!current.empty()) instructions.push_back(current);
      current.clear();
    }
  }
  if (!current.empty()) instructions.push_back(current);

  std::vector<DockerStage> stages;
  for (const std::string& ins : instructions) {
    const size_t space = ins.find(' ');
    const std::string op = absl::AsciiStrToUpper(ins.substr(0, space));
    const absl::string_view rest =
        space == std::string::npos ? absl::string_view() : absl::string_view(ins).substr(space + 1);
    if (op == "FROM") {
      std::vector<std::string> parts = absl::StrSplit(rest, ' ', absl::SkipEmpty());
      DockerStage stage;
      std::vector<std::string> words;
      for (const std::string& p : parts) {
        if (!absl::StartsWith(p, "--")) words.push_back(p);  // --platform=...
      }
      if (words.empty()) return absl::InvalidArgumentError("FROM without an image");
      stage.base = words[0];
      if (words.size() >= 3 && absl::AsciiStrToUpper(words[1]) == "AS") stage.name = words[2];
      // FROM <earlier stage> inherits its settings.
      if (const DockerStage* parent = FindStage(stages, stage.base)) {
        DockerStage copy = *parent;
        copy.name = stage.name;
        copy.base = stage.base;
        stage = copy;
      }
      stages.push_back(stage);
      continue;
    }
    if (stages.empty()) continue;  // ARG before the first FROM
    DockerStage& s = stages.back();
    if (op == "ENTRYPOINT") {
      auto argv = CommandForm(rest);
      if (!argv.ok()) return argv.status();
      s.entrypoint = *argv;
      s.cmd.clear();  // as Docker: a new ENTRYPOINT resets an inherited CMD
    } else if (op == "CMD") {
      auto argv = CommandForm(rest);
      if (!argv.ok()) return argv.status();
      s.cmd = *argv;
    } else if (op == "HEALTHCHECK") {
      // HEALTHCHECK [--option=value ...] CMD <command> | NONE
      absl::string_view r = absl::StripAsciiWhitespace(rest);
      while (absl::StartsWith(r, "--")) {
        const size_t end = r.find(' ');
        r = end == absl::string_view::npos ? absl::string_view()
                                           : absl::StripLeadingAsciiWhitespace(r.substr(end));
      }
      if (absl::StartsWithIgnoreCase(r, "NONE")) {
        s.healthcheck.clear();
      } else if (absl::ConsumePrefix(&r, "CMD ")) {
        auto argv = CommandForm(r);
        if (!argv.ok()) return argv.status();
        s.healthcheck = *argv;
      } else {
        return absl::InvalidArgumentError(absl::StrCat("HEALTHCHECK without CMD: ", ins));
      }
    } else if (op == "ENV") {
      // Only the `ENV A=x B=y` form is used in this repository.
      for (absl::string_view kv : absl::StrSplit(rest, ' ', absl::SkipEmpty())) {
        std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
        s.env[p.first] = p.second;
      }
    } else if (op == "VOLUME") {
      auto v = CommandForm(rest);
      if (v.ok() && !absl::StartsWith(absl::StripAsciiWhitespace(rest), "[")) {
        v = std::vector<std::string>(absl::StrSplit(rest, ' ', absl::SkipEmpty()));
      }
      if (v.ok()) s.volumes.insert(s.volumes.end(), v->begin(), v->end());
    }
  }
  return stages;
}

absl::StatusOr<std::vector<Launch>> DockerfileLaunches(absl::string_view dockerfile) {
  auto stages = ParseDockerfile(dockerfile);
  if (!stages.ok()) return stages.status();
  std::vector<Launch> out;
  for (const DockerStage& s : *stages) {
    if (s.entrypoint.empty()) continue;
    auto l = StageLaunch(s, absl::StrCat("Dockerfile stage ", s.name));
    if (!l.ok()) return l.status();
    out.push_back(*l);
  }
  return out;
}

namespace {

// Compose's variable interpolation with no variables set: `${X:-default}`
// and `${X-default}` give the default, `${X}` and `$X` nothing, `$$` a `$`.
std::string InterpolateDefaults(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out.push_back(text[i]);
      continue;
    }
    if (text[i + 1] == '$') {
      out.push_back('$');
      ++i;
    } else if (text[i + 1] == '{') {
      const size_t close = text.find('}', i);
      if (close == absl::string_view::npos) {
        out.append(text.data() + i, text.size() - i);
        break;
      }
      absl::string_view expr = text.substr(i + 2, close - i - 2);
      const size_t dash = expr.find('-');
      if (dash != absl::string_view::npos)
        out.append(expr.data() + dash + 1, expr.size() - dash - 1);
      i = close;
    } else if (absl::ascii_isalpha(text[i + 1]) || text[i + 1] == '_') {
      size_t j = i + 1;
      while (j < text.size() && (absl::ascii_isalnum(text[j]) || text[j] == '_')) ++j;
      i = j - 1;
    } else {
      out.push_back('$');
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Launch>> ComposeLaunches(absl::string_view compose,
                                                    absl::string_view dockerfile) {
  auto docs = ParseYaml(InterpolateDefaults(compose));
  if (!docs.ok()) return docs.status();
  auto stages = ParseDockerfile(dockerfile);
  if (!stages.ok()) return stages.status();
  if (docs->empty()) return absl::InvalidArgumentError("compose file is empty");
  const Node* services = (*docs)[0].Get("services");
  if (services == nullptr) return absl::InvalidArgumentError("compose file has no services");
  std::vector<Launch> out;
  for (const auto& [name, svc] : services->fields) {
    const Node* build = svc.Get("build");
    if (build == nullptr || build->Str("target").empty()) continue;
    const DockerStage* stage = FindStage(*stages, build->Str("target"));
    if (stage == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("compose service ", name, ": target '",
                                                     build->Str("target"),
                                                     "' is not a Dockerfile stage"));
    }
    auto l = StageLaunch(*stage, absl::StrCat("compose service ", name));
    if (!l.ok()) return l.status();
    if (const Node* ep = svc.Get("entrypoint")) {
      l->argv = Words(ep);  // compose: a new entrypoint drops the image's CMD
      std::vector<std::string> cmd = Words(svc.Get("command"));
      l->argv.insert(l->argv.end(), cmd.begin(), cmd.end());
    } else if (const Node* cmd = svc.Get("command")) {
      l->argv = stage->entrypoint;
      std::vector<std::string> words = Words(cmd);
      l->argv.insert(l->argv.end(), words.begin(), words.end());
    }
    if (const Node* env = svc.Get("environment")) {
      if (env->kind == Node::Kind::kMapping) {
        for (const auto& [k, v] : env->fields) l->env[k] = v.scalar;
      } else {
        for (const Node& i : env->items) {
          std::pair<std::string, std::string> p = absl::StrSplit(i.scalar, absl::MaxSplits('=', 1));
          l->env[p.first] = p.second;
        }
      }
    }
    if (const Node* volumes = svc.Get("volumes")) {
      for (const Node& v : volumes->items) {
        if (v.kind == Node::Kind::kMapping) {
          l->mounts.push_back(v.Str("target"));
        } else {
          std::vector<std::string> parts = absl::StrSplit(v.scalar, ':');
          if (parts.size() >= 2) l->mounts.push_back(parts[1]);
        }
      }
    }
    if (const Node* secrets = svc.Get("secrets")) {
      for (const Node& s : secrets->items) {
        if (s.kind == Node::Kind::kMapping) {
          const std::string target = s.Str("target");
          l->mounts.push_back(target.empty()                  ? "/run/secrets/" + s.Str("source")
                              : absl::StartsWith(target, "/") ? target
                                                              : "/run/secrets/" + target);
        } else {
          l->mounts.push_back("/run/secrets/" + s.scalar);
        }
      }
    }
    if (const Node* hc = svc.Get("healthcheck")) {
      // test: ["CMD", ...] | ["CMD-SHELL", "..."] | "shell string" | ["NONE"]
      std::vector<std::string> test = Words(hc->Get("test"));
      l->probes.clear();
      if (!test.empty() && test[0] != "NONE") {
        Probe p;
        p.name = "compose healthcheck";
        if (test[0] == "CMD") {
          p.command.assign(test.begin() + 1, test.end());
        } else if (test[0] == "CMD-SHELL") {
          p.command = {"/bin/sh", "-c", test.size() > 1 ? test[1] : ""};
        } else {
          p.command = {"/bin/sh", "-c", hc->Str("test")};
        }
        l->probes.push_back(p);
      }
    }
    out.push_back(*l);
  }
  return out;
}

absl::StatusOr<std::vector<Launch>> KubernetesLaunches(absl::string_view manifest,
                                                       absl::string_view dockerfile,
                                                       absl::string_view image_stage) {
  auto docs = ParseYaml(manifest);
  if (!docs.ok()) return docs.status();
  auto stages = ParseDockerfile(dockerfile);
  if (!stages.ok()) return stages.status();
  const DockerStage* stage = FindStage(*stages, image_stage);
  if (stage == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("image tag '", image_stage, "' is not a Dockerfile stage"));
  }
  std::vector<Launch> out;
  for (const Node& doc : *docs) {
    if (doc.Str("kind") != "Deployment" && doc.Str("kind") != "StatefulSet") continue;
    const Node* spec = doc.Get("spec");
    const Node* pod = spec ? spec->Get("template") : nullptr;
    pod = pod ? pod->Get("spec") : nullptr;
    const Node* containers = pod ? pod->Get("containers") : nullptr;
    if (containers == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(doc.Path("metadata", "name"), ": no spec.template.spec.containers"));
    }
    for (const Node& c : containers->items) {
      Launch l;
      l.origin = absl::StrCat(doc.Str("kind"), " ", doc.Path("metadata", "name"), " container ",
                              c.Str("name"));
      // Kubernetes: command replaces ENTRYPOINT (and drops CMD), args replace CMD.
      const Node* command = c.Get("command");
      const Node* args = c.Get("args");
      l.argv = command ? Words(command) : stage->entrypoint;
      std::vector<std::string> rest = args      ? Words(args)
                                      : command ? std::vector<std::string>{}
                                                : stage->cmd;
      l.argv.insert(l.argv.end(), rest.begin(), rest.end());
      if (const Node* env = c.Get("env")) {
        for (const Node& e : env->items) l.env[e.Str("name")] = e.Str("value");
      }
      if (const Node* mounts = c.Get("volumeMounts")) {
        for (const Node& m : mounts->items) l.mounts.push_back(m.Str("mountPath"));
      }
      std::map<std::string, int> named_ports;
      if (const Node* ports = c.Get("ports")) {
        for (const Node& p : ports->items) {
          int n = 0;
          if (absl::SimpleAtoi(p.Str("containerPort"), &n)) named_ports[p.Str("name")] = n;
        }
      }
      auto port_of = [&](const Node* n) -> absl::StatusOr<int> {
        const std::string v = n ? n->Str("port") : "";
        int port = 0;
        if (absl::SimpleAtoi(v, &port)) return port;
        auto it = named_ports.find(v);
        if (it != named_ports.end()) return it->second;
        return absl::InvalidArgumentError(
            absl::StrCat(l.origin, ": probe port '", v, "' is neither a number nor a named port"));
      };
      for (const char* name : {"startupProbe", "livenessProbe", "readinessProbe"}) {
        const Node* probe = c.Get(name);
        if (probe == nullptr) continue;
        Probe p;
        p.name = name;
        if (const Node* g = probe->Get("grpc")) {
          p.kind = Probe::Kind::kGrpc;
          auto port = port_of(g);
          if (!port.ok()) return port.status();
          p.port = *port;
          p.grpc_service = g->Str("service");
        } else if (const Node* h = probe->Get("httpGet")) {
          p.kind = Probe::Kind::kHttpGet;
          auto port = port_of(h);
          if (!port.ok()) return port.status();
          p.port = *port;
          p.http_path = h->Str("path").empty() ? "/" : h->Str("path");
        } else if (const Node* t = probe->Get("tcpSocket")) {
          p.kind = Probe::Kind::kTcpSocket;
          auto port = port_of(t);
          if (!port.ok()) return port.status();
          p.port = *port;
        } else if (const Node* e = probe->Get("exec")) {
          p.kind = Probe::Kind::kExec;
          p.command = Words(e->Get("command"));
        } else {
          return absl::InvalidArgumentError(absl::StrCat(l.origin, " ", name, ": unknown handler"));
        }
        l.probes.push_back(p);
      }
      out.push_back(l);
    }
  }
  return out;
}

absl::StatusOr<std::string> KustomizeImageTag(absl::string_view kustomization,
                                              absl::string_view name) {
  auto docs = ParseYaml(kustomization);
  if (!docs.ok()) return docs.status();
  if (docs->empty()) return std::string();
  const Node* images = (*docs)[0].Get("images");
  if (images == nullptr) return std::string();
  for (const Node& i : images->items) {
    if (i.Str("name") == name) return i.Str("newTag");
  }
  return std::string();
}

}  // namespace provp::deploy
