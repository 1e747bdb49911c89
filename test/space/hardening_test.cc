// What the space promises an attacker cannot do to it: its data is private
// to its user, and it does not start with a guessable admin token.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "net/http_client.h"
#include "space/space_fixture.h"

using namespace hut;
using namespace hut::test;

namespace {

// The permission bits of `path`, or -1 when it does not exist.
int mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Sets the process umask for the scope (the test's children inherit it).
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

void check_private(const std::string& data, const std::string& db) {
  CHECK(mode_of(data) == 0700);
  CHECK(mode_of(db) == 0600);
  // SQLite makes these when it opens the database in WAL mode.
  for (const std::string& f : {db + "-wal", db + "-shm"}) {
    INFO(f);
    int m = mode_of(f);
    CHECK((m == -1 || m == 0600));
  }
}

}  // namespace

TEST_CASE("space: the data folder is 0700 and the database files 0600, under a permissive umask") {
  TempDir dir;
  ScopedUmask mask(022);
  std::string data = dir.file("data");
  std::string db = data + "/space.db";
  SpaceConfig cfg = test_config(dir);
  cfg.space.data_dir = data;
  cfg.store.url = "sqlite://" + db;
  {
    SpacedProcess p(write_config_file(dir, cfg));
    INFO(p.output());
    REQUIRE(p.ok());
    // A write, so that the write-ahead log exists.
    HttpResult r = http_request(
        p.admin_port(), "POST", "/api/v1/rooms",
        {{"Authorization", std::string("Bearer ") + kAdminToken}, {"Content-Type", "application/json"}},
        R"({"room":"private-talk","private":true})", 10000);
    INFO(r.status << " " << r.body);
    check_private(data, db);
    CHECK(mode_of(db + "-wal") == 0600);
    CHECK(p.signal_and_wait(SIGTERM) == 0);
  }
  // A space left 0755/0644 by an older version is made private at start,
  // also when a program embeds the library (no umask of spaced then).
  std::filesystem::permissions(data, std::filesystem::perms(0755));
  std::filesystem::permissions(db, std::filesystem::perms(0644));
  REQUIRE(mode_of(data) == 0755);
  EmbeddedSpace es(cfg);
  REQUIRE_MESSAGE(es.ok(), es.start_status().to_string());
  check_private(data, db);
}

TEST_CASE("spaced: refuses to start with a placeholder or short admin token") {
  TempDir dir;
  std::string bin = build_path("daemons/spaced/spaced");
  SpaceConfig cfg = test_config(dir);
  for (const std::string& token : {std::string("change-me"), std::string("0123456789abcdef")}) {
    cfg.admin.token = token;
    std::string path = write_config_file(dir, cfg);
    RunResult r = run_process({bin, "--config", path});
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("spaced.toml:10: admin.token: ") != std::string::npos);
    CHECK(r.err.find("openssl rand -hex 32") != std::string::npos);
    CHECK(r.err.find("Sanitizer") == std::string::npos);
  }
}

namespace {

// Resident memory of a process, bytes (VmRSS of /proc/<pid>/status).
size_t rss_of(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("VmRSS:");
  if (at == std::string::npos) return 0;
  return static_cast<size_t>(std::strtoull(status.c_str() + at + 6, nullptr, 10)) * 1024;
}

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Sends what it can of `data`; stops at the first error or timeout.
void send_some(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Sends `data` on every socket, round robin without blocking, until each
// took it all or failed, or `ms` passed.
void send_all_nonblocking(const std::vector<int>& fds, const std::string& data, int ms) {
  std::vector<size_t> sent(fds.size(), 0);
  std::vector<bool> done(fds.size(), false);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> want;
    std::vector<size_t> index;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (done[i]) continue;
      want.push_back(pollfd{fds[i], POLLOUT, 0});
      index.push_back(i);
    }
    if (want.empty()) return;
    if (::poll(want.data(), want.size(), 100) <= 0) continue;
    for (size_t k = 0; k < want.size(); ++k) {
      size_t i = index[k];
      if (want[k].revents & (POLLERR | POLLHUP)) {
        done[i] = true;
        continue;
      }
      if (!(want[k].revents & POLLOUT)) continue;
      ssize_t n = ::send(fds[i], data.data() + sent[i], data.size() - sent[i], MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) done[i] = true;
      if (n > 0) sent[i] += static_cast<size_t>(n);
      if (sent[i] == data.size()) done[i] = true;
    }
  }
}

// True when the peer closed `fd` (or answered and closed) within `ms`.
bool closed_by_peer(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
  return false;
}

std::string limits_config(const TempDir& dir, const std::string& extra) {
  std::string path = write_config_file(dir, test_config(dir));
  write_file(path, read_file(path) + extra);
  return path;
}

}  // namespace

TEST_CASE("spaced: 100 unfinished 500 KB uploads stay within max_body_total, and requests still work") {
  TempDir dir;
  SpacedProcess p(limits_config(dir, "max_body_total = 4194304\n"));
  INFO(p.output());
  REQUIRE(p.ok());
  REQUIRE(http_get(p.port(), "/healthz").status == 200);
  size_t before = rss_of(p.pid());
  REQUIRE(before > 0);

  constexpr size_t kLength = 500 * 1000;
  std::string head =
      "POST /api/counter/hit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(kLength) + "\r\n\r\n";
  std::string part(kLength - 50 * 1000, 'x');
  std::vector<int> fds;
  for (int i = 0; i < 100; ++i) {
    int fd = connect_loopback(p.port());
    REQUIRE(fd >= 0);
    send_some(fd, head);
    fds.push_back(fd);
  }
  send_all_nonblocking(fds, part, 20000);
  // The space read what it took; its memory stays near where it was. (It
  // grew by about 50 MB, one upload buffer per connection, without the cap.)
  size_t peak = 0;
  for (int i = 0; i < 20; ++i) {
    peak = std::max(peak, rss_of(p.pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO("RSS before " << before / 1024 << " KiB, peak " << peak / 1024 << " KiB");
  CHECK(peak < before + 24 * 1024 * 1024);
  // Uploads over the cap were answered 503 and closed.
  int refused = 0;
  for (int fd : fds) refused += closed_by_peer(fd, 50) ? 1 : 0;
  CHECK(refused >= 80);
  // Other requests are served meanwhile.
  CHECK(http_get(p.port(), "/healthz").status == 200);
  for (int fd : fds) ::close(fd);
  // Once the uploads are gone, the budget is back: a normal POST is answered.
  HttpResult r;
  for (int i = 0; i < 50; ++i) {
    r = http_request(p.port(), "POST", "/api/counter/hit", {{"Content-Type", "application/json"}}, "{}");
    if (r.status != 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(r.status != 503);
  CHECK(r.status != 0);
  CHECK(p.signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("spaced: max_connections counts plain HTTP connections too") {
  TempDir dir;
  SpacedProcess p(limits_config(dir, "max_connections = 20\n"));
  INFO(p.output());
  REQUIRE(p.ok());
  // Idle HTTP connections, never a request.
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    int fd = connect_loopback(p.port());
    REQUIRE(fd >= 0);
    fds.push_back(fd);
  }
  // Let the space accept them all, then one more is closed at once.
  bool refused = false;
  for (int i = 0; i < 50 && !refused; ++i) {
    int extra = connect_loopback(p.port());
    REQUIRE(extra >= 0);
    refused = closed_by_peer(extra, 200);
    ::close(extra);
  }
  CHECK(refused);
  CHECK(http_get(p.port(), "/healthz").status == 0);
  // The admin listener is not counted: the operator still gets in.
  CHECK(http_get(p.admin_port(), "/healthz").status == 200);
  for (int fd : fds) ::close(fd);
  int status = 0;
  for (int i = 0; i < 50 && status != 200; ++i) {
    status = http_get(p.port(), "/healthz").status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(status == 200);
  CHECK(p.signal_and_wait(SIGTERM) == 0);
}
