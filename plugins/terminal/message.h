// The terminal widget's requests (the `data` of its `widget` ops), parsed
// with cJSON into plain values. Kept apart from the plugin so that it can be
// fuzzed on its own (test/plugins/terminal_message_fuzz.cc).
#ifndef HUTOPIA_PLUGINS_TERMINAL_MESSAGE_H_
#define HUTOPIA_PLUGINS_TERMINAL_MESSAGE_H_

#include <cstddef>
#include <string>

namespace hut::terminal {

enum class Op { kOpen, kInput, kResize, kClose };

struct Message {
  Op op = Op::kOpen;
  int cols = 0;       // open, resize: 2-500
  int rows = 0;       // open, resize: 2-300
  std::string input;  // input: what the user typed, UTF-8, at most kMaxInput bytes
};

inline constexpr size_t kMaxInput = 4096;
inline constexpr int kMinSize = 2, kMaxCols = 500, kMaxRows = 300;

// Parses {"op":"open","cols":C,"rows":R}, {"op":"input","data":"..."},
// {"op":"resize","cols":C,"rows":R} or {"op":"close"}. Returns an empty
// string and fills `out`, or the reason the request is refused.
std::string parse_message(const char* json, size_t len, Message* out);

}  // namespace hut::terminal

#endif  // HUTOPIA_PLUGINS_TERMINAL_MESSAGE_H_
