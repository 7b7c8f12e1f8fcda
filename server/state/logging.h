// Structured logs for the server: one line per record, as text
// ("2026-11-27T08:00:00.123Z INFO rpc done request_id=... code=OK") or JSON
// ({"ts":..., "level":..., "msg":..., "request_id":...}). Secrets never
// reach it (callers log key names, not keys). Thread-safe: lines are
// written whole under a mutex.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace provp::server {

enum class LogFormat { kText, kJson };
enum class LogLevel { kDebug, kInfo, kWarning, kError };

using LogFields = std::vector<std::pair<std::string, std::string>>;

class Logger {
 public:
  explicit Logger(LogFormat format = LogFormat::kText, LogLevel min_level = LogLevel::kInfo,
                  FILE* out = stderr)
      : format_(format), min_level_(min_level), out_(out) {}

  void Log(LogLevel level, absl::string_view message, const LogFields& fields = {});
  void Info(absl::string_view message, const LogFields& fields = {}) {
    Log(LogLevel::kInfo, message, fields);
  }
  void Warning(absl::string_view message, const LogFields& fields = {}) {
    Log(LogLevel::kWarning, message, fields);
  }
  void Error(absl::string_view message, const LogFields& fields = {}) {
    Log(LogLevel::kError, message, fields);
  }

 private:
  const LogFormat format_;
  const LogLevel min_level_;
  FILE* const out_;
  std::mutex mu_;
};

}  // namespace provp::server
