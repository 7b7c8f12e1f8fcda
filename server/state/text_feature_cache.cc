// Implementation of text_feature_cache.h.
#include "server/state/text_feature_cache.h"

#include "absl/strings/str_cat.h"

namespace provp::server {

std::string TextFeatureCache::Key(const std::string& backbone,
                                  const std::vector<std::string>& templates,
                                  const std::vector<std::string>& names) {
  // Length-prefixed parts, so no choice of names can collide with another.
  std::string key = absl::StrCat(backbone.size(), ":", backbone, "|");
  for (const auto& t : templates) absl::StrAppend(&key, t.size(), ":", t);
  absl::StrAppend(&key, "|");
  for (const auto& n : names) absl::StrAppend(&key, n.size(), ":", n);
  return key;
}

absl::StatusOr<std::shared_ptr<const engine::FeatureMatrix>> TextFeatureCache::GetOrCompute(
    const std::string& key, const Compute& compute) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
  }
  absl::StatusOr<engine::FeatureMatrix> computed = compute();
  if (!computed.ok()) return computed.status();
  auto value = std::make_shared<const engine::FeatureMatrix>(std::move(*computed));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second->second;
  int64_t size = value->bytes() + static_cast<int64_t>(key.size());
  if (size > capacity_bytes_) return value;  // too big to keep; still answer
  lru_.emplace_front(key, value);
  index_[key] = lru_.begin();
  bytes_ += size;
  while (bytes_ > capacity_bytes_ && !lru_.empty()) {
    auto& last = lru_.back();
    bytes_ -= last.second->bytes() + static_cast<int64_t>(last.first.size());
    index_.erase(last.first);
    lru_.pop_back();
  }
  return value;
}

int64_t TextFeatureCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}
int64_t TextFeatureCache::misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}
int64_t TextFeatureCache::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(lru_.size());
}
int64_t TextFeatureCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace provp::server
