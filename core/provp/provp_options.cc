// Variant names, defaults and range checks for ProvpOptions.
#include "core/provp/provp_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace provp::provp {
namespace {

struct VariantEntry {
  Variant variant;
  const char* name;
};

constexpr VariantEntry kVariants[] = {
    {Variant::kProvpRef, "provp_ref"}, {Variant::kProvp, "provp"},
    {Variant::kVptDeep, "vpt_deep"},   {Variant::kVptShallow, "vpt_shallow"},
    {Variant::kZeroShot, "zero_shot"},
};

// Prompt length cap: far above any published setting (m <= 50) but it keeps
// an untrusted request from sizing a huge allocation.
constexpr int64_t kMaxPrompts = 1024;

}  // namespace

const char* VariantName(Variant variant) {
  for (const auto& entry : kVariants) {
    if (entry.variant == variant) return entry.name;
  }
  return "unknown";
}

absl::StatusOr<Variant> VariantFromName(absl::string_view name) {
  for (const auto& entry : kVariants) {
    if (name == entry.name) return entry.variant;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ProVP variant '", name,
                   "' (expected one of: ", absl::StrJoin(VariantNames(), ", "), ")"));
}

std::vector<std::string> VariantNames() {
  std::vector<std::string> names;
  for (const auto& entry : kVariants) names.emplace_back(entry.name);
  return names;
}

ProvpOptions DefaultOptionsFor(Variant variant) {
  ProvpOptions options;
  options.variant = variant;
  switch (variant) {
    case Variant::kProvpRef:
      break;
    case Variant::kProvp:
      options.lambda_ref = 0.0;
      break;
    case Variant::kVptDeep:
      // VPT-deep in this framework: pure replacement, and no Ref (the
      // baseline as the VPT paper trains it).
      options.alpha = 0.0;
      options.lambda_ref = 0.0;
      break;
    case Variant::kVptShallow:
      options.depth = 1;
      options.lambda_ref = 0.0;
      break;
    case Variant::kZeroShot:
      options.num_prompts = 0;
      options.lambda_ref = 0.0;
      break;
  }
  return options;
}

absl::StatusOr<ProvpOptions> ResolveOptions(const ProvpOptions& options, int64_t vision_layers) {
  ProvpOptions out = options;
  if (vision_layers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("vision_layers must be >= 1, got ", vision_layers));
  }
  if (options.variant == Variant::kZeroShot) {
    out.num_prompts = 0;
    out.depth = 0;
    out.lambda_ref = 0.0;
    return out;
  }
  if (options.num_prompts < 1 || options.num_prompts > kMaxPrompts) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_prompts must be in [1, ", kMaxPrompts, "], got ", options.num_prompts));
  }
  if (options.variant == Variant::kVptShallow) {
    if (options.depth > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("depth must be 1 for variant vpt_shallow, got ", options.depth));
    }
    out.depth = 1;
  }
  if (out.depth == 0) out.depth = vision_layers;
  if (out.depth < 1 || out.depth > vision_layers) {
    return absl::InvalidArgumentError(absl::StrCat("depth must be in [1, ", vision_layers,
                                                   "] (the vision layers), got ", options.depth));
  }
  if (!(options.alpha >= 0.0 && options.alpha <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("alpha must be in [0, 1], got ", options.alpha));
  }
  if (!(options.lambda_ref >= 0.0 && std::isfinite(options.lambda_ref))) {
    return absl::InvalidArgumentError(
        absl::StrCat("lambda_ref must be finite and >= 0, got ", options.lambda_ref));
  }
  if (!(options.temperature > 0.0 && std::isfinite(options.temperature))) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be finite and > 0, got ", options.temperature));
  }
  if (!(options.init_bound >= 0.0 && std::isfinite(options.init_bound))) {
    return absl::InvalidArgumentError(
        absl::StrCat("init_bound must be finite and >= 0, got ", options.init_bound));
  }
  return out;
}

double ReferenceInitBound(int64_t width) {
  return std::sqrt(6.0 / (3.0 * 14.0 * 14.0 + static_cast<double>(width)));
}

}  // namespace provp::provp
