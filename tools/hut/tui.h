// The interactive client of `hut`: an ncursesw screen on the client's libuv
// loop (standard input is watched with uv_poll, SIGWINCH with uv_signal), so
// nothing ever blocks the loop.
#ifndef HUT_TOOLS_TUI_H_
#define HUT_TOOLS_TUI_H_

#include <hutopia/client.h>

#include <cstdint>
#include <memory>
#include <string>

namespace hut::tui {

// A time given in milliseconds since the epoch, in local time, as strftime's
// `format` gives it ("%H:%M").
std::string local_time(int64_t ts_ms, const char* format);

// Connects `client` (created on `loop`, not connected yet), runs the screen
// until the user quits, closes the client and returns the exit code: 0 after
// /quit or Ctrl-C, 3 when the first connection failed.
int run(uv_loop_t* loop, std::unique_ptr<hut::Client> client);

}  // namespace hut::tui

#endif  // HUT_TOOLS_TUI_H_
