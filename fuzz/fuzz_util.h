// Helpers shared by the libFuzzer targets: most parsers in core/ read paths
// (they own the size caps and the error messages naming the file), so a
// target writes the fuzzer's bytes to a file in a per-process scratch folder
// and calls the same entry point the product calls. Single-threaded, as
// libFuzzer runs a target.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

namespace provp::fuzz {

// A scratch folder under $TMPDIR (default /tmp), made once per process and
// removed at exit.
inline const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/provp-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    auto* d = new std::string(tmpl);
    std::atexit([] { std::system(("rm -rf '" + ScratchDir() + "'").c_str()); });
    return d;
  }();
  return *dir;
}

// Writes bytes to ScratchDir()/name (replacing it) and returns the path.
inline std::string WriteScratchFile(const std::string& name, std::string_view bytes) {
  std::string path = ScratchDir() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::abort();
  }
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::perror(path.c_str());
    std::abort();
  }
  std::fclose(f);
  return path;
}

// Splits an input into two parts at the first occurrence of `separator`
// (the second part is empty when it is absent): targets whose parser reads
// two files (vocab.json + merges.txt) take both from one input.
inline std::pair<std::string_view, std::string_view> SplitInput(std::string_view input,
                                                                std::string_view separator) {
  const size_t at = input.find(separator);
  if (at == std::string_view::npos) return {input, {}};
  return {input.substr(0, at), input.substr(at + separator.size())};
}

// The shared fixtures folder (compile-time default, PROVP_SHARED_DIR
// overrides), for targets that need a real vocabulary to run.
inline std::string SharedDir() {
  const char* env = std::getenv("PROVP_SHARED_DIR");
  if (env != nullptr && *env != '\0') return env;
  return PROVP_FUZZ_SHARED_DIR;
}

}  // namespace provp::fuzz
