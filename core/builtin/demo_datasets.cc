// Demo dataset generation: per class, a fixed number of shifted-style images
// per split from a seeded Random, so the same sizes and seed always give the
// same files.
#include "core/builtin/demo_datasets.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "core/builtin/scenes.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace provp::builtin {
namespace {

absl::Status CheckSizes(const DemoSizes& s) {
  if (s.train_per_class < 1 || s.val_per_class < 0 || s.test_per_class < 1 ||
      s.train_per_class > 100000 || s.val_per_class > 100000 || s.test_per_class > 100000 ||
      s.resolution < 8 || s.resolution > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DemoSizes: need train_per_class/test_per_class in [1, 100000], val_per_class in [0, "
        "100000], resolution in [8, 1024]; got ",
        s.train_per_class, "/", s.val_per_class, "/", s.test_per_class, " at ", s.resolution,
        " px"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DemoDataset> MakeDemoShapes(const DemoSizes& sizes) {
  RETURN_IF_ERROR(CheckSizes(sizes));
  DemoDataset d;
  d.name = kDemoShapesName;
  d.class_names = ShapeNames();
  Random rng(sizes.seed);
  struct SplitSpec {
    std::vector<LabeledRaster>* out;
    int per_class;
  };
  for (SplitSpec split :
       {SplitSpec{&d.train, sizes.train_per_class}, SplitSpec{&d.val, sizes.val_per_class},
        SplitSpec{&d.test, sizes.test_per_class}}) {
    for (int label = 0; label < kNumShapes; ++label) {
      for (int i = 0; i < split.per_class; ++i) {
        const SceneSpec spec = RandomScene(rng, label);
        split.out->push_back({RenderScene(spec, sizes.resolution, sizes.style, rng), label});
      }
    }
  }
  return d;
}

absl::StatusOr<DemoDataset> MakeDemoColors(const DemoSizes& sizes) {
  RETURN_IF_ERROR(CheckSizes(sizes));
  DemoDataset d;
  d.name = kDemoColorsName;
  for (const NamedColor& c : SceneColors()) d.class_names.emplace_back(c.name);
  const int num_classes = static_cast<int>(d.class_names.size());
  const RenderStyle style =
      sizes.style == RenderStyle::kPretrain ? RenderStyle::kPretrain : RenderStyle::kShiftedPalette;
  Random rng(sizes.seed ^ 0xc01045ULL);
  for (auto [out, n] :
       {std::pair{&d.train, sizes.train_per_class}, std::pair{&d.val, sizes.val_per_class},
        std::pair{&d.test, sizes.test_per_class}}) {
    for (int label = 0; label < num_classes; ++label) {
      for (int i = 0; i < n; ++i) {
        SceneSpec spec = RandomScene(rng);
        spec.color = label;
        spec.texture = Texture::kSolid;
        while (spec.background == label) spec.background = rng.Int(num_classes);
        out->push_back({RenderScene(spec, sizes.resolution, style, rng), label});
      }
    }
  }
  return d;
}

absl::StatusOr<DemoDataset> MakeDemoFashion(const FashionMnist& t10k, const DemoSizes& sizes) {
  RETURN_IF_ERROR(CheckSizes(sizes));
  DemoDataset d;
  d.name = kDemoFashionName;
  d.class_names = FashionClassNames();
  const int num_classes = static_cast<int>(d.class_names.size());
  std::vector<std::vector<int>> by_class(num_classes);
  for (int i = 0; i < t10k.size(); ++i) by_class[t10k.labels[i]].push_back(i);
  const int need = sizes.train_per_class + sizes.val_per_class + sizes.test_per_class;
  for (int label = 0; label < num_classes; ++label) {
    if (static_cast<int>(by_class[label].size()) < need) {
      return absl::FailedPreconditionError(
          absl::StrCat("MakeDemoFashion: class ", d.class_names[label], " has ",
                       by_class[label].size(), " items, ", need, " needed"));
    }
  }
  Random rng(sizes.seed);
  for (int label = 0; label < num_classes; ++label) {
    int next = 0;
    for (auto [out, n] :
         {std::pair{&d.train, sizes.train_per_class}, std::pair{&d.val, sizes.val_per_class},
          std::pair{&d.test, sizes.test_per_class}}) {
      for (int i = 0; i < n; ++i) {
        const int k = by_class[label][next++];
        out->push_back(
            {RenderFashion(t10k.image(k), t10k.rows, t10k.cols, sizes.resolution, sizes.style, rng),
             label});
      }
    }
  }
  return d;
}

absl::Status WriteCoopDataset(const DemoDataset& dataset, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::vector<std::string> folders;
  for (const std::string& name : dataset.class_names) {
    folders.push_back(absl::StrReplaceAll(name, {{" ", "_"}, {"/", "_"}}));
    const std::string folder = absl::StrCat(dir, "/images/", folders.back());
    std::filesystem::create_directories(folder, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", folder, ": ", ec.message()));
  }
  nlohmann::json split = nlohmann::json::object();
  for (auto [key, items] : {std::pair{"train", &dataset.train}, std::pair{"val", &dataset.val},
                            std::pair{"test", &dataset.test}}) {
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < items->size(); ++i) {
      const LabeledRaster& item = (*items)[i];
      if (item.label < 0 || item.label >= static_cast<int>(folders.size())) {
        return absl::InvalidArgumentError(absl::StrCat("WriteCoopDataset: ", dataset.name, " ", key,
                                                       " item ", i, " has label ", item.label));
      }
      const std::string rel =
          absl::StrFormat("images/%s/%s_%05d.png", folders[item.label], key, static_cast<int>(i));
      ASSIGN_OR_RETURN(std::string png, EncodePng(item.image));
      RETURN_IF_ERROR(util::WriteFileAtomic(absl::StrCat(dir, "/", rel), png));
      list.push_back({rel, item.label, dataset.class_names[item.label]});
    }
    split[key] = std::move(list);
  }
  return util::WriteFileAtomic(absl::StrCat(dir, "/split_zhou_", dataset.name, ".json"),
                               split.dump(1));
}

}  // namespace provp::builtin
