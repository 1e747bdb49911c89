// hut-bench: a load client for spaced's widget bus, and with --raw for any
// WebSocket echo server. One thread, one libuv loop, libwebsockets' client API.
// Run `hut-bench --help` for the modes and options; docs/benchmarks.md says
// what each mode measures.
//
// Threads: everything runs on the loop thread of main().
#include <uv.h>
// uv.h first: libwebsockets declares its libuv API only after it.
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <getopt.h>
#include <hutopia/token.h>
#include <libwebsockets.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "fanout.h"

namespace hut {
namespace {

using bench::find_listener_pid;
using bench::Histogram;
using bench::kMaxConnections;
using bench::kMaxMessage;
using bench::kMaxPayload;
using bench::kMaxSeconds;
using bench::Mode;
using bench::Options;
using bench::parse_long;
using bench::read_cpu_ticks;
using bench::read_status_kb;
using bench::TokenMinter;

void print_help() {
  std::printf(
      "usage: hut-bench MODE --port PORT [options]\n"
      "\n"
      "A load client for spaced's widget bus (or, with --raw, any WebSocket echo\n"
      "server). Loopback addresses only; every run ends by itself.\n"
      "\n"
      "modes:\n"
      "  echo    N connections in a closed loop: each sends a `widget` request to the\n"
      "          plugin and waits for its `ok` before sending the next. After the\n"
      "          warm-up it counts replies for the duration and reports messages/s\n"
      "          and latency percentiles (p50, p90, p99, p99.9, max). With --rate\n"
      "          it offers that many requests/s in all instead, each on a\n"
      "          connection with nothing outstanding (an open loop: the latency\n"
      "          then measures the server, not a saturated client); a request\n"
      "          due while every connection waits is counted as `late`.\n"
      "  idle    opens and authenticates N connections, holds them, and reports the\n"
      "          server's resident memory per connection (VmRSS after - before).\n"
      "  storm   opens N authenticated connections as fast as it can (at most\n"
      "          --concurrency handshakes in flight) and reports the time until\n"
      "          the last welcome and the rate.\n"
      "  fanout  N connections (distinct users, default 1000) join one room (the\n"
      "          first creates it); the first --posters of them post in it, each\n"
      "          keeping up to --inflight posts unanswered: in a closed loop (a new\n"
      "          post on each ok) or, with --rate, at that many posts/s offered in\n"
      "          all. Each post carries its send time in `data`; after the warm-up\n"
      "          it counts, for the duration, `message` events received by all\n"
      "          connections (deliveries/s), posts acknowledged (posts/s),\n"
      "          post-to-delivery and post-to-ok latency percentiles; then it waits\n"
      "          for the last answers and checks that every member got every post\n"
      "          exactly once. Its connections use hut-bench's own small WebSocket\n"
      "          client, not libwebsockets (token in the Authorization header).\n"
      "\n"
      "target:\n"
      "  --host ADDR          IPv4 or IPv6 loopback address (default 127.0.0.1)\n"
      "  --port PORT          the server's port (required); fanout: give it once per\n"
      "                       node of a cluster: the posters connect to the first,\n"
      "                       the other members round-robin over all of them\n"
      "  --path PATH          upgrade path (default /bus; / with --raw)\n"
      "  --subprotocol NAME   Sec-WebSocket-Protocol to offer (default hutopia.v1;\n"
      "                       \"\" offers none; --raw offers none)\n"
      "  --raw                no hello and no token: a connection is ready once\n"
      "                       upgraded; echo sends the bare payload and waits for\n"
      "                       any reply; fanout posts \"<poster> <ref> <send ns> \"\n"
      "                       padded to --payload bytes to a broadcast server\n"
      "                       (raw-lws-echo --broadcast, node_ws/broadcast.js), and\n"
      "                       a poster's own copy coming back is its ok\n"
      "  --sources N          bind connection i to 127.0.0.(1 + i %% N) before it\n"
      "                       connects (default 1: not bound): one source address\n"
      "                       has about 28,000 ephemeral ports\n"
      "\n"
      "authentication (bus mode; each connection mints its own single-use token):\n"
      "  --secret S           the space's HS256 app secret (or HUT_BENCH_SECRET)\n"
      "  --signing-key PEM    instead: EdDSA relay tokens signed with this Ed25519\n"
      "                       private key (a relay's keys/<kid>.pem; kid = its name)\n"
      "  --issuer ISS         the app issuer, the token's `iss`\n"
      "  --audience ID        the space id, the token's `aud`\n"
      "  --token-ttl SECONDS  token lifetime, exp - iat (default 120)\n"
      "\n"
      "load:\n"
      "  -c, --connections N  connections (default 100 for echo, 1000 for fanout,\n"
      "                       10000 otherwise;\n"
      "                       at most %ld)\n"
      "  -p, --payload BYTES  echo payload size (default 64)\n"
      "  --plugin NAME        plugin that echo addresses (default echo)\n"
      "  --posters P          fanout: posting connections (default 1)\n"
      "  --rate R             fanout: posts/s offered across the posters; echo:\n"
      "                       requests/s offered across the connections (default:\n"
      "                       closed loop)\n"
      "  --inflight K         fanout: posts written and not yet answered, per\n"
      "                       poster, at most (default 64; 1 waits for each ok)\n"
      "  --threads T          fanout: spread the connections over T threads, each\n"
      "                       with its own loop (default 1)\n"
      "  --room ID            fanout: room to create (default bench-<pid>)\n"
      "  -d, --duration S     echo, fanout: measured seconds (default 5)\n"
      "  -w, --warmup S       echo, fanout: seconds before measuring (default 1)\n"
      "  --concurrency K      handshakes in flight at once (default 512)\n"
      "  --hold S             idle: seconds to hold before reading RSS (default 2)\n"
      "  --server-pid PID     server process for RSS and CPU figures (default:\n"
      "                       the process listening on the port, from /proc);\n"
      "                       fanout: once per node, the CPU figures sum them\n"
      "  --timeout S          hard limit on the whole run (default: derived)\n"
      "  -q, --quiet          only the final `result` line\n"
      "  -h, --help           this text\n"
      "\n"
      "The last line of output is machine-readable: `result mode=... key=value ...`.\n"
      "Exit status: 0 when every connection and every request succeeded, 1 when\n"
      "anything failed or the hard timeout struck, 2 for a bad command line.\n",
      kMaxConnections);
}

bool parse_seconds(const char* text, double lo, double hi, double* out) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool is_loopback(const std::string& host) {
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  return false;
}

// Parses the command line into `o`; prints the problem and returns false on
// a bad one. `*help` is set when --help was asked for.
bool parse_options(int argc, char** argv, Options* o, bool* help) {
  enum {
    kHost = 1000,
    kPort,
    kPath,
    kSubprotocol,
    kRaw,
    kSecret,
    kSigningKey,
    kIssuer,
    kAudience,
    kTokenTtl,
    kPlugin,
    kConcurrency,
    kHold,
    kServerPid,
    kTimeout,
    kPosters,
    kRate,
    kRoom,
    kInflight,
    kThreads,
    kSources
  };
  static const option kLong[] = {
      {"host", required_argument, nullptr, kHost},
      {"port", required_argument, nullptr, kPort},
      {"path", required_argument, nullptr, kPath},
      {"subprotocol", required_argument, nullptr, kSubprotocol},
      {"raw", no_argument, nullptr, kRaw},
      {"secret", required_argument, nullptr, kSecret},
      {"signing-key", required_argument, nullptr, kSigningKey},
      {"issuer", required_argument, nullptr, kIssuer},
      {"audience", required_argument, nullptr, kAudience},
      {"token-ttl", required_argument, nullptr, kTokenTtl},
      {"connections", required_argument, nullptr, 'c'},
      {"payload", required_argument, nullptr, 'p'},
      {"plugin", required_argument, nullptr, kPlugin},
      {"duration", required_argument, nullptr, 'd'},
      {"warmup", required_argument, nullptr, 'w'},
      {"concurrency", required_argument, nullptr, kConcurrency},
      {"hold", required_argument, nullptr, kHold},
      {"server-pid", required_argument, nullptr, kServerPid},
      {"timeout", required_argument, nullptr, kTimeout},
      {"posters", required_argument, nullptr, kPosters},
      {"rate", required_argument, nullptr, kRate},
      {"room", required_argument, nullptr, kRoom},
      {"inflight", required_argument, nullptr, kInflight},
      {"threads", required_argument, nullptr, kThreads},
      {"sources", required_argument, nullptr, kSources},
      {"quiet", no_argument, nullptr, 'q'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  bool port_given = false;
  bool subprotocol_given = false;
  for (;;) {
    int opt = getopt_long(argc, argv, "c:p:d:w:qh", kLong, nullptr);
    if (opt == -1) break;
    bool good = true;
    long port = 0;
    long pid = 0;
    switch (opt) {
      case kHost:
        o->host = optarg;
        break;
      case kPort:
        good = parse_long(optarg, 1, 65535, &port);
        o->port = o->ports.empty() ? static_cast<int>(port) : o->port;
        o->ports.push_back(static_cast<int>(port));
        port_given = true;
        break;
      case kPath:
        o->path = optarg;
        break;
      case kSubprotocol:
        o->subprotocol = optarg;
        subprotocol_given = true;
        break;
      case kRaw:
        o->raw = true;
        break;
      case kSecret:
        o->secret = optarg;
        break;
      case kSigningKey:
        o->signing_key = optarg;
        break;
      case kIssuer:
        o->issuer = optarg;
        break;
      case kAudience:
        o->audience = optarg;
        break;
      case kTokenTtl:
        good = parse_long(optarg, 1, 300, &o->token_ttl_s);
        break;
      case 'c':
        good = parse_long(optarg, 1, kMaxConnections, &o->connections);
        break;
      case 'p':
        good = parse_long(optarg, 0, kMaxPayload, &o->payload);
        break;
      case kPlugin:
        o->plugin = optarg;
        break;
      case 'd':
        good = parse_seconds(optarg, 0.1, kMaxSeconds, &o->duration_s);
        break;
      case 'w':
        good = parse_seconds(optarg, 0, kMaxSeconds, &o->warmup_s);
        break;
      case kConcurrency:
        good = parse_long(optarg, 1, kMaxConnections, &o->concurrency);
        break;
      case kHold:
        good = parse_seconds(optarg, 0, kMaxSeconds, &o->hold_s);
        break;
      case kServerPid:
        good = parse_long(optarg, 1, 1L << 30, &pid);
        if (o->server_pids.empty()) o->server_pid = pid;
        o->server_pids.push_back(pid);
        break;
      case kTimeout:
        good = parse_seconds(optarg, 1, kMaxSeconds, &o->timeout_s);
        break;
      case kPosters:
        good = parse_long(optarg, 1, kMaxConnections, &o->posters);
        break;
      case kRate:
        good = parse_seconds(optarg, 1, 1e7, &o->rate);
        break;
      case kRoom:
        o->room = optarg;
        break;
      case kInflight:
        good = parse_long(optarg, 1, 100000, &o->inflight);
        break;
      case kThreads:
        good = parse_long(optarg, 1, 64, &o->threads);
        break;
      case kSources:
        good = parse_long(optarg, 1, 254, &o->sources);
        break;
      case 'q':
        o->quiet = true;
        break;
      case 'h':
        *help = true;
        return true;
      default:
        return false;
    }
    if (!good) {
      std::fprintf(stderr, "hut-bench: bad value '%s' for an option\n", optarg);
      return false;
    }
  }
  if (optind != argc - 1) {
    std::fprintf(stderr, "hut-bench: give exactly one mode: echo, idle, storm or fanout\n");
    return false;
  }
  std::string_view mode = argv[optind];
  if (mode == "echo") {
    o->mode = Mode::kEcho;
  } else if (mode == "idle") {
    o->mode = Mode::kIdle;
  } else if (mode == "storm") {
    o->mode = Mode::kStorm;
  } else if (mode == "fanout") {
    o->mode = Mode::kFanout;
  } else {
    std::fprintf(stderr, "hut-bench: unknown mode '%s' (echo, idle, storm, fanout)\n", argv[optind]);
    return false;
  }
  if (!port_given) {
    std::fprintf(stderr, "hut-bench: --port is required\n");
    return false;
  }
  if (o->mode != Mode::kFanout && (o->ports.size() > 1 || o->server_pids.size() > 1)) {
    std::fprintf(stderr, "hut-bench: --port and --server-pid are given more than once only in fanout mode\n");
    return false;
  }
  if (!is_loopback(o->host)) {
    std::fprintf(stderr, "hut-bench: %s is not a loopback address (127.0.0.0/8 or ::1)\n", o->host.c_str());
    return false;
  }
  if (o->sources > 1 && o->host.rfind("127.", 0) != 0) {
    std::fprintf(stderr, "hut-bench: --sources needs an IPv4 --host (127.0.0.0/8)\n");
    return false;
  }
  if (o->connections < 0) {
    o->connections = o->mode == Mode::kEcho ? 100 : o->mode == Mode::kFanout ? 1000 : 10000;
  }
  if (o->mode == Mode::kFanout) {
    if (o->posters > o->connections) {
      std::fprintf(stderr, "hut-bench: --posters is more than --connections\n");
      return false;
    }
    if (o->room.empty()) o->room = "bench-" + std::to_string(static_cast<long>(getpid()));
  }
  if (o->path.empty()) o->path = o->raw ? "/" : "/bus";
  if (o->path[0] != '/') {
    std::fprintf(stderr, "hut-bench: --path must start with /\n");
    return false;
  }
  if (o->raw && !subprotocol_given) o->subprotocol.clear();
  if (!o->raw) {
    if (o->secret.empty()) {
      if (const char* env = std::getenv("HUT_BENCH_SECRET")) o->secret = env;
    }
    if ((o->secret.empty() && o->signing_key.empty()) || o->issuer.empty() || o->audience.empty()) {
      std::fprintf(
          stderr,
          "hut-bench: bus mode needs --secret (or --signing-key), --issuer and --audience (or --raw)\n");
      return false;
    }
  }
  if (o->timeout_s == 0) {
    // Connecting is given a second per 500 connections on top of a fixed
    // allowance; the rest is the run's own time.
    double connect = 30 + static_cast<double>(o->connections) / 500;
    // Joining: each join's `joined` event goes to every member so far;
    // fanout also waits up to 10 s for the last answers after measuring.
    double own = o->mode == Mode::kEcho ? o->warmup_s + o->duration_s
                 : o->mode == Mode::kFanout
                     ? o->warmup_s + o->duration_s + 20 + static_cast<double>(o->connections) / 100
                 : o->mode == Mode::kIdle ? o->hold_s
                                          : 0;
    o->timeout_s = std::min(kMaxSeconds, connect + own + 10);
  }
  return true;
}

// No validity checks (idle pings and hang-ups). lws's default policy arms a
// timer per connection, and lws keeps its timers in one sorted list: with
// thousands of connections every insertion walks thousands of entries.
const lws_retry_bo_t kNoValidityChecks = {};

enum class ConnState { kWaiting, kConnecting, kAuthenticating, kReady, kFailed, kClosed };

// One client connection. Owned by Bench's vector for the whole run; `wsi` is
// lws's and valid from the connect call until CLOSED or CONNECTION_ERROR.
struct Conn {
  size_t index = 0;
  lws* wsi = nullptr;
  ConnState state = ConnState::kWaiting;
  std::string token;        // the single-use app token for hello
  std::string rx;           // a message arriving in pieces
  uint64_t sent_ns = 0;     // when the outstanding request was written
  uint64_t ref = 0;         // the outstanding request's ref
  bool awaiting = false;    // a request is outstanding
  bool want_hello = false;  // hello waits for WRITEABLE
  bool want_send = false;   // the next request waits for WRITEABLE
};

// The whole run: options, the loop, the lws context, the connections and the
// figures. Lives on main()'s stack; all methods run on the loop thread.
class Bench {
 public:
  explicit Bench(Options options) : o_(std::move(options)) {}
  int run();

 private:
  static int lws_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  static void on_timer(uv_timer_t* t);
  static void on_signal(uv_signal_t* s, int signum);

  bool mint_tokens();
  void connect_more();
  void start_connect(Conn& c);
  void on_established(Conn& c);
  int on_receive(Conn& c, const char* data, size_t len);
  int on_message(Conn& c, std::string_view msg);
  int on_writeable(Conn& c);
  void on_ready(Conn& c);
  void on_failed(Conn& c, std::string_view why);
  void on_closed(Conn& c);
  void on_reply(Conn& c, bool ok, std::string_view error_code);
  int send_hello(Conn& c);
  int send_request(Conn& c);
  void check_connected();
  void start_timer(uv_timer_t* t, double seconds);
  void request_stop(std::string_view why);
  static void on_pace(uv_timer_t* t);
  void stop_now();
  void note_error(std::string_view what);
  void sample_cpu(long long* server_ticks, rusage* self) const;
  // Percent of one CPU that the server and hut-bench used over `secs`
  // between the two samples; -1 where unknown.
  std::pair<double, double> cpu_pct(double secs) const;
  int report();
  void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  enum class Phase { kConnecting, kJoining, kWarmup, kMeasuring, kHolding, kDone };

  Options o_;
  uv_loop_t loop_{};
  uv_timer_t phase_timer_{};
  uv_timer_t hard_timer_{};
  uv_timer_t stop_timer_{};
  uv_timer_t pace_timer_{};  // echo --rate: sends what is due, every millisecond
  uv_signal_t sigint_{};
  uv_signal_t sigterm_{};
  lws_context* context_ = nullptr;
  std::vector<Conn> conns_;
  std::vector<unsigned char> out_;  // frame scratch, LWS_PRE headroom in front
  std::string head_;                // request text before the ref
  std::string tail_;                // request text after the ref
  Histogram hist_;                  // echo: request to reply

  Phase phase_ = Phase::kConnecting;
  bool stopping_ = false;
  bool timed_out_ = false;
  bool interrupted_ = false;
  bool in_connect_more_ = false;
  bool connect_again_ = false;
  size_t next_ = 0;             // next connection to start
  size_t in_flight_ = 0;        // handshakes under way
  size_t ready_ = 0;            // connections that got their welcome (or upgrade, raw)
  size_t failed_ = 0;           // connections that never got there
  size_t dropped_ = 0;          // ready connections the server closed
  uint64_t replies_ = 0;        // replies counted while measuring
  uint64_t pace_start_ns_ = 0;  // echo --rate: when pacing began
  uint64_t paced_ = 0;          // requests due (sent or late) since then
  uint64_t late_ = 0;           // due while every connection was waiting, while measuring
  size_t pace_next_ = 0;        // where the search for an idle connection starts
  uint64_t error_replies_ = 0;
  uint64_t unexpected_ = 0;                 // frames that answer nothing outstanding
  std::map<std::string, uint64_t> errors_;  // why, and how often

  long server_pid_ = 0;
  long rss_before_kb_ = -1;
  long rss_after_kb_ = -1;
  long self_rss_before_kb_ = -1;
  long self_rss_after_kb_ = -1;
  long long server_ticks_start_ = -1;
  long long server_ticks_end_ = -1;
  rusage self_usage_start_{};
  rusage self_usage_end_{};
  uint64_t start_ns_ = 0;      // first connect
  uint64_t connected_ns_ = 0;  // last welcome (or last failure)
  uint64_t measure_start_ns_ = 0;
  uint64_t measure_end_ns_ = 0;
};

void Bench::log(const char* fmt, ...) {
  if (o_.quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::fflush(stdout);
}

void Bench::note_error(std::string_view what) { ++errors_[std::string(what)]; }

bool Bench::mint_tokens() {
  TokenMinter minter;
  if (!minter.init(o_)) return false;
  for (Conn& c : conns_) {
    std::string token = minter.token(c.index);
    if (token.empty()) return false;
    c.token = "{\"op\":\"hello\",\"token\":\"" + token + "\"}";
  }
  return true;
}

int Bench::lws_callback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* in, size_t len) {
  Conn* c = wsi ? static_cast<Conn*>(lws_get_opaque_user_data(wsi)) : nullptr;
  if (!c) return 0;
  Bench* b = static_cast<Bench*>(lws_context_user(lws_get_context(wsi)));
  switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      std::string why = "connection error";
      if (in && len)
        why += std::string(": ") +
               std::string(static_cast<const char*>(in), strnlen(static_cast<const char*>(in), len));
      else if (in)
        why += std::string(": ") + static_cast<const char*>(in);
      b->on_failed(*c, why);
      c->wsi = nullptr;
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      c->wsi = wsi;
      b->on_established(*c);
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      return b->on_receive(*c, static_cast<const char*>(in), len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
      return b->on_writeable(*c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      if (!b->stopping_ && len >= 2) {
        const auto* p = static_cast<const unsigned char*>(in);
        b->note_error("server closed with " + std::to_string(p[0] << 8 | p[1]));
      }
      return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
      b->on_closed(*c);
      c->wsi = nullptr;
      return 0;
    default:
      return 0;
  }
}

void Bench::start_connect(Conn& c) {
  c.state = ConnState::kConnecting;
  ++in_flight_;
  lws_client_connect_info info{};
  info.context = context_;
  info.address = o_.host.c_str();
  info.port = o_.port;
  info.path = o_.path.c_str();
  std::string host_header = o_.host + ":" + std::to_string(o_.port);
  info.host = host_header.c_str();
  info.origin = host_header.c_str();
  info.protocol = o_.subprotocol.empty() ? nullptr : o_.subprotocol.c_str();
  info.local_protocol_name = "hut-bench";
  info.opaque_user_data = &c;
  info.pwsi = &c.wsi;
  info.retry_and_idle_policy = &kNoValidityChecks;
  const std::string source = bench::source_address(o_, c.index);
  info.iface = source.empty() ? nullptr : source.c_str();
  lws* wsi = lws_client_connect_via_info(&info);
  if (!wsi && c.state == ConnState::kConnecting) {
    on_failed(c, "connect failed");
    c.wsi = nullptr;
  }
}

// Starts handshakes up to the concurrency bound. Failures reported from inside
// lws_client_connect_via_info come back here; the flags turn that recursion
// into another pass of the loop below.
void Bench::connect_more() {
  if (in_connect_more_) {
    connect_again_ = true;
    return;
  }
  in_connect_more_ = true;
  do {
    connect_again_ = false;
    while (!stopping_ && next_ < conns_.size() && in_flight_ < static_cast<size_t>(o_.concurrency)) {
      start_connect(conns_[next_++]);
    }
  } while (connect_again_);
  in_connect_more_ = false;
  check_connected();
}

void Bench::on_established(Conn& c) {
  if (o_.raw) {
    on_ready(c);
    return;
  }
  c.state = ConnState::kAuthenticating;
  c.want_hello = true;
  lws_callback_on_writable(c.wsi);
}

int Bench::send_hello(Conn& c) {
  size_t n = c.token.size();
  if (out_.size() < LWS_PRE + n) out_.resize(LWS_PRE + n);
  std::memcpy(out_.data() + LWS_PRE, c.token.data(), n);
  if (lws_write(c.wsi, out_.data() + LWS_PRE, n, LWS_WRITE_TEXT) < 0) return -1;
  std::string().swap(c.token);  // single use; free it
  return 0;
}

int Bench::send_request(Conn& c) {
  c.ref++;
  size_t n = 0;
  unsigned char* p = out_.data() + LWS_PRE;
  if (o_.raw) {
    n = tail_.size();
    std::memcpy(p, tail_.data(), n);
  } else {
    std::memcpy(p, head_.data(), head_.size());
    n = head_.size();
    n += static_cast<size_t>(std::snprintf(reinterpret_cast<char*>(p + n), 24, "%" PRIu64, c.ref));
    std::memcpy(p + n, tail_.data(), tail_.size());
    n += tail_.size();
  }
  c.awaiting = true;
  c.sent_ns = uv_hrtime();
  return lws_write(c.wsi, p, n, LWS_WRITE_TEXT) < 0 ? -1 : 0;
}

int Bench::on_writeable(Conn& c) {
  if (stopping_) return 0;
  if (c.want_hello) {
    c.want_hello = false;
    return send_hello(c);
  }
  if (c.want_send && c.state == ConnState::kReady) {
    c.want_send = false;
    return send_request(c);
  }
  return 0;
}

int Bench::on_receive(Conn& c, const char* data, size_t len) {
  const bool last = lws_is_final_fragment(c.wsi) && lws_remaining_packet_payload(c.wsi) == 0;
  if (c.rx.empty() && last) return on_message(c, std::string_view(data, len));
  if (c.rx.size() + len > kMaxMessage) {
    note_error("message over 32 MiB");
    return -1;
  }
  c.rx.append(data, len);
  if (!last) return 0;
  std::string msg = std::move(c.rx);
  c.rx.clear();
  return on_message(c, msg);
}

// Finds `"key":"value"` or `"key":value` in a compact JSON object text
// without parsing it (the replies are the server's compact JSON; anything
// else goes to cJSON).
bool has_member(std::string_view msg, std::string_view needle) {
  size_t at = msg.find(needle);
  if (at == std::string_view::npos) return false;
  size_t after = at + needle.size();
  return after >= msg.size() || !(msg[after] >= '0' && msg[after] <= '9');
}

int Bench::on_message(Conn& c, std::string_view msg) {
  if (stopping_) return 0;
  if (c.state == ConnState::kReady) {
    if (o_.raw) {
      if (!c.awaiting) {
        ++unexpected_;
        return 0;
      }
      on_reply(c, true, {});
      return 0;
    }
    char ref[48];
    std::snprintf(ref, sizeof ref, "\"ref\":%" PRIu64, c.ref);
    if (c.awaiting && has_member(msg, ref)) {
      if (msg.find("\"op\":\"ok\"") != std::string_view::npos) {
        on_reply(c, true, {});
        return 0;
      }
      // Not the compact ok: parse it to say what it is.
      cJSON* root = cJSON_ParseWithLength(msg.data(), msg.size());
      const char* op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "op"));
      const char* code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "code"));
      bool ok = op && std::strcmp(op, "ok") == 0;
      std::string code_text = code ? code : (op ? op : "unparsable reply");
      cJSON_Delete(root);
      on_reply(c, ok, code_text);
      return 0;
    }
    ++unexpected_;
    return 0;
  }
  if (c.state != ConnState::kAuthenticating) {
    ++unexpected_;
    return 0;
  }
  cJSON* root = cJSON_ParseWithLength(msg.data(), msg.size());
  const char* op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "op"));
  std::string why;
  if (op && std::strcmp(op, "welcome") == 0) {
    cJSON_Delete(root);
    on_ready(c);
    return 0;
  }
  if (op && std::strcmp(op, "error") == 0) {
    const char* code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "code"));
    const char* message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "message"));
    why = std::string("refused: ") + (code ? code : "?") + " (" + (message ? message : "") + ")";
  } else {
    why = "unexpected frame before welcome: " + std::string(msg.substr(0, 80));
  }
  cJSON_Delete(root);
  on_failed(c, why);
  return -1;
}

void Bench::on_reply(Conn& c, bool ok, std::string_view error_code) {
  uint64_t now = uv_hrtime();
  c.awaiting = false;
  if (!ok) {
    ++error_replies_;
    note_error("error reply: " + std::string(error_code));
  }
  if (phase_ == Phase::kMeasuring) {
    ++replies_;
    hist_.record(now - c.sent_ns);
  }
  if (phase_ == Phase::kDone || stopping_ || o_.rate > 0) return;
  // Closed loop: the next request right away unless the socket is choked.
  if (lws_send_pipe_choked(c.wsi)) {
    c.want_send = true;
    lws_callback_on_writable(c.wsi);
  } else if (send_request(c) < 0) {
    note_error("write failed");
  }
}

void Bench::on_ready(Conn& c) {
  c.state = ConnState::kReady;
  ++ready_;
  --in_flight_;
  if (o_.mode == Mode::kEcho && !stopping_ && o_.rate <= 0) {
    c.want_send = true;
    lws_callback_on_writable(c.wsi);
  }
  connect_more();
}

void Bench::on_failed(Conn& c, std::string_view why) {
  if (c.state != ConnState::kConnecting && c.state != ConnState::kAuthenticating) return;
  c.state = ConnState::kFailed;
  --in_flight_;
  ++failed_;
  if (!stopping_) note_error(why);
  connect_more();
}

void Bench::on_closed(Conn& c) {
  if (c.state == ConnState::kConnecting || c.state == ConnState::kAuthenticating) {
    on_failed(c, "closed before it was ready");
    return;
  }
  if (c.state == ConnState::kReady) {
    c.state = ConnState::kClosed;
    if (!stopping_) {
      ++dropped_;
      note_error("server closed a ready connection");
    }
  }
}

// Echo at a fixed offered rate: every tick sends the requests that have come
// due since pacing began, each on the next connection with nothing
// outstanding; one that finds none is late (not sent, counted).
void Bench::on_pace(uv_timer_t* t) {
  Bench* b = static_cast<Bench*>(t->data);
  if (b->stopping_ || b->phase_ == Phase::kDone) return;
  double elapsed = static_cast<double>(uv_hrtime() - b->pace_start_ns_) / 1e9;
  auto due = static_cast<uint64_t>(elapsed * b->o_.rate);
  const size_t n = b->conns_.size();
  while (b->paced_ < due) {
    ++b->paced_;
    Conn* idle = nullptr;
    for (size_t i = 0; i < n && !idle; ++i) {
      Conn& c = b->conns_[(b->pace_next_ + i) % n];
      if (c.state == ConnState::kReady && !c.awaiting && !c.want_send) idle = &c;
    }
    if (!idle) {
      if (b->phase_ == Phase::kMeasuring) ++b->late_;
      continue;
    }
    b->pace_next_ = (idle->index + 1) % n;
    if (lws_send_pipe_choked(idle->wsi)) {
      idle->want_send = true;
      idle->awaiting = true;
      lws_callback_on_writable(idle->wsi);
    } else if (b->send_request(*idle) < 0) {
      b->note_error("write failed");
    }
  }
}

void Bench::start_timer(uv_timer_t* t, double seconds) {
  uv_timer_start(t, on_timer, static_cast<uint64_t>(seconds * 1000.0 + 0.5), 0);
}

// Called after every change in the connect phase: moves on once every
// connection is ready or failed.
void Bench::check_connected() {
  if (phase_ != Phase::kConnecting || stopping_ || ready_ + failed_ < conns_.size()) return;
  connected_ns_ = uv_hrtime();
  if (o_.mode == Mode::kStorm) sample_cpu(&server_ticks_end_, &self_usage_end_);
  log("connected %zu of %zu in %.3f s%s\n", ready_, conns_.size(),
      static_cast<double>(connected_ns_ - start_ns_) / 1e9, failed_ ? " (some failed)" : "");
  if (ready_ == 0) {
    request_stop("no connection could be made");
    return;
  }
  switch (o_.mode) {
    case Mode::kStorm:
      phase_ = Phase::kDone;
      request_stop({});
      break;
    case Mode::kIdle:
      phase_ = Phase::kHolding;
      start_timer(&phase_timer_, o_.hold_s);
      break;
    case Mode::kEcho:
      phase_ = Phase::kWarmup;
      start_timer(&phase_timer_, o_.warmup_s);
      if (o_.rate > 0) {
        pace_start_ns_ = uv_hrtime();
        uv_timer_start(&pace_timer_, on_pace, 1, 1);
      }
      break;
    case Mode::kFanout:  // run_fanout() has its own client
      break;
  }
}

void Bench::on_timer(uv_timer_t* t) {
  Bench* b = static_cast<Bench*>(t->data);
  if (t == &b->stop_timer_) {
    b->stop_now();
    return;
  }
  if (t == &b->hard_timer_) {
    b->timed_out_ = true;
    b->note_error("hard timeout");
    b->request_stop("hard timeout");
    return;
  }
  switch (b->phase_) {
    case Phase::kWarmup:
      b->hist_.reset();
      b->replies_ = 0;
      b->late_ = 0;
      b->phase_ = Phase::kMeasuring;
      b->measure_start_ns_ = uv_hrtime();
      b->sample_cpu(&b->server_ticks_start_, &b->self_usage_start_);
      b->start_timer(&b->phase_timer_, b->o_.duration_s);
      break;
    case Phase::kMeasuring:
      b->measure_end_ns_ = uv_hrtime();
      b->sample_cpu(&b->server_ticks_end_, &b->self_usage_end_);
      b->phase_ = Phase::kDone;
      b->request_stop({});
      break;
    case Phase::kHolding:
      if (b->server_pid_) b->rss_after_kb_ = read_status_kb(b->server_pid_, "VmRSS");
      b->self_rss_after_kb_ = read_status_kb(0, "VmRSS");
      b->phase_ = Phase::kDone;
      b->request_stop({});
      break;
    default:
      break;
  }
}

void Bench::on_signal(uv_signal_t* s, int /*signum*/) {
  Bench* b = static_cast<Bench*>(s->data);
  b->interrupted_ = true;
  b->note_error("interrupted");
  b->request_stop("interrupted");
}

// Stopping destroys the lws context, which must not happen inside one of its
// callbacks: the real work waits for the next turn of the loop.
void Bench::request_stop(std::string_view why) {
  if (stopping_) return;
  stopping_ = true;
  if (!why.empty()) log("stopping: %.*s\n", static_cast<int>(why.size()), why.data());
  start_timer(&stop_timer_, 0);
}

void Bench::stop_now() {
  for (uv_timer_t* t : {&phase_timer_, &hard_timer_, &stop_timer_, &pace_timer_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  // The first destroy closes every connection and lws's handles on the loop;
  // run() frees the rest once the loop has drained.
  if (context_) lws_context_destroy(context_);
}

void Bench::sample_cpu(long long* server_ticks, rusage* self) const {
  if (server_pid_) *server_ticks = read_cpu_ticks(server_pid_);
  getrusage(RUSAGE_SELF, self);
}

std::pair<double, double> Bench::cpu_pct(double secs) const {
  if (secs <= 0) return {-1, -1};
  double server = -1;
  if (server_ticks_start_ >= 0 && server_ticks_end_ >= 0) {
    server = 100.0 * static_cast<double>(server_ticks_end_ - server_ticks_start_) /
             static_cast<double>(sysconf(_SC_CLK_TCK)) / secs;
  }
  auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  double self = sec(self_usage_end_.ru_utime) - sec(self_usage_start_.ru_utime) +
                sec(self_usage_end_.ru_stime) - sec(self_usage_start_.ru_stime);
  return {server, 100.0 * self / secs};
}

double us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kEcho:
      return "echo";
    case Mode::kIdle:
      return "idle";
    case Mode::kStorm:
      return "storm";
    case Mode::kFanout:
      return "fanout";
  }
  return "?";
}

int Bench::report() {
  const char* mode = mode_name(o_.mode);
  const uint64_t errors = failed_ + dropped_ + error_replies_ + (timed_out_ ? 1 : 0) + (interrupted_ ? 1 : 0);
  const double connect_s = connected_ns_ ? static_cast<double>(connected_ns_ - start_ns_) / 1e9 : 0;
  if (!errors_.empty()) {
    log("problems:\n");
    for (const auto& [what, n] : errors_) log("  %6" PRIu64 "  %s\n", n, what.c_str());
  }
  std::string result = "result mode=" + std::string(mode) + (o_.raw ? " target=raw" : " target=bus") +
                       " connections=" + std::to_string(conns_.size()) + " ready=" + std::to_string(ready_) +
                       " failed=" + std::to_string(failed_);
  char buf[1024];
  if (o_.mode == Mode::kEcho) {
    double secs = measure_end_ns_ > measure_start_ns_
                      ? static_cast<double>(measure_end_ns_ - measure_start_ns_) / 1e9
                      : 0;
    double rate = secs > 0 ? static_cast<double>(replies_) / secs : 0;
    auto [server_cpu, self_cpu] = cpu_pct(secs);
    log("echo: %" PRIu64 " replies in %.2f s: %.0f msg/s (payload %ld bytes, %zu connections)\n", replies_,
        secs, rate, o_.payload, ready_);
    if (o_.rate > 0)
      log("offered %.0f requests/s; %" PRIu64 " came due while every connection waited\n", o_.rate, late_);
    log("latency (us): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", us(hist_.quantile(0.5)),
        us(hist_.quantile(0.9)), us(hist_.quantile(0.99)), us(hist_.quantile(0.999)), us(hist_.max()));
    if (server_cpu >= 0) log("cpu: server %.0f %%, hut-bench %.0f %%\n", server_cpu, self_cpu);
    std::snprintf(
        buf, sizeof buf,
        " payload=%ld seconds=%.2f messages=%" PRIu64
        " rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f"
        " p999_us=%.1f max_us=%.1f server_cpu_pct=%.0f client_cpu_pct=%.0f offered=%.0f late=%" PRIu64,
        o_.payload, secs, replies_, rate, us(hist_.quantile(0.5)), us(hist_.quantile(0.9)),
        us(hist_.quantile(0.99)), us(hist_.quantile(0.999)), us(hist_.max()), server_cpu, self_cpu, o_.rate,
        late_);
    result += buf;
  } else if (o_.mode == Mode::kStorm) {
    double rate = connect_s > 0 ? static_cast<double>(ready_) / connect_s : 0;
    auto [server_cpu, self_cpu] = cpu_pct(connect_s);
    log("storm: %zu connections ready in %.3f s: %.0f connections/s (concurrency %ld)\n", ready_, connect_s,
        rate, o_.concurrency);
    if (server_cpu >= 0) log("cpu: server %.0f %%, hut-bench %.0f %%\n", server_cpu, self_cpu);
    std::snprintf(buf, sizeof buf,
                  " concurrency=%ld seconds=%.3f rate=%.0f server_cpu_pct=%.0f client_cpu_pct=%.0f",
                  o_.concurrency, connect_s, rate, server_cpu, self_cpu);
    result += buf;
  } else {
    double per_conn = -1;
    if (rss_before_kb_ >= 0 && rss_after_kb_ >= 0 && ready_ > 0) {
      per_conn = static_cast<double>(rss_after_kb_ - rss_before_kb_) / static_cast<double>(ready_);
    }
    double self_per_conn = -1;
    if (self_rss_before_kb_ >= 0 && self_rss_after_kb_ >= 0 && ready_ > 0) {
      self_per_conn =
          static_cast<double>(self_rss_after_kb_ - self_rss_before_kb_) / static_cast<double>(ready_);
    }
    if (server_pid_) {
      log("idle: server pid %ld RSS %ld kB -> %ld kB with %zu connections open: %.2f KiB per connection\n",
          server_pid_, rss_before_kb_, rss_after_kb_, ready_ - dropped_, per_conn);
    } else {
      log("idle: server pid unknown (give --server-pid): no RSS figure\n");
    }
    log("idle: hut-bench's own RSS grew %.2f KiB per connection; connecting took %.3f s\n", self_per_conn,
        connect_s);
    std::snprintf(
        buf, sizeof buf,
        " server_pid=%ld rss_before_kb=%ld rss_after_kb=%ld kib_per_conn=%.2f client_kib_per_conn=%.2f"
        " connect_seconds=%.3f",
        server_pid_, rss_before_kb_, rss_after_kb_, per_conn, self_per_conn, connect_s);
    result += buf;
  }
  result += " dropped=" + std::to_string(dropped_) + " error_replies=" + std::to_string(error_replies_) +
            " unexpected=" + std::to_string(unexpected_) + " errors=" + std::to_string(errors);
  std::printf("%s\n", result.c_str());
  std::fflush(stdout);
  bool incomplete = o_.mode == Mode::kIdle && server_pid_ == 0;
  return errors == 0 && !incomplete ? 0 : 1;
}

int Bench::run() {
  conns_.resize(static_cast<size_t>(o_.connections));
  for (size_t i = 0; i < conns_.size(); ++i) conns_[i].index = i;

  // One descriptor per connection, plus lws's own and a margin.
  if (!bench::raise_fd_limit(o_.connections)) return 1;

  if (!o_.raw && !mint_tokens()) return 1;
  if (o_.raw) {
    tail_.assign(static_cast<size_t>(o_.payload), 'x');
  } else {
    head_ = "{\"op\":\"widget\",\"plugin\":\"" + o_.plugin + "\",\"ref\":";
    tail_ = ",\"data\":\"" + std::string(static_cast<size_t>(o_.payload), 'x') + "\"}";
  }
  size_t biggest = std::max(head_.size() + 64 + tail_.size(), size_t{4096});
  for (const Conn& c : conns_) biggest = std::max(biggest, c.token.size());
  out_.resize(LWS_PRE + biggest);

  server_pid_ = o_.server_pid ? o_.server_pid : find_listener_pid(o_.port);
  if (server_pid_) {
    log("server pid %ld%s\n", server_pid_, o_.server_pid ? "" : " (found from the listening port)");
    rss_before_kb_ = read_status_kb(server_pid_, "VmRSS");
  }
  self_rss_before_kb_ = read_status_kb(0, "VmRSS");

  lws_set_log_level(LLL_ERR, nullptr);
  if (uv_loop_init(&loop_) != 0) return 1;
  void* loops[] = {&loop_};
  // Receive buffers sized to the replies: large enough for a whole echo
  // reply in one read, small for the connection-count modes.
  size_t rx = o_.mode == Mode::kEcho ? std::clamp<size_t>(out_.size() + 256, 4096, 65536) : 4096;
  const lws_protocols protocols[] = {
      {"hut-bench", lws_callback, 0, rx, 0, nullptr, rx},
      {nullptr, nullptr, 0, 0, 0, nullptr, 0},
  };
  lws_context_creation_info info{};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
  info.foreign_loops = loops;
  info.pcontext = &context_;
  info.user = this;
  info.retry_and_idle_policy = &kNoValidityChecks;
  info.pt_serv_buf_size = 65536;
  info.timeout_secs = static_cast<unsigned>(std::min(o_.timeout_s, 600.0));
  info.connect_timeout_secs = info.timeout_secs;
  info.gid = -1;
  info.uid = -1;
  context_ = lws_create_context(&info);
  if (!context_) {
    std::fprintf(stderr, "hut-bench: cannot create the libwebsockets context\n");
    uv_loop_close(&loop_);
    return 1;
  }

  for (uv_timer_t* t : {&phase_timer_, &hard_timer_, &stop_timer_, &pace_timer_}) {
    uv_timer_init(&loop_, t);
    t->data = this;
  }
  uv_signal_init(&loop_, &sigint_);
  uv_signal_init(&loop_, &sigterm_);
  sigint_.data = this;
  sigterm_.data = this;
  uv_signal_start(&sigint_, on_signal, SIGINT);
  uv_signal_start(&sigterm_, on_signal, SIGTERM);
  start_timer(&hard_timer_, o_.timeout_s);

  log("hut-bench %s: %ld connections to %s:%d%s (%s)\n", mode_name(o_.mode), o_.connections, o_.host.c_str(),
      o_.port, o_.path.c_str(), o_.raw ? "raw" : "bus");
  start_ns_ = uv_hrtime();
  if (o_.mode == Mode::kStorm) sample_cpu(&server_ticks_start_, &self_usage_start_);
  connect_more();

  uv_run(&loop_, UV_RUN_DEFAULT);
  if (context_) lws_context_destroy(context_);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) std::fprintf(stderr, "hut-bench: loop not empty at exit: %s\n", uv_strerror(rc));
  return report();
}

}  // namespace
}  // namespace hut

int main(int argc, char** argv) {
  hut::Options options;
  bool help = false;
  if (!hut::parse_options(argc, argv, &options, &help)) {
    std::fprintf(stderr, "run `hut-bench --help` for usage\n");
    return 2;
  }
  if (help) {
    hut::print_help();
    return 0;
  }
  if (options.mode == hut::bench::Mode::kFanout) return hut::bench::run_fanout(options);
  hut::Bench bench(std::move(options));
  return bench.run();
}
