// A one-line terminal progress bar on stderr ("[#####     ] 52% text").
// On a terminal it redraws in place; otherwise it prints a line only when the
// text's leading part changes or 10% more is done, so logs stay short.
// Not thread-safe: one owner.
#pragma once

#include <string>

namespace provp::client {

class ProgressBar {
 public:
  ProgressBar();
  // fraction in [0,1]; text follows the bar.
  void Update(double fraction, const std::string& text);
  // Ends the line.
  void Finish();

 private:
  bool tty_;
  bool open_ = false;
  int last_decile_ = -1;
};

}  // namespace provp::client
