// libFuzzer target: any bytes as the `data` of a widget op for the terminal
// plugin (plugins/terminal/message.cc). What it accepts is in range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "../../plugins/terminal/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hut::terminal::Message m;
  std::string why = hut::terminal::parse_message(reinterpret_cast<const char*>(data), size, &m);
  if (!why.empty()) return 0;
  using hut::terminal::Op;
  if ((m.op == Op::kOpen || m.op == Op::kResize) &&
      (m.cols < hut::terminal::kMinSize || m.cols > hut::terminal::kMaxCols ||
       m.rows < hut::terminal::kMinSize || m.rows > hut::terminal::kMaxRows))
    std::abort();
  if (m.op == Op::kInput && (m.input.empty() || m.input.size() > hut::terminal::kMaxInput)) std::abort();
  return 0;
}
