// Running a real space in a test: embedded (hut::Space on a uv loop in a
// thread of the test) or as a spaced process, both on port 0, plus tokens.
#ifndef HUTOPIA_TEST_SPACE_SPACE_FIXTURE_H_
#define HUTOPIA_TEST_SPACE_SPACE_FIXTURE_H_

#include <hutopia/config.h>
#include <hutopia/space.h>
#include <hutopia/token.h>

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "test_util.h"

namespace hut::test {

constexpr const char* kSpaceId = "test-space";
constexpr const char* kAppIssuer = "test-app";
constexpr const char* kAppSecret = "a-test-secret-of-some-length-0123456789";
constexpr const char* kAdminToken = "test-admin-token-0123456789abcdef0123";

// Both listeners on 127.0.0.1:0, the plugins of the build tree, an app
// secret and an admin token; data under `dir`.
SpaceConfig test_config(const TempDir& dir);

// An HS256 app token; `adjust` may change the claims before signing.
std::string app_token(const std::string& user, const std::function<void(Claims&)>& adjust = {},
                      const std::string& secret = kAppSecret);

// A space on its own loop thread. Construction starts it (REQUIRE-free: check
// ok()); destruction stops it and joins the thread.
class EmbeddedSpace {
 public:
  // `before_start` runs after create() and before start(), on this thread
  // (for calls such as register_plugin that belong there).
  explicit EmbeddedSpace(SpaceConfig config, const std::function<void(Space&)>& before_start = {});
  ~EmbeddedSpace();
  bool ok() const { return start_status_.ok(); }
  const Status& start_status() const { return start_status_; }
  Space& space() { return *space_; }
  int port() const { return public_port_; }
  int admin_port() const { return admin_port_; }

  // Runs `fn` on the loop thread and waits for it (at most 10 s).
  template <typename F>
  auto call(F fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    auto fut = task->get_future();
    space_->post([task] { (*task)(); });
    fut.wait_for(std::chrono::seconds(10));
    return fut.get();
  }
  // Stops the space and joins the loop thread; true when the loop ended.
  bool stop();

 private:
  uv_loop_t loop_;
  std::unique_ptr<Space> space_;
  std::thread thread_;
  Status start_status_;
  int public_port_ = 0;
  int admin_port_ = 0;
  bool stopped_ = false;
};

// A spaced process. Construction starts it and reads its two "listening on"
// lines (at most 10 s).
class SpacedProcess {
 public:
  SpacedProcess(const std::string& config_path, int timeout_ms = 10000);
  ~SpacedProcess();
  bool ok() const { return public_port_ > 0 && admin_port_ > 0; }
  int port() const { return public_port_; }
  int admin_port() const { return admin_port_; }
  const std::string& output() const { return out_; }
  pid_t pid() const { return pid_; }
  // Sends `sig` and waits for the exit (at most timeout_ms); the exit status,
  // 128+signal when killed, or -1 on timeout.
  int signal_and_wait(int sig, int timeout_ms = 10000);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string out_;
  int public_port_ = 0;
  int admin_port_ = 0;
};

// Writes a spaced.toml for `config` into `dir` and returns its path.
std::string write_config_file(const TempDir& dir, const SpaceConfig& config);

}  // namespace hut::test

#endif  // HUTOPIA_TEST_SPACE_SPACE_FIXTURE_H_
