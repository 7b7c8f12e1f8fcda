// Variant names, defaults and range checks for ProvpOptions.
#include "core/provp/provp_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/train/hyperparameters.h"

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

// The names must be hyperparameters.h's, in its order.
constexpr bool NamesMatch() {
  constexpr size_t n = sizeof(kVariants) / sizeof(kVariants[0]);
  if (n != sizeof(train::kVariantNames) / sizeof(train::kVariantNames[0])) return false;
  for (size_t i = 0; i < n; ++i) {
    if (std::string_view(kVariants[i].name) != train::kVariantNames[i]) return false;
  }
  return true;
}
static_assert(NamesMatch(), "provp_options.cc and hyperparameters.h name the variants differently");

constexpr int64_t kMaxPrompts = train::kMaxNumPrompts;

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
  // The variants' defaults live with their names in the torch-free
  // hyperparameters.h, which the server reads too.
  const train::VariantSpec* spec = train::FindVariant(VariantName(variant));
  if (spec != nullptr) {
    options.alpha = spec->alpha;
    options.ref_lambda = spec->ref_lambda;
    options.depth = spec->depth;
  }
  if (variant == Variant::kZeroShot) options.num_prompts = 0;
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
    out.ref_lambda = 0.0;
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
  if (!(options.ref_lambda >= 0.0 && std::isfinite(options.ref_lambda))) {
    return absl::InvalidArgumentError(
        absl::StrCat("ref_lambda must be finite and >= 0, got ", options.ref_lambda));
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
