#include "util/metrics.h"

#include <cstdio>
#include <iterator>

namespace hut {

Histogram::Histogram()
    : Histogram({0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                 10}) {}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe_ns(uint64_t ns) {
  double seconds = static_cast<double>(ns) / 1e9;
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::render(std::string* out, std::string_view name, std::string_view help) const {
  std::string n(name);
  *out += "# HELP " + n + " " + std::string(help) + "\n# TYPE " + n + " histogram\n";
  uint64_t cumulative = 0;
  char buf[64];
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    if (i < bounds_.size()) {
      std::snprintf(buf, sizeof buf, "%g", bounds_[i]);
    } else {
      std::snprintf(buf, sizeof buf, "+Inf");
    }
    *out += n + "_bucket{le=\"" + buf + "\"} " + std::to_string(cumulative) + "\n";
  }
  std::snprintf(buf, sizeof buf, "%.9f", static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
  *out += n + "_sum " + buf + "\n";
  // The count is the +Inf bucket's, so that the two always agree.
  *out += n + "_count " + std::to_string(cumulative) + "\n";
}

void metric_line(std::string* out, std::string_view name, std::string_view type, std::string_view help,
                 uint64_t value) {
  std::string n(name);
  *out += "# HELP " + n + " " + std::string(help) + "\n# TYPE " + n + " " + std::string(type) + "\n" + n +
          " " + std::to_string(value) + "\n";
}

namespace {

// Per Count, in its order: the metric name, a space and the help; nullptr
// for a counter that is not shown.
constexpr const char* kCounterMetrics[] = {
    "hutopia_connections_total Bus connections accepted.",
    "hutopia_frames_in_total Bus messages received.",
    "hutopia_frames_out_total Bus frames sent.",
    "hutopia_bytes_in_total Bus payload bytes received.",
    "hutopia_bytes_out_total Bus payload bytes sent.",
    "hutopia_http_requests_total HTTP requests on both listeners.",
    "hutopia_closed_slow_total Connections closed with 4008.",
    "hutopia_closed_too_big_total Connections closed with 1009.",
    "hutopia_refused_connections_total Connections closed at accept: max_connections.",
    "hutopia_refused_bodies_total Requests refused with 503: max_body_total.",
    nullptr,  // kSessionsOpened
    nullptr,  // kWelcomed
    "hutopia_auth_failures_total Bus sessions refused with 4001.",
    "hutopia_bad_frames_total Bus frames refused as bad_request.",
    "hutopia_errors_total Error frames sent to bus clients.",
    "hutopia_widget_requests_total widget ops received.",
    "hutopia_widget_rate_limited_total widget ops refused: budget or pending bound.",
    "hutopia_widget_timeouts_total widget ops a plugin did not answer in time.",
    "hutopia_events_total Events sent (one per event).",
    "hutopia_event_deliveries_total Event frames handed to sessions.",
};
static_assert(std::size(kCounterMetrics) == static_cast<size_t>(Count::kEnd), "one entry per Count");

}  // namespace

void counter_metric(std::string* out, Count c, uint64_t value) {
  const char* entry = kCounterMetrics[static_cast<size_t>(c)];
  if (entry == nullptr) return;
  std::string_view text(entry);
  size_t space = text.find(' ');
  metric_line(out, text.substr(0, space), "counter", text.substr(space + 1), value);
}

void counter_metrics(std::string* out, std::initializer_list<const Counters*> sources) {
  for (size_t i = 0; i < static_cast<size_t>(Count::kEnd); ++i) {
    uint64_t value = 0;
    for (const Counters* s : sources) value += (*s)[static_cast<Count>(i)];
    counter_metric(out, static_cast<Count>(i), value);
  }
}

void http_responses_metric(std::string* out, const HttpResponsesByClass& by_class) {
  *out +=
      "# HELP hutopia_http_responses_total HTTP responses on both listeners, by status class.\n"
      "# TYPE hutopia_http_responses_total counter\n";
  for (int i = 0; i < 5; ++i) {
    *out += "hutopia_http_responses_total{code=\"" + std::to_string(i + 1) + "xx\"} " +
            std::to_string(by_class[i]) + "\n";
  }
}

}  // namespace hut
