// The server core's numeric limits and batching knobs: part of
// ServerOptions (server/server_options.h), handed to each state class by
// value at construction. Plain value types.
#pragma once

#include <cstdint>

namespace provp::server {

struct Limits {
  // Largest gRPC message accepted (bytes).
  int64_t max_message_bytes = int64_t{64} << 20;
  // Images in one Classify/Embed request.
  int max_images_per_request = 64;
  // Pixels of one image (checked from the header before decoding).
  int64_t max_pixels_per_image = int64_t{16} * 1000 * 1000;
  // Classes in one request / class set / dataset.
  int max_classes_per_request = 1000;
  // Bytes of a class name, template, id or display name.
  int max_name_length = 256;
  // Templates in one request.
  int max_templates = 64;
  // Datasets, jobs (all states), prompt sets, class sets stored.
  int max_datasets = 100;
  int max_jobs = 1000;
  int max_queued_jobs = 16;
  int max_prompt_sets = 200;
  int max_class_sets = 200;
  // Total encoded bytes of one dataset upload / prompt-set import.
  int64_t max_upload_bytes = int64_t{2} << 30;
  // Images in one dataset.
  int64_t max_dataset_images = 200000;
  // Messages of one StreamClassify being answered at once: a stream keeps
  // reading while earlier messages wait in the batcher, so its images can
  // share batches (answers may then come out of order).
  int stream_max_in_flight = 8;
};

struct BatchingOptions {
  // Images per model execution (a larger request runs alone).
  int max_batch_size = 32;
  // How long the first queued request waits for others (microseconds).
  int64_t max_queue_delay_us = 2000;
  // Queued images across requests; beyond it requests get
  // RESOURCE_EXHAUSTED (QUEUE_FULL).
  int max_queue_images = 1024;
  // Threads running model executions.
  int num_workers = 1;
  // One execution takes requests of any prompt sets (and zero-shot), FIFO,
  // and the engine gathers each image's prompts (EncodeImagesMixed), so
  // traffic spread over many prompt sets still fills batches. false: one
  // prompt set per execution.
  bool mix_prompt_sets = true;
};

}  // namespace provp::server
