// The hand-written text template per dataset that the reference ProVP code
// fills with each class name (METHOD.md section 3, CUSTOM_TEMPLATES), and
// the fill rule itself. Pure functions; thread-safe.
#pragma once

#include <string>

namespace provp::data {

// The template for a CoOp dataset name ("OxfordPets" -> "a type of pet, a
// photo of a {}."); "a photo of a {}." for any other name. The
// zero-shot-CLIP variants (zsclip.py) are deliberately not used: the
// reference trains and evaluates with these.
std::string TemplateForDataset(const std::string& dataset_name);

// Replaces the first "{}" in `text_template` with `class_name` after turning
// "_" into spaces, as the reference code does. A template without "{}" gets
// the name appended after a space.
std::string FillTemplate(const std::string& text_template, const std::string& class_name);

}  // namespace provp::data
