// hut-bench's fanout mode: members in one room, posters posting, over a small
// WebSocket client of hut-bench's own (fanout.cc says why).
#pragma once

#include "bench_util.h"

namespace hut::bench {

// Runs one fanout measurement as `o` describes (o.mode is Mode::kFanout),
// prints its lines and the `result` line, and returns the exit status: 0 when
// nothing failed. Starts o.threads - 1 threads of its own and joins them
// before it returns; call it from main().
int run_fanout(const Options& o);

}  // namespace hut::bench
