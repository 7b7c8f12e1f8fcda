// The server core (server/state) assembled once per fuzzing process, for
// the request-validation targets: the real SQLite store in the scratch
// folder, the real registries, batcher, text cache and classifier, and the
// torch-free fake engine (tests/testing/fake_engine.h; these targets fuzz
// the server's parsing and validation, not a model). Holds a dataset
// "colours" (red/green/blue, blue novel), a class set "colours" and a
// loaded prompt set "p1", so requests can reach the paths that use them.
// Small limits keep each run fast. Single-threaded use, as libFuzzer runs a
// target (the batcher has its own worker).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/image/image_io.h"
#include "core/metrics/families.h"
#include "core/store/file_store.h"
#include "core/store/store.h"
#include "core/util/clock.h"
#include "fuzz/fuzz_util.h"
#include "server/state/batcher.h"
#include "server/state/class_set_registry.h"
#include "server/state/classifier.h"
#include "server/state/dataset_registry.h"
#include "server/state/errors.h"
#include "server/state/file_refs.h"
#include "server/state/job_runner.h"
#include "server/state/logging.h"
#include "server/state/prompt_set_registry.h"
#include "server/state/request_parser.h"
#include "server/state/server_metrics.h"
#include "server/state/text_feature_cache.h"
#include "tests/testing/fake_engine.h"

namespace provp::fuzz {

// Aborts (a crash libFuzzer reports) with `what` when `ok` is false.
inline void Require(bool ok, const char* what, const absl::Status& status = absl::OkStatus()) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s (%s)\n", what, status.ToString().c_str());
  std::abort();
}

// What every refusal of ParseRequest must look like: INVALID_ARGUMENT
// MALFORMED_MESSAGE, never the safety net (the wire check accepted bytes
// protobuf then refused).
inline void RequireMalformed(const absl::Status& s) {
  Require(s.code() == absl::StatusCode::kInvalidArgument &&
              server::ReasonOf(s) == server::kReasonMalformedMessage,
          "a parse failure is INVALID_ARGUMENT MALFORMED_MESSAGE", s);
  Require(s.message().find("does not parse as") == absl::string_view::npos,
          "the wire check accepts only what protobuf parses", s);
}

// A small solid-colour PNG.
inline std::string Png(uint8_t r, uint8_t g, uint8_t b, int size = 8) {
  image::RgbImage img;
  img.height = img.width = size;
  for (int i = 0; i < size * size; ++i) img.pixels.insert(img.pixels.end(), {r, g, b});
  absl::StatusOr<std::string> png = image::EncodePng(img);
  Require(png.ok(), "EncodePng", png.status());
  return *png;
}

// Feeds `messages` to an upload or import, as a stream would.
template <typename Msg>
std::function<absl::StatusOr<bool>(Msg*)> Feed(const std::vector<Msg>* messages) {
  auto next = std::make_shared<size_t>(0);
  return [messages, next](Msg* m) -> absl::StatusOr<bool> {
    if (*next >= messages->size()) return false;
    *m = (*messages)[(*next)++];
    return true;
  };
}

struct ServerCore {
  ServerCore() {
    dir = ScratchDir() + "/data";
    limits.max_images_per_request = 8;
    limits.max_pixels_per_image = 64 * 64;
    limits.max_classes_per_request = 32;
    limits.max_templates = 8;
    limits.max_name_length = 64;
    limits.max_datasets = 4;
    limits.max_jobs = 1 << 20;
    limits.max_queued_jobs = 1 << 20;
    limits.max_upload_bytes = 1 << 20;
    limits.max_dataset_images = 64;
    for (const char* sub : {"datasets", "jobs", "prompt_sets"}) {
      std::filesystem::create_directories(dir + "/" + sub);
    }
    null_log = std::fopen("/dev/null", "w");
    logger = std::make_unique<server::Logger>(server::LogFormat::kText, server::LogLevel::kError,
                                              null_log);
    auto opened = store::OpenStore("", dir + "/state.db");
    Require(opened.ok(), "open the SQLite store", opened.status());
    store = std::move(*opened);
    auto m = server::ServerMetrics::Create(&families);
    Require(m.ok(), "metrics", m.status());
    metrics = std::move(*m);
    engine::FakeEngineOptions fo;
    fo.step_milliseconds = 0;
    engine = std::make_unique<engine::FakeEngine>(fo);
    server::BatchingOptions bo;
    bo.max_queue_delay_us = 0;
    batcher = std::make_unique<server::Batcher>(engine.get(), bo);
    text_cache = std::make_unique<server::TextFeatureCache>(1 << 20);
    // The content-addressed file store the server keeps images and prompt
    // sets in (<data-dir>/blobs by default), with its reference rules.
    auto files_opened = store::OpenSharedDirFileStore(dir + "/blobs");
    Require(files_opened.ok(), "open the file store", files_opened.status());
    files = std::move(*files_opened);
    file_refs = std::make_unique<server::FileRefs>(store.get(), files.get(), logger.get(),
                                                   server::FileRefsOptions{});
    datasets =
        std::make_unique<server::DatasetRegistry>(store.get(), file_refs.get(), clock, logger.get(),
                                                  server::DatasetRegistryOptions{dir, {}, limits});
    prompt_sets = std::make_unique<server::PromptSetRegistry>(
        store.get(), file_refs.get(), engine.get(), clock, metrics.get(), logger.get(),
        server::PromptSetRegistryOptions{dir, limits});
    class_sets = std::make_unique<server::ClassSetRegistry>(store.get(), clock, limits);
    // No pool threads: the fuzzer's one thread decodes (reproducible runs).
    preprocess = std::make_unique<server::PreprocessPool>(0);
    classifier = std::make_unique<server::Classifier>(
        engine.get(), batcher.get(), preprocess.get(), text_cache.get(), prompt_sets.get(),
        class_sets.get(), metrics.get(), clock, limits);
    server::JobRunnerOptions jo;
    jo.data_dir = dir;
    jo.limits = limits;
    // Never started: Create only queues; no job runs.
    jobs = std::make_unique<server::JobRunner>(store.get(), file_refs.get(), engine.get(),
                                               datasets.get(), prompt_sets.get(), clock,
                                               metrics.get(), logger.get(), jo);
    Seed();
  }

  void Seed() {
    std::vector<v1::UploadDatasetRequest> upload(2);
    v1::DatasetMetadata* meta = upload[0].mutable_metadata();
    meta->set_dataset_id("colours");
    for (const char* n : {"red", "green", "blue"}) meta->add_class_names(n);
    meta->add_novel_class_names("blue");
    const uint8_t colours[3][3] = {{220, 20, 20}, {20, 220, 20}, {20, 20, 220}};
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 4; ++i) {
        v1::LabeledImage* img = upload[1].mutable_images()->add_images();
        img->set_encoded(Png(colours[c][0], colours[c][1], colours[c][2]));
        img->set_label(c);
        img->set_split(i == 3 ? v1::TEST : v1::TRAIN);
      }
    }
    auto ds = datasets->Upload(Feed(&upload));
    Require(ds.ok(), "seed dataset", ds.status());
    v1::CreateClassSetRequest cs;
    cs.set_class_set_id("colours");
    for (const char* n : {"red", "green", "blue"}) cs.mutable_class_set()->add_class_names(n);
    cs.mutable_class_set()->add_templates("a {} thing");
    auto created = class_sets->Create(cs);
    Require(created.ok(), "seed class set", created.status());
    std::vector<v1::ImportPromptSetRequest> import(2);
    import[0].mutable_metadata()->set_prompt_set_id("p1");
    import[0].mutable_metadata()->set_load(true);
    import[1].set_chunk(std::string(R"({"fake_prompt_set":1,"backbone":")") +
                        engine->info().backbone +
                        R"(","base_class_names":["red","green"],"novel_class_names":["blue"]})");
    auto ps = prompt_sets->Import(Feed(&import));
    Require(ps.ok(), "seed prompt set", ps.status());
  }

  std::string dir;
  server::Limits limits;
  const util::Clock* clock = util::Clock::Real();
  std::FILE* null_log = nullptr;
  std::unique_ptr<server::Logger> logger;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::FileStore> files;
  std::unique_ptr<server::FileRefs> file_refs;
  metrics::MetricFamilies families;
  std::unique_ptr<server::ServerMetrics> metrics;
  std::unique_ptr<engine::FakeEngine> engine;
  std::unique_ptr<server::Batcher> batcher;
  std::unique_ptr<server::TextFeatureCache> text_cache;
  std::unique_ptr<server::DatasetRegistry> datasets;
  std::unique_ptr<server::PromptSetRegistry> prompt_sets;
  std::unique_ptr<server::ClassSetRegistry> class_sets;
  std::unique_ptr<server::PreprocessPool> preprocess;
  std::unique_ptr<server::Classifier> classifier;
  std::unique_ptr<server::JobRunner> jobs;
};

// The process's core, made on first use and never destroyed (libFuzzer
// exits without unwinding; the batcher's worker must outlive every run).
inline ServerCore& Core() {
  static ServerCore* core = new ServerCore();
  return *core;
}

}  // namespace provp::fuzz
