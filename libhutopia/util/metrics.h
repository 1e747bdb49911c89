// Prometheus text exposition helpers: a histogram of durations in seconds
// with fixed buckets, and the lines of counters and gauges.
//
// Thread safety: Histogram::observe and render may run on any thread at once
// (atomics; a scrape may see an observation half counted, which Prometheus
// tolerates for one scrape).
#ifndef HUTOPIA_UTIL_METRICS_H_
#define HUTOPIA_UTIL_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hut {

class Histogram {
 public:
  // Upper bounds in seconds, ascending; +Inf is implied. The default covers
  // 100 microseconds to 10 seconds.
  Histogram();
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void observe_ns(uint64_t ns);
  // Appends "# HELP", "# TYPE <name> histogram", the cumulative
  // <name>_bucket{le="..."} lines, <name>_sum and <name>_count.
  void render(std::string* out, std::string_view name, std::string_view help) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative; last is +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// "# HELP name help\n# TYPE name type\nname value\n".
void metric_line(std::string* out, std::string_view name, std::string_view type, std::string_view help,
                 uint64_t value);

// What the network layer (net::NetServer) and the bus (bus::Bus) count, each
// counter kept by one of them in its own Counters. Each one's metric name and
// help are in one table (metrics.cc), in this order.
enum class Count : size_t {
  kConnectionsTotal,
  kFramesIn,
  kFramesOut,
  kBytesIn,
  kBytesOut,
  kHttpRequests,
  kClosedSlow,          // 4008
  kClosedTooBig,        // 1009
  kRefusedConnections,  // over max_connections, closed at accept
  kRefusedBodies,       // 503: over max_body_total
  kSessionsOpened,
  kWelcomed,
  kAuthFailures,
  kBadFrames,
  kErrorsSent,
  kWidgetRequests,
  kWidgetRateLimited,  // refused by the budget or the pending bound
  kWidgetTimeouts,     // answered `unavailable` at their deadline
  kEvents,             // events sent (one per event, not per recipient)
  kDeliveries,         // event frames handed to sessions
  kEnd,
};

// Counts by Count, all starting at zero; one owner, on its loop thread.
class Counters {
 public:
  uint64_t& operator[](Count c) { return counts_[static_cast<size_t>(c)]; }
  uint64_t operator[](Count c) const { return counts_[static_cast<size_t>(c)]; }

 private:
  std::array<uint64_t, static_cast<size_t>(Count::kEnd)> counts_{};
};

// The metric lines of counter `c` with `value`; nothing for a counter that
// is not shown (kSessionsOpened, kWelcomed).
void counter_metric(std::string* out, Count c, uint64_t value);
// Those of every counter shown, in the order of Count, each with the sum of
// its counts in `sources` (each counter is counted by one of them).
void counter_metrics(std::string* out, std::initializer_list<const Counters*> sources);

// HTTP responses by status class: [0] 1xx ... [4] 5xx.
using HttpResponsesByClass = uint64_t[5];

// The counter hutopia_http_responses_total of a listener pair, one line per
// status class (1xx to 5xx), from its counts by class.
void http_responses_metric(std::string* out, const HttpResponsesByClass& by_class);

}  // namespace hut

#endif  // HUTOPIA_UTIL_METRICS_H_
