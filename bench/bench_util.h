// Pieces of hut-bench shared by its modes: the options, the latency
// histogram and the /proc readers. Everything here is used from one thread at
// a time; see hut_bench.cc and fanout.cc.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <hutopia/token.h>

namespace hut::bench {

// Bounds that keep every run finite whatever the command line says.
constexpr long kMaxConnections = 100000;
constexpr double kMaxSeconds = 3600;
constexpr long kMaxPayload = 16 * 1024 * 1024;
constexpr size_t kMaxMessage = 32 * 1024 * 1024;

// What hut-bench measures; docs/benchmarks.md describes each.
enum class Mode { kEcho, kIdle, kStorm, kFanout };

// The command line, parsed by hut_bench.cc.
struct Options {
  Mode mode = Mode::kEcho;
  std::string host = "127.0.0.1";
  int port = 0;            // the first --port
  std::vector<int> ports;  // fanout: every --port, in order (ports[0] == port)
  std::string path;        // default: "/bus", or "/" with --raw
  bool raw = false;
  long connections = -1;  // default: 100 for echo, 10000 otherwise
  long payload = 64;
  double duration_s = 5;
  double warmup_s = 1;
  long concurrency = 512;
  double hold_s = 2;
  double timeout_s = 0;           // 0: derived from the other times
  long server_pid = 0;            // the first --server-pid
  std::vector<long> server_pids;  // fanout: every --server-pid
  std::string secret;
  // An Ed25519 private key (PKCS#8 PEM, e.g. a relay's keys/<kid>.pem): tokens
  // are EdDSA relay tokens signed with it, its kid the file name's stem.
  std::string signing_key;
  std::string issuer;
  std::string audience;
  std::string plugin = "echo";
  std::string subprotocol = "hutopia.v1";
  long token_ttl_s = 120;
  long posters = 1;
  double rate = 0;     // fanout: posts/s offered in all; 0: closed loop
  std::string room;    // fanout: default bench-<pid>
  long inflight = 64;  // fanout: posts written and not yet answered, per poster
  long threads = 1;    // fanout: loops (threads) the connections are spread over
  long sources = 1;    // source addresses 127.0.0.1..127.0.0.N the connections bind to
  bool quiet = false;
};

// Latencies in nanoseconds in log-linear buckets: exact below 128 ns, then
// 64 buckets per power of two, so a reported value is within 1.6 % of the
// true one. Not synchronized: the loop thread owns it.
class Histogram {
 public:
  void record(uint64_t v) {
    ++counts_[index(v)];
    ++count_;
    max_ = std::max(max_, v);
  }
  // Adds another histogram's values to this one.
  void merge(const Histogram& other) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }
  void reset() {
    counts_.fill(0);
    count_ = 0;
    max_ = 0;
  }
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  // The smallest recorded bucket bound with at least `q` of the values at or
  // below it (0 < q <= 1); 0 when empty.
  uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr size_t kBuckets = (64 - kSubBits + 2) * 64;

  static size_t index(uint64_t v) {
    if (v < (1u << kSubBits)) return static_cast<size_t>(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (kSubBits - 1);
    return static_cast<size_t>(shift + 1) * 64 + static_cast<size_t>((v >> shift) - 64);
  }
  static uint64_t upper(size_t i) {
    if (i < (1u << kSubBits)) return i;
    size_t shift = i / 64 - 1;
    uint64_t sub = i % 64 + 64;
    return ((sub + 1) << shift) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

// Signs the app tokens of one run: connection i is user bench-<i>, and each
// token's jti is unique per run and connection without a random draw.
class TokenMinter {
 public:
  // False (the problem printed) when the secret or the signing key is not usable.
  bool init(const Options& o);
  // Connection i's token; "" (the problem printed) when signing failed.
  std::string token(size_t i) const;

 private:
  const Options* o_ = nullptr;
  std::optional<Key> key_;
  std::string run_id_;
  int64_t now_ = 0;
};

// The source address connection `i` binds to before connecting:
// 127.0.0.(1 + i % o.sources), or "" (no bind) when o.sources is 1.
std::string source_address(const Options& o, size_t i);

// Parses a whole decimal number in [lo, hi]; false when it is not one.
bool parse_long(const char* text, long lo, long hi, long* out);

// Reads a "Key:   123 kB" line of /proc/<pid>/status (pid 0: this process);
// -1 when unreadable.
long read_status_kb(long pid, const char* key);

// utime + stime of a process in clock ticks; -1 when unreadable.
long long read_cpu_ticks(long pid);

// Raises this process's open-file limit to `connections` + 256 if the hard
// limit allows; prints the problem and returns false when it does not.
bool raise_fd_limit(long connections);

// The pid of the process holding a listening TCP socket on `port`, from
// /proc/net/tcp{,6} and /proc/*/fd; 0 when none is found (or not visible).
long find_listener_pid(int port);

}  // namespace hut::bench
