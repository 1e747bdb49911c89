// hut-bench fanout: N members (distinct users) in one room, P posters.
//
// The connections do not use libwebsockets: its client costs about as much
// CPU per received message as the server spends sending it, so a client built
// on it cannot measure a server faster than itself. Here each connection is a
// libuv TCP handle doing the RFC 6455 client side by hand: the upgrade request
// (token in the Authorization header, subprotocol hutopia.v1), the check of the
// 101 answer and its Sec-WebSocket-Accept, masked client frames, and a reader
// that takes 256 KiB at a time and walks the frames in place, keeping only the
// tail of a frame split across reads. A delivery is counted from the first
// bytes of the frame and its latency read from the send stamp at its end.
//
// Threads: the connections are spread over --threads Workers, each with its
// own loop and thread; Worker 0 runs on the thread that called run_fanout()
// and also drives the run (stages, timers, signals). Workers talk only
// through Shared's atomics: the stage, the measuring flag and each Worker's
// counters (written by their Worker, read by Worker 0).
#include "fanout.h"

#include <uv.h>
// uv.h first: it pulls in the socket headers the rest expects.
#include <cjson/cJSON.h>
#include <hutopia/token.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace hut::bench {
namespace {

constexpr size_t kReadChunk = 256 * 1024;  // bytes asked of the socket per read
constexpr size_t kMaxHead = 16 * 1024;     // the server's HTTP answer
constexpr uint64_t kMaxBacklog = 100000;   // --rate: posts owed by one poster
constexpr double kDrainSeconds = 10;       // after measuring: outstanding answers
constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

enum Stage : int { kConnect, kJoin, kRun, kDrain, kStop };

// A count written by one thread and read by others.
struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n = 1) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

std::string base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The digits at `at` as a number (0 when there are none).
uint64_t digits_at(std::string_view s, size_t at) {
  uint64_t v = 0;
  for (; at < s.size() && s[at] >= '0' && s[at] <= '9'; ++at) v = v * 10 + static_cast<uint64_t>(s[at] - '0');
  return v;
}

// The op of a bus frame: the server writes it first, so this reads it in
// place; anything else is parsed (and is rare: only odd frames).
std::string op_of(std::string_view msg) {
  constexpr std::string_view kHead = R"({"op":")";
  if (msg.substr(0, kHead.size()) == kHead) {
    size_t end = msg.find('"', kHead.size());
    if (end != std::string_view::npos) return std::string(msg.substr(kHead.size(), end - kHead.size()));
  }
  cJSON* root = cJSON_ParseWithLength(msg.data(), msg.size());
  const char* op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "op"));
  std::string out = op ? op : "";
  cJSON_Delete(root);
  return out;
}

// The send stamp of a `message` event: the post's data is {"t":"<ns>"} and
// the event ends with it, so it is read from the end; 0 when absent.
uint64_t stamp_of(std::string_view msg) {
  constexpr std::string_view kKey = R"("t":")";
  size_t end = msg.size();
  if (end >= 3 && msg.substr(end - 3) == R"("}})") {
    size_t j = end - 3;
    while (j > 0 && msg[j - 1] >= '0' && msg[j - 1] <= '9') --j;
    if (j >= kKey.size() && msg.substr(j - kKey.size(), kKey.size()) == kKey) return digits_at(msg, j);
  }
  size_t at = msg.find(kKey);
  return at == std::string_view::npos ? 0 : digits_at(msg, at + kKey.size());
}

// A --raw post: "<poster index> <ref> <send ns> " padded with 'x' to
// --payload bytes (longer when the numbers do not fit). A broadcast server
// sends it back unchanged to every member; the poster's own copy is its ok.
struct RawPost {
  uint64_t from = 0, ref = 0, sent_ns = 0;
};

bool parse_raw_post(std::string_view msg, RawPost* out) {
  uint64_t* fields[] = {&out->from, &out->ref, &out->sent_ns};
  size_t at = 0;
  for (uint64_t* field : fields) {
    if (at >= msg.size() || msg[at] < '0' || msg[at] > '9') return false;
    *field = digits_at(msg, at);
    at = msg.find(' ', at);
    if (at == std::string_view::npos) return false;
    ++at;
  }
  return true;
}

enum class State { kWaiting, kConnecting, kUpgrading, kAuthenticating, kReady, kFailed, kClosed };

class Worker;

// One connection. Owned by its Worker's array for the Worker's whole life;
// `tcp` is open from start_connect() until close_member()'s uv_close, and its
// loop is drained before the array goes. Only its Worker's thread touches it.
struct Member {
  Worker* worker = nullptr;
  size_t index = 0;  // across all Workers; 0 creates the room
  size_t node = 0;   // which --port it connects to (posters: the first)
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  State state = State::kWaiting;
  bool open = false;        // tcp initialized and not closed yet
  bool write_busy = false;  // write_req owns `writing`
  bool in_room = false;     // created or joined the room
  std::string request;      // the upgrade request, until written
  std::string accept;       // the Sec-WebSocket-Accept the server must send
  std::string carry;        // the start of a frame (or of the HTTP answer) not all read yet
  std::string frag;         // a fragmented message so far
  std::string out;          // frames not handed to the socket yet
  std::string writing;      // frames handed to write_req
  enum class Step { kNone, kCreating, kJoining } step = Step::kNone;
  uint64_t delivered = 0;  // message events, whole run
  uint64_t last_seq = 0;
  uint64_t reordered = 0;  // message events whose seq was not above the last one
  // Posters: refs 1, 2, ... written so far (next_ref), answered, offered by
  // --rate and skipped (a backlog over kMaxBacklog), and the send time of each
  // ref in flight at ref % --inflight.
  bool poster = false;
  uint64_t next_ref = 0;
  uint64_t answered = 0;
  uint64_t offered = 0;
  uint64_t skipped = 0;
  std::vector<uint64_t> sent_ns;
};

struct Shared {
  explicit Shared(const Options& options) : o(options) {}
  const Options& o;
  std::vector<sockaddr_storage> addrs;  // one per --port
  std::vector<sockaddr_in> sources;     // --sources: member i binds to sources[i % size]
  std::string create_frame;
  std::string join_frame;
  std::string post_head;  // post text up to the ref
  std::string post_tail;  // after the stamp
  std::atomic<int> stage{kConnect};
  std::atomic<bool> measuring{false};
  std::vector<std::unique_ptr<Worker>> workers;
};

// One loop and its connections. Constructed and destroyed by run_fanout();
// run() runs on the Worker's own thread (Worker 0: the caller's). The
// Counters may be read from any thread; everything else belongs to run()'s
// thread until it returns.
class Worker {
 public:
  Worker(Shared& s, size_t id, size_t members);
  Member& member(size_t i) { return members_[i]; }
  size_t size() const { return count_; }
  void run();

  Counter ready, failed, join_answers, joined, deliveries, posts_ok, sent, answered, dropped, error_replies,
      unexpected, not_offered;
  Histogram delivery_hist;  // post to delivery, while measuring
  Histogram cross_hist;     // the same, members on a node other than the posters'
  Histogram ok_hist;        // post to ok, while measuring
  std::map<std::string, uint64_t> errors;

  // Worker 0's view of the run, for the report.
  bool timed_out = false;
  bool interrupted = false;
  bool drained = false;
  uint64_t start_ns = 0;
  uint64_t connected_ns = 0;
  uint64_t measure_start_ns = 0;
  uint64_t measure_end_ns = 0;
  uint64_t deliveries_start = 0, deliveries_end = 0, posts_start = 0, posts_end = 0;
  long long server_ticks_start = -1, server_ticks_end = -1;
  rusage usage_start{}, usage_end{};
  std::vector<long> server_pids;  // one per node (0: unknown)

 private:
  static void on_tick(uv_timer_t* t);
  static void on_phase(uv_timer_t* t);
  static void on_hard_timeout(uv_timer_t* t);
  static void on_signal(uv_signal_t* h, int signum);
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);

  void tick();
  void drive(int stage);
  void stop(std::string_view why);
  void shutdown();
  void connect_more();
  void start_connect(Member& m);
  size_t consume(Member& m, char* p, size_t n);
  bool check_upgrade(Member& m, std::string_view head);
  void on_text(Member& m, std::string_view msg);
  void on_bus_frame(Member& m, std::string_view msg);
  void on_raw_frame(Member& m, std::string_view msg);
  void count_delivery(Member& m, uint64_t sent_at, uint64_t now);
  void count_answer(Member& m, bool ok, uint64_t ref, uint64_t now);
  void start_posting();
  void on_ready(Member& m);
  void fail(Member& m, std::string_view why);
  void lost(Member& m, std::string_view why);
  void close_member(Member& m);
  void append_frame(Member& m, unsigned opcode, const char* data, size_t n);
  void flush(Member& m);
  void offer(uint64_t now);
  void fill(Member& m);
  void note_error(std::string_view what) { ++errors[std::string(what)]; }
  void sample(long long* server_ticks, rusage* usage) const;
  void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  uint32_t next_mask();

  Shared& s_;
  size_t id_;
  std::unique_ptr<Member[]> members_;
  size_t count_;
  uv_loop_t loop_{};
  uv_timer_t tick_{};
  uv_timer_t phase_{};  // Worker 0: warm-up, then the measured seconds
  uv_timer_t hard_{};   // Worker 0: --timeout
  uv_signal_t sigint_{};
  uv_signal_t sigterm_{};
  std::vector<Member*> posters_;
  std::string scratch_;    // a post's text while it is framed
  std::vector<char> buf_;  // the read buffer, shared by the Worker's connections
  uint64_t rng_ = 0;       // xorshift64 state for mask keys, seeded from RAND_bytes
  size_t next_connect_ = 0;
  size_t handshakes_ = 0;  // connections between connect and welcome
  size_t max_handshakes_ = 1;
  bool in_connect_more_ = false;
  bool joins_sent_ = false;
  bool posting_ = false;
  bool shut_ = false;
  uint64_t post_start_ns_ = 0;
  uint64_t read_ns_ = 0;  // when the bytes being walked were read
  // Worker 0 only.
  bool create_sent_ = false;
  uint64_t drain_deadline_ns_ = 0;
};

Worker::Worker(Shared& s, size_t id, size_t members)
    : s_(s), id_(id), members_(std::make_unique<Member[]>(members)), count_(members), buf_(kReadChunk) {
  unsigned char seed[8];
  if (RAND_bytes(seed, sizeof seed) != 1) std::memset(seed, 0x5a, sizeof seed);
  std::memcpy(&rng_, seed, sizeof rng_);
  rng_ |= 1;
  size_t workers = static_cast<size_t>(s_.o.threads);
  max_handshakes_ = std::max<size_t>(1, static_cast<size_t>(s_.o.concurrency) / workers);
}

uint32_t Worker::next_mask() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return static_cast<uint32_t>(rng_ >> 16);
}

void Worker::log(const char* fmt, ...) {
  if (s_.o.quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::fflush(stdout);
}

// The servers' CPU ticks summed (-1 when one is unknown) and this process's usage.
void Worker::sample(long long* server_ticks, rusage* usage) const {
  long long sum = 0;
  for (long pid : server_pids) {
    long long ticks = pid ? read_cpu_ticks(pid) : -1;
    if (ticks < 0) {
      sum = -1;
      break;
    }
    sum += ticks;
  }
  *server_ticks = sum;
  getrusage(RUSAGE_SELF, usage);
}

void Worker::run() {
  uv_loop_init(&loop_);
  for (size_t i = 0; i < count_; ++i) {
    if (members_[i].poster) posters_.push_back(&members_[i]);
  }
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  uv_timer_start(&tick_, on_tick, 1, 1);
  if (id_ == 0) {
    for (uv_timer_t* t : {&phase_, &hard_}) {
      uv_timer_init(&loop_, t);
      t->data = this;
    }
    uv_timer_start(&hard_, on_hard_timeout, static_cast<uint64_t>(s_.o.timeout_s * 1000), 0);
    for (uv_signal_t* h : {&sigint_, &sigterm_}) {
      uv_signal_init(&loop_, h);
      h->data = this;
    }
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    start_ns = uv_hrtime();
  }
  connect_more();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) note_error("loop not empty at exit");
}

void Worker::on_tick(uv_timer_t* t) { static_cast<Worker*>(t->data)->tick(); }

void Worker::tick() {
  const int stage = s_.stage.load(std::memory_order_acquire);
  if (stage == kStop) {
    shutdown();
    return;
  }
  connect_more();
  if (stage >= kJoin && !joins_sent_ && !s_.o.raw) {
    joins_sent_ = true;
    for (size_t i = 0; i < count_; ++i) {
      Member& m = members_[i];
      if (m.state != State::kReady || m.index == 0) continue;
      m.step = Member::Step::kJoining;
      append_frame(m, 0x1, s_.join_frame.data(), s_.join_frame.size());
      flush(m);
    }
  }
  if (stage == kRun) {
    uint64_t now = uv_hrtime();
    if (!posting_) {
      posting_ = true;
      post_start_ns_ = now;
    }
    offer(now);
  }
  if (id_ == 0) drive(stage);
}

// Worker 0: moves the run from stage to stage as the sums allow.
void Worker::drive(int stage) {
  uint64_t sum_ready = 0, sum_failed = 0, sum_answers = 0, sum_joined = 0;
  for (auto& w : s_.workers) {
    sum_ready += w->ready.get();
    sum_failed += w->failed.get();
    sum_answers += w->join_answers.get();
    sum_joined += w->joined.get();
  }
  const uint64_t n = static_cast<uint64_t>(s_.o.connections);
  if (stage == kConnect && !create_sent_ && sum_ready + sum_failed == n) {
    create_sent_ = true;
    connected_ns = uv_hrtime();
    log("connected %" PRIu64 " of %" PRIu64 " in %.3f s%s\n", sum_ready, n,
        static_cast<double>(connected_ns - start_ns) / 1e9, sum_failed ? " (some failed)" : "");
    if (s_.o.raw) {
      // Raw: every upgraded connection is a member already.
      start_posting();
      return;
    }
    Member& creator = members_[0];
    if (creator.state != State::kReady) {
      stop("the first connection, which creates the room, failed");
      return;
    }
    creator.step = Member::Step::kCreating;
    append_frame(creator, 0x1, s_.create_frame.data(), s_.create_frame.size());
    flush(creator);
  } else if (stage == kJoin && sum_answers + 1 == sum_ready) {
    log("joined %" PRIu64 " of %" PRIu64 " members to %s\n", sum_joined, sum_ready, s_.o.room.c_str());
    start_posting();
  } else if (stage == kDrain) {
    uint64_t sum_sent = 0, sum_answered = 0, sum_deliveries = 0, sum_ok = 0;
    for (auto& w : s_.workers) {
      sum_sent += w->sent.get();
      sum_answered += w->answered.get();
      sum_deliveries += w->deliveries.get();
      sum_ok += w->posts_ok.get();
    }
    drained = sum_sent == sum_answered && sum_deliveries == sum_ok * sum_joined;
    if (drained || uv_hrtime() > drain_deadline_ns_) s_.stage.store(kStop, std::memory_order_release);
  }
}

// Worker 0: the posters start; the warm-up, then the measured seconds follow.
void Worker::start_posting() {
  s_.stage.store(kRun, std::memory_order_release);
  uv_timer_start(&phase_, on_phase, static_cast<uint64_t>(s_.o.warmup_s * 1000 + 0.5), 0);
}

void Worker::on_phase(uv_timer_t* t) {
  Worker* w = static_cast<Worker*>(t->data);
  Shared& s = w->s_;
  auto sums = [&s](uint64_t* deliveries, uint64_t* posts) {
    *deliveries = 0;
    *posts = 0;
    for (auto& x : s.workers) {
      *deliveries += x->deliveries.get();
      *posts += x->posts_ok.get();
    }
  };
  if (!s.measuring.load(std::memory_order_relaxed) && w->measure_start_ns == 0) {
    w->measure_start_ns = uv_hrtime();
    sums(&w->deliveries_start, &w->posts_start);
    w->sample(&w->server_ticks_start, &w->usage_start);
    s.measuring.store(true, std::memory_order_relaxed);
    uv_timer_start(&w->phase_, on_phase, static_cast<uint64_t>(s.o.duration_s * 1000 + 0.5), 0);
    return;
  }
  s.measuring.store(false, std::memory_order_relaxed);
  w->measure_end_ns = uv_hrtime();
  sums(&w->deliveries_end, &w->posts_end);
  w->sample(&w->server_ticks_end, &w->usage_end);
  w->drain_deadline_ns_ = w->measure_end_ns + static_cast<uint64_t>(kDrainSeconds * 1e9);
  s.stage.store(kDrain, std::memory_order_release);
}

void Worker::on_hard_timeout(uv_timer_t* t) {
  Worker* w = static_cast<Worker*>(t->data);
  w->timed_out = true;
  w->stop("hard timeout");
}

void Worker::on_signal(uv_signal_t* h, int /*signum*/) {
  Worker* w = static_cast<Worker*>(h->data);
  w->interrupted = true;
  w->stop("interrupted");
}

void Worker::stop(std::string_view why) {
  if (s_.stage.load() == kStop) return;
  note_error(why);
  log("stopping: %.*s\n", static_cast<int>(why.size()), why.data());
  s_.measuring.store(false);
  s_.stage.store(kStop, std::memory_order_release);
}

// Closes everything this Worker opened; the loop then runs dry.
void Worker::shutdown() {
  if (shut_) return;
  shut_ = true;
  for (size_t i = 0; i < count_; ++i) {
    Member& m = members_[i];
    if (!m.open) continue;
    if (m.state == State::kReady) {
      m.state = State::kClosed;
      const char bye[2] = {0x03, static_cast<char>(0xe8)};  // 1000
      append_frame(m, 0x8, bye, sizeof bye);
      flush(m);
    }
    close_member(m);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  if (id_ == 0) {
    for (uv_timer_t* t : {&phase_, &hard_}) uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    for (uv_signal_t* h : {&sigint_, &sigterm_}) uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  }
}

void Worker::connect_more() {
  // A connect that fails at once comes back here through fail(): the loop
  // below picks up where it left off.
  if (in_connect_more_ || s_.stage.load(std::memory_order_relaxed) == kStop) return;
  in_connect_more_ = true;
  while (next_connect_ < count_ && handshakes_ < max_handshakes_) start_connect(members_[next_connect_++]);
  in_connect_more_ = false;
}

void Worker::start_connect(Member& m) {
  m.state = State::kConnecting;
  ++handshakes_;
  uv_tcp_init(&loop_, &m.tcp);
  m.tcp.data = &m;
  m.open = true;
  uv_tcp_nodelay(&m.tcp, 1);
  m.connect_req.data = &m;
  if (!s_.sources.empty()) {
    const sockaddr_in& from = s_.sources[m.index % s_.sources.size()];
    int bound = uv_tcp_bind(&m.tcp, reinterpret_cast<const sockaddr*>(&from), 0);
    if (bound != 0) {
      fail(m, std::string("bind: ") + uv_strerror(bound));
      return;
    }
  }
  int rc = uv_tcp_connect(&m.connect_req, &m.tcp, reinterpret_cast<const sockaddr*>(&s_.addrs[m.node]),
                          on_connect);
  if (rc != 0) fail(m, std::string("connect: ") + uv_strerror(rc));
}

void Worker::on_connect(uv_connect_t* req, int status) {
  Member& m = *static_cast<Member*>(req->data);
  Worker& w = *m.worker;
  if (status == UV_ECANCELED) return;
  if (status < 0) {
    w.fail(m, std::string("connect: ") + uv_strerror(status));
    return;
  }
  m.state = State::kUpgrading;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&m.tcp), on_alloc, on_read);
  m.out = std::move(m.request);
  std::string().swap(m.request);
  w.flush(m);
}

// The read buffer holds what is left of the last read's incomplete frame
// first, then the new bytes; on_read walks them together.
void Worker::on_alloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) {
  Member& m = *static_cast<Member*>(h->data);
  Worker& w = *m.worker;
  if (w.buf_.size() < m.carry.size() + kReadChunk / 4) w.buf_.resize(m.carry.size() + kReadChunk);
  std::memcpy(w.buf_.data(), m.carry.data(), m.carry.size());
  *buf = uv_buf_init(w.buf_.data() + m.carry.size(), static_cast<unsigned>(w.buf_.size() - m.carry.size()));
}

void Worker::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* /*buf*/) {
  Member& m = *static_cast<Member*>(stream->data);
  Worker& w = *m.worker;
  if (nread == 0) return;
  if (nread < 0) {
    w.lost(m, nread == UV_EOF ? "the server closed the connection" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  // One clock reading per read: the frames in it arrived together.
  w.read_ns_ = uv_hrtime();
  size_t total = m.carry.size() + static_cast<size_t>(nread);
  size_t used = w.consume(m, w.buf_.data(), total);
  if (!m.open) return;
  if (total - used > kMaxMessage + 16) {
    w.lost(m, "a message over 32 MiB");
    return;
  }
  m.carry.assign(w.buf_.data() + used, total - used);
  // Everything the frames asked to send (next posts, pongs) goes out at once.
  w.flush(m);
}

// Walks the complete frames in p[0, n); returns how many bytes it used.
size_t Worker::consume(Member& m, char* p, size_t n) {
  size_t used = 0;
  if (m.state == State::kUpgrading) {
    std::string_view v(p, n);
    size_t end = v.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (n > kMaxHead) fail(m, "the upgrade answer is too long");
      return 0;
    }
    if (!check_upgrade(m, v.substr(0, end + 2))) return n;
    m.state = State::kAuthenticating;
    used = end + 4;
    // Raw: no hello; the upgrade makes the connection a member.
    if (s_.o.raw) on_ready(m);
  }
  while (m.open) {
    const auto* q = reinterpret_cast<const unsigned char*>(p + used);
    size_t left = n - used;
    if (left < 2) break;
    if (q[1] & 0x80) {
      lost(m, "a masked frame from the server");
      return n;
    }
    uint64_t len = q[1] & 0x7f;
    size_t head = 2;
    if (len == 126) {
      if (left < 4) break;
      len = static_cast<uint64_t>(q[2]) << 8 | q[3];
      head = 4;
    } else if (len == 127) {
      if (left < 10) break;
      len = 0;
      for (int i = 2; i < 10; ++i) len = len << 8 | q[i];
      head = 10;
    }
    if (len > kMaxMessage) {
      lost(m, "a frame over 32 MiB");
      return n;
    }
    if (left - head < len) break;
    const char* payload = p + used + head;
    used += head + static_cast<size_t>(len);
    const bool fin = (q[0] & 0x80) != 0;
    switch (q[0] & 0x0f) {
      case 0x1:
      case 0x0:
        if (fin && m.frag.empty()) {
          on_text(m, std::string_view(payload, static_cast<size_t>(len)));
        } else {
          if (m.frag.size() + len > kMaxMessage) {
            lost(m, "a message over 32 MiB");
            return n;
          }
          m.frag.append(payload, static_cast<size_t>(len));
          if (fin) {
            std::string msg = std::move(m.frag);
            m.frag.clear();
            on_text(m, msg);
          }
        }
        break;
      case 0x8: {
        unsigned code = len >= 2 ? static_cast<unsigned>(static_cast<unsigned char>(payload[0]) << 8 |
                                                         static_cast<unsigned char>(payload[1]))
                                 : 1005;
        append_frame(m, 0x8, payload, len >= 2 ? 2 : 0);
        flush(m);
        lost(m, "the server closed with " + std::to_string(code));
        return n;
      }
      case 0x9:
        append_frame(m, 0xA, payload, static_cast<size_t>(len));
        break;
      case 0xA:
        break;
      default:
        lost(m, "a binary or unknown frame");
        return n;
    }
  }
  return used;
}

// The 101 answer: the status, Upgrade, the accept value and the subprotocol.
bool Worker::check_upgrade(Member& m, std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view status = head.substr(0, eol);
  if (status.substr(0, 12) != "HTTP/1.1 101") {
    fail(m, "upgrade refused: " + std::string(status.substr(0, 80)));
    return false;
  }
  bool upgrade = false, accept = false;
  bool protocol = s_.o.subprotocol.empty();
  for (size_t at = eol + 2; at < head.size();) {
    size_t end = head.find("\r\n", at);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(at, end - at);
    at = end + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (ieq(name, "upgrade")) upgrade = ieq(value, "websocket");
    if (ieq(name, "sec-websocket-accept")) accept = value == m.accept;
    if (ieq(name, "sec-websocket-protocol")) protocol = value == s_.o.subprotocol;
  }
  if (!upgrade || !accept || !protocol) {
    fail(m, !upgrade  ? "101 without Upgrade: websocket"
            : !accept ? "wrong Sec-WebSocket-Accept"
                      : "wrong or missing Sec-WebSocket-Protocol");
    return false;
  }
  std::string().swap(m.accept);
  return true;
}

void Worker::on_text(Member& m, std::string_view msg) {
  if (m.state == State::kReady) {
    if (s_.o.raw) {
      on_raw_frame(m, msg);
    } else {
      on_bus_frame(m, msg);
    }
    return;
  }
  if (m.state != State::kAuthenticating) return;
  std::string op = op_of(msg);
  if (op == "welcome") {
    on_ready(m);
    return;
  }
  std::string why;
  if (op == "error") {
    cJSON* root = cJSON_ParseWithLength(msg.data(), msg.size());
    const char* code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "code"));
    const char* text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "message"));
    why = std::string("refused: ") + (code ? code : "?") + " (" + (text ? text : "") + ")";
    cJSON_Delete(root);
  } else {
    why = "unexpected frame before welcome: " + std::string(msg.substr(0, 80));
  }
  fail(m, why);
}

// A frame on a ready connection: a `message` event (a delivery), an answer
// to this connection's create, join or post, or another event (joined,
// presence), which is ignored.
void Worker::on_bus_frame(Member& m, std::string_view msg) {
  constexpr std::string_view kMessage = R"({"op":"message",)";
  constexpr std::string_view kSeq = R"("seq":)";
  const bool message = msg.substr(0, kMessage.size()) == kMessage;
  const std::string op = message ? std::string() : op_of(msg);
  const uint64_t now = read_ns_;
  if (message || op == "message") {
    size_t at = msg.find(kSeq);
    uint64_t seq = at == std::string_view::npos ? 0 : digits_at(msg, at + kSeq.size());
    if (seq <= m.last_seq) {
      ++m.reordered;
    } else {
      m.last_seq = seq;
    }
    count_delivery(m, s_.measuring.load(std::memory_order_relaxed) ? stamp_of(msg) : 0, now);
    return;
  }
  const bool ok = op == "ok";
  if (!ok && op != "error") return;
  if (!ok) {
    error_replies.add();
    cJSON* root = cJSON_ParseWithLength(msg.data(), msg.size());
    const char* code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "code"));
    note_error("error reply: " + std::string(code ? code : "?"));
    cJSON_Delete(root);
  }
  constexpr std::string_view kRef = R"("ref":)";
  size_t at = msg.find(kRef);
  const bool numeric = at != std::string_view::npos && at + kRef.size() < msg.size() &&
                       msg[at + kRef.size()] >= '0' && msg[at + kRef.size()] <= '9';
  if (numeric && m.poster && m.answered < m.next_ref) {
    count_answer(m, ok, digits_at(msg, at + kRef.size()), now);
    return;
  }
  switch (m.step) {
    case Member::Step::kCreating:
      m.step = Member::Step::kNone;
      if (!ok) {
        stop("the room could not be created");
        return;
      }
      m.in_room = true;
      joined.add();
      s_.stage.store(kJoin, std::memory_order_release);
      return;
    case Member::Step::kJoining:
      m.step = Member::Step::kNone;
      if (ok) {
        m.in_room = true;
        joined.add();
      }
      join_answers.add();
      return;
    case Member::Step::kNone:
      unexpected.add();
      return;
  }
}

// A --raw frame: a post relayed by the broadcast server. Every one is a
// delivery; on its poster it is also the answer to that post, and the
// poster's own posts must come back in the order written.
void Worker::on_raw_frame(Member& m, std::string_view msg) {
  RawPost post;
  if (!parse_raw_post(msg, &post)) {
    unexpected.add();
    return;
  }
  count_delivery(m, post.sent_ns, read_ns_);
  if (post.from != m.index || !m.poster) return;
  if (m.answered >= m.next_ref) {
    unexpected.add();
    return;
  }
  if (post.ref != m.answered + 1) ++m.reordered;
  count_answer(m, true, post.ref, read_ns_);
}

// One post delivered to m, sent at `sent_at` (read only while measuring).
void Worker::count_delivery(Member& m, uint64_t sent_at, uint64_t now) {
  ++m.delivered;
  deliveries.add();
  if (s_.measuring.load(std::memory_order_relaxed)) {
    const uint64_t took = now > sent_at ? now - sent_at : 0;
    delivery_hist.record(took);
    if (m.node != 0) cross_hist.record(took);
  }
}

// The answer to poster m's post `ref`; the window then takes the next post.
void Worker::count_answer(Member& m, bool ok, uint64_t ref, uint64_t now) {
  ++m.answered;
  answered.add();
  if (ok) {
    posts_ok.add();
    if (s_.measuring.load(std::memory_order_relaxed)) {
      uint64_t sent_at = m.sent_ns[ref % m.sent_ns.size()];
      ok_hist.record(now > sent_at ? now - sent_at : 0);
    }
  }
  fill(m);
}

void Worker::on_ready(Member& m) {
  m.state = State::kReady;
  --handshakes_;
  ready.add();
  if (s_.o.raw) {
    m.in_room = true;
    joined.add();
  }
  connect_more();
}

void Worker::fail(Member& m, std::string_view why) {
  if (m.state != State::kConnecting && m.state != State::kUpgrading && m.state != State::kAuthenticating)
    return;
  m.state = State::kFailed;
  --handshakes_;
  failed.add();
  if (s_.stage.load() != kStop) note_error(why);
  close_member(m);
  connect_more();
}

// A connection ended from the other side (or broke).
void Worker::lost(Member& m, std::string_view why) {
  if (m.state != State::kReady) {
    fail(m, why);
    close_member(m);
    return;
  }
  m.state = State::kClosed;
  if (m.step == Member::Step::kJoining) join_answers.add();  // the run need not wait for it
  m.step = Member::Step::kNone;
  if (s_.stage.load() != kStop) {
    dropped.add();
    note_error("server closed a ready connection: " + std::string(why));
  }
  // Posts in flight on it will not be answered: the drain need not wait.
  answered.add(m.next_ref - m.answered);
  m.answered = m.next_ref;
  close_member(m);
}

void Worker::close_member(Member& m) {
  if (!m.open) return;
  m.open = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&m.tcp), nullptr);
}

// Appends one masked client frame (RFC 6455 5.2, 5.3) to m.out.
void Worker::append_frame(Member& m, unsigned opcode, const char* data, size_t n) {
  unsigned char head[14];
  size_t h = 0;
  head[h++] = static_cast<unsigned char>(0x80 | opcode);
  if (n < 126) {
    head[h++] = static_cast<unsigned char>(0x80 | n);
  } else if (n < 65536) {
    head[h++] = 0x80 | 126;
    head[h++] = static_cast<unsigned char>(n >> 8);
    head[h++] = static_cast<unsigned char>(n);
  } else {
    head[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i) head[h++] = static_cast<unsigned char>(static_cast<uint64_t>(n) >> (8 * i));
  }
  uint32_t mask = next_mask();
  std::memcpy(head + h, &mask, 4);
  const unsigned char* key = head + h;
  h += 4;
  size_t at = m.out.size();
  m.out.resize(at + h + n);
  auto* dst = reinterpret_cast<unsigned char*>(m.out.data() + at);
  std::memcpy(dst, head, h);
  dst += h;
  const auto* src = reinterpret_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) dst[i] = src[i] ^ key[i & 3];
}

// Hands m.out to the socket: written at once when it takes it, otherwise
// through one uv_write at a time.
void Worker::flush(Member& m) {
  if (!m.open || m.write_busy || m.out.empty()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&m.tcp);
  uv_buf_t b = uv_buf_init(m.out.data(), static_cast<unsigned>(m.out.size()));
  int n = uv_try_write(stream, &b, 1);
  if (n == static_cast<int>(m.out.size())) {
    m.out.clear();
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    lost(m, std::string("write: ") + uv_strerror(n));
    return;
  }
  size_t done = n > 0 ? static_cast<size_t>(n) : 0;
  m.writing.assign(m.out, done);
  m.out.clear();
  b = uv_buf_init(m.writing.data(), static_cast<unsigned>(m.writing.size()));
  m.write_req.data = &m;
  m.write_busy = true;
  int rc = uv_write(&m.write_req, stream, &b, 1, on_write);
  if (rc != 0) {
    m.write_busy = false;
    lost(m, std::string("write: ") + uv_strerror(rc));
  }
}

void Worker::on_write(uv_write_t* req, int status) {
  Member& m = *static_cast<Member*>(req->data);
  m.write_busy = false;
  if (status == UV_ECANCELED) return;
  if (status < 0) {
    m.worker->lost(m, std::string("write: ") + uv_strerror(status));
    return;
  }
  m.writing.clear();
  m.worker->flush(m);
}

// Posting: with --rate, hands each poster the posts due by now (its share
// of the rate); then every poster writes what its window allows.
void Worker::offer(uint64_t now) {
  const double per_poster = s_.o.rate / static_cast<double>(s_.o.posters);
  const double elapsed = static_cast<double>(now - post_start_ns_) / 1e9;
  for (Member* p : posters_) {
    Member& m = *p;
    if (m.state != State::kReady) continue;
    if (s_.o.rate > 0) {
      auto due = static_cast<uint64_t>(elapsed * per_poster);
      uint64_t fresh = due > m.offered + m.skipped ? due - m.offered - m.skipped : 0;
      uint64_t backlog = m.offered - m.next_ref;
      uint64_t room = backlog < kMaxBacklog ? kMaxBacklog - backlog : 0;
      uint64_t give = std::min(fresh, room);
      m.offered += give;
      m.skipped += fresh - give;
      not_offered.add(fresh - give);
    }
    fill(m);
    flush(m);
  }
}

// Writes posts while the window (--inflight) has room and, with --rate,
// posts are owed. The frame goes to m.out; the caller flushes.
void Worker::fill(Member& m) {
  if (s_.stage.load(std::memory_order_relaxed) != kRun || m.state != State::kReady) return;
  const uint64_t window = m.sent_ns.size();
  while (m.next_ref - m.answered < window && (s_.o.rate == 0 || m.next_ref < m.offered)) {
    uint64_t ref = ++m.next_ref;
    uint64_t now = uv_hrtime();
    char middle[80];
    if (s_.o.raw) {
      int k = std::snprintf(middle, sizeof middle, "%zu %" PRIu64 " %" PRIu64 " ", m.index, ref, now);
      scratch_.assign(middle, static_cast<size_t>(k));
      scratch_.resize(std::max(scratch_.size(), static_cast<size_t>(s_.o.payload)), 'x');
    } else {
      int k = std::snprintf(middle, sizeof middle, "%" PRIu64 ",\"data\":{\"t\":\"%" PRIu64 "\"}", ref, now);
      scratch_.assign(s_.post_head);
      scratch_.append(middle, static_cast<size_t>(k));
      scratch_ += s_.post_tail;
    }
    m.sent_ns[ref % window] = now;
    sent.add();
    append_frame(m, 0x1, scratch_.data(), scratch_.size());
  }
}

double cpu_seconds(const rusage& a, const rusage& b) {
  auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return sec(b.ru_utime) - sec(a.ru_utime) + sec(b.ru_stime) - sec(a.ru_stime);
}

void say(bool quiet, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void say(bool quiet, const char* fmt, ...) {
  if (quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
}

double us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

// Builds the upgrade request of every connection (a fresh key, the expected
// accept value, a fresh single-use token) before any clock starts.
bool prepare(Shared& s) {
  const Options& o = s.o;
  TokenMinter minter;
  if (!o.raw && !minter.init(o)) return false;
  const std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  for (size_t i = 0; i < static_cast<size_t>(o.connections); ++i) {
    Worker& w = *s.workers[i % s.workers.size()];
    Member& m = w.member(i / s.workers.size());
    m.worker = &w;
    m.index = i;
    const size_t posters = static_cast<size_t>(o.posters);
    m.node = i < posters ? 0 : (i - posters) % o.ports.size();
    if (i < posters) {
      m.poster = true;
      m.sent_ns.assign(static_cast<size_t>(o.inflight), 0);
    }
    const std::string token = o.raw ? std::string() : minter.token(i);
    if (!o.raw && token.empty()) return false;
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1) return false;
    std::string ws_key = base64(nonce, sizeof nonce);
    std::string joined = ws_key + std::string(kGuid);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    if (EVP_Digest(joined.data(), joined.size(), digest, &digest_len, EVP_sha1(), nullptr) != 1) return false;
    m.accept = base64(digest, digest_len);
    m.request = "GET " + o.path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(o.ports[m.node]) +
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: " +
                ws_key + "\r\n";
    if (!o.subprotocol.empty()) m.request += "Sec-WebSocket-Protocol: " + o.subprotocol + "\r\n";
    if (!o.raw) m.request += "Authorization: Bearer " + token + "\r\n";
    m.request += "\r\n";
  }
  s.create_frame = R"({"op":"create","room":")" + o.room + R"(","ref":"create"})";
  s.join_frame = R"({"op":"join","room":")" + o.room + R"(","ref":"join"})";
  s.post_head = R"({"op":"post","room":")" + o.room + R"(","ref":)";
  s.post_tail = R"(,"text":")" + std::string(static_cast<size_t>(o.payload), 'x') + "\"}";
  return true;
}

}  // namespace

int run_fanout(const Options& o) {
  Shared s(o);
  if (!o.server_pids.empty() && o.server_pids.size() != o.ports.size()) {
    std::fprintf(stderr, "hut-bench: give --server-pid once per --port, or not at all\n");
    return 2;
  }
  for (int port : o.ports) {
    sockaddr_storage& addr = s.addrs.emplace_back();
    if (uv_ip4_addr(o.host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(o.host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      std::fprintf(stderr, "hut-bench: bad address %s\n", o.host.c_str());
      return 2;
    }
  }
  for (long k = 0; o.sources > 1 && k < o.sources; ++k) {
    sockaddr_in& from = s.sources.emplace_back();
    uv_ip4_addr(source_address(o, static_cast<size_t>(k)).c_str(), 0, &from);
  }
  if (!raise_fd_limit(o.connections)) return 1;
  const size_t threads = static_cast<size_t>(std::min(o.threads, o.connections));
  const size_t n = static_cast<size_t>(o.connections);
  for (size_t t = 0; t < threads; ++t) {
    s.workers.push_back(std::make_unique<Worker>(s, t, n / threads + (t < n % threads ? 1 : 0)));
  }
  if (!prepare(s)) return 1;
  Worker& lead = *s.workers[0];
  for (size_t k = 0; k < o.ports.size(); ++k) {
    const long pid = o.server_pids.empty() ? find_listener_pid(o.ports[k]) : o.server_pids[k];
    lead.server_pids.push_back(pid);
    if (pid && !o.quiet) {
      std::printf("server pid %ld%s\n", pid, o.server_pids.empty() ? " (found from the listening port)" : "");
    }
  }
  if (!o.quiet) {
    std::printf(
        "hut-bench fanout: %ld connections to %s:%d%s over %zu thread(s), %ld poster(s), window %ld\n",
        o.connections, o.host.c_str(), o.port, o.path.c_str(), threads, o.posters, o.inflight);
    if (o.ports.size() > 1) {
      std::printf("hut-bench fanout: %zu nodes (ports", o.ports.size());
      for (int port : o.ports) std::printf(" %d", port);
      std::printf("): posters on the first, the other members round-robin\n");
    }
    std::fflush(stdout);
  }

  std::vector<std::thread> others;
  for (size_t t = 1; t < threads; ++t) others.emplace_back([&s, t] { s.workers[t]->run(); });
  lead.run();
  for (std::thread& t : others) t.join();

  // Every thread has ended: the Workers' plain members are safe to read.
  uint64_t ready = 0, failed = 0, joined = 0, all_deliveries = 0, all_posts = 0, dropped = 0,
           error_replies = 0, unexpected = 0, not_offered = 0, reordered = 0, members_off = 0;
  uint64_t member_min = UINT64_MAX, member_max = 0;
  Histogram delivery_hist, ok_hist, cross_hist;
  std::map<std::string, uint64_t> errors;
  for (auto& w : s.workers) {
    ready += w->ready.get();
    failed += w->failed.get();
    joined += w->joined.get();
    all_deliveries += w->deliveries.get();
    all_posts += w->posts_ok.get();
    dropped += w->dropped.get();
    error_replies += w->error_replies.get();
    unexpected += w->unexpected.get();
    not_offered += w->not_offered.get();
    delivery_hist.merge(w->delivery_hist);
    cross_hist.merge(w->cross_hist);
    ok_hist.merge(w->ok_hist);
    for (const auto& [what, count] : w->errors) errors[what] += count;
  }
  for (auto& w : s.workers) {
    for (size_t i = 0; i < w->size(); ++i) {
      const Member& m = w->member(i);
      if (!m.in_room) continue;
      reordered += m.reordered;
      member_min = std::min(member_min, m.delivered);
      member_max = std::max(member_max, m.delivered);
      if (m.delivered != all_posts) ++members_off;
    }
  }
  if (member_min == UINT64_MAX) member_min = 0;
  const bool measured = lead.measure_end_ns > lead.measure_start_ns && lead.measure_start_ns != 0;
  const double secs = measured ? static_cast<double>(lead.measure_end_ns - lead.measure_start_ns) / 1e9 : 0;
  const uint64_t deliveries = measured ? lead.deliveries_end - lead.deliveries_start : 0;
  const uint64_t posts = measured ? lead.posts_end - lead.posts_start : 0;
  const double post_rate = secs > 0 ? static_cast<double>(posts) / secs : 0;
  const double delivery_rate = secs > 0 ? static_cast<double>(deliveries) / secs : 0;
  double server_cpu_s = -1;
  if (measured && lead.server_ticks_start >= 0 && lead.server_ticks_end >= 0) {
    server_cpu_s = static_cast<double>(lead.server_ticks_end - lead.server_ticks_start) /
                   static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  const double client_cpu_s = measured ? cpu_seconds(lead.usage_start, lead.usage_end) : -1;
  const double server_pct = secs > 0 && server_cpu_s >= 0 ? 100 * server_cpu_s / secs : -1;
  const double client_pct = secs > 0 ? 100 * client_cpu_s / secs : -1;
  const double per_server_s = server_cpu_s > 0 ? static_cast<double>(deliveries) / server_cpu_s : 0;
  const double per_client_s = client_cpu_s > 0 ? static_cast<double>(deliveries) / client_cpu_s : 0;
  // The comparison across setups: server CPU (all nodes) per delivery.
  const double server_us_per_delivery =
      server_cpu_s >= 0 && deliveries > 0 ? 1e6 * server_cpu_s / static_cast<double>(deliveries) : -1;
  // Every member must have every acknowledged post exactly once, in order.
  const uint64_t expected = all_posts * joined;
  const uint64_t missing = expected > all_deliveries ? expected - all_deliveries : all_deliveries - expected;
  const bool undrained = !lead.drained && lead.measure_end_ns != 0 && !lead.timed_out && !lead.interrupted;
  if (undrained) ++errors["answers or deliveries still missing 10 s after the end"];
  const uint64_t error_count = failed + dropped + error_replies + (lead.timed_out ? 1 : 0) +
                               (lead.interrupted ? 1 : 0) + (measured ? 0 : 1) + members_off + reordered +
                               (missing ? 1 : 0) + (undrained ? 1 : 0);
  if (!errors.empty()) {
    say(o.quiet, "problems:\n");
    for (const auto& [what, count] : errors) say(o.quiet, "  %6" PRIu64 "  %s\n", count, what.c_str());
  }
  std::string offered =
      o.rate > 0 ? "offered " + std::to_string(static_cast<long>(o.rate)) + " posts/s" : "closed loop";
  say(o.quiet, "fanout: %" PRIu64 " members in %s, %ld poster(s), %s, window %ld\n", joined, o.room.c_str(),
      o.posters, offered.c_str(), o.inflight);
  say(o.quiet,
      "fanout: %" PRIu64 " posts ok in %.2f s: %.0f posts/s; %" PRIu64 " deliveries: %.0f deliveries/s\n",
      posts, secs, post_rate, deliveries, delivery_rate);
  say(o.quiet, "post to delivery (us): p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
      us(delivery_hist.quantile(0.5)), us(delivery_hist.quantile(0.9)), us(delivery_hist.quantile(0.99)),
      us(delivery_hist.max()));
  say(o.quiet, "post to ok (us): p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", us(ok_hist.quantile(0.5)),
      us(ok_hist.quantile(0.9)), us(ok_hist.quantile(0.99)), us(ok_hist.max()));
  say(o.quiet,
      "whole run: %" PRIu64 " posts ok, %" PRIu64 " deliveries (%" PRIu64 " expected); per member %" PRIu64
      " to %" PRIu64 "\n",
      all_posts, all_deliveries, expected, member_min, member_max);
  if (not_offered)
    say(o.quiet, "fanout: %" PRIu64 " posts not offered (a poster %" PRIu64 " behind)\n", not_offered,
        kMaxBacklog);
  if (o.ports.size() > 1) {
    say(o.quiet,
        "cross-node post to delivery (us): p50 %.1f  p90 %.1f  p99 %.1f  max %.1f (%" PRIu64 " deliveries)\n",
        us(cross_hist.quantile(0.5)), us(cross_hist.quantile(0.9)), us(cross_hist.quantile(0.99)),
        us(cross_hist.max()), cross_hist.count());
  }
  if (server_pct >= 0) {
    say(o.quiet,
        "cpu: server %.0f %%, hut-bench %.0f %%; deliveries per CPU-second: server %.0f, hut-bench %.0f\n",
        server_pct, client_pct, per_server_s, per_client_s);
  }
  char buf[2048];
  std::snprintf(
      buf, sizeof buf,
      "result mode=fanout target=%s connections=%ld ready=%" PRIu64 " failed=%" PRIu64 " members=%" PRIu64
      " posters=%ld inflight=%ld threads=%zu offered_rate=%.0f payload=%ld"
      " seconds=%.2f posts=%" PRIu64 " post_rate=%.0f deliveries=%" PRIu64
      " delivery_rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f"
      " ok_p50_us=%.1f ok_p90_us=%.1f ok_p99_us=%.1f ok_max_us=%.1f not_offered=%" PRIu64
      " server_cpu_pct=%.0f client_cpu_pct=%.0f deliveries_per_server_cpu_s=%.0f"
      " deliveries_per_client_cpu_s=%.0f all_posts=%" PRIu64 " all_deliveries=%" PRIu64 " member_min=%" PRIu64
      " member_max=%" PRIu64 " reordered=%" PRIu64 " dropped=%" PRIu64 " error_replies=%" PRIu64
      " unexpected=%" PRIu64 " nodes=%zu cross_deliveries=%" PRIu64
      " cross_p50_us=%.1f cross_p99_us=%.1f server_cpu_us_per_delivery=%.3f errors=%" PRIu64,
      o.raw ? "raw" : "bus", o.connections, ready, failed, joined, o.posters, o.inflight, threads, o.rate,
      o.payload, secs, posts, post_rate, deliveries, delivery_rate, us(delivery_hist.quantile(0.5)),
      us(delivery_hist.quantile(0.9)), us(delivery_hist.quantile(0.99)), us(delivery_hist.max()),
      us(ok_hist.quantile(0.5)), us(ok_hist.quantile(0.9)), us(ok_hist.quantile(0.99)), us(ok_hist.max()),
      not_offered, server_pct, client_pct, per_server_s, per_client_s, all_posts, all_deliveries, member_min,
      member_max, reordered, dropped, error_replies, unexpected, o.ports.size(), cross_hist.count(),
      us(cross_hist.quantile(0.5)), us(cross_hist.quantile(0.99)), server_us_per_delivery, error_count);
  std::printf("%s\n", buf);
  std::fflush(stdout);
  return error_count == 0 ? 0 : 1;
}

}  // namespace hut::bench
