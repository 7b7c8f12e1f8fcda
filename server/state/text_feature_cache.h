// LRU cache of class text features, keyed by (backbone, templates, class
// names) - the work of encoding a class list is done once per list, not per
// request. Bounded by bytes; counts hits and misses for metrics.
// Thread-safe; concurrent misses of one key may both compute (harmless).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/engine.h"

namespace provp::server {

class TextFeatureCache {
 public:
  using Compute = std::function<absl::StatusOr<engine::FeatureMatrix>()>;

  explicit TextFeatureCache(int64_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}

  static std::string Key(const std::string& backbone, const std::vector<std::string>& templates,
                         const std::vector<std::string>& names);

  // The cached value for `key`, or compute() stored under it.
  absl::StatusOr<std::shared_ptr<const engine::FeatureMatrix>> GetOrCompute(const std::string& key,
                                                                            const Compute& compute);

  int64_t hits() const;
  int64_t misses() const;
  int64_t entries() const;
  int64_t bytes() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const engine::FeatureMatrix>>;
  const int64_t capacity_bytes_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front = most recent
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  int64_t bytes_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace provp::server
