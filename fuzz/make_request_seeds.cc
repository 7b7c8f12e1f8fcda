// Writes the seed corpora of the request-validation targets
// (fuzz/corpus/{classify_request,tuning_request,upload_sequence}/) from
// code, so they can be remade and reviewed; torch-free, unlike
// make_seeds.cc:
//   build-fuzz/fuzz/provp-fuzz-make-request-seeds fuzz/corpus
// Each seed is a request the server core seeded by server_core.h accepts or
// refuses for one named reason, plus the malformed bytes of issue 14.
// Deterministic: fixed values, no RNG.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/image/image_io.h"
#include "provp/v1/classification.pb.h"
#include "provp/v1/dataset.pb.h"
#include "provp/v1/tuning.pb.h"
#include "tests/testing/wire_format.h"

namespace {

std::string g_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = g_root + "/" + target;
  ::mkdir(g_root.c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
}

std::string Png(uint8_t r, uint8_t g, uint8_t b) {
  provp::image::RgbImage img;
  img.height = img.width = 8;
  for (int i = 0; i < 64; ++i) img.pixels.insert(img.pixels.end(), {r, g, b});
  auto png = provp::image::EncodePng(img);
  if (!png.ok()) {
    std::fprintf(stderr, "EncodePng: %s\n", png.status().ToString().c_str());
    std::exit(1);
  }
  return *png;
}

using provp::testing::wire::Len;
using provp::testing::wire::Tag;
using provp::testing::wire::Varint;

void ClassifySeeds() {
  provp::v1::ClassifyRequest inline_req;
  for (const char* n : {"red", "green", "blue"}) inline_req.mutable_inline_classes()->add_names(n);
  inline_req.add_images()->set_encoded(Png(220, 20, 20));
  inline_req.add_images()->set_encoded(Png(20, 20, 220));
  inline_req.set_top_k(2);
  inline_req.set_request_id("r-1");
  Write("classify_request", "inline_classes.bin", inline_req.SerializeAsString());

  provp::v1::ClassifyRequest class_set;
  class_set.set_class_set("classSets/colours");
  class_set.add_templates("a {} thing");
  class_set.add_images()->set_encoded(Png(20, 220, 20));
  Write("classify_request", "class_set.bin", class_set.SerializeAsString());

  provp::v1::ClassifyRequest prompt_set;
  prompt_set.set_prompt_set("promptSets/p1");
  prompt_set.set_return_all_scores(true);
  provp::v1::RawImage* raw = prompt_set.add_images()->mutable_raw();
  raw->set_height(2);
  raw->set_width(2);
  raw->set_channels(3);
  raw->set_data(std::string(12, '\x80'));
  prompt_set.add_images()->set_uri("http://example.com/x.jpg");
  Write("classify_request", "prompt_set_raw_uri.bin", prompt_set.SerializeAsString());

  // Issue 14's finding and the other two malformed kinds.
  Write("classify_request", "invalid_utf8.bin",
        Len(3, Len(1, "dog") + Len(1, "ca\xff\xfet")) + Len(5, Len(1, Png(1, 2, 3))));
  Write("classify_request", "wrong_wire_type.bin", Len(3, Len(1, "red")) + Tag(5, 0) + Varint(1));
  const std::string bytes = inline_req.SerializeAsString();
  Write("classify_request", "truncated.bin", bytes.substr(0, bytes.size() - 7));
}

void TuningSeeds() {
  provp::v1::CreateTuningJobRequest req;
  req.set_tuning_job_id("job-a");
  req.set_output_prompt_set_id("out-a");
  req.set_request_id("create-1");
  provp::v1::TuningJob* job = req.mutable_tuning_job();
  job->set_dataset("datasets/colours");
  job->set_display_name("colours, 2 shots");
  (*job->mutable_labels())["team"] = "vision";
  provp::v1::Hyperparameters* hp = job->mutable_hyperparameters();
  hp->set_shots(2);
  hp->set_epochs(1);
  hp->set_learning_rate(0.002);
  hp->set_batch_size(4);
  hp->set_seed(7);
  Write("tuning_request", "valid.bin", req.SerializeAsString());

  provp::v1::CreateTuningJobRequest preset = req;
  preset.clear_tuning_job_id();
  preset.clear_output_prompt_set_id();
  preset.mutable_tuning_job()->mutable_hyperparameters()->set_preset("few_shot_2");
  preset.mutable_tuning_job()->mutable_hyperparameters()->set_variant("provp_ref");
  preset.mutable_tuning_job()->mutable_hyperparameters()->set_alpha(0.5);
  Write("tuning_request", "preset_variant.bin", preset.SerializeAsString());

  provp::v1::CreateTuningJobRequest existing = req;
  existing.set_output_prompt_set_id("p1");
  existing.mutable_tuning_job()->set_base_prompt_set("promptSets/p1");
  Write("tuning_request", "existing_output_warm_start.bin", existing.SerializeAsString());

  provp::v1::CreateTuningJobRequest too_many_shots = req;
  too_many_shots.mutable_tuning_job()->mutable_hyperparameters()->set_shots(50);
  too_many_shots.mutable_tuning_job()->set_dataset("datasets/missing");
  Write("tuning_request", "missing_dataset.bin", too_many_shots.SerializeAsString());

  Write("tuning_request", "invalid_utf8.bin", Len(1, Len(2, "j\xc3\x28")));
  const std::string bytes = req.SerializeAsString();
  Write("tuning_request", "truncated.bin", bytes.substr(0, bytes.size() - 3));
}

// One framed message: 2-byte little-endian length, then the bytes.
std::string Frame(const std::string& msg) {
  return std::string(1, static_cast<char>(msg.size() & 0xFF)) +
         std::string(1, static_cast<char>((msg.size() >> 8) & 0xFF)) + msg;
}

void UploadSeeds() {
  provp::v1::UploadDatasetRequest meta;
  provp::v1::DatasetMetadata* m = meta.mutable_metadata();
  m->set_dataset_id("up1");
  m->set_display_name("two colours");
  for (const char* n : {"red", "blue", "green"}) m->add_class_names(n);
  m->add_novel_class_names("green");
  m->set_min_shots(1);
  (*m->mutable_labels())["source"] = "fuzz";
  provp::v1::UploadDatasetRequest chunk;
  const uint8_t colours[3][3] = {{220, 20, 20}, {20, 20, 220}, {20, 220, 20}};
  for (int c = 0; c < 3; ++c) {
    provp::v1::LabeledImage* img = chunk.mutable_images()->add_images();
    img->set_label(c);
    img->set_encoded(Png(colours[c][0], colours[c][1], colours[c][2]));
    img->set_split(c == 2 ? provp::v1::TEST : provp::v1::TRAIN);
  }
  const std::string valid = Frame(meta.SerializeAsString()) + Frame(chunk.SerializeAsString());
  Write("upload_sequence", "valid.bin", valid);

  provp::v1::UploadDatasetRequest retried = meta;
  retried.mutable_metadata()->set_dataset_id("up2");
  retried.mutable_metadata()->set_request_id("upload-1");
  Write("upload_sequence", "request_id_two_chunks.bin",
        Frame(retried.SerializeAsString()) + Frame(chunk.SerializeAsString()) +
            Frame(chunk.SerializeAsString()));

  Write("upload_sequence", "metadata_twice.bin",
        Frame(meta.SerializeAsString()) + Frame(meta.SerializeAsString()));
  provp::v1::UploadDatasetRequest bad_label = chunk;
  bad_label.mutable_images()->mutable_images(0)->set_label(9);
  Write("upload_sequence", "label_out_of_range.bin",
        Frame(meta.SerializeAsString()) + Frame(bad_label.SerializeAsString()));
  const std::string chunk_bytes = chunk.SerializeAsString();
  Write("upload_sequence", "truncated_chunk.bin",
        Frame(meta.SerializeAsString()) + Frame(chunk_bytes.substr(0, chunk_bytes.size() / 2)));
  Write("upload_sequence", "invalid_utf8_names.bin",
        Frame(Len(1, Len(1, "up3") + Len(3, "red") + Len(3, "bl\xffue"))) +
            Frame(chunk.SerializeAsString()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  ClassifySeeds();
  TuningSeeds();
  UploadSeeds();
  std::printf("request seeds written under %s\n", g_root.c_str());
  return 0;
}
