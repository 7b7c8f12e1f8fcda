// Per-dataset text templates; see templates.h.
#include "core/data/templates.h"

#include <algorithm>
#include <utility>

namespace provp::data {

std::string TemplateForDataset(const std::string& dataset_name) {
  static const std::pair<const char*, const char*> kTemplates[] = {
      {"OxfordPets", "a type of pet, a photo of a {}."},
      {"OxfordFlowers", "a type of flower, a photo of a {}."},
      {"FGVCAircraft", "a type of aircraft, a photo of a {}."},
      {"DescribableTextures", "a texture of {}."},
      {"EuroSAT", "a centered satellite photo of {}."},
      {"StanfordCars", "a photo of a {}."},
      {"Food101", "a type of food, a photo of {}."},
      {"SUN397", "a photo of a {}."},
      {"Caltech101", "a photo of a {}."},
      {"UCF101", "a photo of a person doing {}."},
      {"ImageNet", "a photo of a {}."},
      {"ImageNetSketch", "a photo of a {}."},
      {"ImageNetV2", "a photo of a {}."},
      {"ImageNetA", "a photo of a {}."},
      {"ImageNetR", "a photo of a {}."},
  };
  for (const auto& [name, text] : kTemplates) {
    if (dataset_name == name) return text;
  }
  return "a photo of a {}.";
}

std::string FillTemplate(const std::string& text_template, const std::string& class_name) {
  std::string name = class_name;
  std::replace(name.begin(), name.end(), '_', ' ');
  const size_t pos = text_template.find("{}");
  if (pos == std::string::npos) return text_template + " " + name;
  std::string out = text_template;
  out.replace(pos, 2, name);
  return out;
}

}  // namespace provp::data
