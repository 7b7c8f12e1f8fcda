// Implementation of logging.h.
#include "server/state/logging.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace provp::server {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO";
}

// Quotes text values that contain spaces or quotes (logfmt style).
std::string TextValue(const std::string& v) {
  if (!v.empty() && v.find_first_of(" \"=\n") == std::string::npos) return v;
  nlohmann::json j = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void Logger::Log(LogLevel level, absl::string_view message, const LogFields& fields) {
  if (level < min_level_) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::string line;
  if (format_ == LogFormat::kJson) {
    nlohmann::json j;
    j["ts"] = ts;
    j["level"] = LevelName(level);
    j["msg"] = std::string(message);
    for (const auto& [k, v] : fields) j[k] = v;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = absl::StrCat(ts, " ", LevelName(level), " ", message);
    for (const auto& [k, v] : fields) absl::StrAppend(&line, " ", k, "=", TextValue(v));
  }
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  fwrite(line.data(), 1, line.size(), out_);
  fflush(out_);
}

}  // namespace provp::server
