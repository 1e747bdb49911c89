// Benchmark of the SQLite store (see bench/README.md, section "store"):
//   1. durable posts per second with no limit on the offered rate,
//   2. durable posts per second at an offered rate of 10,000/s,
//   3. post-to-callback latency percentiles at 5,000 posts/s,
//   4. history page (50) latency percentiles in a room of 1,000,000 messages.
// Every post is acknowledged only after its transaction is durable
// (synchronous=FULL), exactly as in the space.
//
//   store_bench [--seconds S] [--history-messages N] [--dir D]
#include <sqlite3.h>
#include <uv.h>

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "store/store.h"

namespace {

using hut::PostRequest;
using hut::PostResult;
using hut::Result;
using hut::Status;
using hut::Store;

double ms_since(uint64_t start_ns) { return static_cast<double>(uv_hrtime() - start_ns) / 1e6; }

struct Percentiles {
  double p50, p90, p99, p999, max;
};

Percentiles percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v.empty() ? 0.0
                     : v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
  };
  return Percentiles{at(0.50), at(0.90), at(0.99), at(0.999), v.empty() ? 0.0 : v.back()};
}

[[noreturn]] void die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "store_bench: %s: %s\n", what.c_str(), s.to_string().c_str());
  std::exit(1);
}

// One store on a fresh file in `dir`, with ten rooms.
class Bench {
 public:
  Bench(const std::string& dir, const std::string& name) {
    uv_loop_init(&loop_);
    path_ = dir + "/" + name + ".db";
    std::filesystem::remove(path_);
    auto opened = hut::open_store(&loop_, "sqlite://" + path_);
    if (!opened.ok()) die("open", opened.status());
    store_ = std::move(*opened);
    int created = 0;
    for (int r = 0; r < kRooms; ++r) {
      hut::RoomRecord room;
      room.id = "room" + std::to_string(r);
      store_->create_room(room, {}, [&](Status s) {
        if (!s.ok()) die("create room", s);
        ++created;
      });
    }
    while (created < kRooms) uv_run(&loop_, UV_RUN_ONCE);
  }
  ~Bench() {
    bool closed = false;
    store_->close([&] { closed = true; });
    while (!closed) uv_run(&loop_, UV_RUN_ONCE);
    store_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    std::filesystem::remove(path_);
    std::filesystem::remove(path_ + "-wal");
    std::filesystem::remove(path_ + "-shm");
  }

  uv_loop_t* loop() { return &loop_; }
  Store& store() { return *store_; }
  double wal_mb() const {
    std::error_code ec;
    auto size = std::filesystem::file_size(path_ + "-wal", ec);
    return ec ? 0.0 : static_cast<double>(size) / 1e6;
  }

  // Submits one post; `done` gets the post-to-callback latency in ms.
  void post(uint64_t n, std::function<void(double)> done) {
    PostRequest req;
    req.room = "room" + std::to_string(n % kRooms);
    req.from = hut::UserRecord{"user" + std::to_string(n % 100), "User " + std::to_string(n % 100), ""};
    req.text =
        "message number " + std::to_string(n) + " with some words in it, as people write them in a chat.";
    uint64_t start = uv_hrtime();
    store_->post(std::move(req), [start, done = std::move(done)](Result<PostResult> r) {
      if (!r.ok()) die("post", r.status());
      done(ms_since(start));
    });
  }

  static constexpr int kRooms = 10;

 private:
  uv_loop_t loop_{};
  std::string path_;
  std::unique_ptr<Store> store_;
};

// Posts with `window` in flight for `seconds`; returns durable posts per second.
void unbounded(const std::string& dir, double seconds, size_t window) {
  Bench b(dir, "unbounded");
  uint64_t submitted = 0, acked = 0;
  uint64_t start = uv_hrtime();
  bool stopping = false;
  std::function<void()> submit = [&] {
    b.post(submitted++, [&](double) {
      ++acked;
      if (!stopping && ms_since(start) < seconds * 1000) {
        submit();
      } else {
        stopping = true;
      }
    });
  };
  uint64_t commits0 = b.store().stats().commits;
  for (size_t i = 0; i < window; ++i) submit();
  while (acked < submitted) uv_run(b.loop(), UV_RUN_ONCE);
  double elapsed = ms_since(start) / 1000;
  auto st = b.store().stats();
  uint64_t commits = st.commits - commits0;
  std::printf(
      "unbounded (window %zu): %llu durable posts in %.2f s = %.0f posts/s; %llu commits, %.0f "
      "posts/commit; WAL %.1f MB\n",
      window, static_cast<unsigned long long>(acked), elapsed, static_cast<double>(acked) / elapsed,
      static_cast<unsigned long long>(commits), static_cast<double>(acked) / static_cast<double>(commits),
      b.wal_mb());
}

// Offers `rate` posts per second for `seconds` (a 1 ms timer submits what is
// due); reports the durable rate and the post-to-callback latency.
void offered(const std::string& dir, double rate, double seconds) {
  Bench b(dir, "rate" + std::to_string(static_cast<int>(rate)));
  struct State {
    Bench* b;
    double rate;
    uint64_t total;
    uint64_t submitted = 0, acked = 0;
    uint64_t start = 0;
    std::vector<double> latencies;
  } st{&b, rate, static_cast<uint64_t>(rate * seconds), 0, 0, 0, {}};
  st.latencies.reserve(st.total);
  uv_timer_t timer;
  uv_timer_init(b.loop(), &timer);
  timer.data = &st;
  st.start = uv_hrtime();
  uint64_t commits0 = b.store().stats().commits;
  uv_timer_start(
      &timer,
      [](uv_timer_t* t) {
        auto* s = static_cast<State*>(t->data);
        auto due = static_cast<uint64_t>(s->rate * ms_since(s->start) / 1000);
        due = std::min(due, s->total);
        while (s->submitted < due) {
          s->b->post(s->submitted++, [s](double ms) {
            s->latencies.push_back(ms);
            ++s->acked;
          });
        }
        if (s->submitted == s->total) uv_timer_stop(t);
      },
      0, 1);
  while (st.acked < st.total) uv_run(b.loop(), UV_RUN_ONCE);
  double elapsed = ms_since(st.start) / 1000;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uint64_t commits = b.store().stats().commits - commits0;
  Percentiles p = percentiles(st.latencies);
  std::printf(
      "offered %.0f posts/s for %.0f s: %llu durable posts in %.2f s = %.0f posts/s; %llu commits; "
      "WAL %.1f MB\n"
      "  slowest commit %.1f ms, slowest checkpoint by the writer %.1f ms (since the store opened)\n"
      "  post-to-callback ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
      rate, seconds, static_cast<unsigned long long>(st.acked), elapsed,
      static_cast<double>(st.acked) / elapsed, static_cast<unsigned long long>(commits), b.wal_mb(),
      static_cast<double>(b.store().stats().slowest_commit_us) / 1000,
      static_cast<double>(b.store().stats().slowest_writer_checkpoint_us) / 1000, p.p50, p.p90, p.p99, p.p999,
      p.max);
}

// A room of `messages` messages, written in bulk with SQL into the store's
// own schema (posting them one by one would only measure phase 1 again), then
// pages of 50 read through the store at random places and at the newest end.
void history(const std::string& dir, uint64_t messages) {
  std::string path = dir + "/history.db";
  std::filesystem::remove(path);
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    auto opened = hut::open_store(&loop, "sqlite://" + path);
    if (!opened.ok()) die("open", opened.status());
    bool done = false;
    hut::RoomRecord room;
    room.id = "big";
    (*opened)->create_room(room, {}, [&](Status s) {
      if (!s.ok()) die("create", s);
      (*opened)->put_user(hut::UserRecord{"ann", "Ann", ""}, [&](Status s2) {
        if (!s2.ok()) die("user", s2);
        (*opened)->close([&] { done = true; });
      });
    });
    while (!done) uv_run(&loop, UV_RUN_ONCE);
  }
  uint64_t t0 = uv_hrtime();
  {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    std::string sql =
        "BEGIN;"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
        std::to_string(messages) +
        ") INSERT INTO messages (rid, seq, ts, uid, text) "
        "SELECT (SELECT rid FROM rooms WHERE id = 'big'), i, 1700000000000 + i, (SELECT uid FROM users WHERE "
        "id = "
        "'ann'), 'message number ' || i || ' with some words in it, as people write them in a chat.' FROM n;"
        "UPDATE rooms SET last_seq = " +
        std::to_string(messages) + " WHERE id = 'big';COMMIT;";
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::fprintf(stderr, "store_bench: bulk insert: %s\n", err ? err : "?");
      std::exit(1);
    }
    sqlite3_close(db);
  }
  std::printf("history: built a room of %llu messages in %.1f s (%.0f MB)\n",
              static_cast<unsigned long long>(messages), ms_since(t0) / 1000,
              static_cast<double>(std::filesystem::file_size(path)) / 1e6);
  {
    auto opened = hut::open_store(&loop, "sqlite://" + path);
    if (!opened.ok()) die("open", opened.status());
    Store& store = **opened;
    std::mt19937_64 rng(42);
    std::vector<double> random_ms, newest_ms;
    const int kPages = 2000;
    for (int i = 0; i < 2 * kPages; ++i) {
      bool newest = i % 2 == 0;
      uint64_t before = newest ? 0 : 1 + rng() % messages;
      bool got = false;
      uint64_t start = uv_hrtime();
      store.history("big", before, 50, [&](Result<hut::HistoryPage> r) {
        if (!r.ok()) die("history", r.status());
        (newest ? newest_ms : random_ms).push_back(ms_since(start));
        got = true;
      });
      while (!got) uv_run(&loop, UV_RUN_ONCE);
    }
    Percentiles pn = percentiles(newest_ms), pr = percentiles(random_ms);
    std::printf(
        "  page of 50, newest, ms (through the reader thread): p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
        pn.p50, pn.p90, pn.p99, pn.max);
    std::printf(
        "  page of 50, random place, ms:                       p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
        pr.p50, pr.p90, pr.p99, pr.max);
    bool closed = false;
    store.close([&] { closed = true; });
    while (!closed) uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  uint64_t history_messages = 1000000;
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp");
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--history-messages" && i + 1 < argc) {
      history_messages = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--history-messages N] [--dir D]\n", argv[0]);
      return 2;
    }
  }
  dir += "/hut-store-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::printf("store_bench: files in %s, SQLite %s, synchronous=FULL\n", dir.c_str(), sqlite3_libversion());
  unbounded(dir, seconds, 20000);
  offered(dir, 10000, seconds);
  offered(dir, 5000, seconds);
  if (history_messages > 0) history(dir, history_messages);
  std::filesystem::remove_all(dir);
  return 0;
}
