// The hand-written text template per dataset that the reference ProVP code
// fills with each class name (METHOD.md section 3, CUSTOM_TEMPLATES). The
// fill rule itself is clip::FillTemplate (core/clip/zero_shot.h), the one
// place text features are made. Pure functions; thread-safe.
#pragma once

#include <string>

namespace provp::data {

// The template when none is given: CLIP's. The one home of this string
// (clip::ClassTextFeatures, the engine, the server and the tools read it).
inline constexpr char kDefaultTemplate[] = "a photo of a {}.";

// The template for a CoOp dataset name ("OxfordPets" -> "a type of pet, a
// photo of a {}."); kDefaultTemplate for any other name. The
// zero-shot-CLIP variants (zsclip.py) are deliberately not used: the
// reference trains and evaluates with these.
std::string TemplateForDataset(const std::string& dataset_name);

}  // namespace provp::data
