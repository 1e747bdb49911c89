#include "util/metrics.h"

#include <cstdio>

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

void http_responses_metric(std::string* out, const uint64_t (&by_class)[5]) {
  *out +=
      "# HELP hutopia_http_responses_total HTTP responses on both listeners, by status class.\n"
      "# TYPE hutopia_http_responses_total counter\n";
  for (int i = 0; i < 5; ++i) {
    *out += "hutopia_http_responses_total{code=\"" + std::to_string(i + 1) + "xx\"} " +
            std::to_string(by_class[i]) + "\n";
  }
}

}  // namespace hut
