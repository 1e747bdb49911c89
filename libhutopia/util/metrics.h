// Prometheus text exposition helpers: a histogram of durations in seconds
// with fixed buckets, and the lines of counters and gauges.
//
// Thread safety: Histogram::observe and render may run on any thread at once
// (atomics; a scrape may see an observation half counted, which Prometheus
// tolerates for one scrape).
#ifndef HUTOPIA_UTIL_METRICS_H_
#define HUTOPIA_UTIL_METRICS_H_

#include <atomic>
#include <cstdint>
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

// The counter hutopia_http_responses_total of a listener pair, one line per
// status class (1xx to 5xx), from its counts by class.
void http_responses_metric(std::string* out, const uint64_t (&by_class)[5]);

}  // namespace hut

#endif  // HUTOPIA_UTIL_METRICS_H_
