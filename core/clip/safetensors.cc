// Safetensors reader/writer. The header is parsed with nlohmann::json in
// no-throw mode after a cheap nesting-depth scan; tensors are copied out of
// the file buffer only once all entries have passed the bounds checks.
#include "core/clip/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::clip {
namespace {

// A header larger than this is not a weights file (ViT-L/14's is ~40 KiB).
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
// Deepest legal nesting: {"name": {"shape": [..]}}.
constexpr int kMaxJsonDepth = 4;
constexpr size_t kMaxRank = 16;

struct DtypeInfo {
  const char* name;
  torch::Dtype dtype;
  uint64_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* DtypeByName(const std::string& name) {
  for (const DtypeInfo& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DtypeInfo* DtypeByTorch(torch::Dtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (dtype == d.dtype) return &d;
  }
  return nullptr;
}

// Rejects deeply nested JSON before the parser sees it, so a hostile header
// of a million '[' costs a linear scan and nothing else.
bool NestingWithin(absl::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > max_depth) return false;
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
  return true;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

absl::Status Bad(const std::string& label, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(label, ": ", what));
}

absl::StatusOr<Entry> ParseEntry(const std::string& label, const std::string& name,
                                 const nlohmann::json& value, uint64_t data_size) {
  Entry e;
  e.name = name;
  if (name.empty()) return Bad(label, "empty tensor name in safetensors header");
  if (!value.is_object())
    return Bad(label, absl::StrCat("tensor ", name, ": header entry is not an object"));
  auto dtype_it = value.find("dtype");
  auto shape_it = value.find("shape");
  auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || !dtype_it->is_string()) {
    return Bad(label, absl::StrCat("tensor ", name, ": missing or non-string \"dtype\""));
  }
  e.dtype = DtypeByName(dtype_it->get<std::string>());
  if (e.dtype == nullptr) {
    return Bad(label, absl::StrCat("tensor ", name, ": unsupported dtype \"",
                                   dtype_it->get<std::string>(), "\""));
  }
  if (shape_it == value.end() || !shape_it->is_array() || shape_it->size() > kMaxRank) {
    return Bad(label, absl::StrCat("tensor ", name, ": \"shape\" must be an array of at most ",
                                   kMaxRank, " integers"));
  }
  uint64_t numel = 1;
  for (const auto& dim : *shape_it) {
    if (!dim.is_number_unsigned()) {
      return Bad(label, absl::StrCat("tensor ", name, ": shape entry ", dim.dump(),
                                     " is not a non-negative integer"));
    }
    const uint64_t d = dim.get<uint64_t>();
    if (d > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel)) {
      return Bad(label, absl::StrCat("tensor ", name, ": shape overflows"));
    }
    e.shape.push_back(static_cast<int64_t>(d));
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, e.dtype->size, &nbytes)) {
    return Bad(label, absl::StrCat("tensor ", name, ": byte size overflows"));
  }
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
    return Bad(label, absl::StrCat("tensor ", name,
                                   ": \"data_offsets\" must be two non-negative integers"));
  }
  e.begin = (*offsets_it)[0].get<uint64_t>();
  e.end = (*offsets_it)[1].get<uint64_t>();
  if (e.begin > e.end || e.end > data_size) {
    return Bad(label, absl::StrCat("tensor ", name, ": data_offsets [", e.begin, ", ", e.end,
                                   "] outside the data section of ", data_size, " bytes"));
  }
  if (e.end - e.begin != nbytes) {
    return Bad(label, absl::StrCat("tensor ", name, ": data_offsets span ", e.end - e.begin,
                                   " bytes but shape [", absl::StrJoin(e.shape, ","), "] of ",
                                   e.dtype->name, " needs ", nbytes));
  }
  return e;
}

}  // namespace

absl::StatusOr<SafetensorsContents> ParseSafetensors(absl::string_view bytes,
                                                     const std::string& label) {
  if (bytes.size() < 8) {
    return Bad(label,
               absl::StrCat("file of ", bytes.size(), " bytes is too short for safetensors"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i)
    header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  if (header_len > bytes.size() - 8 || header_len > kMaxHeaderBytes) {
    return Bad(label,
               absl::StrCat("safetensors header length ", header_len, " exceeds the file (",
                            bytes.size(), " bytes) or the ", kMaxHeaderBytes, "-byte limit"));
  }
  absl::string_view header = bytes.substr(8, header_len);
  const uint64_t data_size = bytes.size() - 8 - header_len;
  const char* data = bytes.data() + 8 + header_len;
  if (!NestingWithin(header, kMaxJsonDepth)) {
    return Bad(label, "safetensors header nests too deeply");
  }
  nlohmann::json root =
      nlohmann::json::parse(header.begin(), header.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return Bad(label, "safetensors header is not a JSON object");
  }

  SafetensorsContents out;
  std::vector<Entry> entries;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) return Bad(label, "__metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) {
          return Bad(label,
                     absl::StrCat("__metadata__ value for \"", m.key(), "\" is not a string"));
        }
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    ASSIGN_OR_RETURN(Entry e, ParseEntry(label, it.key(), it.value(), data_size));
    entries.push_back(std::move(e));
  }
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin < b->begin || (a->begin == b->begin && a->end < b->end);
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      return Bad(label, absl::StrCat("tensors ", by_offset[i - 1]->name, " and ",
                                     by_offset[i]->name, " overlap in the data section"));
    }
  }
  // Every size below is now bounded by the file size.
  RETURN_IF_ERROR(util::TorchCall(absl::StrCat(label, ": safetensors tensors"), [&]() {
    for (const Entry& e : entries) {
      torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->dtype));
      if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
      out.tensors.emplace(e.name, std::move(t));
    }
  }));
  return out;
}

absl::StatusOr<SafetensorsContents> ReadSafetensors(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, util::ReadFile(path));
  return ParseSafetensors(bytes, path);
}

absl::StatusOr<std::string> SerializeSafetensors(
    const std::map<std::string, torch::Tensor>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> cpu;
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__") {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: invalid tensor name \"", name, "\""));
    }
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors: tensor ", name, " is undefined"));
    }
    const DtypeInfo* d = DtypeByTorch(tensor.scalar_type());
    if (d == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor ", name,
                                                     " has unsupported dtype ",
                                                     c10::toString(tensor.scalar_type())));
    }
    // A named copy: C++17 lambdas cannot capture structured bindings (clang
    // refuses; the fuzz build uses it).
    const torch::Tensor& source = tensor;
    ASSIGN_OR_RETURN(torch::Tensor c, util::TorchCall("safetensors: copy to CPU", [&]() {
                       return source.detach().to(torch::kCPU).contiguous();
                     }));
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * d->size;
    header[name] = {{"dtype", d->name},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    cpu.push_back(std::move(c));
  }
  std::string json = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned.
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + json.size() + offset);
  uint64_t len = json.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += json;
  for (const torch::Tensor& t : cpu) {
    out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  return out;
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata, util::Env* env) {
  ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(tensors, metadata));
  return util::WriteFileAtomic(path, bytes, env);
}

}  // namespace provp::clip
