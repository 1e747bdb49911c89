// The clocks: the loop's (monotonic, for deadlines and rates) and the wall's
// (Unix time, for timestamps that are stored or sent).
//
// Thread: loop_now_ms on the loop's thread; wall_ms anywhere.
#ifndef HUTOPIA_UTIL_CLOCK_H_
#define HUTOPIA_UTIL_CLOCK_H_

#include <uv.h>

#include <cstdint>

namespace hut {

// The loop's time in milliseconds, brought up to date first.
inline uint64_t loop_now_ms(uv_loop_t* loop) {
  uv_update_time(loop);
  return uv_now(loop);
}

// Unix time in milliseconds.
int64_t wall_ms();

}  // namespace hut

#endif  // HUTOPIA_UTIL_CLOCK_H_
