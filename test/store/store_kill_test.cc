// Durability across a process kill: a child posts as fast as it can and
// prints each acknowledged seq; it is killed with SIGKILL mid-stream; every
// acknowledged post must then be in the store (the SQLite file, or the
// PostgreSQL database), in order, with its seq.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "store/store.h"
#include "store_test_util.h"

extern char** environ;

namespace hut::test {

TEST_CASE_TEMPLATE("store: every acknowledged post survives a SIGKILL of the process", T, OnSqlite,
                   OnPostgres) {
  StoreFixture f(T::kBackend);
  if (!f.available()) return;
  std::string child = build_path("test/store/store_kill_child");
  REQUIRE(access(child.c_str(), X_OK) == 0);

  int out[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::string url = f.url();
  std::vector<char*> args = {child.data(), url.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, child.c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  REQUIRE(rc == 0);

  // Read acknowledgements until a few thousand came (or 10 s passed), then
  // kill without warning and read what was printed before the kill.
  std::string text;
  auto start = std::chrono::steady_clock::now();
  auto count_lines = [&] { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); };
  bool killed = false;
  char buf[65536];
  for (;;) {
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (!killed && (count_lines() >= 3000 || elapsed > std::chrono::seconds(10))) {
      kill(pid, SIGKILL);
      killed = true;
    }
    if (elapsed > std::chrono::seconds(30)) break;
    pollfd p{out[0], POLLIN, 0};
    int ready = poll(&p, 1, 100);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    ssize_t got = read(out[0], buf, sizeof buf);
    if (got <= 0) break;  // EOF: the child is gone
    text.append(buf, static_cast<size_t>(got));
  }
  close(out[0]);
  if (!killed) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  CHECK(WIFSIGNALED(status));

  // Complete lines only: the kill may cut the last one.
  std::vector<uint64_t> acked;
  std::istringstream lines(text.substr(0, text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1));
  std::string line;
  while (std::getline(lines, line)) acked.push_back(std::stoull(line));
  MESSAGE(acked.size() << " posts acknowledged before the kill");
  REQUIRE(acked.size() >= 100);
  for (size_t i = 0; i < acked.size(); ++i) {
    REQUIRE(acked[i] == i + 1);  // acknowledged in order, seq counting from 1
  }

  REQUIRE(f.open().ok());
  auto state = f.store().load_state();
  REQUIRE(state.ok());
  REQUIRE(state->rooms.size() == 1);
  uint64_t last = state->rooms[0].last_seq;
  CHECK(last >= acked.size());
  // Every acknowledged post is there with its seq and text, oldest first.
  uint64_t next = 1;
  uint64_t before = 0;
  std::vector<MessageRecord> all;
  for (int pages = 0; pages < 100000; ++pages) {
    auto page = f.wait<HistoryPage>(
        [&](Store::Callback<HistoryPage> cb) { f.store().history("kill", before, 200, cb); });
    REQUIRE(page.ok());
    all.insert(all.begin(), page->messages.begin(), page->messages.end());
    if (!page->more || page->messages.empty()) break;
    before = page->messages.front().seq;
  }
  REQUIRE(all.size() == last);
  for (const auto& m : all) {
    CHECK(m.seq == next);
    CHECK(m.text == "m" + std::to_string(next));
    ++next;
  }
}

}  // namespace hut::test
