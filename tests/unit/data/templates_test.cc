// Dataset templates (METHOD.md section 3) and the fill rule.
#include "core/data/templates.h"

#include "gtest/gtest.h"

namespace provp::data {
namespace {

TEST(TemplatesTest, PerDatasetTemplates) {
  EXPECT_EQ(TemplateForDataset("OxfordPets"), "a type of pet, a photo of a {}.");
  EXPECT_EQ(TemplateForDataset("DescribableTextures"), "a texture of {}.");
  EXPECT_EQ(TemplateForDataset("EuroSAT"), "a centered satellite photo of {}.");
  EXPECT_EQ(TemplateForDataset("Food101"), "a type of food, a photo of {}.");
  EXPECT_EQ(TemplateForDataset("UCF101"), "a photo of a person doing {}.");
  EXPECT_EQ(TemplateForDataset("FGVCAircraft"), "a type of aircraft, a photo of a {}.");
  EXPECT_EQ(TemplateForDataset("ImageNet"), "a photo of a {}.");
  EXPECT_EQ(TemplateForDataset("Shapes"), "a photo of a {}.");
  EXPECT_EQ(TemplateForDataset("oxfordpets"), "a photo of a {}.");  // names are exact
}

}  // namespace
}  // namespace provp::data
