// Per-dataset text templates; see templates.h.
#include "core/data/templates.h"

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
  return kDefaultTemplate;
}

}  // namespace provp::data
