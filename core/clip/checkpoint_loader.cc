// Checkpoint loaders for the four CLIP layouts. Each converts to OpenAI key
// names, infers or reads the sizes, and checks the result against
// ExpectedWeightShapes before anything else sees it. Torch parsers (jit
// load, pickle) run inside TorchCall. Thread-safe (no shared state).
#include "core/clip/checkpoint_loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/script.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/clip/safetensors.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::clip {
namespace {

using Weights = std::map<std::string, torch::Tensor>;
using Shapes = std::map<std::string, std::vector<int64_t>>;

// Entries some OpenAI files carry next to the weights (build_model deletes
// them; the TorchScript archives keep them as integer buffers).
const std::set<std::string>& OpenAIIgnorable() {
  static const auto* keys =
      new std::set<std::string>{"input_resolution", "context_length", "vocab_size"};
  return *keys;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string ParentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void AddBlockShapes(Shapes& s, const std::string& prefix, int64_t width) {
  s[prefix + "attn.in_proj_weight"] = {3 * width, width};
  s[prefix + "attn.in_proj_bias"] = {3 * width};
  s[prefix + "attn.out_proj.weight"] = {width, width};
  s[prefix + "attn.out_proj.bias"] = {width};
  s[prefix + "ln_1.weight"] = {width};
  s[prefix + "ln_1.bias"] = {width};
  s[prefix + "mlp.c_fc.weight"] = {4 * width, width};
  s[prefix + "mlp.c_fc.bias"] = {4 * width};
  s[prefix + "mlp.c_proj.weight"] = {width, 4 * width};
  s[prefix + "mlp.c_proj.bias"] = {width};
  s[prefix + "ln_2.weight"] = {width};
  s[prefix + "ln_2.bias"] = {width};
}

// Checks names and shapes: every expected key present with its shape and a
// floating dtype, nothing unknown except `ignorable` (which are dropped).
absl::Status CheckWeights(const std::string& file, const Shapes& expected, Weights& weights,
                          const std::set<std::string>& ignorable) {
  for (const auto& [name, shape] : expected) {
    auto it = weights.find(name);
    if (it == weights.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": missing key ", name, " (expected shape ", ShapeString(shape), ")"));
    }
    std::vector<int64_t> found = it->second.sizes().vec();
    if (found != shape) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": key ", name, ": expected shape ",
                                                     ShapeString(shape), ", found ",
                                                     ShapeString(found)));
    }
    if (!it->second.is_floating_point()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": key ", name,
                                                     ": expected a floating dtype, found ",
                                                     c10::toString(it->second.scalar_type())));
    }
  }
  for (auto it = weights.begin(); it != weights.end();) {
    if (expected.count(it->first) != 0) {
      ++it;
    } else if (ignorable.count(it->first) != 0) {
      it = weights.erase(it);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(file, ": unexpected key ", it->first));
    }
  }
  return absl::OkStatus();
}

// Number of `<prefix>N.` blocks (max N + 1), from the key names.
absl::StatusOr<int64_t> CountBlocks(const std::string& file, const Weights& weights,
                                    const std::string& prefix) {
  int64_t count = 0;
  for (const auto& [name, tensor] : weights) {
    if (!absl::StartsWith(name, prefix)) continue;
    std::string rest = name.substr(prefix.size());
    std::string index = rest.substr(0, rest.find('.'));
    int64_t n = 0;
    if (!absl::SimpleAtoi(index, &n) || n < 0 || n >= 1024) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": key ", name, " has a bad block index"));
    }
    count = std::max(count, n + 1);
  }
  return count;
}

absl::StatusOr<torch::Tensor> Need(const std::string& file, const Weights& w,
                                   const std::string& key, int64_t rank) {
  auto it = w.find(key);
  if (it == w.end()) return absl::InvalidArgumentError(absl::StrCat(file, ": missing key ", key));
  if (it->second.dim() != rank) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": key ", key, ": expected ", rank,
                                                   " dimensions, found shape ",
                                                   ShapeString(it->second.sizes().vec())));
  }
  return it->second;
}

// Sizes from an OpenAI state dict, the way OpenAI's build_model does it.
absl::StatusOr<ClipConfig> InferOpenAIConfig(const std::string& file, const Weights& w) {
  ClipConfig c;
  ASSIGN_OR_RETURN(torch::Tensor conv, Need(file, w, "visual.conv1.weight", 4));
  ASSIGN_OR_RETURN(torch::Tensor vpos, Need(file, w, "visual.positional_embedding", 2));
  ASSIGN_OR_RETURN(torch::Tensor tproj, Need(file, w, "text_projection", 2));
  ASSIGN_OR_RETURN(torch::Tensor tpos, Need(file, w, "positional_embedding", 2));
  ASSIGN_OR_RETURN(torch::Tensor tok, Need(file, w, "token_embedding.weight", 2));
  ASSIGN_OR_RETURN(torch::Tensor lnf, Need(file, w, "ln_final.weight", 1));
  c.vision_width = conv.size(0);
  c.vision_patch_size = conv.size(3);
  int64_t grid = 0;
  while ((grid + 1) * (grid + 1) + 1 <= vpos.size(0)) ++grid;
  if (grid * grid + 1 != vpos.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": key visual.positional_embedding has ",
                                                   vpos.size(0),
                                                   " rows, not a square grid plus one"));
  }
  c.image_resolution = grid * c.vision_patch_size;
  ASSIGN_OR_RETURN(c.vision_layers, CountBlocks(file, w, "visual.transformer.resblocks."));
  c.vision_heads = std::max<int64_t>(1, c.vision_width / 64);
  c.embed_dim = tproj.size(1);
  c.context_length = tpos.size(0);
  c.vocab_size = tok.size(0);
  c.text_width = lnf.size(0);
  ASSIGN_OR_RETURN(c.text_layers, CountBlocks(file, w, "transformer.resblocks."));
  c.text_heads = std::max<int64_t>(1, c.text_width / 64);
  if (absl::Status s = ValidateConfig(c); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": sizes inferred from the weights: ", s.message()));
  }
  return c;
}

// LibTorch 1.13's unpickler trusts the length fields of string and bytes
// opcodes and reserves that much before reading (a 4 GiB reserve from one
// flipped length byte; found by fuzz/ torch_save). This walks the opcodes of
// one pickle and checks every length against the bytes left; it stops
// (accepting) at STOP or at an opcode it does not know, which the unpickler
// itself then refuses. It also checks memo ids: the unpickler grows its memo
// table to the id a BINPUT/LONG_BINPUT names (a 31 GB allocation from one
// LONG_BINPUT id of 976,356,657 in a 1.5 KB archive; fuzz/ torch_save
// again), while every pickler numbers its memo entries 0, 1, 2, ... in
// order, so an id past the next one is corrupt. And it follows the stack:
// LibTorch 1.13's unpickler pops and indexes its stack without checking
// its size (a BUILD as the first opcode read 24 bytes before the stack's
// storage: SEGV, fuzz/ torchscript), so each opcode's pops are checked
// against what lies above the innermost MARK (Python's own unpickler keeps
// each MARK's items apart the same way, so no pickle a pickler wrote
// reaches across one), SETITEMS gets pairs, and STOP needs a result.
absl::Status CheckPickleStack(const std::string& file, const std::string& record, uint8_t op,
                              size_t offset, std::vector<uint64_t>* marks, uint64_t* depth) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", record, ": opcode 0x", absl::Hex(op),
                                                   " at offset ", offset, " ", why,
                                                   " (corrupt pickle)"));
  };
  const uint64_t floor = marks->empty() ? 0 : marks->back();
  // Pops n items above the innermost MARK, pushes `push`.
  auto take = [&](uint64_t n, uint64_t push) -> absl::Status {
    if (*depth - floor < n) {
      return bad(absl::StrCat("pops ", n, " items but ", *depth - floor, " are there"));
    }
    *depth = *depth - n + push;
    return absl::OkStatus();
  };
  // Pops to the innermost MARK (pairs when `pairs`), needing an item below
  // it when `onto_below` (APPENDS/SETITEMS add to it), then pushes `push`.
  auto to_mark = [&](bool pairs, bool onto_below, uint64_t push) -> absl::Status {
    if (marks->empty()) return bad("needs a MARK and there is none");
    const uint64_t mark = marks->back();
    marks->pop_back();
    const uint64_t below = mark - (marks->empty() ? 0 : marks->back());
    if (pairs && (*depth - mark) % 2 != 0) return bad("takes key/value pairs, found an odd count");
    if (onto_below && below < 1) return bad("adds to a container that is not there");
    *depth = mark + push;
    return absl::OkStatus();
  };
  switch (op) {
    case '(':  // MARK
      marks->push_back(*depth);
      return absl::OkStatus();
    case '.':  // STOP
      return take(1, 1);
    case '0':  // POP
      return take(1, 0);
    case '1':  // POP_MARK
      return to_mark(false, false, 0);
    case '2':  // DUP
      return take(1, 2);
    case 'q':   // BINPUT
    case 'r':   // LONG_BINPUT
    case 'p':   // PUT
    case 0x94:  // MEMOIZE
    case 0x85:  // TUPLE1
    case 'Q':   // BINPERSID
    case 0x98:  // READONLY_BUFFER
      return take(1, 1);
    case 'a':   // APPEND
    case 0x86:  // TUPLE2
    case 0x81:  // NEWOBJ
    case 0x93:  // STACK_GLOBAL
    case 'R':   // REDUCE
    case 'b':   // BUILD
      return take(2, 1);
    case 's':   // SETITEM
    case 0x87:  // TUPLE3
    case 0x92:  // NEWOBJ_EX
      return take(3, 1);
    case 'e':   // APPENDS
    case 0x90:  // ADDITEMS
      return to_mark(false, true, 0);
    case 'u':  // SETITEMS
      return to_mark(true, true, 0);
    case 't':   // TUPLE
    case 'l':   // LIST
    case 0x91:  // FROZENSET
    case 'i':   // INST
      return to_mark(false, false, 1);
    case 'd':  // DICT
      return to_mark(true, false, 1);
    case 'o':  // OBJ: the class is the first item above the MARK
      if (!marks->empty() && *depth == marks->back()) return bad("has no class to build");
      return to_mark(false, false, 1);
    case 0x80:  // PROTO
    case 0x95:  // FRAME
      return absl::OkStatus();
    case 'N':
    case 0x88:
    case 0x89:
    case ')':
    case ']':
    case '}':
    case 0x8f:
    case 'K':
    case 'M':
    case 'J':
    case 'G':
    case 'I':
    case 'L':
    case 'F':
    case 'S':
    case 'V':
    case 'X':
    case 'B':
    case 'C':
    case 'U':
    case 0x8c:
    case 0x8a:
    case 0x8b:
    case 0x8d:
    case 0x8e:
    case 0x96:
    case 0x97:
    case 'h':
    case 'j':
    case 'g':
    case 'c':
    case 'P':
      *depth += 1;  // pushes one value
      return absl::OkStatus();
    default:
      return absl::OkStatus();  // not an opcode: the unpickler refuses it
  }
}

absl::Status CheckPickleLengths(const std::string& file, const std::string& record,
                                const char* data, size_t size) {
  size_t pos = 0;
  auto need = [&](uint64_t n) -> absl::Status {
    if (n > size - pos) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": ", record, " claims ", n, " bytes at offset ", pos, " but only ",
                       size - pos, " remain (corrupt or truncated pickle)"));
    }
    return absl::OkStatus();
  };
  auto little = [&](int width) -> uint64_t {
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data[pos + i]);
    return v;
  };
  auto skip_line = [&]() -> absl::Status {
    const void* nl = std::memchr(data + pos, '\n', size - pos);
    if (nl == nullptr) return need(size - pos + 1);
    pos = static_cast<const char*>(nl) - data + 1;
    return absl::OkStatus();
  };
  uint64_t memo_entries = 0;    // BINPUT/LONG_BINPUT/MEMOIZE seen so far
  std::vector<uint64_t> marks;  // stack depth at each open MARK
  uint64_t depth = 0;
  while (pos < size) {
    const uint8_t op = static_cast<uint8_t>(data[pos++]);
    RETURN_IF_ERROR(CheckPickleStack(file, record, op, pos - 1, &marks, &depth));
    if (op == 'q' || op == 'r') {  // BINPUT, LONG_BINPUT
      const int width = op == 'q' ? 1 : 4;
      RETURN_IF_ERROR(need(width));
      const uint64_t id = little(width);
      if (id > memo_entries) {
        return absl::InvalidArgumentError(absl::StrCat(file, ": ", record, " stores memo entry ",
                                                       id, " at offset ", pos - 1, " after only ",
                                                       memo_entries, " entries (corrupt pickle)"));
      }
      if (id == memo_entries) ++memo_entries;
      pos += width;
      continue;
    }
    if (op == 0x94) ++memo_entries;  // MEMOIZE: the next id, implicitly
    int fixed = -1;                  // bytes of a fixed-size argument
    int length_of = -1;              // width of a length prefix
    int lines = 0;                   // newline-terminated arguments
    switch (op) {
      case '.':
        return absl::OkStatus();  // STOP
      case 'K':
      case 'h':
      case 0x80:
      case 0x82:
        fixed = 1;
        break;
      case 'M':
      case 0x83:
        fixed = 2;
        break;
      case 'J':
      case 'j':
      case 0x84:
        fixed = 4;
        break;
      case 'G':
      case 0x95:
        fixed = 8;
        break;
      case 0x8c:
      case 'C':
      case 'U':
      case 0x8a:
        length_of = 1;
        break;
      case 'X':
      case 'B':
      case 'T':
      case 0x8b:
        length_of = 4;
        break;
      case 0x8d:
      case 0x8e:
      case 0x96:
        length_of = 8;
        break;
      case 'I':
      case 'L':
      case 'F':
      case 'S':
      case 'V':
      case 'P':
      case 'p':
      case 'g':
        lines = 1;
        break;
      case 'c':
      case 'i':
        lines = 2;
        break;
      case '(':
      case '0':
      case '1':
      case '2':
      case 'N':
      case ')':
      case ']':
      case '}':
      case 'a':
      case 'e':
      case 's':
      case 'u':
      case 't':
      case 'l':
      case 'd':
      case 'o':
      case 'R':
      case 'b':
      case 'Q':
      case 0x81:
      case 0x85:
      case 0x86:
      case 0x87:
      case 0x88:
      case 0x89:
      case 0x8f:
      case 0x90:
      case 0x91:
      case 0x92:
      case 0x93:
      case 0x94:
      case 0x97:
      case 0x98:
        fixed = 0;
        break;
      default:
        return absl::OkStatus();  // not ours to judge
    }
    if (fixed >= 0) {
      RETURN_IF_ERROR(need(fixed));
      pos += fixed;
    } else if (length_of > 0) {
      RETURN_IF_ERROR(need(length_of));
      const uint64_t n = little(length_of);
      pos += length_of;
      RETURN_IF_ERROR(need(n));
      pos += n;
    } else {
      for (int i = 0; i < lines; ++i) RETURN_IF_ERROR(skip_line());
    }
  }
  return need(1);  // no STOP
}

// CheckPickleLengths over every pickle record of a zip archive.
absl::Status CheckArchivePickles(const std::string& file,
                                 caffe2::serialize::PyTorchStreamReader& reader) {
  for (const std::string& name : reader.getAllRecords()) {
    // data.pkl, constants.pkl, and TorchScript's code/*.py.debug_pkl (source
    // ranges, unpickled when an error message is built: a memo id in one
    // asked for 31 GB, found by fuzz/ torchscript).
    if (!absl::EndsWith(name, ".pkl") && !absl::EndsWith(name, ".debug_pkl")) continue;
    auto [data, size] = reader.getRecord(name);
    RETURN_IF_ERROR(CheckPickleLengths(file, name, static_cast<const char*>(data.get()), size));
  }
  return absl::OkStatus();
}

// LibTorch's exceptions while it parses a checkpoint come back from
// TorchCall as INTERNAL; for a file the user gave, they mean the file is
// not what it claims to be: INVALID_ARGUMENT (out-of-memory and the like
// keep their codes).
template <typename T>
absl::StatusOr<T> AsBadFile(absl::StatusOr<T> result) {
  if (result.status().code() == absl::StatusCode::kInternal) {
    return absl::InvalidArgumentError(result.status().message());
  }
  return result;
}

absl::StatusOr<Weights> ReadTorchSaveDict(const std::string& path, const std::string& bytes) {
  return AsBadFile<Weights>(
      util::TorchCall(absl::StrCat(path, ": torch.save archive"), [&]() -> absl::StatusOr<Weights> {
        // What torch::jit::pickle_load does, but through a bounds-checked
        // istream reader: 1.13's vector reader copies past the end of a
        // truncated archive (found by ASan on truncated fixtures).
        std::istringstream in(bytes);
        caffe2::serialize::PyTorchStreamReader reader(&in);
        RETURN_IF_ERROR(CheckArchivePickles(path, reader));
        c10::IValue value = torch::jit::readArchiveAndTensors("data", "", "", c10::nullopt,
                                                              c10::nullopt, c10::nullopt, reader);
        if (!value.isGenericDict()) {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ": torch.save archive does not hold a dict (found ", value.tagKind(), ")"));
        }
        c10::Dict<c10::IValue, c10::IValue> dict = value.toGenericDict();
        // open_clip training checkpoints wrap the weights in {"state_dict": ...}.
        if (dict.size() >= 1 && dict.contains(c10::IValue("state_dict")) &&
            dict.at(c10::IValue("state_dict")).isGenericDict()) {
          dict = dict.at(c10::IValue("state_dict")).toGenericDict();
        }
        Weights out;
        for (const auto& item : dict) {
          if (!item.key().isString()) {
            return absl::InvalidArgumentError(absl::StrCat(
                path, ": dict key of kind ", item.key().tagKind(), " is not a string"));
          }
          const std::string name = item.key().toStringRef();
          if (OpenAIIgnorable().count(name) != 0) continue;
          if (!item.value().isTensor()) {
            return absl::InvalidArgumentError(absl::StrCat(
                path, ": key ", name, " holds a ", item.value().tagKind(), ", not a tensor"));
          }
          out[name] = item.value().toTensor().detach().contiguous();
        }
        return out;
      }));
}

// Loading a TorchScript archive's weights without LibTorch's TorchScript
// compiler. torch::jit::load compiles the archive's code/*.py on load, and
// that compiler is not hardened against hostile source (a fuzz input made
// LibTorch 1.13's ScriptTypeParser::parseClassConstant dereference a bad
// pointer: fuzz/regressions/torchscript/segv-e6004a39); weights never need
// the code. data.pkl is read with LibTorch's bounds-checked unpickler as in
// ReadTorchSaveDict, with each scripted class stood in for by a plain
// object that keeps its pickled state (attribute name -> value); the
// module tree is then walked for tensors under their dotted names. Which of
// them are parameters or buffers is written only in the code, so tensors
// the weight layout does not name (TorchScript keeps tensor attributes
// such as attention masks beside the parameters) are left to the caller to
// drop (ExpectedWeightShapes).
class ScriptStateReader {
 public:
  explicit ScriptStateReader(std::string path) : path_(std::move(path)) {}

  // A stand-in class per scripted class; container tags (restore_type_tag)
  // get untyped containers, since only the tensors matter.
  c10::StrongTypePtr Resolve(const c10::QualifiedName& name) {
    const std::string& qn = name.qualifiedName();
    if (absl::StartsWith(qn, "Dict[")) {
      return c10::StrongTypePtr(cu_,
                                c10::DictType::create(c10::StringType::get(), c10::AnyType::get()));
    }
    if (absl::StartsWith(qn, "List[")) {
      return c10::StrongTypePtr(cu_, c10::ListType::create(c10::AnyType::get()));
    }
    if (!absl::StartsWith(qn, "__torch__.")) {
      throw std::runtime_error("unsupported type in the archive's data: " + qn.substr(0, 80));
    }
    auto it = classes_.find(qn);
    if (it == classes_.end()) {
      if (classes_.size() >= kMaxClasses) throw std::runtime_error("too many classes in data.pkl");
      c10::ClassTypePtr cls = c10::ClassType::create(name, cu_);
      cls->addAttribute("__state__", c10::AnyType::get());
      it = classes_.emplace(qn, std::move(cls)).first;
    }
    return c10::StrongTypePtr(cu_, it->second);
  }

  c10::intrusive_ptr<c10::ivalue::Object> Load(const c10::StrongTypePtr& type, c10::IValue state) {
    auto obj = c10::ivalue::Object::create(type, 1);
    obj->setSlot(0, std::move(state));
    return obj;
  }

  // Tensors of the object tree under `root`, "a.b.weight" style.
  absl::StatusOr<Weights> Tensors(const c10::IValue& root) {
    if (!root.isObject()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": TorchScript data.pkl holds a ", root.tagKind(), ", not a module"));
    }
    Weights out;
    RETURN_IF_ERROR(Walk(root, "", 0, &out));
    return out;
  }

 private:
  static constexpr size_t kMaxClasses = 10000;
  static constexpr int kMaxDepth = 64;
  static constexpr int64_t kMaxVisits = 1000000;

  absl::Status Walk(const c10::IValue& value, const std::string& prefix, int depth, Weights* out) {
    if (++visits_ > kMaxVisits || depth > kMaxDepth) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": TorchScript module tree is too large or too deep"));
    }
    if (value.isTensor()) {
      if (!prefix.empty()) (*out)[prefix] = value.toTensor().detach().contiguous();
      return absl::OkStatus();
    }
    if (!value.isObject()) return absl::OkStatus();  // ints, flags, strings
    const c10::intrusive_ptr<c10::ivalue::Object> obj = value.toObject();
    // A module reached twice (shared submodule) is read once.
    if (!seen_.insert(obj.get()).second || obj->slots().size() != 1) return absl::OkStatus();
    const c10::IValue& state = obj->getSlot(0);
    if (!state.isGenericDict()) return absl::OkStatus();  // custom __getstate__
    for (const auto& item : state.toGenericDict()) {
      if (!item.key().isString()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path_, ": TorchScript attribute name of kind ", item.key().tagKind()));
      }
      const std::string& name = item.key().toStringRef();
      RETURN_IF_ERROR(Walk(item.value(), prefix.empty() ? name : absl::StrCat(prefix, ".", name),
                           depth + 1, out));
    }
    return absl::OkStatus();
  }

  const std::string path_;
  std::shared_ptr<torch::jit::CompilationUnit> cu_ =
      std::make_shared<torch::jit::CompilationUnit>();
  std::map<std::string, c10::ClassTypePtr> classes_;
  std::set<const void*> seen_;
  int64_t visits_ = 0;
};

absl::StatusOr<Weights> ReadTorchScript(const std::string& path, const std::string& bytes) {
  return AsBadFile<Weights>(util::TorchCall(
      absl::StrCat(path, ": TorchScript archive"), [&]() -> absl::StatusOr<Weights> {
        std::istringstream in(bytes);
        caffe2::serialize::PyTorchStreamReader reader(&in);
        RETURN_IF_ERROR(CheckArchivePickles(path, reader));
        ScriptStateReader state(path);
        torch::jit::TypeResolver resolve = [&](const c10::QualifiedName& name) {
          return state.Resolve(name);
        };
        torch::jit::ObjLoader load = [&](const c10::StrongTypePtr& type, c10::IValue value) {
          return state.Load(type, std::move(value));
        };
        c10::IValue root = torch::jit::readArchiveAndTensors("data", "", "", resolve, load,
                                                             at::Device(at::kCPU), reader);
        return state.Tensors(root);
      }));
}

// ---- Hugging Face ---------------------------------------------------------

absl::StatusOr<int64_t> JsonInt(const std::string& file, const nlohmann::json& obj,
                                const std::string& section, const char* key, int64_t fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", section, key, " is not an integer"));
  }
  return it->get<int64_t>();
}

absl::StatusOr<ClipConfig> ReadHfConfig(const std::string& file, int64_t* text_mlp,
                                        int64_t* vision_mlp) {
  ASSIGN_OR_RETURN(std::string text, util::ReadFile(file, uint64_t{1} << 20));
  nlohmann::json root = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
  }
  static const nlohmann::json kEmpty = nlohmann::json::object();
  auto section = [&](const char* name) -> absl::StatusOr<const nlohmann::json*> {
    auto it = root.find(name);
    if (it == root.end() || it->is_null()) return &kEmpty;
    if (!it->is_object())
      return absl::InvalidArgumentError(absl::StrCat(file, ": ", name, " is not an object"));
    return &*it;
  };
  ASSIGN_OR_RETURN(const nlohmann::json* tc, section("text_config"));
  ASSIGN_OR_RETURN(const nlohmann::json* vc, section("vision_config"));
  for (const auto& [sec, obj] :
       {std::pair<const char*, const nlohmann::json*>{"text_config", tc}, {"vision_config", vc}}) {
    auto act = obj->find("hidden_act");
    if (act != obj->end() && !(act->is_string() && act->get<std::string>() == "quick_gelu")) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": ", sec, ".hidden_act is ", act->dump(),
                       "; only quick_gelu (OpenAI CLIP) is supported"));
    }
  }
  // Defaults are transformers' CLIPConfig defaults: save_pretrained omits them.
  ClipConfig c;
  ASSIGN_OR_RETURN(c.embed_dim, JsonInt(file, root, "", "projection_dim", 512));
  ASSIGN_OR_RETURN(c.text_width, JsonInt(file, *tc, "text_config.", "hidden_size", 512));
  ASSIGN_OR_RETURN(*text_mlp, JsonInt(file, *tc, "text_config.", "intermediate_size", 2048));
  ASSIGN_OR_RETURN(c.text_layers, JsonInt(file, *tc, "text_config.", "num_hidden_layers", 12));
  ASSIGN_OR_RETURN(c.text_heads, JsonInt(file, *tc, "text_config.", "num_attention_heads", 8));
  ASSIGN_OR_RETURN(c.context_length,
                   JsonInt(file, *tc, "text_config.", "max_position_embeddings", 77));
  ASSIGN_OR_RETURN(c.vocab_size, JsonInt(file, *tc, "text_config.", "vocab_size", 49408));
  ASSIGN_OR_RETURN(c.vision_width, JsonInt(file, *vc, "vision_config.", "hidden_size", 768));
  ASSIGN_OR_RETURN(*vision_mlp, JsonInt(file, *vc, "vision_config.", "intermediate_size", 3072));
  ASSIGN_OR_RETURN(c.vision_layers, JsonInt(file, *vc, "vision_config.", "num_hidden_layers", 12));
  ASSIGN_OR_RETURN(c.vision_heads, JsonInt(file, *vc, "vision_config.", "num_attention_heads", 12));
  ASSIGN_OR_RETURN(c.image_resolution, JsonInt(file, *vc, "vision_config.", "image_size", 224));
  ASSIGN_OR_RETURN(c.vision_patch_size, JsonInt(file, *vc, "vision_config.", "patch_size", 32));
  auto eps = vc->find("layer_norm_eps");
  if (eps != vc->end() && eps->is_number()) c.layer_norm_eps = eps->get<double>();
  if (absl::Status s = ValidateConfig(c); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", s.message()));
  }
  if (*text_mlp != 4 * c.text_width || *vision_mlp != 4 * c.vision_width) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": intermediate_size must be 4 x hidden_size (text ", *text_mlp, " vs ",
                     c.text_width, ", vision ", *vision_mlp, " vs ", c.vision_width, ")"));
  }
  return c;
}

Shapes HfShapes(const ClipConfig& c) {
  Shapes s;
  const int64_t vw = c.vision_width;
  const int64_t tw = c.text_width;
  s["vision_model.embeddings.class_embedding"] = {vw};
  s["vision_model.embeddings.patch_embedding.weight"] = {vw, 3, c.vision_patch_size,
                                                         c.vision_patch_size};
  s["vision_model.embeddings.position_embedding.weight"] = {c.num_patches() + 1, vw};
  s["vision_model.pre_layrnorm.weight"] = {vw};
  s["vision_model.pre_layrnorm.bias"] = {vw};
  s["vision_model.post_layernorm.weight"] = {vw};
  s["vision_model.post_layernorm.bias"] = {vw};
  s["visual_projection.weight"] = {c.embed_dim, vw};
  s["text_model.embeddings.token_embedding.weight"] = {c.vocab_size, tw};
  s["text_model.embeddings.position_embedding.weight"] = {c.context_length, tw};
  s["text_model.final_layer_norm.weight"] = {tw};
  s["text_model.final_layer_norm.bias"] = {tw};
  s["text_projection.weight"] = {c.embed_dim, tw};
  s["logit_scale"] = {};
  auto layers = [&](const std::string& tower, int64_t n, int64_t w) {
    for (int64_t i = 0; i < n; ++i) {
      const std::string p = absl::StrCat(tower, ".encoder.layers.", i, ".");
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        s[absl::StrCat(p, "self_attn.", proj, ".weight")] = {w, w};
        s[absl::StrCat(p, "self_attn.", proj, ".bias")] = {w};
      }
      for (const char* ln : {"layer_norm1", "layer_norm2"}) {
        s[absl::StrCat(p, ln, ".weight")] = {w};
        s[absl::StrCat(p, ln, ".bias")] = {w};
      }
      s[p + "mlp.fc1.weight"] = {4 * w, w};
      s[p + "mlp.fc1.bias"] = {4 * w};
      s[p + "mlp.fc2.weight"] = {w, 4 * w};
      s[p + "mlp.fc2.bias"] = {w};
    }
  };
  layers("vision_model", c.vision_layers, vw);
  layers("text_model", c.text_layers, tw);
  return s;
}

absl::StatusOr<LoadedCheckpoint> LoadHf(const std::string& dir) {
  const std::string config_path = JoinPath(dir, "config.json");
  const std::string weights_path = JoinPath(dir, "model.safetensors");
  if (!IsFile(config_path)) {
    return absl::NotFoundError(absl::StrCat(dir, ": Hugging Face directory without config.json"));
  }
  if (!IsFile(weights_path)) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": Hugging Face directory without model.safetensors"));
  }
  int64_t text_mlp = 0;
  int64_t vision_mlp = 0;
  ASSIGN_OR_RETURN(ClipConfig config, ReadHfConfig(config_path, &text_mlp, &vision_mlp));
  ASSIGN_OR_RETURN(SafetensorsContents file, ReadSafetensors(weights_path));
  Weights& hf = file.tensors;
  RETURN_IF_ERROR(
      CheckWeights(weights_path, HfShapes(config), hf,
                   {"text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"}));
  LoadedCheckpoint ck;
  ck.layout = CheckpointLayout::kHuggingFaceDirectory;
  ck.config = config;
  RETURN_IF_ERROR(util::TorchCall(absl::StrCat(weights_path, ": convert to OpenAI names"), [&]() {
    Weights& w = ck.weights;
    auto take = [&](const std::string& to, const std::string& from) { w[to] = hf.at(from); };
    take("visual.class_embedding", "vision_model.embeddings.class_embedding");
    take("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight");
    take("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight");
    take("visual.ln_pre.weight", "vision_model.pre_layrnorm.weight");
    take("visual.ln_pre.bias", "vision_model.pre_layrnorm.bias");
    take("visual.ln_post.weight", "vision_model.post_layernorm.weight");
    take("visual.ln_post.bias", "vision_model.post_layernorm.bias");
    w["visual.proj"] = hf.at("visual_projection.weight").t().contiguous();
    take("token_embedding.weight", "text_model.embeddings.token_embedding.weight");
    take("positional_embedding", "text_model.embeddings.position_embedding.weight");
    take("ln_final.weight", "text_model.final_layer_norm.weight");
    take("ln_final.bias", "text_model.final_layer_norm.bias");
    w["text_projection"] = hf.at("text_projection.weight").t().contiguous();
    take("logit_scale", "logit_scale");
    auto blocks = [&](const std::string& from_tower, const std::string& to_prefix, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const std::string f = absl::StrCat(from_tower, ".encoder.layers.", i, ".");
        const std::string t = absl::StrCat(to_prefix, i, ".");
        for (const char* kind : {"weight", "bias"}) {
          w[absl::StrCat(t, "attn.in_proj_", kind)] =
              torch::cat({hf.at(absl::StrCat(f, "self_attn.q_proj.", kind)),
                          hf.at(absl::StrCat(f, "self_attn.k_proj.", kind)),
                          hf.at(absl::StrCat(f, "self_attn.v_proj.", kind))},
                         0);
          take(absl::StrCat(t, "attn.out_proj.", kind),
               absl::StrCat(f, "self_attn.out_proj.", kind));
          take(absl::StrCat(t, "ln_1.", kind), absl::StrCat(f, "layer_norm1.", kind));
          take(absl::StrCat(t, "ln_2.", kind), absl::StrCat(f, "layer_norm2.", kind));
          take(absl::StrCat(t, "mlp.c_fc.", kind), absl::StrCat(f, "mlp.fc1.", kind));
          take(absl::StrCat(t, "mlp.c_proj.", kind), absl::StrCat(f, "mlp.fc2.", kind));
        }
      }
    };
    blocks("vision_model", "visual.transformer.resblocks.", config.vision_layers);
    blocks("text_model", "transformer.resblocks.", config.text_layers);
  }));
  return ck;
}

// The tokenizer that ships beside the weights: a Hugging Face folder
// (vocab.json + merges.txt), or OpenAI's layout, where the BPE file
// (bpe_simple_vocab_16e6.txt.gz) sits next to ViT-B-16.pt. Any other single
// *.txt.gz in the folder counts too; with several, none is guessed.
std::string TokenizerFor(const std::string& dir) {
  if (IsFile(JoinPath(dir, "vocab.json")) && IsFile(JoinPath(dir, "merges.txt"))) return dir;
  const std::string openai = JoinPath(dir, "bpe_simple_vocab_16e6.txt.gz");
  if (IsFile(openai)) return openai;
  std::vector<std::string> gz;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir.empty() ? "." : dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (absl::EndsWith(name, ".txt.gz") && IsFile(it->path().string())) {
      gz.push_back(it->path().string());
    }
  }
  return gz.size() == 1 ? gz[0] : "";
}

}  // namespace

const char* CheckpointLayoutName(CheckpointLayout layout) {
  switch (layout) {
    case CheckpointLayout::kOpenAISafetensors:
      return "openai-safetensors";
    case CheckpointLayout::kTorchSaveStateDict:
      return "torch-save-state-dict";
    case CheckpointLayout::kTorchScriptArchive:
      return "torchscript-archive";
    case CheckpointLayout::kHuggingFaceDirectory:
      return "huggingface-directory";
  }
  return "unknown";
}

Shapes ExpectedWeightShapes(const ClipConfig& c) {
  Shapes s;
  const int64_t vw = c.vision_width;
  const int64_t tw = c.text_width;
  s["visual.conv1.weight"] = {vw, 3, c.vision_patch_size, c.vision_patch_size};
  s["visual.class_embedding"] = {vw};
  s["visual.positional_embedding"] = {c.num_patches() + 1, vw};
  s["visual.ln_pre.weight"] = {vw};
  s["visual.ln_pre.bias"] = {vw};
  s["visual.ln_post.weight"] = {vw};
  s["visual.ln_post.bias"] = {vw};
  s["visual.proj"] = {vw, c.embed_dim};
  for (int64_t i = 0; i < c.vision_layers; ++i) {
    AddBlockShapes(s, absl::StrCat("visual.transformer.resblocks.", i, "."), vw);
  }
  s["token_embedding.weight"] = {c.vocab_size, tw};
  s["positional_embedding"] = {c.context_length, tw};
  s["ln_final.weight"] = {tw};
  s["ln_final.bias"] = {tw};
  s["text_projection"] = {tw, c.embed_dim};
  s["logit_scale"] = {};
  for (int64_t i = 0; i < c.text_layers; ++i) {
    AddBlockShapes(s, absl::StrCat("transformer.resblocks.", i, "."), tw);
  }
  return s;
}

absl::StatusOr<std::string> WeightsFingerprint(const Weights& weights) {
  return util::TorchCall("WeightsFingerprint", [&]() {
    uint64_t h = util::Fnv1a64(nullptr, 0);
    for (const auto& [name, tensor] : weights) {
      h = util::Fnv1a64(name.data(), name.size(), h);
      const int64_t rank = tensor.dim();
      h = util::Fnv1a64(&rank, sizeof(rank), h);
      for (int64_t d : tensor.sizes()) h = util::Fnv1a64(&d, sizeof(d), h);
      torch::Tensor f = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      h = util::Fnv1a64(f.data_ptr(), static_cast<size_t>(f.numel()) * sizeof(float), h);
    }
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
    return std::string(hex);
  });
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path) {
  LoadedCheckpoint ck;
  if (IsDirectory(path)) {
    ASSIGN_OR_RETURN(ck, LoadHf(path));
    ck.tokenizer_dir = TokenizerFor(path);
  } else {
    if (!IsFile(path))
      return absl::NotFoundError(absl::StrCat(path, ": no such checkpoint file or directory"));
    ASSIGN_OR_RETURN(std::string bytes, util::ReadFile(path));
    Weights weights;
    if (bytes.size() >= 4 && bytes.compare(0, 4, "PK\x03\x04") == 0) {
      // Both torch.save and TorchScript write zip archives; only TorchScript
      // has compiled code and a constants table.
      const bool script = bytes.find("/constants.pkl") != std::string::npos ||
                          bytes.find("/code/__torch__") != std::string::npos;
      if (script) {
        ck.layout = CheckpointLayout::kTorchScriptArchive;
        ASSIGN_OR_RETURN(weights, ReadTorchScript(path, bytes));
      } else {
        ck.layout = CheckpointLayout::kTorchSaveStateDict;
        ASSIGN_OR_RETURN(weights, ReadTorchSaveDict(path, bytes));
      }
    } else if (bytes.size() >= 9 && bytes[8] == '{') {
      ck.layout = CheckpointLayout::kOpenAISafetensors;
      ASSIGN_OR_RETURN(SafetensorsContents file, ParseSafetensors(bytes, path));
      weights = std::move(file.tensors);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path,
                       ": not a recognised checkpoint (expected safetensors, a torch.save zip or a "
                       "TorchScript zip)"));
    }
    bytes.clear();
    bytes.shrink_to_fit();
    ASSIGN_OR_RETURN(ck.config, InferOpenAIConfig(path, weights));
    if (ck.layout == CheckpointLayout::kTorchScriptArchive) {
      // Tensor attributes that are not weights (ScriptStateReader).
      const std::map<std::string, std::vector<int64_t>> expected = ExpectedWeightShapes(ck.config);
      for (auto it = weights.begin(); it != weights.end();) {
        it = expected.count(it->first) || OpenAIIgnorable().count(it->first) ? std::next(it)
                                                                             : weights.erase(it);
      }
    }
    RETURN_IF_ERROR(
        CheckWeights(path, ExpectedWeightShapes(ck.config), weights, OpenAIIgnorable()));
    ck.weights = std::move(weights);
    ck.tokenizer_dir = TokenizerFor(ParentDir(path));
  }
  ASSIGN_OR_RETURN(ck.fingerprint, WeightsFingerprint(ck.weights));
  return ck;
}

}  // namespace provp::clip
