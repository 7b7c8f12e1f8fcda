// ProVP-Ref hyperparameters of the model side (prompt length, depth, the
// progressive blend alpha, the Ref weight lambda and temperature) and the
// named variants that the quality tables compare (METHOD.md section 12).
// Plain value types; thread-safe to copy and read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::provp {

// Baselines produced by the same code path (METHOD.md sections 8 and 12).
enum class Variant {
  kProvpRef,    // "provp_ref": alpha 0.01, lambda 1 (the method).
  kProvp,       // "provp": Ref off (lambda 0).
  kVptDeep,     // "vpt_deep": alpha 0, each layer's prompts replace the slots.
  kVptShallow,  // "vpt_shallow": prompts in the first layer only (depth 1).
  kZeroShot,    // "zero_shot": no prompts, plain frozen CLIP.
};

// Canonical lower-case names ("provp_ref", ...).
const char* VariantName(Variant variant);
absl::StatusOr<Variant> VariantFromName(absl::string_view name);
std::vector<std::string> VariantNames();

struct ProvpOptions {
  Variant variant = Variant::kProvpRef;
  // Prompt tokens per layer (m). The reference README uses 50 for few-shot
  // and 16 for base-to-novel.
  int64_t num_prompts = 50;
  // Prompted vision layers counted from the first; 0 means all layers.
  int64_t depth = 0;
  // Weight of the previous layer's output in the progressive blend
  // (reference value 0.01, hard-coded there; 0 = VPT-deep replacement).
  double alpha = 0.01;
  // Weight of the Ref loss (reference: always 1; 0 disables the frozen pass).
  double ref_lambda = 1.0;
  // Temperature of the Ref logits; the reference code never applies one (1).
  double temperature = 1.0;
  // Half-width of the uniform prompt init; 0 means the reference formula
  // sqrt(6 / (3*14*14 + width)) (METHOD.md section 2, item 7; quirk Q6).
  double init_bound = 0.0;
};

// The variant's own defaults (e.g. vpt_deep -> alpha 0, provp -> lambda 0);
// callers then override any field.
ProvpOptions DefaultOptionsFor(Variant variant);

// Checks ranges against a vision tower with `vision_layers` layers and
// returns the effective options: depth 0 -> all layers, vpt_shallow forced
// to depth 1, zero_shot -> no prompts (num_prompts 0, depth 0, lambda 0).
// Errors name the offending field.
absl::StatusOr<ProvpOptions> ResolveOptions(const ProvpOptions& options, int64_t vision_layers);

// True when the variant trains prompts at all.
inline bool HasPrompts(const ProvpOptions& options) {
  return options.variant != Variant::kZeroShot;
}

// sqrt(6 / (3*14*14 + width)): the reference's Xavier-style bound with its
// hard-coded patch count 14 kept so runs compare with the published ones.
double ReferenceInitBound(int64_t width);

}  // namespace provp::provp
