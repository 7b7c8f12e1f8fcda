// Implementation of progress.h.
#include "client/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace provp::client {

ProgressBar::ProgressBar() : tty_(::isatty(STDERR_FILENO) == 1) {}

void ProgressBar::Update(double fraction, const std::string& text) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int width = 30;
  const int filled = static_cast<int>(fraction * width + 0.5);
  std::string bar(filled, '#');
  bar.append(width - filled, ' ');
  if (tty_) {
    std::fprintf(stderr, "\r\033[K[%s] %3d%% %s", bar.c_str(), static_cast<int>(fraction * 100),
                 text.c_str());
    std::fflush(stderr);
    open_ = true;
    return;
  }
  const int decile = static_cast<int>(fraction * 10);
  if (decile != last_decile_) {
    last_decile_ = decile;
    std::fprintf(stderr, "[%s] %3d%% %s\n", bar.c_str(), static_cast<int>(fraction * 100),
                 text.c_str());
  }
}

void ProgressBar::Finish() {
  if (tty_ && open_) std::fprintf(stderr, "\n");
  open_ = false;
}

}  // namespace provp::client
